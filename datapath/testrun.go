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
	switch h {
	case FromContainer:
		return "from-container"
	case FromNetdev:
		return "from-netdev"
	case ToNetdev:
		return "to-netdev"
	}
	return "to-container"
}

// TC return codes (TCX uses the same numbers).
const (
	TCActOK       = 0
	TCActShot     = 2
	TCActRedirect = 7 // bpf_redirect / bpf_redirect_peer: the packet goes to another device, or back
)

// RunResult is what one BPF_PROG_TEST_RUN of a frame produced.
type RunResult struct {
	Code   uint32  // TC action code the program returned
	Out    []byte  // the frame after the program (NAT rewrites show here)
	Events []Event // events the run emitted
}

// skbContext is the start of struct __sk_buff up to ifindex, the fields a
// test run may set.
type skbContext struct {
	Len, PktType, Mark, QueueMapping, Protocol, VlanPresent, VlanTCI, VlanProto, Priority uint32
	IngressIfindex, Ifindex                                                               uint32
}

// Run executes the hook's program once on frame with BPF_PROG_TEST_RUN, on
// the device of the endpoint whose address the frame carries on the pod side
// (its source from a pod, its destination to one). The kernel requires at
// least an Ethernet header (14 bytes) for TC programs. Only a datapath loaded
// with Config.TestDevices can run frames.
func (d *Datapath) Run(h Hook, frame []byte) (RunResult, error) {
	if d.sandbox == nil {
		return RunResult{}, fmt.Errorf("run %s: the datapath was not loaded with TestDevices", h)
	}
	d.mu.Lock()
	ifindex := d.sandbox.deviceFor(h, frame)
	d.mu.Unlock()
	return d.RunOn(h, ifindex, frame)
}

// DeviceOf returns the test device of an endpoint that was given none.
func (d *Datapath) DeviceOf(endpointID uint32) (uint32, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sandbox == nil {
		return 0, false
	}
	ifindex, ok := d.sandbox.devices[endpointID]
	return ifindex, ok
}

// RunOn is Run on a given device: a frame a pod sends from its own device
// with another's addresses, as a hostile pod would.
func (d *Datapath) RunOn(h Hook, ifindex uint32, frame []byte) (RunResult, error) {
	ingress := uint32(0)
	if h == FromContainer || h == FromNetdev {
		ingress = ifindex
	}
	return d.runOn(h, ifindex, ingress, frame)
}

// RunTurnedBack runs to_container on a device with a frame that device's own
// from_container turned back to it (bpf_redirect to its egress, as a
// service hairpin does): the frame entered the node on that same device.
func (d *Datapath) RunTurnedBack(ifindex uint32, frame []byte) (RunResult, error) {
	return d.runOn(ToContainer, ifindex, ifindex, frame)
}

// RunMarked is RunOn with skb->mark set: a frame the datapath marked itself
// (a to_container frame turned back for the proxy carries the proxy port).
func (d *Datapath) RunMarked(h Hook, ifindex, mark uint32, frame []byte) (RunResult, error) {
	ingress := uint32(0)
	if h == FromContainer || h == FromNetdev {
		ingress = ifindex
	}
	return d.runCtx(h, skbContext{Ifindex: ifindex, IngressIfindex: ingress, Mark: mark}, frame)
}

// InTestNamespace runs f on the thread that runs the test frames, inside
// the test devices' namespace: a socket opened there (a proxy's listener) is
// one the programs' socket lookups find.
func (d *Datapath) InTestNamespace(f func()) error {
	if d.sandbox == nil {
		return fmt.Errorf("the datapath was not loaded with TestDevices")
	}
	d.sandbox.do(f)
	return nil
}

func (d *Datapath) runOn(h Hook, ifindex, ingressIfindex uint32, frame []byte) (RunResult, error) {
	return d.runCtx(h, skbContext{Ifindex: ifindex, IngressIfindex: ingressIfindex}, frame)
}

func (d *Datapath) runCtx(h Hook, ctx skbContext, frame []byte) (RunResult, error) {
	if d.sandbox == nil {
		return RunResult{}, fmt.Errorf("run %s: the datapath was not loaded with TestDevices", h)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.drainEvents(); err != nil {
		return RunResult{}, err
	}
	opts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256), Context: ctx}
	var ret uint32
	var err error
	d.sandbox.do(func() { ret, err = d.Program(h).Run(opts) })
	if err != nil {
		return RunResult{}, fmt.Errorf("run %s on a %d-byte frame: %w", h, len(frame), err)
	}
	evs, err := d.drainEvents()
	if err != nil {
		return RunResult{}, err
	}
	return RunResult{Code: ret, Out: opts.DataOut, Events: evs}, nil
}
