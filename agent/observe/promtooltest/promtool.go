// Package promtooltest checks a Prometheus exposition with the real
// `promtool check metrics` (Debian's prometheus package, which make deps
// installs), for the agent's and the relay's tests.
package promtooltest

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
)

// T is what the checks need of a test: testing.TB's and GinkgoT()'s methods.
type T interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
}

// Check fails t with promtool's complaints about exposition. Without
// promtool it skips, naming it.
func Check(t T, exposition []byte) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus; make deps does)")
	}
	if len(bytes.TrimSpace(exposition)) == 0 {
		t.Fatal("empty exposition")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// Scrape gets url's exposition.
func Scrape(t T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return body
}
