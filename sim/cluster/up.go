package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
)

// Options shape a cluster.
type Options struct {
	Name      string // default kestrel
	Nodes     int    // default 1
	BinDir    string // holds kestrel, kestrel-agent, kestrel-cni (default: next to this executable)
	K8sBinDir string // default controlplane.DefaultBinDir()
	// LBMode is the agents' --bpf-lb-mode: how a NodePort flow reaches a
	// backend on another node, snat (default) or dsr. Agents started to
	// complete a running cluster take the mode given then.
	LBMode string
	// NoSocketLB starts the agents without socket-level load balancing
	// (--bpf-lb-sock=false): pods' connections to ClusterIPs are then
	// translated per packet only.
	NoSocketLB bool
	// KubeProxy runs the real kube-proxy, in the given mode, on the nodes
	// it names (by index from 1), and their agents with
	// --kube-proxy-replacement=false: Kestrel's policy and CNI, kube-proxy's
	// services. The baselines of `kestrel bench`.
	KubeProxy map[int]KubeProxyMode
}

// Info describes a running cluster.
type Info struct {
	Name, StateDir, Kubeconfig string
	Nodes                      int
	Took                       time.Duration
}

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = "kestrel"
	}
	if o.Nodes <= 0 {
		o.Nodes = 1
	}
	switch o.LBMode {
	case "":
		o.LBMode = "snat"
	case "snat", "dsr":
	default:
		return fmt.Errorf("load-balancing mode %q: want snat or dsr", o.LBMode)
	}
	for _, i := range kubeProxyNodes(o.KubeProxy) {
		if i > o.Nodes {
			return fmt.Errorf("kube-proxy on node %d: the cluster has %d nodes", i, o.Nodes)
		}
		if err := o.KubeProxy[i].validate(); err != nil {
			return err
		}
	}
	if o.K8sBinDir == "" {
		o.K8sBinDir = controlplane.DefaultBinDir()
	}
	if len(o.KubeProxy) > 0 {
		if _, err := os.Stat(filepath.Join(o.K8sBinDir, "kube-proxy")); err != nil {
			return fmt.Errorf("kube-proxy is missing from %s (run `make deps`)", o.K8sBinDir)
		}
	}
	if o.BinDir == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		o.BinDir = filepath.Dir(self)
	}
	for _, b := range []string{"kestrel", "kestrel-agent", "kestrel-cni"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return fmt.Errorf("%s is missing from %s (run `make build`)", b, o.BinDir)
		}
	}
	return network.ValidateName(o.Name)
}

// Up creates the cluster, or completes a partly running one, and returns when
// every node is Ready and every agent answers.
func Up(ctx context.Context, o Options) (*Info, error) {
	start := time.Now()
	if err := o.defaults(); err != nil {
		return nil, err
	}
	state := controlplane.DefaultStateDir(o.Name)
	if err := ensureBPFFS(); err != nil {
		return nil, err
	}
	if !o.NoSocketLB {
		if _, err := cgroups.ClusterDir(o.Name); err != nil {
			return nil, fmt.Errorf("socket LB needs a cgroup v2 hierarchy for the pods' cgroups (or turn it off: --bpf-lb-sock=false): %w", err)
		}
	}
	if err := network.Up(network.Options{Name: o.Name, Nodes: o.Nodes}); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{Name: o.Name, StateDir: state, BinDir: o.K8sBinDir,
		BindAddress: network.GatewayIP().String()})
	if err != nil {
		return nil, fmt.Errorf("control plane: %w", err)
	}
	for i := 1; i <= o.Nodes; i++ {
		if err := startNode(o, state, i); err != nil {
			return nil, err
		}
	}
	if _, err := controlplane.StartProcess(controlplane.ProcessSpec{Name: "scheduler", StateDir: state,
		Path: filepath.Join(o.BinDir, "kestrel"), Args: []string{"sim", "scheduler", "--name", o.Name, "--state-dir", state}}); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	// The Hubble relay over every agent, on hubble's default server address.
	if _, err := controlplane.StartProcess(controlplane.ProcessSpec{Name: RelayProcess, StateDir: state,
		Path: filepath.Join(o.BinDir, "kestrel"), Args: []string{"relay", "--listen-address", RelayAddress, "--state-dir", state}}); err != nil {
		return nil, fmt.Errorf("hubble relay: %w", err)
	}
	if err := waitNodes(ctx, cp, state, o.Nodes); err != nil {
		return nil, err
	}
	if err := waitKubeProxies(ctx, state, o.KubeProxy); err != nil {
		return nil, err
	}
	return &Info{Name: o.Name, StateDir: state, Kubeconfig: cp.Kubeconfig, Nodes: o.Nodes, Took: time.Since(start)}, nil
}

