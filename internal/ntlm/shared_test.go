package ntlm

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/svcwatch/svcwatch/internal/refdata"
)

func sharedDir(t testing.TB) string { return refdata.Require(t) }

// nlmpVectors returns the "values" of ms-nlmp-4.2-vectors.json as name → bytes.
func nlmpVectors(t testing.TB) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(sharedDir(t), "wire", "nlmp", "ms-nlmp-4.2-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Values map[string]struct {
			Hex string `json:"hex"`
		} `json:"values"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(doc.Values))
	for k, v := range doc.Values {
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatalf("vector %s: %v", k, err)
		}
		out[k] = b
	}
	return out
}

func vec(t testing.TB, v map[string][]byte, name string) []byte {
	t.Helper()
	b, ok := v[name]
	if !ok {
		t.Fatalf("vector %q missing from the reference file", name)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
