package wsauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/svcwatch/svcwatch/internal/refdata"
)

func sharedDir(t testing.TB) string { return refdata.Require(t) }

type nlmpVectors struct {
	Common struct {
		User, UserDomain, Password, ServerName, WorkstationName string
	} `json:"common_4_2_1"`
	Values map[string]struct {
		Hex string `json:"hex"`
	} `json:"values"`
}

func loadVectors(t *testing.T) nlmpVectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sharedDir(t), "wire", "nlmp", "ms-nlmp-4.2-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v nlmpVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	v.Common.UserDomain = "Domain"
	return v
}

func (v nlmpVectors) hex(t *testing.T, name string) []byte {
	t.Helper()
	val, ok := v.Values[name]
	if !ok || val.Hex == "" {
		t.Fatalf("vector %q missing", name)
	}
	b, err := hex.DecodeString(val.Hex)
	if err != nil {
		t.Fatalf("vector %q: %v", name, err)
	}
	return b
}

func equalHex(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}

// TestNLMPv2Vectors runs the server-side verification on the MS-NLMP 4.2.4
// AUTHENTICATE_MESSAGE and checks every derived value byte for byte.
func TestNLMPv2Vectors(t *testing.T) {
	v := loadVectors(t)
	if v.Common.User != "User" || v.Common.Password != "Password" {
		t.Fatalf("unexpected common values %+v", v.Common)
	}
	serverChallenge := v.hex(t, "common.server_challenge")

	equalHex(t, "NTOWFv2", ntowfv2("Password", "User", "Domain"), v.hex(t, "ntlmv2.ntowfv2"))

	// The AUTHENTICATE message as a client sent it.
	m, err := parseAuthenticate(v.hex(t, "ntlmv2.authenticate_message"))
	if err != nil {
		t.Fatal(err)
	}
	if m.User != "User" || m.Domain != "Domain" || m.Workstation != "COMPUTER" {
		t.Errorf("names: user %q domain %q workstation %q", m.User, m.Domain, m.Workstation)
	}
	if m.MICOffset != 0 {
		t.Errorf("MIC offset %d for a message without a MIC", m.MICOffset)
	}
	equalHex(t, "NtChallengeResponse", m.NTResponse, v.hex(t, "ntlmv2.nt_challenge_response"))
	equalHex(t, "LmChallengeResponse", m.LMResponse, v.hex(t, "ntlmv2.lmv2_response"))
	equalHex(t, "EncryptedRandomSessionKey", m.EncryptedRandomSessionKey, v.hex(t, "ntlmv2.encrypted_session_key"))
	equalHex(t, "temp", m.NTResponse[16:], v.hex(t, "ntlmv2.temp"))

	rk := ntowfv2("Password", m.User, m.Domain)
	proof := ntProofStr(rk, serverChallenge, m.NTResponse[16:])
	equalHex(t, "NTProofStr", proof, v.hex(t, "ntlmv2.nt_proof_str"))
	equalHex(t, "SessionBaseKey", sessionBaseKeyV2(rk, proof), v.hex(t, "ntlmv2.session_base_key"))

	// Full verification path through an Auth, as for a live client.
	a := New(Options{Users: map[string]string{`Domain\User`: "Password"}, Domain: "Domain", ServerName: "Server"})
	p := &pendingNTLM{flags: 0xe28a8233}
	copy(p.serverChallenge[:], serverChallenge)
	res, err := a.ntlmVerify(p, v.hex(t, "ntlmv2.authenticate_message"))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if res.User != `Domain\User` {
		t.Errorf("user %q", res.User)
	}
	equalHex(t, "ExportedSessionKey", res.Exported, v.hex(t, "common.random_session_key"))

	keys := deriveKeys(res.Flags, res.Exported)
	equalHex(t, "client sign key", keys.ClientSign, v.hex(t, "ntlmv2.client_sign_key"))
	equalHex(t, "client seal key", keys.ClientSeal, v.hex(t, "ntlmv2.client_seal_key"))
	equalHex(t, "server sign key", keys.ServerSign, v.hex(t, "ntlmv2.server_sign_key"))
	equalHex(t, "server seal key", keys.ServerSeal, v.hex(t, "ntlmv2.server_seal_key"))

	// Receiving side: the client's sealed "Plaintext" at sequence 0.
	s := newSealSession(res.Flags, res.Exported)
	plain, err := s.unseal(v.hex(t, "ntlmv2.sealed"), v.hex(t, "ntlmv2.signature"))
	if err != nil {
		t.Fatalf("unseal: %v", err)
	}
	equalHex(t, "unsealed", plain, v.hex(t, "common.plaintext_utf16le"))

	// Sending side (library-asserted values).
	sealed, sig := s.seal(v.hex(t, "common.plaintext_utf16le"))
	equalHex(t, "server sealed", sealed, v.hex(t, "ntlmv2.server_sealed"))
	equalHex(t, "server signature", sig, v.hex(t, "ntlmv2.server_signature"))

	// Without KEY_EXCH the checksum is not RC4-encrypted.
	noKX := newSealSession(res.Flags&^flagKeyExch, res.Exported)
	if _, err := noKX.unseal(v.hex(t, "ntlmv2.sealed"), v.hex(t, "ntlmv2.no_key_exch.signature")); err != nil {
		t.Errorf("unseal without KEY_EXCH: %v", err)
	}

	// Reduced-strength seal keys.
	for _, tc := range []struct {
		name   string
		flags  uint32
		client bool
	}{
		{"ntlmv2.seal_key_ess_initiate-56", flagESS | flag56, true},
		{"ntlmv2.seal_key_ess_accept-56", flagESS | flag56, false},
		{"ntlmv2.seal_key_ess_initiate-40", flagESS, true},
		{"ntlmv2.seal_key_ess_accept-40", flagESS, false},
	} {
		equalHex(t, tc.name, sealKey(tc.flags, res.Exported, tc.client), v.hex(t, tc.name))
	}
}

