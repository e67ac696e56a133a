package unit_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/scenarios/unit"
)

func runPaths(t *testing.T, paths ...string) *engine.Report {
	t.Helper()
	if err := datapath.CheckKernel(); err != nil {
		datapathtest.SkipOrFail(t, err)
	}
	r, err := unit.NewRunner()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	files, err := engine.Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Run(context.Background(), r, files, engine.Options{})
}

func TestTheLibraryPassesInUnitMode(t *testing.T) {
	for _, suite := range []string{"netpol-e2e", "cilium-l3l4", "conntrack", "services", "services-external", "l7-http"} {
		t.Run(suite, func(t *testing.T) {
			rep := runPaths(t, "../library/"+suite)
			passed, failed, _ := rep.Counts()
			if failed > 0 || passed == 0 {
				var b strings.Builder
				rep.WriteText(&b, false)
				t.Fatalf("%s: %d passed, %d failed\n%s", suite, passed, failed, b.String())
			}
		})
	}
}

func TestWrongExpectationsFail(t *testing.T) {
	rep := runPaths(t, "testdata/wrong-expectations.yaml")
	passed, failed, _ := rep.Counts()
	if passed != 0 || failed != 3 {
		rep.WriteText(os.Stderr, true)
		t.Fatalf("want all 3 probes to fail, got %d passed, %d failed", passed, failed)
	}
}

// Service probes fail when the backend is not one the probe allows or the
// verdict is not the one the datapath gives; the library's services suite
// passes (TestTheLibraryPassesInUnitMode), so these fail for the reason given.
func TestWrongServiceExpectationsFail(t *testing.T) {
	rep := runPaths(t, "testdata/services-wrong-expectations.yaml")
	passed, failed, _ := rep.Counts()
	if passed != 0 || failed != 5 {
		rep.WriteText(os.Stderr, true)
		t.Fatalf("want all 5 probes to fail, got %d passed, %d failed", passed, failed)
	}
	var b strings.Builder
	rep.WriteText(&b, false)
	for _, want := range []string{
		"backend: expected x/other, observed x/",
		"backend: expected x/c or x/other, observed x/b",
		"verdict: expected allowed, observed rejected",
		"verdict: expected dropped, observed rejected",
		"verdict: expected rejected, observed allowed",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// External service probes fail when the datapath does otherwise: a world
// source's backend, the client address a backend or world server sees, a
// drop where an answer was expected. The services-external suite passes
// (TestTheLibraryPassesInUnitMode), so these fail for the reason given.
func TestWrongExternalExpectationsFail(t *testing.T) {
	rep := runPaths(t, "testdata/external-wrong-expectations.yaml")
	passed, failed, _ := rep.Counts()
	var b strings.Builder
	rep.WriteText(&b, false)
	if passed != 0 || failed != 4 {
		t.Fatalf("want all 4 probes to fail, got %d passed, %d failed:\n%s", passed, failed, b.String())
	}
	for _, want := range []string{
		"backend: expected web/other, observed web/web-",
		"source IP: expected node node-2(172.18.0.3), observed 203.0.113.2",
		"verdict: expected allowed, observed dropped",
		"source IP: expected 10.244.0.10, observed 172.18.0.2",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

// L7 request probes fail when the proxy's decision or the server's status
// is not the expected one.
func TestWrongL7ExpectationsFail(t *testing.T) {
	rep := runPaths(t, "testdata/l7-wrong-expectations.yaml")
	passed, failed, _ := rep.Counts()
	var b strings.Builder
	rep.WriteText(&b, false)
	if passed != 0 || failed != 4 {
		t.Fatalf("want all 4 probes to fail, got %d passed, %d failed\n%s", passed, failed, b.String())
	}
	for _, want := range []string{
		"verdict: expected allowed, observed l7-denied",
		"verdict: expected l7-denied, observed allowed",
		"http status: expected 201, observed 200",
		"verdict: expected dropped, observed l7-denied",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
