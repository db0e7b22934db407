package ntlmtransport

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/svcwatch/svcwatch/internal/refdata"
)

func sharedDir(t testing.TB) string { return refdata.Require(t) }

func samplePart(n int) EncryptedPart {
	sig := append([]byte{1, 0, 0, 0}, bytes.Repeat([]byte{0xab}, 12)...)
	sealed := make([]byte, n)
	for i := range sealed {
		sealed[i] = byte(i * 7)
	}
	// Binary payloads may contain the boundary text; lengths, not searching, cut them.
	if n > 40 {
		copy(sealed[10:], "\r\n--Encrypted Boundary--\r\n")
	}
	return EncryptedPart{Signature: sig, Sealed: sealed}
}

// normalise rewrites the Windows layout into plain MIME: no tab indent, a
// blank line after the headers and CRLF before each boundary.
func normalise(parts []EncryptedPart) []byte {
	var out bytes.Buffer
	for _, p := range parts {
		out.WriteString("--Encrypted Boundary\r\nContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n")
		out.WriteString("OriginalContent: type=application/soap+xml;charset=UTF-8;Length=" + strconv.Itoa(len(p.Sealed)) + "\r\n\r\n\r\n")
		out.WriteString("--Encrypted Boundary\r\nContent-Type: application/octet-stream\r\n\r\n")
		out.Write([]byte{16, 0, 0, 0})
		out.Write(p.Signature)
		out.Write(p.Sealed)
		out.WriteString("\r\n")
	}
	out.WriteString("--Encrypted Boundary--\r\n")
	return out.Bytes()
}

func TestEncodeDecodeEncrypted(t *testing.T) {
	tests := []struct {
		name  string
		parts []EncryptedPart
	}{
		{"one part", []EncryptedPart{samplePart(1587)}},
		{"empty message", []EncryptedPart{samplePart(0)}},
		{"two parts", []EncryptedPart{samplePart(100), samplePart(3)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := EncodeEncrypted(tt.parts...)
			if !bytes.HasPrefix(enc, []byte("--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=")) {
				t.Fatalf("unexpected framing start: %q", enc[:80])
			}
			if !bytes.HasSuffix(enc, []byte("--Encrypted Boundary--\r\n")) {
				t.Fatal("no closing boundary")
			}
			for name, body := range map[string][]byte{"windows": enc, "normalised": normalise(tt.parts)} {
				got, err := DecodeEncrypted(body)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if len(got) != len(tt.parts) {
					t.Fatalf("%s: %d parts, want %d", name, len(got), len(tt.parts))
				}
				for i := range got {
					if !bytes.Equal(got[i].Signature, tt.parts[i].Signature) || !bytes.Equal(got[i].Sealed, tt.parts[i].Sealed) {
						t.Fatalf("%s: part %d differs", name, i)
					}
				}
			}
		})
	}
}

// The reference framing files carry "foo" where the payload goes, with a
// declared Length of 1234: the headers parse in both layouts and the
// payload is refused by its length, not by a panic or a boundary search.
func TestDecodeReferenceFraming(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "wire", "wsman", "framing")
	for _, name := range []string{"mime-wsmv-style-input.bodgit-mime_test.bin", "mime-normalised-input.bodgit-mime_test.bin"} {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			_, err = DecodeEncrypted(body)
			if !errors.Is(err, ErrFraming) {
				t.Fatalf("err = %v, want ErrFraming", err)
			}
			// "foo" is not a payload: the first thing wrong is the signature length.
			if !strings.Contains(err.Error(), "signature length") {
				t.Fatalf("err = %v, want a complaint about the payload, after the headers parsed", err)
			}
			// With a real payload of the declared length in place of "foo", it decodes.
			part := samplePart(1234)
			payload := append(append([]byte{16, 0, 0, 0}, part.Signature...), part.Sealed...)
			fixed := bytes.Replace(body, []byte("foo"), payload, 1)
			got, err := DecodeEncrypted(fixed)
			if err != nil {
				t.Fatalf("with a real payload: %v", err)
			}
			if len(got) != 1 || !bytes.Equal(got[0].Sealed, part.Sealed) {
				t.Fatal("payload not recovered")
			}
		})
	}
}

