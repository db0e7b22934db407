package wsauth

// The multipart/encrypted framing of MS-WSMV 2.2.9.1.1. Windows writes part
// headers with a leading tab and no blank line before the binary part, which
// mime/multipart rejects, so the body is parsed by hand, by lengths, never by
// searching for the boundary inside encrypted bytes.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
)

const (
	encryptedProtocol = "application/HTTP-SPNEGO-session-encrypted"
	encryptedBoundary = "Encrypted Boundary"
	// EncryptedContentType is the Content-Type of a sealed WinRM message.
	EncryptedContentType = `multipart/encrypted;protocol="` + encryptedProtocol + `";boundary="` + encryptedBoundary + `"`
	soapContentType      = "application/soap+xml;charset=UTF-8"
	maxEncryptedParts    = 64
)

var errFraming = errors.New("malformed multipart/encrypted body")

// encryptedPart is one sealed message of a multipart/encrypted body.
type encryptedPart struct {
	OriginalType string // e.g. application/soap+xml;charset=UTF-8
	Signature    []byte
	Sealed       []byte
}

// isEncryptedContentType reports whether a request Content-Type announces
// NTLM/SPNEGO session encryption.
func isEncryptedContentType(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "multipart/encrypted")
	}
	return (mt == "multipart/encrypted" || mt == "multipart/x-multi-encrypted") &&
		strings.EqualFold(params["protocol"], encryptedProtocol)
}

// checkEncryptedContentType validates the request header fully.
func checkEncryptedContentType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("%w: Content-Type: %v", errFraming, err)
	}
	if mt != "multipart/encrypted" {
		return fmt.Errorf("%w: media type %q, want multipart/encrypted", errFraming, mt)
	}
	if !strings.EqualFold(params["protocol"], encryptedProtocol) {
		return fmt.Errorf("%w: protocol %q, want %q", errFraming, params["protocol"], encryptedProtocol)
	}
	if params["boundary"] != encryptedBoundary {
		return fmt.Errorf("%w: boundary %q, want %q", errFraming, params["boundary"], encryptedBoundary)
	}
	return nil
}

// parseEncrypted splits a multipart/encrypted body into its sealed parts.
func parseEncrypted(body []byte) ([]encryptedPart, error) {
	r := framingReader{b: body}
	delim := []byte("--" + encryptedBoundary)
	var parts []encryptedPart
	r.skipBlankLines()
	if !r.consume(delim) || !r.consume([]byte("\r\n")) {
		return nil, fmt.Errorf("%w: does not start with the boundary", errFraming)
	}
	for {
		if len(parts) == maxEncryptedParts {
			return nil, fmt.Errorf("%w: more than %d parts", errFraming, maxEncryptedParts)
		}
		p, err := r.part(delim)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
		// After the binary part: the closing or the next boundary.
		r.consume([]byte("\r\n"))
		if !r.consume(delim) {
			return nil, fmt.Errorf("%w: binary part not followed by the boundary", errFraming)
		}
		if r.consume([]byte("--")) {
			r.consume([]byte("\r\n"))
			if len(bytes.TrimSpace(r.rest())) != 0 {
				return nil, fmt.Errorf("%w: data after the closing boundary", errFraming)
			}
			return parts, nil
		}
		if !r.consume([]byte("\r\n")) {
			return nil, fmt.Errorf("%w: boundary not followed by CRLF", errFraming)
		}
	}
}

type framingReader struct {
	b   []byte
	off int
}

func (r *framingReader) rest() []byte { return r.b[r.off:] }

func (r *framingReader) consume(p []byte) bool {
	if bytes.HasPrefix(r.rest(), p) {
		r.off += len(p)
		return true
	}
	return false
}

func (r *framingReader) skipBlankLines() {
	for r.consume([]byte("\r\n")) {
	}
}

// line returns the next CRLF-terminated line without its terminator.
func (r *framingReader) line() ([]byte, bool) {
	i := bytes.Index(r.rest(), []byte("\r\n"))
	if i < 0 || i > 4096 {
		return nil, false
	}
	l := r.rest()[:i]
	r.off += i + 2
	return l, true
}

// headers reads header lines (leading white space allowed, as Windows
// writes them) until the stop boundary or a blank line.
func (r *framingReader) headers(stop []byte) (map[string]string, error) {
	h := map[string]string{}
	for {
		if bytes.HasPrefix(r.rest(), stop) {
			return h, nil
		}
		l, ok := r.line()
		if !ok {
			return nil, fmt.Errorf("%w: unterminated part header", errFraming)
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			if len(h) > 0 {
				r.skipBlankLines()
				return h, nil
			}
			continue
		}
		name, value, found := bytes.Cut(l, []byte(":"))
		if !found || len(h) > 16 {
			return nil, fmt.Errorf("%w: bad part header line %q", errFraming, truncate(l))
		}
		h[strings.ToLower(string(bytes.TrimSpace(name)))] = string(bytes.TrimSpace(value))
	}
}

