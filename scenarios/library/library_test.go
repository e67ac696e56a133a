// Package library holds the scenario suites; its test checks that every suite
// parses and expands, so a broken file fails `go test`, not a CI run later.
package library

import (
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

func TestEverySuiteLoads(t *testing.T) {
	for _, suite := range []string{"netpol-e2e", "cilium-l3l4", "conntrack", "fail-closed", "connectivity", "objects", "services", "services-external", "l7-http", "l7-connectivity", "l7-tls", "l7-kafka"} {
		t.Run(suite, func(t *testing.T) {
			files, err := engine.Load(suite)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) == 0 {
				t.Fatal("no scenarios")
			}
			probes := 0
			for _, f := range files {
				if f.Err != nil {
					t.Errorf("%v", f.Err)
					continue
				}
				for _, st := range f.Plan.Steps {
					probes += len(st.Probes)
				}
			}
			t.Logf("%s: %d files, %d probes", suite, len(files), probes)
		})
	}
}
