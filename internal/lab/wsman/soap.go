package wsman

import (
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Namespaces and URIs, as Windows writes them.
const (
	nsSOAP      = "http://www.w3.org/2003/05/soap-envelope"
	nsAddr      = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsTransfer  = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
	nsWSMan     = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsShell     = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	nsMSWSMan   = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
	nsFault     = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
	uriCmdShell = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
	anonymous   = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

	ActionCreate  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
	ActionDelete  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
	ActionCommand = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
	ActionReceive = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
	ActionSignal  = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
	ActionSend    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"

	stateDone    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
	stateRunning = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
	signalTerm   = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
	signalCtrlC  = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
)

// request is the part of a WS-Management request the server reads.
type request struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  struct {
		Action           string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing Action"`
		MessageID        string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing MessageID"`
		To               string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing To"`
		ResourceURI      string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd ResourceURI"`
		MaxEnvelopeSize  string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd MaxEnvelopeSize"`
		OperationTimeout string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OperationTimeout"`
		SelectorSet      struct {
			Selectors []struct {
				Name  string `xml:"Name,attr"`
				Value string `xml:",chardata"`
			} `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Selector"`
		} `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd SelectorSet"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body struct {
		Shell *struct {
			InputStreams  string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell InputStreams"`
			OutputStreams string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell OutputStreams"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Shell"`
		CommandLine *struct {
			Command   string   `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Command"`
			Arguments []string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Arguments"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandLine"`
		Receive *struct {
			DesiredStream struct {
				CommandID string `xml:"CommandId,attr"`
				Streams   string `xml:",chardata"`
			} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell DesiredStream"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Receive"`
		Signal *struct {
			CommandID string `xml:"CommandId,attr"`
			Code      string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Code"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Signal"`
		Send *struct {
			Streams []struct {
				CommandID string `xml:"CommandId,attr"`
				Name      string `xml:"Name,attr"`
				End       string `xml:"End,attr"`
				Data      string `xml:",chardata"`
			} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Stream"`
		} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Send"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

func (r *request) selector(name string) string {
	for _, s := range r.Header.SelectorSet.Selectors {
		if s.Name == name {
			return strings.TrimSpace(s.Value)
		}
	}
	return ""
}

// commandLine assembles what Windows hands to the shell: the command and its
// arguments separated by spaces.
func (r *request) commandLine() string {
	cl := r.Body.CommandLine
	parts := append([]string{strings.TrimSpace(cl.Command)}, cl.Arguments...)
	return strings.Join(parts, " ")
}

var durationRE = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseDuration reads an xs:duration such as PT60S, PT60.000S or P0DT0H1M0S.
func parseDuration(s string) (time.Duration, bool) {
	m := durationRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil || s == "P" || s == "PT" {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 32)
			if err != nil {
				return 0, false
			}
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		f, err := strconv.ParseFloat(m[4], 64)
		if err != nil || f > 1e7 {
			return 0, false
		}
		d += time.Duration(f * float64(time.Second))
	}
	return d, true
}

// newID is an upper-case GUID as Windows prints them.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Envelope openers: each response kind declares the prefixes Windows declares for it.
const (
	openCommon  = `<s:Envelope xml:lang="en-US" xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddr + `" xmlns:x="` + nsTransfer + `" xmlns:w="` + nsWSMan + `" xmlns:rsp="` + nsShell + `" xmlns:p="` + nsMSWSMan + `">`
	openReceive = `<s:Envelope xml:lang="en-US" xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddr + `" xmlns:w="` + nsWSMan + `" xmlns:rsp="` + nsShell + `" xmlns:p="` + nsMSWSMan + `">`
	openDelete  = `<s:Envelope xml:lang="en-US" xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddr + `" xmlns:w="` + nsWSMan + `" xmlns:p="` + nsMSWSMan + `">`
	openFault   = `<s:Envelope xml:lang="en-US" xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddr + `" xmlns:x="` + nsTransfer + `" xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:w="` + nsWSMan + `" xmlns:p="` + nsMSWSMan + `">`
	closeEnv    = `</s:Envelope>`
)

func header(b *strings.Builder, action, relatesTo string) {
	b.WriteString(`<s:Header><a:Action>`)
	b.WriteString(action)
	b.WriteString(`</a:Action><a:MessageID>uuid:`)
	b.WriteString(newID())
	b.WriteString(`</a:MessageID><a:To>` + anonymous + `</a:To>`)
	if relatesTo != "" {
		b.WriteString(`<a:RelatesTo>`)
		b.WriteString(xmlText(relatesTo))
		b.WriteString(`</a:RelatesTo>`)
	}
	b.WriteString(`</s:Header>`)
}

func createResponse(relatesTo, address, shellID, owner, clientIP string) string {
	var b strings.Builder
	b.WriteString(openCommon)
	header(&b, "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", relatesTo)
	fmt.Fprintf(&b, `<s:Body><x:ResourceCreated><a:Address>%s</a:Address><a:ReferenceParameters><w:ResourceURI>%s</w:ResourceURI>`+
		`<w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>`+
		`<rsp:Shell xmlns:rsp="%s"><rsp:ShellId>%s</rsp:ShellId><rsp:ResourceUri>%s</rsp:ResourceUri><rsp:Owner>%s</rsp:Owner>`+
		`<rsp:ClientIP>%s</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams>`+
		`<rsp:OutputStreams>stdout stderr</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>`+
		`<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell></s:Body>`,
		xmlText(address), uriCmdShell, shellID, nsShell, shellID, uriCmdShell, xmlText(owner), xmlText(clientIP))
	b.WriteString(closeEnv)
	return b.String()
}

func commandResponse(relatesTo, commandID string) string {
	var b strings.Builder
	b.WriteString(openCommon)
	header(&b, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse", relatesTo)
	b.WriteString(`<s:Body><rsp:CommandResponse><rsp:CommandId>` + commandID + `</rsp:CommandId></rsp:CommandResponse></s:Body>`)
	b.WriteString(closeEnv)
	return b.String()
}

func signalResponse(relatesTo string) string {
	var b strings.Builder
	b.WriteString(openCommon)
	header(&b, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse", relatesTo)
	b.WriteString(`<s:Body><rsp:SignalResponse/></s:Body>`)
	b.WriteString(closeEnv)
	return b.String()
}

func sendResponse(relatesTo string) string {
	var b strings.Builder
	b.WriteString(openCommon)
	header(&b, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse", relatesTo)
	b.WriteString(`<s:Body><rsp:SendResponse/></s:Body>`)
	b.WriteString(closeEnv)
	return b.String()
}

func deleteResponse(relatesTo string) string {
	var b strings.Builder
	b.WriteString(openDelete)
	header(&b, "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", relatesTo)
	b.WriteString(`<s:Body></s:Body>`)
	b.WriteString(closeEnv)
	return b.String()
}

// receiveChunk is one Receive answer's worth of output.
type receiveChunk struct {
	stdout, stderr []byte
	done           bool
	exit           int
}

func receiveResponse(relatesTo, commandID string, c receiveChunk) []byte {
	var b strings.Builder
	b.Grow(len(openReceive) + 1024 + (len(c.stdout)+len(c.stderr))*4/3)
	b.WriteString(openReceive)
	header(&b, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse", relatesTo)
	b.WriteString(`<s:Body><rsp:ReceiveResponse>`)
	stream := func(name string, data []byte) {
		if len(data) == 0 {
			return
		}
		b.WriteString(`<rsp:Stream Name="` + name + `" CommandId="` + commandID + `">`)
		writeBase64(&b, data)
		b.WriteString(`</rsp:Stream>`)
	}
	stream("stdout", c.stdout)
	stream("stderr", c.stderr)
	if c.done {
		b.WriteString(`<rsp:Stream Name="stdout" CommandId="` + commandID + `" End="true"></rsp:Stream>`)
		b.WriteString(`<rsp:Stream Name="stderr" CommandId="` + commandID + `" End="true"></rsp:Stream>`)
		b.WriteString(`<rsp:CommandState CommandId="` + commandID + `" State="` + stateDone + `"><rsp:ExitCode>` + strconv.Itoa(c.exit) + `</rsp:ExitCode></rsp:CommandState>`)
	} else {
		b.WriteString(`<rsp:CommandState CommandId="` + commandID + `" State="` + stateRunning + `"></rsp:CommandState>`)
	}
	b.WriteString(`</rsp:ReceiveResponse></s:Body>`)
	b.WriteString(closeEnv)
	return []byte(b.String())
}
