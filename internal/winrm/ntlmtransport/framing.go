package ntlmtransport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"

	"github.com/svcwatch/svcwatch/internal/ntlm"
)

// MS-WSMV 2.2.9.1.1 framing of an NTLM-sealed SOAP message.
const (
	// Boundary is the MIME boundary Windows uses.
	Boundary = "Encrypted Boundary"
	// ProtocolSPNEGO is the protocol parameter for NTLM (and Kerberos) sealing.
	ProtocolSPNEGO = "application/HTTP-SPNEGO-session-encrypted"
	// ContentType is the Content-Type of a sealed request.
	ContentType = `multipart/encrypted;protocol="` + ProtocolSPNEGO + `";boundary="` + Boundary + `"`
	// SOAPContentType is the type of the original (plaintext) message.
	SOAPContentType = "application/soap+xml;charset=UTF-8"
)

// Framing limits: a real message has two parts with two headers each.
const (
	maxParts        = 64
	maxHeaderLines  = 16
	maxHeaderLine   = 1024
	maxOriginalSize = 1 << 30
)

// ErrFraming means a multipart/encrypted body is malformed.
var ErrFraming = errors.New("malformed multipart/encrypted body")

// EncryptedPart is one sealed message: the signature and the sealed bytes,
// whose length equals the plaintext length (NTLM sealing is a stream cipher).
type EncryptedPart struct {
	Signature []byte
	Sealed    []byte
}

var (
	dashBoundary = []byte("--" + Boundary)
	crlf         = []byte("\r\n")
)

// EncodeEncrypted frames sealed parts the way Windows and pywinrm do: headers
// indented by a tab, no blank line before the payload, and the payload
// (uint32-LE signature length, signature, sealed bytes) directly followed by
// the closing boundary.
func EncodeEncrypted(parts ...EncryptedPart) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		b.Write(dashBoundary)
		b.WriteString("\r\n\tContent-Type: " + ProtocolSPNEGO + "\r\n")
		fmt.Fprintf(&b, "\tOriginalContent: type=%s;Length=%d\r\n", SOAPContentType, len(p.Sealed))
		b.Write(dashBoundary)
		b.WriteString("\r\n\tContent-Type: application/octet-stream\r\n")
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(len(p.Signature)))
		b.Write(n[:])
		b.Write(p.Signature)
		b.Write(p.Sealed)
	}
	b.Write(dashBoundary)
	b.WriteString("--\r\n")
	return b.Bytes()
}

// CheckContentType verifies that a response Content-Type announces NTLM
// sealing with the boundary this package parses.
func CheckContentType(v string) error {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return fmt.Errorf("%w: Content-Type %q: %v", ErrFraming, v, err)
	}
	if mt != "multipart/encrypted" {
		return fmt.Errorf("%w: Content-Type %q is not multipart/encrypted", ErrFraming, mt)
	}
	if p := params["protocol"]; !strings.EqualFold(p, ProtocolSPNEGO) {
		return fmt.Errorf("%w: protocol %q, want %q", ErrFraming, p, ProtocolSPNEGO)
	}
	if b, ok := params["boundary"]; ok && b != Boundary {
		return fmt.Errorf("%w: boundary %q, want %q", ErrFraming, b, Boundary)
	}
	return nil
}

// framingReader walks a body with every index checked.
type framingReader struct {
	b   []byte
	pos int
}

func (r *framingReader) fail(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrFraming, r.pos, fmt.Sprintf(format, args...))
}

func (r *framingReader) rest() []byte { return r.b[r.pos:] }

// line returns the next CRLF-terminated line without the CRLF.
func (r *framingReader) line() ([]byte, error) {
	rest := r.rest()
	i := bytes.Index(rest, crlf)
	if i < 0 || i > maxHeaderLine {
		return nil, r.fail("expected a header line of at most %d bytes", maxHeaderLine)
	}
	r.pos += i + 2
	return rest[:i], nil
}

// header parses "Name: value" (leading blanks allowed, as Windows indents with a tab).
func parseHeader(line []byte) (name, value string, ok bool) {
	s := strings.TrimLeft(string(line), " \t")
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", "", false
	}
	for _, c := range s[:i] {
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return "", "", false
		}
	}
	return strings.ToLower(s[:i]), strings.TrimSpace(s[i+1:]), true
}

// headers reads header lines until a blank line (consumed), the next boundary
// (not consumed), or a line that is not a header (the payload, not consumed).
func (r *framingReader) headers() (map[string]string, error) {
	h := map[string]string{}
	for n := 0; ; n++ {
		if n > maxHeaderLines {
			return nil, r.fail("more than %d header lines", maxHeaderLines)
		}
		rest := r.rest()
		if bytes.HasPrefix(rest, crlf) {
			r.pos += 2
			return h, nil
		}
		if bytes.HasPrefix(rest, dashBoundary) {
			return h, nil
		}
		i := bytes.Index(rest, crlf)
		if i < 0 || i > maxHeaderLine {
			return h, nil
		}
		name, value, ok := parseHeader(rest[:i])
		if !ok {
			return h, nil
		}
		r.pos += i + 2
		h[name] = value
	}
}

