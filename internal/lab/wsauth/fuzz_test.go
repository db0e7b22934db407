package wsauth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/svcwatch/svcwatch/internal/refdata"
)

func addFileSeeds(f *testing.F, dir string, names ...string) {
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			f.Add(b)
		}
	}
}

// FuzzParseEncrypted: the multipart/encrypted parser never panics, and what
// it accepts survives a re-framing round trip.
func FuzzParseEncrypted(f *testing.F) {
	sig := bytes.Repeat([]byte{1}, signatureLen)
	good := closeEncrypted(appendEncryptedPart(nil, soapContentType, 5, sealedPayload(sig, []byte("hello"))))
	f.Add(good)
	two := appendEncryptedPart(nil, soapContentType, 2, sealedPayload(sig, []byte("ab")))
	f.Add(closeEncrypted(appendEncryptedPart(two, soapContentType, 1, sealedPayload(sig, []byte("c")))))
	f.Add(bytes.Replace(good, []byte("Length=5"), []byte("Length=25"), 1)) // whole-part length (bodgit)
	f.Add([]byte("--Encrypted Boundary\r\n"))
	f.Add([]byte{})
	if dir, ok := sharedDirIfPresent(); ok {
		addFileSeeds(f, filepath.Join(dir, "wire", "wsman", "framing"),
			"mime-wsmv-style-input.bodgit-mime_test.bin", "mime-normalised-input.bodgit-mime_test.bin")
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		parts, err := parseEncrypted(body)
		if err != nil {
			return
		}
		var again []byte
		for _, p := range parts {
			if len(p.Signature) != signatureLen {
				t.Fatalf("signature of %d bytes accepted", len(p.Signature))
			}
			again = appendEncryptedPart(again, p.OriginalType, len(p.Sealed), sealedPayload(p.Signature, p.Sealed))
		}
		parts2, err := parseEncrypted(closeEncrypted(again))
		if err != nil || len(parts2) != len(parts) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range parts {
			if !bytes.Equal(parts[i].Sealed, parts2[i].Sealed) || parts[i].OriginalType != parts2[i].OriginalType {
				t.Fatalf("round trip changed part %d", i)
			}
		}
	})
}

func sharedDirIfPresent() (string, bool) { return refdata.Dir() }

var nlmpMessageSeeds = []string{
	// MS-NLMP 4.2.4 CHALLENGE and AUTHENTICATE (ms-nlmp-4.2-vectors.json).
	"4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000060070170000000f53006500720076006500720002000c0044006f006d00610069006e0001000c0053006500720076006500720000000000",
	"4e544c4d5353500003000000180018006c00000054005400840000000c000c00480000000800080054000000100010005c00000010001000d8000000358288e20501280a0000000f44006f006d00610069006e00550073006500720043004f004d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000c5dad2544fc9799094ce1ce90bc9d03e",
	// A NEGOTIATE as go-ntlmssp sends it.
	"4e544c4d5353500001000000358288a0000000000000000000000000000000000a00614a0000000f",
}

// FuzzNTLMMessages: NTLMSSP parsing and verification never panic on
// arbitrary input.
func FuzzNTLMMessages(f *testing.F) {
	for _, s := range nlmpMessageSeeds {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Add([]byte("NTLMSSP\x00\x03\x00\x00\x00"))
	a := New(Options{Users: map[string]string{`Domain\User`: "Password"}, Domain: "Domain", ServerName: "Server"})
	p := &pendingNTLM{flags: 0xe28a8233, negotiate: []byte("n"), challenge: []byte("c")}
	copy(p.serverChallenge[:], []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseNegotiate(b)
		_, _ = parseAVPairs(b)
		_, _ = parseNTLMv2Blob(b)
		if m, err := parseAuthenticate(b); err == nil && m.MICOffset != 0 && m.MICOffset+16 > len(b) {
			t.Fatalf("MIC offset %d past a %d-byte message", m.MICOffset, len(b))
		}
		if _, err := a.ntlmVerify(p, b); err == nil {
			t.Fatalf("random AUTHENTICATE verified: %x", b)
		}
		if _, err := a.ntlmChallenge(b); err == nil && messageType(b) != messageNegotiate {
			t.Fatalf("challenge issued for message type %d", messageType(b))
		}
	})
}

// FuzzAuthorizationHeader drives the whole handler with arbitrary tokens in
// every scheme: the answer is 200/400/401, never a panic.
func FuzzAuthorizationHeader(f *testing.F) {
	for _, s := range nlmpMessageSeeds {
		b, _ := hex.DecodeString(s)
		f.Add("Negotiate", b)
	}
	neg, _ := hex.DecodeString(nlmpMessageSeeds[2])
	init := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{MechTypes: []asn1.ObjectIdentifier{oidNTLM}, MechTokenBytes: neg}}
	if b, err := init.Marshal(); err == nil {
		f.Add("Negotiate", b)
	}
	f.Add("Negotiate", spnegoReject())
	f.Add("Kerberos", []byte{0x60, 0x82, 0x01, 0x00, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02})
	f.Add("Basic", []byte("LAB\\svcwatch:S3cret!pw"))
	f.Add("NTLM", []byte{})
	a := New(Options{
		Users:  map[string]string{`LAB\svcwatch`: "S3cret!pw"},
		Domain: "LAB", DNSDomain: "lab.example", ServerName: "DC01",
		Basic: true, BasicOverHTTP: true, RequireSealing: true,
		Kerberos: &KerberosOptions{},
	})
	h := a.Wrap(echoSOAP)
	f.Fuzz(func(t *testing.T, scheme string, tok []byte) {
		// A NEGOTIATE first so AUTHENTICATE-shaped input reaches verification.
		for _, authz := range []string{"Negotiate " + base64.StdEncoding.EncodeToString(neg), scheme + " " + base64.StdEncoding.EncodeToString(tok)} {
			if strings.ContainsAny(authz, "\r\n\x00") {
				return
			}
			req := httptest.NewRequest(http.MethodPost, "/wsman", strings.NewReader("<s:Envelope/>"))
			req.RemoteAddr = "127.0.0.1:5985"
			req.Header.Set("Authorization", authz)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case 200, 400, 401:
			default:
				t.Fatalf("status %d", rec.Code)
			}
		}
	})
}
