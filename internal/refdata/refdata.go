// Package refdata locates the shared reference material that tests check the
// code against: real Windows captures, the MS-NLMP test vectors and the event
// corpus, kept outside the repository in ../shared.
package refdata

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns <repository root>/../shared, the repository root being the
// nearest directory above the working directory that holds go.mod; ok is
// false when there is no such directory.
func Dir() (dir string, ok bool) {
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(wd, "go.mod")); err == nil {
			shared := filepath.Join(filepath.Dir(wd), "shared")
			if st, err := os.Stat(shared); err != nil || !st.IsDir() {
				return "", false
			}
			return shared, true
		}
		parent := filepath.Dir(wd)
		if parent == wd {
			return "", false
		}
		wd = parent
	}
}

// Require returns Dir, or skips the test when the reference data is absent.
func Require(t testing.TB) string {
	t.Helper()
	dir, ok := Dir()
	if !ok {
		t.Skip("reference data ../shared not found beside the repository")
	}
	return dir
}
