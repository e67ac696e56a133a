package engine

import (
	"context"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// Manifest is one non-pod, non-namespace object of a scenario (a policy, a
// service, ...), kept as JSON so each runner hands it to the code that owns the
// kind. Source is "file:line" of the object in the scenario, for error messages.
type Manifest struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	Source     string
	JSON       []byte
}

// Cluster is the complete desired state at one step of a scenario.
type Cluster struct {
	Nodes      []string
	Namespaces []*corev1.Namespace
	Pods       []*corev1.Pod // Status.PodIPs and Spec.NodeName are always filled in
	Manifests  []Manifest
}

// Peer is one end of a probe, already resolved against the cluster.
type Peer struct {
	Pod  *corev1.Pod // set when the peer is a pod
	IP   netip.Addr  // always set: the pod's IP of the probe's family, or the literal IP
	Node string      // set when the peer is a node (host)
}

// Probe is one concrete check: a single packet or an exchange between two peers.
type Probe struct {
	Scenario string
	Name     string
	From     Peer
	To       Peer
	Protocol string // TCP | UDP | SCTP | ICMP | ICMPv6
	Port     uint16 // resolved: named ports are already numbers
	Exchange string // connect | packet | request
	Flags    []string
	Expect   Expectation
}

// Expectation is what the scenario says must be observed.
type Expectation struct {
	Verdict string // allowed | dropped | l7-denied | rejected
	Reason  string // drop reason name, with dropped
	Flow    *FlowExpectation
}

// FlowExpectation is the subset of an emitted flow event the scenario checks.
type FlowExpectation struct {
	Policy    string // name of the policy that decided (matches the end of the origin)
	Direction string // ingress | egress
	MatchType string // l3-only | l3-l4 | l4-only | all | none
}

// Observation is what a runner saw for a probe.
type Observation struct {
	Verdict  string // allowed | dropped | ...
	Reason   string // drop reason name when dropped
	Flows    []Flow // events emitted for the probe's frames, in order
	Evidence string // free text: hook, return codes, which rule decided
	Err      error  // the probe could not be run at all (counts as a failure)
}

// Flow is one emitted datapath event, in runner-independent form.
type Flow struct {
	Direction string
	Verdict   string
	Reason    string
	MatchType string
	Policies  []string // origins of the deciding policy entry
	SrcID     uint32
	DstID     uint32
}

// Runner executes scenarios in one mode (unit, sim, kind).
type Runner interface {
	Mode() string
	// Begin starts a scenario; the session lives until Close.
	Begin(ctx context.Context, scenario string) (Session, error)
}

// Session is one scenario's life in a runner.
type Session interface {
	// Sync makes the runner's state equal to c (the whole desired state, not a delta).
	// An error means the state was rejected and nothing of it was applied.
	Sync(ctx context.Context, c *Cluster) error
	Probe(ctx context.Context, p Probe) Observation
	Close() error
}