// startNode writes the node's CNI configuration and starts its agent (inside
// the node namespace, through nsenter so the host's mounts stay visible) and
// its kubelet (which enters the namespace itself).
func startNode(o Options, state string, i int) error {
	node := network.NodeName(i)
	nodeDir := filepath.Join(state, "nodes", node)
	if err := os.MkdirAll(nodeDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(state, kestrelBinFile), []byte(filepath.Join(o.BinDir, "kestrel")), 0o644); err != nil {
		return err
	}
	var cidrs []string
	for _, c := range network.PodCIDRs(i) {
		cidrs = append(cidrs, c.String())
	}
	if err := writeConflist(nodeDir, agentSocket(state, node), cidrs, network.PodGateway(i).String()); err != nil {
		return fmt.Errorf("%s: CNI configuration: %w", node, err)
	}
	nsenter, err := lookNsenter()
	if err != nil {
		return err
	}
	agent := controlplane.ProcessSpec{Name: AgentProcess(node), StateDir: state, Path: nsenter, Args: []string{
		"--net=" + network.NetnsPath(network.NodeNetns(o.Name, i)), "--",
		filepath.Join(o.BinDir, "kestrel-agent"),
		"--node", node, "--kubeconfig", filepath.Join(state, "kubeconfig"),
		"--socket", agentSocket(state, node),
		"--bpffs", pinDir(o.Name, node), "--node-ip", network.NodeIP(i).String(),
		"--prometheus-serve-addr", net.JoinHostPort(network.NodeIP(i).String(), strconv.Itoa(AgentMetricsPort))}}
	mode, kubeProxy := o.KubeProxy[i]
	if kubeProxy {
		// kube-proxy serves its own /healthz on the node's port 10256.
		agent.Args = append(agent.Args, "--kube-proxy-replacement=false", "--healthz-bind-address=")
	} else {
		agent.Args = append(agent.Args, "--service-cluster-ip-range", controlplane.DefaultServiceCIDR,
			// kube-proxy replacement on the node's underlay device: NodePorts
			// and LoadBalancer IPs from outside, and pods' traffic to the world
			// leaving from the node's address.
			"--devices", network.NodeInterface, "--enable-bpf-masquerade", "--bpf-lb-mode", o.LBMode,
			"--ipv4-native-routing-cidr", network.PodSupernets()[0].String(),
			"--ipv6-native-routing-cidr", network.PodSupernets()[1].String())
	}
	if !o.NoSocketLB && !kubeProxy {
		// The agent attaches its socket programs to the node's cgroup,
		// which holds its pods' cgroups (the kubelet makes them) and the
		// host cgroup for node processes socket LB serves.
		dir, err := cgroups.NodeDir(o.Name, node)
		if err != nil {
			return err
		}
		host, _ := cgroups.HostDir(o.Name, node)
		if err := cgroups.Ensure(host); err != nil {
			return err
		}
		agent.Args = append(agent.Args, "--bpf-lb-sock", "--cgroup-root", dir)
	}
	if _, err := controlplane.StartProcess(agent); err != nil {
		return fmt.Errorf("%s agent: %w", node, err)
	}
	if kubeProxy {
		if err := startKubeProxy(o, state, i, mode); err != nil {
			return err
		}
	}
	kubelet := controlplane.ProcessSpec{Name: node + "-kubelet", StateDir: state, Path: filepath.Join(o.BinDir, "kestrel"),
		Args: []string{"sim", "kubelet", "--name", o.Name, "--node", node, "--state-dir", state}}
	if _, err := controlplane.StartProcess(kubelet); err != nil {
		return fmt.Errorf("%s kubelet: %w", node, err)
	}
	return nil
}

