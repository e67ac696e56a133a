// Package kindmode runs scenarios on a kind cluster (kestrel kind up) with the live
// runner of scenarios/sim: the same manifests through the API, the same probes,
// made from inside the pods' network namespaces, which on kind are the namespaces
// of the pods' processes on this machine (/proc/PID/ns/net).
package kindmode

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	kindcluster "github.com/kestrelnet/kestrel/kind/cluster"
	"github.com/kestrelnet/kestrel/scenarios/sim"
	"github.com/kestrelnet/kestrel/sim/kubelet"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// node is one kind node as the scenario sees it.
type node struct {
	name      string
	ip4, ip6  netip.Addr
	cidr4     netip.Prefix
	cidr6     netip.Prefix
	container string // docker container (= node name)
}

// Backend is a kind cluster for sim.Runner (and the e2e framework's kind provider).
type Backend struct {
	name          string
	workloadImage string
	nodes         []node // ordered by IPv4 pod CIDR: the scenario's i-th node has 10.244.(i-1).0/24
	ranges        []netip.Prefix

	mu      sync.Mutex
	pids    map[string]int // container -> its init's host PID
	podPIDs map[string]int // pod UID -> a host PID in the pod
}

// NewRunner connects the live runner to kind cluster name; scenario pods run the
// workload image `kestrel kind up` loaded into it.
func NewRunner(ctx context.Context, name string) (*sim.Runner, error) {
	kubeconfig := kindcluster.KubeconfigPath(name)
	imgs, err := kindcluster.LoadedImages(name)
	if err != nil {
		return nil, err
	}
	b, err := newBackend(ctx, name, kubeconfig, imgs.Workload)
	if err != nil {
		return nil, err
	}
	return sim.NewRunnerFor(b, kubeconfig, "kestrel kind up --name "+name)
}

// Open reads kind cluster name's nodes; image is the workload image its scenario pods run.
func Open(ctx context.Context, name, image string) (*Backend, error) {
	return newBackend(ctx, name, kindcluster.KubeconfigPath(name), image)
}

func newBackend(ctx context.Context, name, kubeconfig, image string) (*Backend, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kind cluster %q is not up (no usable %s; run `kestrel kind up --name %s`): %w", name, kubeconfig, name, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	nl, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("kind cluster %q: %w", name, err)
	}
	b := &Backend{name: name, workloadImage: image, pids: map[string]int{}, podPIDs: map[string]int{}}
	for _, n := range nl.Items {
		nd := node{name: n.Name, container: n.Name}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				if ip.Is4() {
					nd.ip4 = ip
				} else {
					nd.ip6 = ip
				}
			}
		}
		for _, c := range n.Spec.PodCIDRs {
			if p, err := netip.ParsePrefix(c); err == nil {
				if p.Addr().Is4() {
					nd.cidr4 = p
				} else {
					nd.cidr6 = p
				}
				b.ranges = append(b.ranges, p)
			}
		}
		for _, ip := range []netip.Addr{nd.ip4, nd.ip6} {
			if ip.IsValid() {
				bits := 16
				if ip.Is6() {
					bits = 64
				}
				p, _ := ip.Prefix(bits)
				b.ranges = append(b.ranges, p)
			}
		}
		b.nodes = append(b.nodes, nd)
	}
	sort.Slice(b.nodes, func(i, j int) bool { return b.nodes[i].cidr4.Addr().Less(b.nodes[j].cidr4.Addr()) })
	// kind's default service ranges (the agents' --service-cluster-ip-range).
	b.ranges = append(b.ranges, netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("fd00:10:96::/112"))
	return b, nil
}

func (b *Backend) Mode() string { return "kind" }
func (b *Backend) Name() string { return b.name }

func (b *Backend) Node(i int) (string, bool) {
	if i < 1 || i > len(b.nodes) {
		return "", false
	}
	return b.nodes[i-1].name, true
}

func (b *Backend) NodeIP(i int, v6 bool) netip.Addr {
	if i < 1 || i > len(b.nodes) {
		return netip.Addr{}
	}
	if v6 {
		return b.nodes[i-1].ip6
	}
	return b.nodes[i-1].ip4
}