// part reads one header part and its binary part.
func (r *framingReader) part(delim []byte) (encryptedPart, error) {
	var p encryptedPart
	h, err := r.headers(delim)
	if err != nil {
		return p, err
	}
	if !strings.EqualFold(h["content-type"], encryptedProtocol) {
		return p, fmt.Errorf("%w: first part Content-Type %q, want %q", errFraming, truncate([]byte(h["content-type"])), encryptedProtocol)
	}
	origType, length, err := parseOriginalContent(h["originalcontent"])
	if err != nil {
		return p, err
	}
	p.OriginalType = origType
	if !r.consume(delim) || !r.consume([]byte("\r\n")) {
		return p, fmt.Errorf("%w: no boundary before the binary part", errFraming)
	}
	// The binary part's single header line; Windows puts the data right after it.
	l, ok := r.line()
	if !ok {
		return p, fmt.Errorf("%w: unterminated binary part header", errFraming)
	}
	name, value, _ := bytes.Cut(bytes.TrimSpace(l), []byte(":"))
	if !strings.EqualFold(string(bytes.TrimSpace(name)), "Content-Type") ||
		!strings.EqualFold(string(bytes.TrimSpace(value)), "application/octet-stream") {
		return p, fmt.Errorf("%w: binary part header %q, want Content-Type: application/octet-stream", errFraming, truncate(l))
	}
	// A blank line may follow (RFC 2046 style); the payload starts with a
	// 4-byte length of 16, so CRLF cannot be its first bytes.
	r.consume([]byte("\r\n"))
	rest := r.rest()
	if len(rest) < 4 {
		return p, fmt.Errorf("%w: binary part truncated before the signature length", errFraming)
	}
	if n := binary.LittleEndian.Uint32(rest); n != signatureLen {
		return p, fmt.Errorf("%w: signature length %d, want %d", errFraming, n, signatureLen)
	}
	// Length is the plaintext length (MS-WSMV; Windows, pywinrm, masterzen's
	// own framing). bodgit/ntlmssp's HTTP client writes the length of the
	// whole binary part instead; accept that too, the signature still
	// covers every byte.
	n := -1
	for _, candidate := range []int{length, length - 4 - signatureLen} {
		if candidate >= 0 && boundaryAt(rest, 4+signatureLen+candidate, delim) {
			n = candidate
			break
		}
	}
	if n < 0 {
		return p, fmt.Errorf("%w: binary part of %d bytes does not match OriginalContent Length=%d", errFraming, max(len(rest)-4-signatureLen, 0), length)
	}
	p.Signature = rest[4 : 4+signatureLen]
	p.Sealed = rest[4+signatureLen : 4+signatureLen+n]
	r.off += 4 + signatureLen + n
	return p, nil
}

// boundaryAt reports whether b[end:] starts with the delimiter (after an
// optional CRLF).
func boundaryAt(b []byte, end int, delim []byte) bool {
	if end > len(b) {
		return false
	}
	rest := b[end:]
	return bytes.HasPrefix(rest, delim) || (bytes.HasPrefix(rest, []byte("\r\n")) && bytes.HasPrefix(rest[2:], delim))
}

// parseOriginalContent reads "type=application/soap+xml;charset=UTF-8;Length=N".
func parseOriginalContent(v string) (string, int, error) {
	if v == "" {
		return "", 0, fmt.Errorf("%w: no OriginalContent header", errFraming)
	}
	var types []string
	length := -1
	for _, f := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch strings.ToLower(k) {
		case "type":
			types = append(types, val)
		case "charset":
			types = append(types, "charset="+val)
		case "length":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return "", 0, fmt.Errorf("%w: OriginalContent Length %q", errFraming, truncate([]byte(val)))
			}
			length = n
		}
	}
	if length < 0 || len(types) == 0 || types[0] == "" {
		return "", 0, fmt.Errorf("%w: OriginalContent %q lacks type or Length", errFraming, truncate([]byte(v)))
	}
	return strings.Join(types, ";"), length, nil
}

// appendEncryptedPart writes one sealed message the way Windows does.
func appendEncryptedPart(b []byte, originalType string, plainLen int, payload []byte) []byte {
	b = append(b, "--"+encryptedBoundary+"\r\n"...)
	b = append(b, "\tContent-Type: "+encryptedProtocol+"\r\n"...)
	b = append(b, "\tOriginalContent: type="+originalType+";Length="+strconv.Itoa(plainLen)+"\r\n"...)
	b = append(b, "--"+encryptedBoundary+"\r\n"...)
	b = append(b, "\tContent-Type: application/octet-stream\r\n"...)
	return append(b, payload...)
}

func closeEncrypted(b []byte) []byte {
	return append(b, "--"+encryptedBoundary+"--\r\n"...)
}

// sealedPayload is the binary part: signature length, signature, data.
func sealedPayload(signature, sealed []byte) []byte {
	out := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(signature)+len(sealed)), uint32(len(signature)))
	out = append(out, signature...)
	return append(out, sealed...)
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