// TestNLMPv2ChallengeMessage rebuilds the 4.2.4 CHALLENGE_MESSAGE.
func TestNLMPv2ChallengeMessage(t *testing.T) {
	v := loadVectors(t)
	want := v.hex(t, "ntlmv2.challenge_message")
	var sc [8]byte
	copy(sc[:], v.hex(t, "common.server_challenge"))
	got := buildChallenge(challengeParams{
		Flags:           0xe28a8233,
		ServerChallenge: sc,
		TargetName:      "Server",
		TargetInfo:      v.hex(t, "ntlmv2.target_info"),
		Version:         want[48:56],
	})
	equalHex(t, "CHALLENGE_MESSAGE", got, want)
}

func TestNLMPv2WrongPasswordAndTampering(t *testing.T) {
	v := loadVectors(t)
	auth := v.hex(t, "ntlmv2.authenticate_message")
	sc := v.hex(t, "common.server_challenge")
	a := New(Options{Users: map[string]string{`Domain\User`: "Password"}, Domain: "Domain"})
	p := &pendingNTLM{flags: 0xe28a8233}
	copy(p.serverChallenge[:], sc)

	wrong := New(Options{Users: map[string]string{`Domain\User`: "password"}, Domain: "Domain"})
	if _, err := wrong.ntlmVerify(p, auth); err == nil {
		t.Error("wrong password accepted")
	}
	other := *p
	other.serverChallenge[0] ^= 1
	if _, err := a.ntlmVerify(&other, auth); err == nil {
		t.Error("response to another challenge accepted")
	}
	// Flip a byte of the client blob (inside the NTLMv2 response).
	ntOff := int(binary.LittleEndian.Uint32(auth[24:28]))
	tampered := append([]byte(nil), auth...)
	tampered[ntOff+16+16] ^= 0xff // client challenge
	if _, err := a.ntlmVerify(p, tampered); err == nil {
		t.Error("tampered blob accepted")
	}
	// NTLMv1 (24-byte NT response) is refused even with the right password.
	v1 := v.hex(t, "ntlmv1.authenticate_message")
	if _, err := a.ntlmVerify(p, v1); err == nil {
		t.Error("NTLMv1 accepted")
	}
}

