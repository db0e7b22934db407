package ntlm

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParseChallenge feeds arbitrary bytes to the parser and to a full
// Authenticate: neither may panic, and a parsed challenge must be consistent.
func FuzzParseChallenge(f *testing.F) {
	v := nlmpVectors(f)
	f.Add(vec(f, v, "ntlmv2.challenge_message"))
	f.Add(vec(f, v, "ntlmv1.challenge_message"))
	f.Add(challengeMsg(DefaultFlags, [8]byte{9}, []AVPair{{AvTimestamp, make([]byte, 8)}, {AvFlags, []byte{2, 0, 0, 0}}}))
	f.Add([]byte("NTLMSSP\x00\x02\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, msg []byte) {
		ch, err := ParseChallenge(msg)
		if err == nil {
			if len(ch.TargetInfo) > len(msg) {
				t.Fatalf("target info larger than the message")
			}
			for _, p := range ch.AVPairs {
				if p.ID == AvEOL {
					t.Fatal("EOL in the pair list")
				}
			}
		}
		c := NewClient("D", "u", "p", Options{Rand: bytes.NewReader(make([]byte, 24)), Now: time.Now})
		auth, err := c.Authenticate(msg)
		if err == nil && (len(auth) < authHeaderLen+versionLen || c.Session() == nil) {
			t.Fatalf("authenticate succeeded with %d bytes and session %v", len(auth), c.Session())
		}
	})
}