func TestDecodeEncryptedRejects(t *testing.T) {
	good := EncodeEncrypted(samplePart(50))
	replace := func(old, new string) []byte { return bytes.Replace(good, []byte(old), []byte(new), 1) }
	tests := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"no boundary", []byte("hello")},
		{"only closing", []byte("--Encrypted Boundary--\r\n")},
		{"wrong first type", replace("HTTP-SPNEGO-session-encrypted", "HTTP-CredSSP-session-encrypted")},
		{"no OriginalContent", replace("OriginalContent", "OriginalContenu")},
		{"no Length", replace("Length=50", "Len=50")},
		{"negative Length", replace("Length=50", "Length=-5")},
		{"huge Length", replace("Length=50", "Length=99999999999")},
		{"Length too long for payload", replace("Length=50", "Length=51")},
		{"Length too short for payload", replace("Length=50", "Length=49")},
		{"wrong second type", replace("application/octet-stream", "text/plain")},
		{"bad signature length", replace("octet-stream\r\n\x10", "octet-stream\r\n\x11")},
		{"truncated", good[:len(good)-30]},
		{"no closing boundary", good[:len(good)-len("--Encrypted Boundary--\r\n")]},
		{"trailing garbage", append(append([]byte(nil), good...), "junk"...)},
		{"long header line", []byte("--Encrypted Boundary\r\n\tContent-Type: " + strings.Repeat("a", 5000) + "\r\n")},
		{"many headers", []byte("--Encrypted Boundary\r\n" + strings.Repeat("X-A: b\r\n", 100))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeEncrypted(tt.body); !errors.Is(err, ErrFraming) {
				t.Fatalf("err = %v, want ErrFraming", err)
			}
		})
	}
}

func TestCheckContentType(t *testing.T) {
	tests := []struct {
		ct string
		ok bool
	}{
		{ContentType, true},
		{`multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"`, true},
		{`Multipart/Encrypted; protocol="application/http-spnego-session-encrypted"; boundary="Encrypted Boundary"`, true},
		{`multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted"`, true},
		{`multipart/encrypted;protocol="application/HTTP-CredSSP-session-encrypted";boundary="Encrypted Boundary"`, false},
		{`multipart/x-multi-encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"`, false},
		{`multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Other"`, false},
		{`application/soap+xml;charset=UTF-8`, false},
		{`;;;`, false},
	}
	for _, tt := range tests {
		if err := CheckContentType(tt.ct); (err == nil) != tt.ok {
			t.Errorf("CheckContentType(%q) = %v, want ok=%v", tt.ct, err, tt.ok)
		}
	}
}

func FuzzDecodeEncrypted(f *testing.F) {
	f.Add(EncodeEncrypted(samplePart(50)))
	f.Add(EncodeEncrypted(samplePart(0), samplePart(3)))
	f.Add(normalise([]EncryptedPart{samplePart(20)}))
	if dir := filepath.Join(sharedDir(f), "wire", "wsman", "framing"); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		parts, err := DecodeEncrypted(body)
		if err != nil {
			if !errors.Is(err, ErrFraming) {
				t.Fatalf("error not ErrFraming: %v", err)
			}
			return
		}
		total := 0
		for _, p := range parts {
			if len(p.Signature) != 16 {
				t.Fatalf("signature of %d bytes", len(p.Signature))
			}
			total += len(p.Sealed) + 20
		}
		if total > len(body) {
			t.Fatalf("decoded %d payload bytes from a %d-byte body", total, len(body))
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := DecodeEncrypted(EncodeEncrypted(parts...))
		if err != nil || len(again) != len(parts) {
			t.Fatalf("re-encoding: %v", err)
		}
	})
}
