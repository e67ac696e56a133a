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
	"strconv"
	"strings"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	kindcluster "github.com/kestrelnet/kestrel/kind/cluster"
	"github.com/kestrelnet/kestrel/scenarios/clustermode"
	"github.com/kestrelnet/kestrel/scenarios/sim"
)

// Backend is a kind cluster for sim.Runner (and the e2e framework's kind provider).
// What needs only the API (nodes, addresses, pod containers) it shares with
// --mode cluster (clustermode.Nodes); what needs this machine (the nodes'
// containers, the pods' namespaces, the agents' sockets) is its own. A kind
// node's docker container has the node's name.
type Backend struct {
	*clustermode.Nodes
	name          string
	workloadImage string // the outside host runs it too (outside.go)

	mu      sync.Mutex
	pids    map[string]int // container -> its init's host PID
	podPIDs map[string]int // pod UID -> a host PID in the pod
	outside *outside       // the outside host, once a scenario needed it (outside.go)

	// KestrelBin runs node probes as processes of the node (nodeprocs.go);
	// empty: they run in the runner, without socket LB.
	KestrelBin  string
	nodeCgroups map[string]string // node -> its cgroup v2 root on this machine
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

// serviceRanges are kind's default service ranges (the agents' --service-cluster-ip-range).
var serviceRanges = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16"), netip.MustParsePrefix("fd00:10:96::/112")}

func newBackend(ctx context.Context, name, kubeconfig, image string) (*Backend, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kind cluster %q is not up (no usable %s; run `kestrel kind up --name %s`): %w", name, kubeconfig, name, err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	nodes, err := clustermode.ReadNodes(ctx, cs, image, serviceRanges...)
	if err != nil {
		return nil, fmt.Errorf("kind cluster %q: %w", name, err)
	}
	return &Backend{Nodes: nodes, name: name, workloadImage: image, pids: map[string]int{}, podPIDs: map[string]int{}, nodeCgroups: map[string]string{}, KestrelBin: kestrelBin()}, nil
}

func (b *Backend) Mode() string { return "kind" }
func (b *Backend) Name() string { return b.name }

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
	name, ok := b.Node(i)
	if !ok {
		return "", fmt.Errorf("no kind node %d", i)
	}
	pid, err := b.containerPID(name)
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
	for _, n := range b.NodeNames() {
		pid, err := b.containerPID(n)
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

func (b *Backend) Outside() bool { return false }
