package framework

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	simrunner "github.com/kestrelnet/kestrel/scenarios/sim"
	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// Sim is the sim provider: `kestrel sim up` as a library, with the
// checkout's bin/ as the binaries its nodes run.
type Sim struct {
	name, binDir, state string
	nodes               int
	// LBMode is the agents' --bpf-lb-mode (empty: snat).
	LBMode string
}

// NewSim returns the sim cluster called name (not yet brought up).
func NewSim(name string) (*Sim, error) {
	if err := network.ValidateName(name); err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	return &Sim{name: name, binDir: filepath.Join(root, "bin"), state: controlplane.DefaultStateDir(name)}, nil
}

func (s *Sim) Provider() string   { return "sim" }
func (s *Sim) Name() string       { return s.name }
func (s *Sim) Kubeconfig() string { return filepath.Join(s.state, "kubeconfig") }

func (s *Sim) Up(ctx context.Context, nodes int) error {
	if missing := controlplane.MissingBinaries(controlplane.DefaultBinDir(), "/usr/bin/etcd"); len(missing) > 0 {
		return fmt.Errorf("sim needs %v (run `make deps`)", missing)
	}
	_, err := cluster.Up(ctx, cluster.Options{Name: s.name, Nodes: nodes, BinDir: s.binDir, LBMode: s.LBMode})
	if err == nil {
		s.nodes = nodes
	}
	return err
}

func (s *Sim) Down(context.Context) error { return cluster.Down(s.name) }

func (s *Sim) Leftovers() ([]string, error) { return cluster.Leftovers(s.name) }

func (s *Sim) Nodes() []string {
	out := make([]string, s.nodes)
	for i := range out {
		out[i] = network.NodeName(i + 1)
	}
	return out
}

func (s *Sim) Client() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig())
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func (s *Sim) Runner() (engine.Runner, error) {
	return simrunner.NewRunner(simrunner.Options{Name: s.name, StateDir: s.state})
}

func (s *Sim) AgentStatus(ctx context.Context, node string) (api.Status, error) {
	return api.NewClient(cluster.AgentSocket(s.name, node)).Status(ctx)
}

func (s *Sim) AgentFlows(ctx context.Context, node string, since uint64) (api.Flows, error) {
	return api.NewClient(cluster.AgentSocket(s.name, node)).Flows(ctx, since)
}

func (s *Sim) AgentServices(ctx context.Context, node string) (api.Services, error) {
	return api.NewClient(cluster.AgentSocket(s.name, node)).Services(ctx)
}

func (s *Sim) KillAgent(node string) error {
	pid, ok := controlplane.RunningPID(s.state, cluster.AgentProcess(node))
	if !ok {
		return fmt.Errorf("%s: no agent running", node)
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}

func (s *Sim) InPod(pod *corev1.Pod, f func() error) error {
	return network.Do(network.PodNetns(s.name, string(pod.UID)), f)
}

func (s *Sim) InNode(node string, f func() error) error {
	i, err := network.NodeIndex(node)
	if err != nil {
		return err
	}
	return network.Do(network.NodeNetns(s.name, i), f)
}

func (s *Sim) ConnectFromPod(pod *corev1.Pod, req workload.ConnectRequest) (workload.ConnectResult, error) {
	cg, err := cgroups.FindPod(s.name, string(pod.UID))
	if err != nil {
		return workload.ConnectResult{}, err
	}
	req.Netns = network.PodNetns(s.name, string(pod.UID))
	return workload.RunInPod(filepath.Join(s.binDir, "kestrel"), cg, req)
}

func (s *Sim) PodSandboxExists(pod *corev1.Pod) bool {
	names, err := network.ListNetns()
	if err != nil {
		return true
	}
	want := network.PodNetns(s.name, string(pod.UID))
	for _, n := range names {
		if n == want {
			return true
		}
	}
	return false
}

// Workload: sim's kubelet runs the built-in servers for the pod's image itself.
func (s *Sim) Workload(pod *corev1.Pod) *corev1.Pod { return pod }

// InOutside: this process, in the root namespace, reaches the underlay
// through the root-side veth, from the underlay's gateway address.
func (s *Sim) InOutside(f func() error) error { return f() }

func (s *Sim) OutsideAddr() (netip.Addr, error) { return network.GatewayIP(), nil }
