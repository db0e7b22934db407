package ntlm

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

type capture struct {
	Label  string `json:"label"`
	Source struct {
		User         string `json:"user"`
		Password     string `json:"password"`
		Domain       string `json:"ntowfv2_domain"`
		NTProofStr   string `json:"nt_proof_str_hex"`
		EncryptedKey string `json:"encrypted_random_session_key_hex"`
		Checksum     string `json:"expected_checksum_hex"`
		Sealed       string `json:"sealed_message_hex"`
		SealedLen    int    `json:"sealed_message_len"`
	} `json:"from_source_file"`
	Derived struct {
		PlaintextFile string `json:"decrypted_plaintext_file"`
	} `json:"derived_here_NOT_in_source"`
}

func loadCapture(t *testing.T, label string) (capture, []byte) {
	t.Helper()
	dir := filepath.Join(sharedDir(t), "wire", "nlmp")
	raw, err := os.ReadFile(filepath.Join(dir, "ntlm-sealed-winrm-captures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Captures []capture `json:"captures"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range doc.Captures {
		if c.Label == label {
			plain, err := os.ReadFile(filepath.Join(dir, c.Derived.PlaintextFile))
			if err != nil {
				t.Fatal(err)
			}
			return c, plain
		}
	}
	t.Fatalf("capture %q not in the reference file", label)
	return capture{}, nil
}

// captureFlags: NTLMv2 with key exchange, 128-bit, ESS, sign and seal, as winrs.exe negotiates.
const captureFlags = FlagExtendedSessionSecurity | FlagKeyExch | Flag128 | Flag56 | FlagSign | FlagSeal | FlagUnicode

// serverSession rebuilds the server's view of the captured context from the
// password alone (plus the NTProofStr and encrypted key from the handshake).
func serverSession(t *testing.T, c capture) *Session {
	t.Helper()
	responseKeyNT := NTOWFv2(c.Source.Password, c.Source.User, c.Source.Domain)
	kxkey := SessionBaseKey(responseKeyNT, unhex(t, c.Source.NTProofStr))
	exported := ExportedSessionKey(kxkey, unhex(t, c.Source.EncryptedKey), captureFlags)
	s, err := NewSession(exported, captureFlags, RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecryptWinrsCapture(t *testing.T) {
	c, want := loadCapture(t, "winrs_exe_capture")
	sealed := unhex(t, c.Source.Sealed)
	if len(sealed) != c.Source.SealedLen {
		t.Fatalf("sealed length %d, file says %d", len(sealed), c.Source.SealedLen)
	}
	// Version 1 || captured checksum || sequence number 0.
	sig := append(append([]byte{1, 0, 0, 0}, unhex(t, c.Source.Checksum)...), 0, 0, 0, 0)

	plain, err := serverSession(t, c).Unseal(sig, sealed)
	if err != nil {
		t.Fatalf("winrs.exe capture does not verify at sequence number 0: %v", err)
	}
	if !bytes.Equal(plain, want) {
		t.Fatalf("decrypted capture differs from %s:\n%s", c.Derived.PlaintextFile, plain)
	}
	if !bytes.Contains(plain, []byte("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create")) {
		t.Error("the plaintext is not a WS-Management Create request")
	}

	// Each way of getting it wrong is caught.
	bad := []struct {
		name        string
		sig, sealed []byte
		password    string
	}{
		{"wrong sequence number", append(append([]byte{1, 0, 0, 0}, sig[4:12]...), 1, 0, 0, 0), sealed, ""},
		{"flipped ciphertext bit", sig, flip(sealed, 100), ""},
		{"flipped checksum bit", flip(sig, 5), sealed, ""},
		{"wrong version", flip(sig, 0), sealed, ""},
		{"short signature", sig[:15], sealed, ""},
		{"wrong password", sig, sealed, "Pa55w0rd!"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			cc := c
			if tt.password != "" {
				cc.Source.Password = tt.password
			}
			s := serverSession(t, cc)
			if _, err := s.Unseal(tt.sig, tt.sealed); !errors.Is(err, ErrSignature) {
				t.Fatalf("err = %v, want ErrSignature", err)
			}
			// The context is now broken: even the genuine message is refused.
			if _, err := s.Unseal(sig, sealed); !errors.Is(err, ErrSignature) {
				t.Fatalf("after a failure: err = %v, want ErrSignature", err)
			}
		})
	}
}

// The ntlmlib capture decrypts, but its checksum is known not to verify
// (the file's own comment says so): Unseal must refuse it.
func TestNtlmlibCaptureRejected(t *testing.T) {
	c, want := loadCapture(t, "ntlmlib_own_client_capture")
	sealed := unhex(t, c.Source.Sealed)
	responseKeyNT := NTOWFv2(c.Source.Password, c.Source.User, c.Source.Domain)
	exported := ExportedSessionKey(SessionBaseKey(responseKeyNT, unhex(t, c.Source.NTProofStr)), unhex(t, c.Source.EncryptedKey), captureFlags)
	if plain := rc4K(SealKey(exported, captureFlags, ClientToServer), sealed); !bytes.Equal(plain, want) {
		t.Fatalf("raw decryption differs from %s", c.Derived.PlaintextFile)
	}
	sig := append(append([]byte{1, 0, 0, 0}, unhex(t, c.Source.Checksum)...), 0, 0, 0, 0)
	s, _ := NewSession(exported, captureFlags, RoleServer)
	if _, err := s.Unseal(sig, sealed); !errors.Is(err, ErrSignature) {
		t.Fatalf("err = %v, want ErrSignature", err)
	}
}

func flip(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 0x01
	return out
}