// kestrelBinFile, in the state dir, names the kestrel binary the cluster
// runs, for tools that start processes in its pods (KestrelBin).
const kestrelBinFile = "kestrel-bin"

// KestrelBin is the kestrel binary of the cluster with this state dir.
func KestrelBin(state string) (string, error) {
	b, err := os.ReadFile(filepath.Join(state, kestrelBinFile))
	if err != nil {
		return "", fmt.Errorf("which kestrel binary the cluster runs: %w", err)
	}
	return string(b), nil
}

// RelayProcess is the name the Hubble relay runs under, and RelayAddress
// where it serves: hubble's default --server, so the hubble CLI needs no flag.
const (
	RelayProcess = "hubble-relay"
	RelayAddress = "localhost:4245"
	// RelayMetricsAddress is where the relay serves its Prometheus
	// metrics, hubble-relay's port.
	RelayMetricsAddress = "localhost:9966"
	// ServiceMapAddress is where the relay serves the service map page,
	// hubble-ui's port.
	ServiceMapAddress = "localhost:12000"
)

// AgentMetricsPort is where each agent serves its Prometheus metrics, on
// its node's IP: cilium-agent's port.
const AgentMetricsPort = 9962

// AgentProcess is the name the node's agent runs under (its pid and log files).
func AgentProcess(node string) string { return node + "-agent" }

// AgentSocket is where the node's agent serves its API in cluster name.
func AgentSocket(name, node string) string {
	return agentSocket(controlplane.DefaultStateDir(name), node)
}

func agentSocket(state, node string) string { return filepath.Join(state, "nodes", node, "agent.sock") }

// AgentSockets lists the sockets of every node's agent under a cluster's state dir.
func AgentSockets(state string) ([]string, error) {
	sockets, err := filepath.Glob(agentSocket(state, "*"))
	if err == nil && len(sockets) == 0 {
		err = fmt.Errorf("no agent sockets under %s", filepath.Join(state, "nodes"))
	}
	return sockets, err
}

func lookNsenter() (string, error) {
	for _, p := range []string{"/usr/bin/nsenter", "/bin/nsenter"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("nsenter (util-linux) is needed to start agents inside node namespaces")
}

const upTimeout = 2 * time.Minute

// waitNodes waits until every Node is Ready and every agent answers healthz.
func waitNodes(ctx context.Context, cp *controlplane.ControlPlane, state string, n int) error {
	cfg, err := cp.RESTConfig()
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(upTimeout)
	for i := 1; i <= n; i++ {
		node := network.NodeName(i)
		sock := agentSocket(state, node)
		for {
			nodeObj, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			ready := err == nil && nodeReady(nodeObj)
			agentErr := api.NewClient(sock).Healthz(ctx)
			if ready && agentErr == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %s (node ready=%v, agent: %v); logs in %s",
					node, upTimeout, ready, agentErr, filepath.Join(state, "logs"))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitKubeProxies waits until every kube-proxy has written its rules once.
func waitKubeProxies(ctx context.Context, state string, nodes map[int]KubeProxyMode) error {
	deadline := time.Now().Add(upTimeout)
	for _, i := range kubeProxyNodes(nodes) {
		for {
			st, err := ReadKubeProxyState(ctx, i)
			if err == nil && st.LastSync > 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s kube-proxy has not synced after %s (%v); log: %s", network.NodeName(i), upTimeout, err,
					controlplane.LogFile(state, KubeProxyProcess(network.NodeName(i))))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}