type captureFile struct {
	Captures []struct {
		Label string `json:"label"`
		From  struct {
			User                string `json:"user"`
			Password            string `json:"password"`
			Domain              string `json:"ntowfv2_domain"`
			NTProofStr          string `json:"nt_proof_str_hex"`
			EncryptedSessionKey string `json:"encrypted_random_session_key_hex"`
			Checksum            string `json:"expected_checksum_hex"`
			Sealed              string `json:"sealed_message_hex"`
		} `json:"from_source_file"`
		Derived struct {
			ResponseKeyNT  string `json:"response_key_nt_hex"`
			SessionBaseKey string `json:"session_base_key_eq_key_exchange_key_hex"`
			Exported       string `json:"exported_session_key_hex"`
			ClientSeal     string `json:"client_seal_key_hex"`
			ClientSign     string `json:"client_sign_key_hex"`
			PlaintextFile  string `json:"decrypted_plaintext_file"`
			PlaintextSHA   string `json:"decrypted_plaintext_sha256"`
		} `json:"derived_here_NOT_in_source"`
	} `json:"captures"`
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWinrsCaptureUnseal decrypts Windows' own winrs.exe request from its
// password, verifying the captured checksum at sequence number 0, exactly as
// the lab's receiving side does for a live client.
func TestWinrsCaptureUnseal(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "wire", "nlmp")
	b, err := os.ReadFile(filepath.Join(dir, "ntlm-sealed-winrm-captures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f captureFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range f.Captures {
		if c.Label != "winrs_exe_capture" {
			continue
		}
		found = true
		from := c.From
		rk := ntowfv2(from.Password, from.User, from.Domain)
		equalHex(t, "ResponseKeyNT", rk, mustHex(t, c.Derived.ResponseKeyNT))
		proof := mustHex(t, from.NTProofStr)
		kek := sessionBaseKeyV2(rk, proof)
		equalHex(t, "KeyExchangeKey", kek, mustHex(t, c.Derived.SessionBaseKey))
		flags := flagKeyExch | flag128 | flag56 | flagESS | flagSeal | flagSign | flagAlwaysSign | flagNTLM | flagUnicode
		exported := exportedSessionKey(flags, kek, mustHex(t, from.EncryptedSessionKey))
		equalHex(t, "ExportedSessionKey", exported, mustHex(t, c.Derived.Exported))
		keys := deriveKeys(flags, exported)
		equalHex(t, "client seal key", keys.ClientSeal, mustHex(t, c.Derived.ClientSeal))
		equalHex(t, "client sign key", keys.ClientSign, mustHex(t, c.Derived.ClientSign))

		sig := binary.LittleEndian.AppendUint32(nil, 1)
		sig = append(sig, mustHex(t, from.Checksum)...)
		sig = binary.LittleEndian.AppendUint32(sig, 0)
		s := newSealSession(flags, exported)
		plain, err := s.unseal(mustHex(t, from.Sealed), sig)
		if err != nil {
			t.Fatalf("unseal winrs.exe capture: %v", err)
		}
		want, err := os.ReadFile(filepath.Join(dir, c.Derived.PlaintextFile))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(plain, want) {
			t.Fatalf("plaintext differs from %s", c.Derived.PlaintextFile)
		}
		if sum := sha256.Sum256(plain); hex.EncodeToString(sum[:]) != c.Derived.PlaintextSHA {
			t.Errorf("plaintext sha256 %x", sum)
		}
		if !bytes.HasPrefix(plain, []byte(`<s:Envelope`)) {
			t.Errorf("plaintext does not start with a SOAP envelope: %q", plain[:40])
		}

		// The same bytes at a wrong sequence number must not verify.
		s1 := newSealSession(flags, exported)
		s1.recvSeq = 1
		if _, err := s1.unseal(mustHex(t, from.Sealed), sig); err == nil {
			t.Error("capture verified at sequence 1")
		}
	}
	if !found {
		t.Fatal("winrs_exe_capture not in the capture file")
	}
}
