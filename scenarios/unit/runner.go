// Package unit runs scenarios without a cluster: the agent's control-plane code
// computes map state from the manifests, and the real compiled datapath runs
// crafted frames through BPF_PROG_TEST_RUN. Each node of a scenario gets its own
// loaded datapath, so a probe crosses the hooks a real packet would: the source
// pod's veth on its node, then the destination pod's veth on its node.
package unit

import (
	"context"
	"fmt"
	"sync"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// Runner is the unit-mode runner. Loading a datapath is mostly verifier time,
// so datapaths a finished scenario used are reset and handed to the next one.
type Runner struct {
	mu   sync.Mutex
	idle []*datapath.Datapath
}

// NewRunner checks that this kernel can run the datapath and returns the
// unit-mode runner. Close it to release the datapaths it keeps.
func NewRunner() (*Runner, error) {
	if err := datapath.CheckKernel(); err != nil {
		return nil, fmt.Errorf("unit mode needs the eBPF datapath: %w", err)
	}
	return &Runner{}, nil
}

func (*Runner) Mode() string { return "unit" }

func (r *Runner) Begin(_ context.Context, scenario string) (engine.Session, error) {
	return newSession(scenario, r), nil
}

// acquire returns an idle datapath, or loads a new one.
func (r *Runner) acquire() (*datapath.Datapath, error) {
	r.mu.Lock()
	if n := len(r.idle); n > 0 {
		dp := r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
		return dp, nil
	}
	r.mu.Unlock()
	return datapath.Load(datapath.Config{TestDevices: true, MonitorAggregation: datapath.MonitorAggregationNone})
}

// release resets a datapath for the next scenario; one that cannot be reset
// is closed instead.
func (r *Runner) release(dp *datapath.Datapath) {
	if err := dp.Reset(); err != nil {
		dp.Close()
		return
	}
	r.mu.Lock()
	r.idle = append(r.idle, dp)
	r.mu.Unlock()
}

// Close releases the idle datapaths.
func (r *Runner) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, dp := range r.idle {
		dp.Close()
	}
	r.idle = nil
	return nil
}
