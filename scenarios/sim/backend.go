package sim

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// Backend is what the live runner needs from the cluster it drives, beside its
// API: where the scenario's nodes are, how to get into a pod's or node's network
// namespace, where the agents answer, and how a scenario container runs. The sim
// cluster is one backend; kind clusters (scenarios/kindmode) are another, so the
// same runner, output and verdicts serve both.
type Backend interface {
	// Mode names the runner in reports ("sim", "kind", "cluster").
	Mode() string
	// Name is the cluster's name, for messages.
	Name() string
	// Node is the cluster node standing for the scenario's i-th node (from 1):
	// its Node name, address and pod CIDR of a family. ok is false past the last.
	Node(i int) (name string, ok bool)
	NodeIP(i int, v6 bool) netip.Addr
	PodCIDR(i int, v6 bool) netip.Prefix
	// PodNetns and NodeNetns name a namespace: a name under /var/run/netns, or
	// an absolute path (/proc/PID/ns/net).
	PodNetns(uid string) (string, error)
	NodeNetns(i int) (string, error)
	// AgentSockets are every node's agent API sockets.
	AgentSockets() ([]string, error)
	// Containers are a scenario pod's containers as this cluster runs them.
	Containers(pod *corev1.Pod) []corev1.Container
	// Routed reports whether a probe to a may be sent (it stays on this machine).
	Routed(a netip.Addr) bool
	// Outside reports whether the cluster has sim's outside host (world sources
	// and servers) and per-pod cgroups for in-pod probe processes.
	Outside() bool
}

// PodExec is a Backend that reaches pods only through the Kubernetes API, as on
// any cluster (--mode cluster, scenarios/clustermode): no pod or node namespace
// can be entered from this machine and no agent socket reached (AgentSockets
// is unused). Then
//   - probes run as a process in the source pod's container (exec), a row of
//     a matrix in one process (ConnectAll);
//   - the cluster's CNI chooses pod addresses, so the runner maps the
//     scenario's pod addresses to the live ones in probes, and in the
//     manifests (ipBlock CIDRs naming a pod), which it applies once the pods
//     run (addrmap.go);
//   - where the cluster runs Kestrel, its agents are read through the API
//     (Agents: each agent pod's loopback API through a port-forward): after
//     applying, the runner waits for their policy revision as in sim, and
//     each probe's flows and drop reason are read and checked as in sim
//     (flows.go);
//   - elsewhere, with no agent to report a policy revision, the runner waits
//     Settle after applying, and no flows are read: verdicts alone are
//     compared, and the report says so (Observation.EventsUnobserved).
type PodExec interface {
	Backend
	// Agents are the cluster's Kestrel agents, read through its API; an
	// error wrapping ErrNoAgents when it runs none the runner can read.
	Agents(ctx context.Context) ([]Agent, error)
	// Connect runs reqs at once in a process of the pod's first container
	// and returns their results in order.
	Connect(ctx context.Context, namespace, pod string, reqs []workload.ConnectRequest) ([]workload.ConnectResult, error)
	// Settle is how long applied objects take to be enforced.
	Settle() time.Duration
}

// simBackend is the sim cluster (sim/README.md).
type simBackend struct{ name, stateDir string }

func (b simBackend) Mode() string { return "sim" }
func (b simBackend) Name() string { return b.name }

// Node: sim nodes are node-1...; the caller checks the count against the API.
func (b simBackend) Node(i int) (string, bool) { return network.NodeName(i), true }

func (b simBackend) NodeIP(i int, v6 bool) netip.Addr {
	if v6 {
		return network.NodeIP6(i)
	}
	return network.NodeIP(i)
}

func (b simBackend) PodCIDR(i int, v6 bool) netip.Prefix {
	if v6 {
		return network.PodCIDR6(i)
	}
	return network.PodCIDR(i)
}

func (b simBackend) PodNetns(uid string) (string, error) { return network.PodNetns(b.name, uid), nil }
func (b simBackend) NodeNetns(i int) (string, error)     { return network.NodeNetns(b.name, i), nil }
func (b simBackend) AgentSockets() ([]string, error)     { return cluster.AgentSockets(b.stateDir) }
func (b simBackend) Containers(p *corev1.Pod) []corev1.Container {
	return scenarioContainers(p.Spec.Containers)
}
func (b simBackend) Routed(a netip.Addr) bool { return inSim(a) }
func (b simBackend) Outside() bool            { return true }

// skipNoOutside is why a probe to a world address is not sent where no outside
// host can stand in for the world (the probe would leave the machine).
const skipNoOutside = "the destination is outside the cluster, and this mode has no outside host to stand in for it"

// errNoOutside is the error for a scenario part a backend without sim's outside
// host cannot run.
func errNoOutside(b Backend, what string) error {
	return fmt.Errorf("%s: %s mode has no outside host", what, b.Mode())
}
