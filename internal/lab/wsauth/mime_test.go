package wsauth

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func framingFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir(t), "wire", "wsman", "framing", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFramingMatchesWSMVFixture: our writer emits exactly the Windows layout
// of the reference framing example (tab-indented part headers, binary right
// after its header line).
func TestFramingMatchesWSMVFixture(t *testing.T) {
	want := framingFixture(t, "mime-wsmv-style-output.bodgit-mime_test.bin")
	// The fixture spells the header "Originalcontent" (Go's header
	// canonicalisation in its source test); Windows and pywinrm write
	// "OriginalContent". Names are case-insensitive and the parser tests
	// below read the fixture's spelling as is.
	want = bytes.Replace(want, []byte("\tOriginalcontent:"), []byte("\tOriginalContent:"), 1)
	got := closeEncrypted(appendEncryptedPart(nil, soapContentType, 1234, []byte("foo")))
	if !bytes.Equal(got, want) {
		t.Fatalf("framing:\n got %q\nwant %q", got, want)
	}
}

// TestParseFramingFixtures substitutes a real sealed payload into each
// reference layout (Windows style and RFC 2046 style with blank lines) and
// parses it back.
func TestParseFramingFixtures(t *testing.T) {
	sig := bytes.Repeat([]byte{0xaa}, signatureLen)
	sealed := []byte("\x00\r\n--Encrypted Boundary\x00 sealed bytes that look like framing")
	payload := sealedPayload(sig, sealed)
	for _, name := range []string{
		"mime-wsmv-style-input.bodgit-mime_test.bin",
		"mime-wsmv-style-output.bodgit-mime_test.bin",
		"mime-normalised-input.bodgit-mime_test.bin",
		"mime-normalised-output.bodgit-mime_test.bin",
	} {
		t.Run(name, func(t *testing.T) {
			fx := framingFixture(t, name)
			// The fixture is framing only ("foo", Length=1234): it must be
			// refused as it stands, without panicking.
			if _, err := parseEncrypted(fx); !errors.Is(err, errFraming) {
				t.Fatalf("fixture as is: %v", err)
			}
			body := bytes.Replace(fx, []byte("Length=1234"), []byte("Length="+strconv.Itoa(len(sealed))), 1)
			body = bytes.Replace(body, []byte("foo"), payload, 1)
			parts, err := parseEncrypted(body)
			if err != nil {
				t.Fatalf("parse: %v\n%q", err, body)
			}
			if len(parts) != 1 || !bytes.Equal(parts[0].Sealed, sealed) || !bytes.Equal(parts[0].Signature, sig) {
				t.Fatalf("parts %+v", parts)
			}
			if parts[0].OriginalType != soapContentType {
				t.Errorf("original type %q", parts[0].OriginalType)
			}
		})
	}
}

func TestParseEncryptedRejects(t *testing.T) {
	good := closeEncrypted(appendEncryptedPart(nil, soapContentType, 3, sealedPayload(make([]byte, 16), []byte("abc"))))
	if _, err := parseEncrypted(good); err != nil {
		t.Fatalf("good body: %v", err)
	}
	tests := map[string][]byte{
		"empty":               {},
		"no boundary":         []byte("hello"),
		"truncated":           good[:len(good)-30],
		"trailing data":       append(append([]byte(nil), good...), "junk"...),
		"no OriginalContent":  bytes.Replace(good, []byte("OriginalContent"), []byte("Original-Content"), 1),
		"negative length":     bytes.Replace(good, []byte("Length=3"), []byte("Length=-3"), 1),
		"huge length":         bytes.Replace(good, []byte("Length=3"), []byte("Length=99999999999999999999"), 1),
		"wrong protocol":      bytes.Replace(good, []byte("HTTP-SPNEGO-session-encrypted"), []byte("HTTP-Kerberos-session-encrypted"), 1),
		"wrong octet type":    bytes.Replace(good, []byte("application/octet-stream"), []byte("text/plain"), 1),
		"signature length 15": bytes.Replace(good, []byte("\x10\x00\x00\x00"), []byte("\x0f\x00\x00\x00"), 1),
		"no closing boundary": good[:bytes.LastIndex(good, []byte("--Encrypted Boundary--"))],
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := parseEncrypted(body); !errors.Is(err, errFraming) {
				t.Errorf("err = %v, want a framing error", err)
			}
		})
	}
}

func TestEncryptedContentType(t *testing.T) {
	tests := []struct {
		ct           string
		is, validErr bool
	}{
		{EncryptedContentType, true, false},
		{`multipart/encrypted; protocol="application/HTTP-SPNEGO-session-encrypted"; boundary="Encrypted Boundary"`, true, false},
		{`multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="other"`, true, true},
		{`multipart/encrypted;protocol="application/HTTP-Kerberos-session-encrypted";boundary="Encrypted Boundary"`, false, true},
		{"application/soap+xml;charset=UTF-8", false, true},
		{"multipart/encrypted;;;", true, true},
	}
	for _, tc := range tests {
		if got := isEncryptedContentType(tc.ct); got != tc.is {
			t.Errorf("isEncrypted(%q) = %v", tc.ct, got)
		}
		if err := checkEncryptedContentType(tc.ct); (err != nil) != tc.validErr {
			t.Errorf("check(%q) = %v", tc.ct, err)
		}
	}
}
