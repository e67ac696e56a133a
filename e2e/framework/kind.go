package framework

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kestrelnet/kestrel/agent/api"
	kindcluster "github.com/kestrelnet/kestrel/kind/cluster"
	"github.com/kestrelnet/kestrel/kind/image"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/scenarios/kindmode"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// Kind is the kind provider: `kestrel kind up` as a library (images built
// offline by kind/image, Kestrel installed as the CNI), probed from this machine
// through the pods' and nodes' namespaces.
type Kind struct {
	name string
	b    *kindmode.Backend
}

// NewKind returns the kind cluster called name (not yet brought up).
func NewKind(name string) (*Kind, error) {
	if err := network.ValidateName(name); err != nil {
		return nil, err
	}
	return &Kind{name: name}, nil
}

func (k *Kind) Provider() string   { return "kind" }
func (k *Kind) Name() string       { return k.name }
func (k *Kind) Kubeconfig() string { return kindcluster.KubeconfigPath(k.name) }

// Up brings up a control plane and nodes-1 workers.
func (k *Kind) Up(ctx context.Context, nodes int) error {
	o, err := image.DefaultOptions(controlplane.KubernetesVersion)
	if err != nil {
		return err
	}
	info, err := kindcluster.Up(ctx, kindcluster.Options{Name: k.name, Workers: nodes - 1, Images: o,
		Version: controlplane.KubernetesVersion, Wait: 5 * time.Minute})
	if err != nil {
		return err
	}
	k.b, err = kindmode.Open(ctx, k.name, info.Images.Workload)
	return err
}

func (k *Kind) Down(context.Context) error {
	k.b = nil
	return kindcluster.Down(k.name)
}

// Leftovers are the cluster's containers still there.
func (k *Kind) Leftovers() ([]string, error) {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label=io.x-k8s.kind.cluster="+k.name, "--format", "{{.Names}}").Output()
	if err != nil {
		return nil, err
	}
	var left []string
	for _, l := range strings.Fields(string(out)) {
		left = append(left, "container "+l)
	}
	outside, err := kindcluster.OutsideContainers(k.name)
	for _, l := range outside {
		left = append(left, "container "+l+" (outside host)")
	}
	return left, err
}

func (k *Kind) Nodes() []string {
	if k.b == nil {
		return nil
	}
	return k.b.NodeNames()
}

func (k *Kind) Client() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig())
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

func (k *Kind) Runner() (engine.Runner, error) {
	return kindmode.NewRunner(context.Background(), k.name)
}

func (k *Kind) agent(node string) (*api.Client, error) {
	if k.b == nil {
		return nil, fmt.Errorf("kind cluster %s is not up", k.name)
	}
	sock, err := k.b.AgentSocket(node)
	if err != nil {
		return nil, err
	}
	return api.NewClient(sock), nil
}

func (k *Kind) AgentStatus(ctx context.Context, node string) (api.Status, error) {
	c, err := k.agent(node)
	if err != nil {
		return api.Status{}, err
	}
	return c.Status(ctx)
}

func (k *Kind) AgentFlows(ctx context.Context, node string, since uint64) (api.Flows, error) {
	c, err := k.agent(node)
	if err != nil {
		return api.Flows{}, err
	}
	return c.Flows(ctx, since)
}

func (k *Kind) AgentServices(ctx context.Context, node string) (api.Services, error) {
	c, err := k.agent(node)
	if err != nil {
		return api.Services{}, err
	}
	return c.Services(ctx)
}

// KillAgent kills the agent inside the node (the DaemonSet restarts it).
func (k *Kind) KillAgent(node string) error {
	if out, err := exec.Command("docker", "exec", node, "pkill", "-KILL", "-x", "kestrel-agent").CombinedOutput(); err != nil {
		return fmt.Errorf("%s: kill the agent: %v: %s", node, err, out)
	}
	return nil
}

func (k *Kind) InPod(pod *corev1.Pod, f func() error) error {
	ns, err := k.b.PodNetns(string(pod.UID))
	if err != nil {
		return err
	}
	return network.Do(ns, f)
}

func (k *Kind) InNode(node string, f func() error) error {
	ns, err := k.b.NodeNetnsByName(node)
	if err != nil {
		return err
	}
	return network.Do(ns, f)
}

// ConnectFromPod runs `kestrel sim connect` (the checkout's bin/kestrel) in the
// pod's namespace and cgroup: the agents attach socket LB at the node's cgroup
// v2 root (kind/cluster/socketlb.go), above the pod's, so its connect() is
// translated as the pod's own program's is.
func (k *Kind) ConnectFromPod(pod *corev1.Pod, req workload.ConnectRequest) (workload.ConnectResult, error) {
	ns, err := k.b.PodNetns(string(pod.UID))
	if err != nil {
		return workload.ConnectResult{}, err
	}
	cg, err := k.b.PodCgroup(string(pod.UID))
	if err != nil {
		return workload.ConnectResult{}, err
	}
	root, err := RepoRoot()
	if err != nil {
		return workload.ConnectResult{}, err
	}
	req.Netns = ns
	return workload.RunInPod(filepath.Join(root, "bin", "kestrel"), cg, req)
}

// Workload gives the pod's containers the workload image `kind up` loaded,
// serving their declared ports (as scenario pods on kind are).
func (k *Kind) Workload(pod *corev1.Pod) *corev1.Pod {
	p := pod.DeepCopy()
	p.Spec.Containers = k.b.Containers(p)
	return p
}

// InOutside runs f in the outside host's namespace (started if it is not;
// `kind down` removes it).
func (k *Kind) InOutside(f func() error) error {
	ns, _, err := k.b.OutsideClient()
	if err != nil {
		return err
	}
	return network.Do(ns, f)
}

func (k *Kind) OutsideAddr() (netip.Addr, error) {
	_, ip, err := k.b.OutsideClient()
	return ip, err
}

func (k *Kind) PodSandboxExists(pod *corev1.Pod) bool {
	_, err := k.b.PodNetns(string(pod.UID))
	return err == nil
}
