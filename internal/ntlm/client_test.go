package ntlm

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

// challengeMsg builds a CHALLENGE_MESSAGE with the given flags and AV pairs.
func challengeMsg(flags Flags, serverChallenge [8]byte, pairs []AVPair) []byte {
	name := encodeUTF16("CORP")
	info := encodeAVPairs(pairs)
	m := make([]byte, 56)
	copy(m, signature)
	binary.LittleEndian.PutUint32(m[8:], typeChallenge)
	binary.LittleEndian.PutUint16(m[12:], uint16(len(name)))
	binary.LittleEndian.PutUint16(m[14:], uint16(len(name)))
	binary.LittleEndian.PutUint32(m[16:], 56)
	binary.LittleEndian.PutUint32(m[20:], uint32(flags))
	copy(m[24:], serverChallenge[:])
	binary.LittleEndian.PutUint16(m[40:], uint16(len(info)))
	binary.LittleEndian.PutUint16(m[42:], uint16(len(info)))
	binary.LittleEndian.PutUint32(m[44:], uint32(56+len(name)))
	copy(m[48:], DefaultVersion[:])
	m = append(m, name...)
	return append(m, info...)
}

// authField reads a payload field of an AUTHENTICATE message (test side, by the spec's offsets).
func authField(t *testing.T, msg []byte, descOff int) []byte {
	t.Helper()
	n := int(binary.LittleEndian.Uint16(msg[descOff:]))
	off := int(binary.LittleEndian.Uint32(msg[descOff+4:]))
	if off+n > len(msg) {
		t.Fatalf("field at %d: %d+%d beyond %d", descOff, off, n, len(msg))
	}
	return msg[off : off+n]
}

