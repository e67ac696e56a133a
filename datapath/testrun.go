package datapath

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Hook is a point where the datapath runs.
type Hook int

const (
	FromContainer Hook = iota // host veth ingress: what the pod sends (egress policy)
	ToContainer               // host veth egress: what the pod receives (ingress policy)
)

func (h Hook) String() string {
	if h == FromContainer {
		return "from-container"
	}
	return "to-container"
}

// TC return codes (TCX uses the same numbers).
const (
	TCActOK   = 0
	TCActShot = 2
)

// RunResult is what one BPF_PROG_TEST_RUN of a frame produced.
type RunResult struct {
	Code   uint32  // TC action code the program returned
	Out    []byte  // the frame after the program (NAT rewrites show here)
	Events []Event // events the run emitted
}

// Run executes the hook's program once on frame with BPF_PROG_TEST_RUN. The
// kernel requires at least an Ethernet header (14 bytes) for TC programs.
func (d *Datapath) Run(h Hook, frame []byte) (RunResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.drainEvents(); err != nil {
		return RunResult{}, err
	}
	opts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
	ret, err := d.Program(h).Run(opts)
	if err != nil {
		return RunResult{}, fmt.Errorf("run %s on a %d-byte frame: %w", h, len(frame), err)
	}
	evs, err := d.drainEvents()
	if err != nil {
		return RunResult{}, err
	}
	return RunResult{Code: ret, Out: opts.DataOut, Events: evs}, nil
}
