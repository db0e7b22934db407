package ntlm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// MS-NLMP 4.2.1 inputs.
const (
	vecUser     = "User"
	vecDomain   = "Domain"
	vecPassword = "Password"
)

var vecVersion = [8]byte{0x05, 0x01, 0x28, 0x0a, 0x00, 0x00, 0x00, 0x0f}

// fileTimeZero is 1601-01-01T00:00:00Z, FILETIME 0.
var fileTimeZero = time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)

func TestNTOWFv2Vector(t *testing.T) {
	v := nlmpVectors(t)
	if got, want := NTOWFv2(vecPassword, vecUser, vecDomain), vec(t, v, "ntlmv2.ntowfv2"); !bytes.Equal(got, want) {
		t.Fatalf("NTOWFv2 = %x, want %x", got, want)
	}
}

func TestFileTime(t *testing.T) {
	tests := []struct {
		in   time.Time
		want uint64
	}{
		{fileTimeZero, 0},
		{time.Unix(0, 0), 116444736000000000},
		{time.Unix(1, 500), 116444736010000005},
		{time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), 0},
	}
	for _, tt := range tests {
		if got := fileTime(tt.in); got != tt.want {
			t.Errorf("fileTime(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseChallengeVector(t *testing.T) {
	v := nlmpVectors(t)
	ch, err := ParseChallenge(vec(t, v, "ntlmv2.challenge_message"))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Flags != 0xe28a8233 {
		t.Errorf("flags = %08x (%v), want e28a8233", uint32(ch.Flags), ch.Flags)
	}
	if !bytes.Equal(ch.ServerChallenge[:], vec(t, v, "common.server_challenge")) {
		t.Errorf("server challenge = %x", ch.ServerChallenge)
	}
	if ch.TargetName != "Server" {
		t.Errorf("target name = %q, want Server", ch.TargetName)
	}
	if !bytes.Equal(ch.TargetInfo, vec(t, v, "ntlmv2.target_info")) {
		t.Errorf("target info = %x", ch.TargetInfo)
	}
	if d, _ := ch.AV(AvNbDomainName); !bytes.Equal(d, encodeUTF16("Domain")) {
		t.Errorf("MsvAvNbDomainName = %x", d)
	}
	if _, ok := ch.Timestamp(); ok {
		t.Error("the 4.2.4 challenge has no timestamp")
	}

	// The NTLMv1 challenge (no target info) parses, but an NTLMv2 client refuses it.
	c := NewClient(vecDomain, vecUser, vecPassword, Options{})
	c.Negotiate()
	if _, err := c.Authenticate(vec(t, v, "ntlmv1.challenge_message")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("NTLMv1 challenge: err = %v, want ErrUnsupported", err)
	}
}

// vectorClient authenticates against the 4.2.4 challenge with the 4.2.1 inputs.
func vectorClient(t *testing.T, v map[string][]byte) (*Client, []byte) {
	t.Helper()
	random := append(append([]byte(nil), vec(t, v, "common.client_challenge")...), vec(t, v, "common.random_session_key")...)
	c := NewClient(vecDomain, vecUser, vecPassword, Options{
		Workstation: "COMPUTER",
		Version:     vecVersion,
		Rand:        bytes.NewReader(random),
		Now:         func() time.Time { return fileTimeZero },
	})
	c.Negotiate()
	msg, err := c.Authenticate(vec(t, v, "ntlmv2.challenge_message"))
	if err != nil {
		t.Fatal(err)
	}
	return c, msg
}

func TestAuthenticateVector(t *testing.T) {
	v := nlmpVectors(t)
	c, msg := vectorClient(t, v)

	if want := vec(t, v, "ntlmv2.authenticate_message"); !bytes.Equal(msg, want) {
		t.Fatalf("AUTHENTICATE differs:\n got %x\nwant %x", msg, want)
	}
	// The pieces, each by name, so a failure says which step is wrong.
	checks := []struct {
		name string
		got  []byte
	}{
		{"ntlmv2.session_base_key", c.sessionBaseKey},
		{"common.random_session_key", c.exportedSessionKey},
		{"ntlmv2.lmv2_response", msg[0x6c : 0x6c+24]},
		{"ntlmv2.nt_proof_str", msg[0x84 : 0x84+16]},
		{"ntlmv2.temp", msg[0x84+16 : 0x84+84]},
		{"ntlmv2.nt_challenge_response", msg[0x84 : 0x84+84]},
		{"ntlmv2.encrypted_session_key", msg[0xd8:]},
	}
	for _, ck := range checks {
		if want := vec(t, v, ck.name); !bytes.Equal(ck.got, want) {
			t.Errorf("%s = %x, want %x", ck.name, ck.got, want)
		}
	}
	if f := Flags(binary.LittleEndian.Uint32(msg[60:])); f != 0xe2888235 {
		t.Errorf("AUTHENTICATE flags %08x (%v), want e2888235", uint32(f), f)
	}
	if _, err := c.Authenticate(vec(t, v, "ntlmv2.challenge_message")); err == nil {
		t.Error("a second Authenticate on the same context must fail")
	}
}

func TestSessionKeyVectors(t *testing.T) {
	v := nlmpVectors(t)
	key := vec(t, v, "common.random_session_key")
	f128 := Flags(0xe28a8233)
	tests := []struct {
		name string
		got  []byte
	}{
		{"ntlmv2.client_sign_key", SignKey(key, ClientToServer)},
		{"ntlmv2.server_sign_key", SignKey(key, ServerToClient)},
		{"ntlmv2.client_seal_key", SealKey(key, f128, ClientToServer)},
		{"ntlmv2.server_seal_key", SealKey(key, f128, ServerToClient)},
		{"ntlmv2.seal_key_ess_initiate-56", SealKey(key, FlagExtendedSessionSecurity|Flag56, ClientToServer)},
		{"ntlmv2.seal_key_ess_accept-56", SealKey(key, FlagExtendedSessionSecurity|Flag56, ServerToClient)},
		{"ntlmv2.seal_key_ess_initiate-40", SealKey(key, FlagExtendedSessionSecurity, ClientToServer)},
		{"ntlmv2.seal_key_ess_accept-40", SealKey(key, FlagExtendedSessionSecurity, ServerToClient)},
		{"ntlmv2.encrypted_session_key", rc4K(vec(t, v, "ntlmv2.session_base_key"), key)},
		{"common.random_session_key", ExportedSessionKey(vec(t, v, "ntlmv2.session_base_key"), vec(t, v, "ntlmv2.encrypted_session_key"), FlagKeyExch)},
		{"ntlmv2.session_base_key", SessionBaseKey(vec(t, v, "ntlmv2.ntowfv2"), vec(t, v, "ntlmv2.nt_proof_str"))},
	}
	for _, tt := range tests {
		if want := vec(t, v, tt.name); !bytes.Equal(tt.got, want) {
			t.Errorf("%s = %x, want %x", tt.name, tt.got, want)
		}
	}
}

func TestSealVectors(t *testing.T) {
	v := nlmpVectors(t)
	key := vec(t, v, "common.random_session_key")
	plain := vec(t, v, "common.plaintext_utf16le")
	tests := []struct {
		name            string
		flags           Flags
		role            Role
		sealed, sigName string
	}{
		{"client KEY_EXCH", 0xe28a8233, RoleClient, "ntlmv2.sealed", "ntlmv2.signature"},
		{"client no KEY_EXCH", 0xe28a8233 &^ FlagKeyExch, RoleClient, "ntlmv2.sealed", "ntlmv2.no_key_exch.signature"},
		{"server KEY_EXCH", 0xe28a8233, RoleServer, "ntlmv2.server_sealed", "ntlmv2.server_signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSession(key, tt.flags, tt.role)
			if err != nil {
				t.Fatal(err)
			}
			sig, sealed := s.Seal(plain)
			if want := vec(t, v, tt.sealed); !bytes.Equal(sealed, want) {
				t.Errorf("sealed = %x, want %x", sealed, want)
			}
			if want := vec(t, v, tt.sigName); !bytes.Equal(sig, want) {
				t.Errorf("signature = %x, want %x", sig, want)
			}
		})
	}
	// The checksum field alone, as the spec prints it.
	s, _ := NewSession(key, 0xe28a8233, RoleClient)
	sig, _ := s.Seal(plain)
	if want := vec(t, v, "ntlmv2.checksum"); !bytes.Equal(sig[4:12], want) {
		t.Errorf("checksum = %x, want %x", sig[4:12], want)
	}
}

// The client context from the full handshake seals exactly as the spec says,
// and unseals the server's published answer.
func TestHandshakeSessionVector(t *testing.T) {
	v := nlmpVectors(t)
	c, _ := vectorClient(t, v)
	s := c.Session()
	sig, sealed := s.Seal(vec(t, v, "common.plaintext_utf16le"))
	if !bytes.Equal(sealed, vec(t, v, "ntlmv2.sealed")) || !bytes.Equal(sig, vec(t, v, "ntlmv2.signature")) {
		t.Errorf("seal after handshake: sig %x sealed %x", sig, sealed)
	}
	plain, err := s.Unseal(vec(t, v, "ntlmv2.server_signature"), vec(t, v, "ntlmv2.server_sealed"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, vec(t, v, "common.plaintext_utf16le")) {
		t.Errorf("unsealed %x", plain)
	}
}
