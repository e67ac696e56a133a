// Package framework gives the e2e suites one Cluster interface over the
// providers that make clusters: sim (network namespaces and a real control
// plane, the default) and kind (kind/README.md) behind the same interface.
package framework

import (
	"context"
	"fmt"
	"net/netip"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// Cluster is a Kubernetes cluster with Kestrel on every node.
type Cluster interface {
	Provider() string // "sim", "kind"
	Name() string
	// Up creates the cluster with n nodes, or completes a partly running one
	// (restarting what is missing), and returns when every node is Ready.
	Up(ctx context.Context, nodes int) error
	// Down removes everything the cluster made; it is idempotent.
	Down(ctx context.Context) error
	// Leftovers lists what Down should have removed and is still there
	// (namespaces, links, processes, pins), each as one line of text.
	Leftovers() ([]string, error)
	Kubeconfig() string
	Client() (kubernetes.Interface, error)
	// Runner runs scenario files on this cluster, as `kestrel scenario run
	// --mode <provider>` does.
	Runner() (engine.Runner, error)
	Nodes() []string
	// AgentStatus is the node's agent's own view (endpoints, policy revision).
	AgentStatus(ctx context.Context, node string) (api.Status, error)
	// AgentFlows is the node's agent's flows after sequence number since.
	AgentFlows(ctx context.Context, node string, since uint64) (api.Flows, error)
	// AgentServices is the node's agent's load-balancing state.
	AgentServices(ctx context.Context, node string) (api.Services, error)
	// KillAgent ends the node's agent with SIGKILL, as a crash would.
	KillAgent(node string) error
	// InPod runs f inside the pod's network namespace: sockets f opens are the pod's.
	InPod(pod *corev1.Pod, f func() error) error
	// InNode runs f inside the node's network namespace: sockets f opens
	// are the node's own (host network).
	InNode(node string, f func() error) error
	// ConnectFromPod makes a connection from a process of the pod (its
	// namespace and its cgroup, where socket-level load balancing
	// applies), as the pod's own program would; req.Netns is filled in.
	ConnectFromPod(pod *corev1.Pod, req workload.ConnectRequest) (workload.ConnectResult, error)
	// PodSandboxExists reports whether the pod's network namespace exists.
	PodSandboxExists(pod *corev1.Pod) bool
	// Workload is pod (from WorkloadPod) as this provider runs it: sim's kubelet
	// runs the built-in servers for its image; on kind the workload image's
	// `kestrel sim workload` serves the declared ports (a command is not kept).
	Workload(pod *corev1.Pod) *corev1.Pod
	// InOutside runs f where a client from outside the cluster is: sim: this
	// process's own namespace, on the underlay; kind: the outside host, a
	// container on kind's network beside the nodes. OutsideAddr is the address
	// the nodes see that client at.
	InOutside(f func() error) error
	OutsideAddr() (netip.Addr, error)
}

// FromEnv returns the cluster the suites run against: KESTREL_E2E_PROVIDER
// (default sim) and KESTREL_E2E_CLUSTER (default e2e).
func FromEnv() (Cluster, error) {
	name := os.Getenv("KESTREL_E2E_CLUSTER")
	if name == "" {
		name = "e2e"
	}
	switch p := os.Getenv("KESTREL_E2E_PROVIDER"); p {
	case "", "sim":
		return NewSim(name)
	case "kind":
		return NewKind(name)
	default:
		return nil, fmt.Errorf("KESTREL_E2E_PROVIDER=%s: unknown (sim or kind)", p)
	}
}

// Keep reports whether the suites should leave their cluster up (KESTREL_E2E_KEEP=1).
func Keep() bool { return os.Getenv("KESTREL_E2E_KEEP") == "1" }
