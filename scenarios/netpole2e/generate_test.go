package netpole2e

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

const libraryDir = "../library/netpol-e2e"

func generated(t *testing.T) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile("testdata/netpol-e2e-cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := Generate(data)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestGeneratedSuiteIsUpToDate(t *testing.T) {
	want := generated(t)
	onDisk, err := filepath.Glob(filepath.Join(libraryDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range onDisk {
		if _, ok := want[filepath.Base(path)]; !ok {
			t.Errorf("%s is not produced by the generator; run go generate ./scenarios/netpole2e", path)
		}
	}
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(libraryDir, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s differs from the generator's output; run go generate ./scenarios/netpole2e", name)
		}
	}
}

func TestEveryCaseBecomesAValidScenarioWithAProbePerExpectedCell(t *testing.T) {
	files, err := engine.Load(libraryDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 48 {
		t.Fatalf("loaded %d scenarios, the corpus has 48 cases", len(files))
	}
	total := 0
	for _, f := range files {
		if f.Err != nil {
			t.Errorf("%v", f.Err)
			continue
		}
		for _, st := range f.Plan.Steps {
			if len(st.Probes)%72 != 0 || len(st.Probes) == 0 {
				t.Errorf("%s %s: %d probes, want a multiple of 72 (9x9 minus loopback)", f.Path, st.Name, len(st.Probes))
			}
			total += len(st.Probes)
		}
	}
	if want := 65 * 72; total != want {
		t.Errorf("%d probes in all, want %d (65 matrices of 72 cells)", total, want)
	}
}

func TestUnknownActionsAreRejected(t *testing.T) {
	corpus := []byte(`source: test
model: {namespaces: [x], pods: [a], ignoreLoopback: true}
cases:
- name: c
  section: s
  serverProtocols: [TCP]
  serverPorts: [80]
  steps:
  - actions:
    - restartPod: {namespace: x, pod: a}
    probes: []
`)
	if _, err := Generate(corpus); err == nil {
		t.Fatal("a corpus with an unknown action generated without error")
	}
}