// With MsvAvTimestamp the client must use the server's time, send Z(24) as the
// LM response, set the MIC flag in its AV pairs and append a correct MIC.
func TestAuthenticateWithTimestampAddsMIC(t *testing.T) {
	ts := binary.LittleEndian.AppendUint64(nil, 0x01dc0a1b2c3d4e5f)
	chal := challengeMsg(DefaultFlags|FlagTargetTypeDomain, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, []AVPair{
		{AvNbDomainName, encodeUTF16("CORP")},
		{AvNbComputerName, encodeUTF16("DC01")},
		{AvTimestamp, ts},
	})
	c := NewClient("CORP", "svc-poller", "S3cret!", Options{
		TargetSPN: "HTTP/dc01.corp.example",
		Now: func() time.Time {
			t.Fatal("Now must not be used when the server sends a timestamp")
			return time.Time{}
		},
	})
	neg := c.Negotiate()
	msg, err := c.Authenticate(chal)
	if err != nil {
		t.Fatal(err)
	}
	if lm := authField(t, msg, 12); !bytes.Equal(lm, make([]byte, 24)) {
		t.Errorf("LM response = %x, want Z(24)", lm)
	}
	nt := authField(t, msg, 20)
	if !bytes.Equal(nt[16+8:16+16], ts) {
		t.Errorf("NTLMv2 time = %x, want the server's %x", nt[24:32], ts)
	}
	pairs, _, err := parseAVPairs(nt[16+28:])
	if err != nil {
		t.Fatal(err)
	}
	var flagsOK, spnOK bool
	for _, p := range pairs {
		switch p.ID {
		case AvFlags:
			flagsOK = binary.LittleEndian.Uint32(p.Value)&avFlagMIC != 0
		case AvTargetName:
			spnOK = bytes.Equal(p.Value, encodeUTF16("HTTP/dc01.corp.example"))
		}
	}
	if !flagsOK || !spnOK {
		t.Errorf("client AV pairs: MIC flag %v, SPN %v", flagsOK, spnOK)
	}
	if user := authField(t, msg, 36); !bytes.Equal(user, encodeUTF16("svc-poller")) {
		t.Errorf("user = %x", user)
	}

	// Recompute the MIC as a server would: exported key from the NTProofStr.
	kx := SessionBaseKey(NTOWFv2("S3cret!", "svc-poller", "CORP"), nt[:16])
	exported := ExportedSessionKey(kx, authField(t, msg, 52), FlagKeyExch)
	zeroed := append([]byte(nil), msg...)
	mic := append([]byte(nil), zeroed[72:88]...)
	copy(zeroed[72:88], make([]byte, 16))
	h := hmac.New(md5.New, exported)
	h.Write(neg)
	h.Write(chal)
	h.Write(zeroed)
	if want := h.Sum(nil); !bytes.Equal(mic, want) {
		t.Errorf("MIC = %x, want %x", mic, want)
	}
	if got := authField(t, msg, 28); len(got) != 0 && binary.LittleEndian.Uint32(msg[28+4:]) < 88 {
		t.Error("payload overlaps the MIC")
	}

	// A server session built from the same key understands the client.
	srv, err := NewSession(exported, Flags(binary.LittleEndian.Uint32(msg[60:])), RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{"first", "second", strings.Repeat("x", 5000)} {
		sig, sealed := c.Session().Seal([]byte(body))
		got, err := srv.Unseal(sig, sealed)
		if err != nil || string(got) != body {
			t.Fatalf("message %d: %q, %v", i, got, err)
		}
		sig, sealed = srv.Seal([]byte("reply " + body))
		got, err = c.Session().Unseal(sig, sealed)
		if err != nil || string(got) != "reply "+body {
			t.Fatalf("reply %d: %q, %v", i, got, err)
		}
	}
	// Replaying an old message is caught by the sequence number.
	sig, sealed := srv.Seal([]byte("once"))
	if _, err := c.Session().Unseal(sig, sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Session().Unseal(sig, sealed); !errors.Is(err, ErrSignature) {
		t.Fatalf("replay: err = %v, want ErrSignature", err)
	}
}

func TestSignVerify(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 16)
	cli, _ := NewSession(key, DefaultFlags, RoleClient)
	srv, _ := NewSession(key, DefaultFlags, RoleServer)
	sig := cli.Sign([]byte("hello"))
	if err := srv.Verify([]byte("hello"), sig); err != nil {
		t.Fatal(err)
	}
	sig = cli.Sign([]byte("hello"))
	if err := srv.Verify([]byte("hellO"), sig); !errors.Is(err, ErrSignature) {
		t.Fatalf("err = %v, want ErrSignature", err)
	}
}

func TestNewSessionRejects(t *testing.T) {
	if _, err := NewSession(make([]byte, 15), DefaultFlags, RoleClient); err == nil {
		t.Error("short key accepted")
	}
	if _, err := NewSession(make([]byte, 16), DefaultFlags&^FlagExtendedSessionSecurity, RoleClient); !errors.Is(err, ErrUnsupported) {
		t.Errorf("no ESS: err = %v", err)
	}
}

func TestParseChallengeRejects(t *testing.T) {
	good := challengeMsg(DefaultFlags, [8]byte{}, []AVPair{{AvNbDomainName, encodeUTF16("CORP")}})
	if _, err := ParseChallenge(good); err != nil {
		t.Fatalf("good challenge: %v", err)
	}
	mut := func(f func(m []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"short header", good[:47]},
		{"bad signature", mut(func(m []byte) []byte { m[0] = 'X'; return m })},
		{"wrong type", mut(func(m []byte) []byte { m[8] = 3; return m })},
		{"target name beyond end", mut(func(m []byte) []byte { binary.LittleEndian.PutUint32(m[16:], 0xfffffff0); return m })},
		{"target name in header", mut(func(m []byte) []byte { binary.LittleEndian.PutUint32(m[16:], 8); return m })},
		{"target info too long", mut(func(m []byte) []byte { binary.LittleEndian.PutUint16(m[40:], 0xffff); return m })},
		{"odd UTF-16 name", mut(func(m []byte) []byte { binary.LittleEndian.PutUint16(m[12:], 7); return m })},
		{"no EOL", good[:len(good)-4]},
		{"AV pair overruns", mut(func(m []byte) []byte { binary.LittleEndian.PutUint16(m[56+8+2:], 200); return m })},
		{"bad timestamp length", challengeMsg(DefaultFlags, [8]byte{}, []AVPair{{AvTimestamp, []byte{1, 2, 3}}})},
		{"huge", append(append([]byte(nil), good...), make([]byte, maxMessageLen)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseChallenge(tt.msg); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("err = %v, want ErrInvalidMessage", err)
			}
		})
	}
}

