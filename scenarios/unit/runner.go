// Package unit runs scenarios without a cluster: the agent's control-plane code
// computes map state, and the compiled datapath runs crafted frames through
// BPF_PROG_TEST_RUN.
package unit

import (
	"errors"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// NewRunner loads the datapath and returns the unit-mode runner.
func NewRunner() (engine.Runner, error) {
	return nil, errors.New("unit runner: under construction")
}