// boundaryLine consumes "--Encrypted Boundary" and reports whether it was the
// closing one ("--" suffix).
func (r *framingReader) boundaryLine() (closing bool, err error) {
	if !bytes.HasPrefix(r.rest(), dashBoundary) {
		return false, r.fail("expected %q", dashBoundary)
	}
	r.pos += len(dashBoundary)
	if bytes.HasPrefix(r.rest(), []byte("--")) {
		r.pos += 2
		return true, nil
	}
	l, err := r.line()
	if err != nil {
		return false, err
	}
	if len(bytes.Trim(l, " \t")) != 0 {
		return false, r.fail("unexpected text %q after the boundary", l)
	}
	return false, nil
}

// originalLength extracts Length=N from "type=...;charset=...;Length=N".
func originalLength(v string) (int, error) {
	for _, p := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "length") {
			continue
		}
		val = strings.TrimSpace(val)
		if val == "" || len(val) > 10 || strings.Trim(val, "0123456789") != "" {
			return 0, fmt.Errorf("Length %q is not a decimal number", val)
		}
		n, err := strconv.Atoi(val)
		if err != nil || n > maxOriginalSize {
			return 0, fmt.Errorf("Length %q out of range", val)
		}
		return n, nil
	}
	return 0, errors.New("no Length parameter")
}

// DecodeEncrypted parses a multipart/encrypted body into its sealed parts.
// It accepts the Windows layout (tab-indented headers, payload right after the
// headers) and the normalised MIME layout (blank line after the headers, CRLF
// before the boundary). The payload is cut by the lengths it declares, never
// by searching for the boundary inside binary data. It never panics.
func DecodeEncrypted(body []byte) ([]EncryptedPart, error) {
	r := &framingReader{b: body}
	var parts []EncryptedPart
	if closing, err := r.boundaryLine(); err != nil {
		return nil, err
	} else if closing {
		return nil, r.fail("no parts before the closing boundary")
	}
	for {
		if len(parts) == maxParts {
			return nil, r.fail("more than %d parts", maxParts)
		}
		h, err := r.headers()
		if err != nil {
			return nil, err
		}
		if ct := h["content-type"]; !strings.EqualFold(ct, ProtocolSPNEGO) {
			return nil, r.fail("first part Content-Type %q, want %q", ct, ProtocolSPNEGO)
		}
		oc, ok := h["originalcontent"]
		if !ok {
			return nil, r.fail("no OriginalContent header")
		}
		length, err := originalLength(oc)
		if err != nil {
			return nil, r.fail("OriginalContent: %v", err)
		}
		// The first part has no body; in plain MIME the CRLF before the
		// next boundary still follows the blank line ending its headers.
		for bytes.HasPrefix(r.rest(), crlf) {
			r.pos += 2
		}
		if closing, err := r.boundaryLine(); err != nil {
			return nil, err
		} else if closing {
			return nil, r.fail("closing boundary before the octet-stream part")
		}
		h, err = r.headers()
		if err != nil {
			return nil, err
		}
		if ct := h["content-type"]; !strings.EqualFold(ct, "application/octet-stream") {
			return nil, r.fail("second part Content-Type %q, want application/octet-stream", ct)
		}
		p, err := r.payload(length)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
		if bytes.HasPrefix(r.rest(), crlf) {
			r.pos += 2
		}
		closing, err := r.boundaryLine()
		if err != nil {
			return nil, err
		}
		if closing {
			break
		}
	}
	// Only line ends may follow the closing boundary.
	if len(bytes.Trim(r.rest(), "\r\n")) != 0 {
		return nil, r.fail("%d bytes after the closing boundary", len(r.rest()))
	}
	return parts, nil
}

func (r *framingReader) payload(length int) (EncryptedPart, error) {
	rest := r.rest()
	if len(rest) < 4 {
		return EncryptedPart{}, r.fail("payload shorter than its 4-byte signature length")
	}
	sigLen := binary.LittleEndian.Uint32(rest)
	if sigLen != ntlm.SignatureLen {
		return EncryptedPart{}, r.fail("signature length %d, want %d", sigLen, ntlm.SignatureLen)
	}
	need := 4 + int(sigLen) + length
	if len(rest) < need {
		return EncryptedPart{}, r.fail("payload of %d bytes is shorter than the %d declared (OriginalContent Length=%d)", len(rest), need, length)
	}
	r.pos += need
	return EncryptedPart{
		Signature: append([]byte(nil), rest[4:4+sigLen]...),
		Sealed:    append([]byte(nil), rest[4+sigLen:need]...),
	}, nil
}
