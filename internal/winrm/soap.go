package winrm

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/svcwatch/svcwatch/internal/inventory"
)

const (
	nsSOAP         = "http://www.w3.org/2003/05/soap-envelope"
	commandDoneURI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
	maxXMLDepth    = 64
)

// Fault is a WS-Management SOAP fault.
type Fault struct {
	Code    uint64 // WSManFault@Code, or MSFT_WmiError error_Code; 0 when absent
	Subcode string // local part of the SOAP subcode, e.g. "QuotaLimit"
	Reason  string // SOAP Reason text
	Message string // WSManFault / WmiError message, when it says more than Reason
	Machine string
}

func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString("WS-Management fault")
	if f.Subcode != "" {
		b.WriteString(" " + f.Subcode)
	}
	if f.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", f.Code)
	}
	text := f.Message
	if text == "" {
		text = f.Reason
	}
	if text != "" {
		b.WriteString(": " + sanitize(text, 300))
	}
	return b.String()
}

// envelope is what svcwatch needs from any WS-Management answer.
type envelope struct {
	Fault     *Fault
	ShellID   string
	CommandID string
	Streams   []stream
	Done      bool
	ExitCode  int
	HasExit   bool
}

type stream struct {
	Name      string
	CommandID string
	Data      []byte
}

// parseEnvelope reads a SOAP 1.2 envelope by element local names (Windows
// and OMI spell prefixes differently). It never panics; malformed XML,
// bad base64 or excessive nesting wrap ErrProtocol.
func parseEnvelope(body []byte) (*envelope, error) {
	env := &envelope{}
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var (
		path       []string
		sawEnv     bool
		text       strings.Builder
		cur        *stream
		fault      *Fault
		wsmanDepth int
		// shellSelector: the open Selector element is Name="ShellId".
		shellSelector bool
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: SOAP: %v", ErrProtocol, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(path) >= maxXMLDepth {
				return nil, fmt.Errorf("%w: SOAP: nesting deeper than %d", ErrProtocol, maxXMLDepth)
			}
			name := t.Name.Local
			if len(path) == 0 {
				if name != "Envelope" || t.Name.Space != nsSOAP {
					return nil, fmt.Errorf("%w: SOAP: root element is %s, not a SOAP 1.2 Envelope", ErrProtocol, sanitize(name, 40))
				}
				sawEnv = true
			}
			path = append(path, name)
			text.Reset()
			switch name {
			case "Fault":
				if fault == nil {
					fault = &Fault{}
				}
			case "Selector":
				shellSelector = attr(t, "Name") == "ShellId"
			case "Stream":
				cur = &stream{Name: attr(t, "Name"), CommandID: attr(t, "CommandId")}
			case "CommandState":
				if attr(t, "State") == commandDoneURI {
					env.Done = true
				}
			case "WSManFault":
				wsmanDepth++
				if fault != nil && wsmanDepth == 1 {
					fault.Code, _ = strconv.ParseUint(attr(t, "Code"), 10, 32)
					fault.Machine = attr(t, "Machine")
				}
			}
		case xml.CharData:
			if text.Len() < 1<<20 {
				text.Write(t)
			}
		case xml.EndElement:
			if len(path) == 0 {
				return nil, fmt.Errorf("%w: SOAP: unbalanced end element", ErrProtocol)
			}
			name := path[len(path)-1]
			parent := ""
			if len(path) > 1 {
				parent = path[len(path)-2]
			}
			val := strings.TrimSpace(text.String())
			switch {
			case name == "Selector" && shellSelector && env.ShellID == "" && parent == "SelectorSet":
				env.ShellID = val
			case name == "ShellId" && env.ShellID == "":
				env.ShellID = val
			case name == "CommandId" && parent == "CommandResponse":
				env.CommandID = val
			case name == "Stream" && cur != nil:
				data, err := base64.StdEncoding.DecodeString(val)
				if err != nil {
					return nil, fmt.Errorf("%w: SOAP: stream %s is not base64: %v", ErrProtocol, sanitize(cur.Name, 20), err)
				}
				cur.Data = data
				env.Streams = append(env.Streams, *cur)
				cur = nil
			case name == "ExitCode":
				n, err := strconv.ParseInt(val, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%w: SOAP: exit code %q", ErrProtocol, sanitize(val, 20))
				}
				env.ExitCode, env.HasExit = int(int32(n)), true
			case fault != nil && name == "Value" && parent == "Subcode":
				fault.Subcode = localPart(val)
			case fault != nil && name == "Text" && parent == "Reason":
				fault.Reason = val
			case fault != nil && name == "Message" && parent == "WSManFault" && wsmanDepth == 1 && fault.Message == "":
				fault.Message = val
			case fault != nil && name == "ProviderFault" && fault.Message == "" && val != "":
				fault.Message = val
			case fault != nil && name == "error_Code" && fault.Code == 0:
				fault.Code, _ = strconv.ParseUint(val, 10, 32)
			case fault != nil && name == "Message" && parent == "MSFT_WmiError" && fault.Message == "":
				fault.Message = val
			case name == "WSManFault":
				wsmanDepth--
			}
			path = path[:len(path)-1]
			text.Reset()
		}
	}
	if !sawEnv || len(path) != 0 {
		return nil, fmt.Errorf("%w: SOAP: incomplete envelope", ErrProtocol)
	}
	env.Fault = fault
	for _, id := range []string{env.ShellID, env.CommandID} {
		if id != "" && !isResourceID(id) {
			return nil, fmt.Errorf("%w: SOAP: shell or command id %q is not an identifier", ErrProtocol, sanitize(id, 80))
		}
	}
	return env, nil
}

// isResourceID accepts the shell and command ids WinRM hands out (GUIDs,
// optionally "uuid:"-prefixed or braced): they go back into later requests.
func isResourceID(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == ':' || c == '{' || c == '}') {
			return false
		}
	}
	return true
}

func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func localPart(qname string) string {
	if i := strings.LastIndexByte(qname, ':'); i >= 0 {
		return qname[i+1:]
	}
	return qname
}

// sanitize makes untrusted text safe for one log line: valid UTF-8, no
// control characters, at most max bytes.
func sanitize(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
	return inventory.Truncate(strings.Join(strings.Fields(s), " "), max)
}
