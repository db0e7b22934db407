package ntlm

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// sharedDir finds /work/shared as <repo>/../shared, walking up to go.mod.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			shared := filepath.Join(filepath.Dir(dir), "shared")
			if _, err := os.Stat(shared); err != nil {
				t.Skipf("reference data %s absent", shared)
			}
			return shared
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found")
		}
		dir = parent
	}
}

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