func TestAuthenticateRefusesWeakServer(t *testing.T) {
	pairs := []AVPair{{AvNbDomainName, encodeUTF16("CORP")}}
	tests := []struct {
		name  string
		flags Flags
		pairs []AVPair
	}{
		{"no ESS", DefaultFlags &^ FlagExtendedSessionSecurity, pairs},
		{"OEM only", DefaultFlags&^FlagUnicode | FlagOEM, pairs},
		{"no target info flag", DefaultFlags &^ FlagTargetInfo, pairs},
		{"56-bit seal key", DefaultFlags &^ Flag128, pairs},
		{"40-bit seal key", DefaultFlags &^ (Flag128 | Flag56), pairs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient("CORP", "u", "p", Options{})
			if _, err := c.Authenticate(challengeMsg(tt.flags, [8]byte{}, tt.pairs)); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("err = %v, want ErrUnsupported", err)
			}
			if c.Session() != nil {
				t.Fatal("session established after a refusal")
			}
		})
	}
}

func TestSplitAccount(t *testing.T) {
	tests := []struct{ in, domain, user string }{
		{`CORP\svc`, "CORP", "svc"},
		{"svc@corp.example", "", "svc@corp.example"},
		{"svc", "", "svc"},
	}
	for _, tt := range tests {
		if d, u := SplitAccount(tt.in); d != tt.domain || u != tt.user {
			t.Errorf("SplitAccount(%q) = %q, %q", tt.in, d, u)
		}
	}
}

func TestFlagsString(t *testing.T) {
	if got := Flags(0xe2888235).String(); got != "56|KEY_EXCH|128|VERSION|TARGET_INFO|EXTENDED_SESSIONSECURITY|ALWAYS_SIGN|NTLM|SEAL|SIGN|REQUEST_TARGET|UNICODE" {
		t.Errorf("String = %s", got)
	}
}

func TestChannelBindingHash(t *testing.T) {
	// MD5 over 16 zero bytes, the little-endian length 3, then "abc".
	want := md5.Sum(append(append(make([]byte, 16), 3, 0, 0, 0), "abc"...))
	if got := ChannelBindingHash([]byte("abc")); !bytes.Equal(got, want[:]) {
		t.Fatalf("ChannelBindingHash = %x, want %x", got, want)
	}
	c := NewClient("CORP", "u", "p", Options{ChannelBindings: ChannelBindingHash([]byte("abc"))})
	msg, err := c.Authenticate(challengeMsg(DefaultFlags, [8]byte{}, []AVPair{{AvNbDomainName, encodeUTF16("CORP")}}))
	if err != nil {
		t.Fatal(err)
	}
	nt := authField(t, msg, 20)
	pairs, _, err := parseAVPairs(nt[16+28:])
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range pairs {
		if p.ID == AvChannelBindings {
			found = bytes.Equal(p.Value, want[:])
		}
	}
	if !found {
		t.Fatal("MsvAvChannelBindings missing or wrong")
	}
	if _, err := NewClient("CORP", "u", "p", Options{ChannelBindings: []byte{1}}).Authenticate(nil); err == nil {
		t.Fatal("a 1-byte channel binding was accepted")
	}
}

func TestChallengeVersionField(t *testing.T) {
	msg := challengeMsg(DefaultFlags, [8]byte{}, []AVPair{{AvNbDomainName, encodeUTF16("CORP")}})
	ch, err := ParseChallenge(msg)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Version != DefaultVersion {
		t.Errorf("version %x, want %x", ch.Version, DefaultVersion)
	}
	// A server that sets VERSION but starts its payload at 48 has no version field.
	short := append(append([]byte(nil), msg[:48]...), msg[56:]...)
	binary.LittleEndian.PutUint32(short[16:], binary.LittleEndian.Uint32(msg[16:])-8)
	binary.LittleEndian.PutUint32(short[44:], binary.LittleEndian.Uint32(msg[44:])-8)
	ch, err = ParseChallenge(short)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Version != ([8]byte{}) || ch.TargetName != "CORP" {
		t.Errorf("version %x, target %q", ch.Version, ch.TargetName)
	}
}
