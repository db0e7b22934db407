package triage

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedDir finds ../shared next to the repository root.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			cand := filepath.Join(filepath.Dir(dir), "shared")
			if st, err := os.Stat(cand); err == nil && st.IsDir() {
				return cand
			}
			t.Skip("shared/ reference directory not found next to the repository")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found")
		}
		dir = parent
	}
}

func TestEvalServiceInstalls(t *testing.T) {
	f, err := os.Open(filepath.Join(sharedDir(t), "corpus", "service-installs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Eval(f, out)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out.Name())
	t.Logf("\n%s", b)
}
