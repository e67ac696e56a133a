// Package unit runs scenarios without a cluster: the agent's control-plane code
// computes map state from the manifests, and the real compiled datapath runs
// crafted frames through BPF_PROG_TEST_RUN. Each node of a scenario gets its own
// loaded datapath, so a probe crosses the hooks a real packet would: the source
// pod's veth on its node, then the destination pod's veth on its node.
package unit

import (
	"context"
	"fmt"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

type runner struct{}

// NewRunner checks that this kernel can run the datapath and returns the
// unit-mode runner.
func NewRunner() (engine.Runner, error) {
	if err := datapath.CheckKernel(); err != nil {
		return nil, fmt.Errorf("unit mode needs the eBPF datapath: %w", err)
	}
	return runner{}, nil
}

func (runner) Mode() string { return "unit" }

func (runner) Begin(_ context.Context, scenario string) (engine.Session, error) {
	return newSession(scenario), nil
}