func (b *Backend) PodCIDR(i int, v6 bool) netip.Prefix {
	if i < 1 || i > len(b.nodes) {
		return netip.Prefix{}
	}
	if v6 {
		return b.nodes[i-1].cidr6
	}
	return b.nodes[i-1].cidr4
}

// containerPID is the host PID of a node container's init (docker inspect).
func (b *Backend) containerPID(container string) (int, error) {
	b.mu.Lock()
	pid, ok := b.pids[container]
	b.mu.Unlock()
	if ok && alive(pid) {
		return pid, nil
	}
	out, err := exec.Command("docker", "inspect", "--format", "{{.State.Pid}}", container).Output()
	if err != nil {
		return 0, fmt.Errorf("docker inspect %s: %w", container, err)
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("node %s is not running (pid %q)", container, strings.TrimSpace(string(out)))
	}
	b.mu.Lock()
	b.pids[container] = pid
	b.mu.Unlock()
	return pid, nil
}

func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

func (b *Backend) NodeNetns(i int) (string, error) {
	if i < 1 || i > len(b.nodes) {
		return "", fmt.Errorf("no kind node %d", i)
	}
	pid, err := b.containerPID(b.nodes[i-1].container)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("/proc/%d/ns/net", pid), nil
}

// PodNetns is the network namespace of a process of the pod (kind/cluster.PodPID).
func (b *Backend) PodNetns(uid string) (string, error) {
	b.mu.Lock()
	pid, ok := b.podPIDs[uid]
	b.mu.Unlock()
	if !ok || !alive(pid) || !kindcluster.InPod(pid, uid) {
		var err error
		if pid, err = kindcluster.PodPID(uid); err != nil {
			return "", err
		}
		b.mu.Lock()
		b.podPIDs[uid] = pid
		b.mu.Unlock()
	}
	return fmt.Sprintf("/proc/%d/ns/net", pid), nil
}

// AgentSockets: each node's agent socket, reached through the node's root
// (/run in the node; /var/run there is a link to it).
func (b *Backend) AgentSockets() ([]string, error) {
	var out []string
	for _, n := range b.nodes {
		pid, err := b.containerPID(n.container)
		if err != nil {
			return nil, err
		}
		out = append(out, filepath.Join(fmt.Sprintf("/proc/%d/root", pid), "run", "kestrel", "agent.sock"))
	}
	return out, nil
}

// AgentSocket is one node's agent socket.
func (b *Backend) AgentSocket(nodeName string) (string, error) {
	pid, err := b.containerPID(nodeName)
	if err != nil {
		return "", err
	}
	return filepath.Join(fmt.Sprintf("/proc/%d/root", pid), "run", "kestrel", "agent.sock"), nil
}

// NodeNetnsByName is NodeNetns for a node's name.
func (b *Backend) NodeNetnsByName(nodeName string) (string, error) {
	pid, err := b.containerPID(nodeName)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("/proc/%d/ns/net", pid), nil
}

// NodeNames are the nodes in the scenario's order.
func (b *Backend) NodeNames() []string {
	var out []string
	for _, n := range b.nodes {
		out = append(out, n.name)
	}
	return out
}

// Containers run the built-in servers on the declared ports from the workload
// image, as sim's kubelet does in-process.
func (b *Backend) Containers(p *corev1.Pod) []corev1.Container {
	out := make([]corev1.Container, len(p.Spec.Containers))
	for i, c := range p.Spec.Containers {
		out[i] = corev1.Container{Name: c.Name, Image: b.workloadImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Args: []string{"sim", "workload", "--pod", p.Namespace + "/" + p.Name,
				"--ports", workload.FormatPorts(kubelet.WorkloadPorts(c))},
			Ports: c.Ports, Env: c.Env}
	}
	return out
}

func (b *Backend) Routed(a netip.Addr) bool {
	for _, p := range b.ranges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (b *Backend) Outside() bool { return false }
