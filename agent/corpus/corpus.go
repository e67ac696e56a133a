// Package corpus finds the shared corpus of real-world inputs (policies,
// kube-proxy rules, upstream e2e cases) that tests use as read-only fixtures.
package corpus

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns $KESTREL_CORPUS, or the nearest shared/corpus above the working
// directory; when there is none the test is skipped, saying how to point at it.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("KESTREL_CORPUS"); d != "" {
		return d
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		c := filepath.Join(dir, "shared", "corpus")
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			return c
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("shared/corpus not found above the package directory; set KESTREL_CORPUS")
		}
		dir = parent
	}
}
