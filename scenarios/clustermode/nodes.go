package clustermode

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/sim/kubelet"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// Node is one cluster node as a scenario sees it.
type Node struct {
	Name         string
	IP4, IP6     netip.Addr
	CIDR4, CIDR6 netip.Prefix
}

// Nodes are the parts of a live runner's Backend (scenarios/sim) that only need
// the cluster's API: the nodes in the scenario's order, where probes may go,
// and how a scenario pod runs from the workload image. Kind's backend
// (scenarios/kindmode) and the cluster backend share them.
type Nodes struct {
	list          []Node // by IPv4 pod CIDR, then name: the scenario's i-th node is the i-th
	ranges        []netip.Prefix
	workloadImage string
}

// ReadNodes lists the cluster's nodes. Probes may go to the nodes' pod CIDRs,
// to the /16 (IPv4) or /64 (IPv6) around their addresses, and to extra (the
// service ranges); image is the workload image scenario pods run.
func ReadNodes(ctx context.Context, cs kubernetes.Interface, image string, extra ...netip.Prefix) (*Nodes, error) {
	nl, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	n := &Nodes{workloadImage: image}
	for _, item := range nl.Items {
		nd := Node{Name: item.Name}
		for _, a := range item.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil {
				if ip.Is4() {
					nd.IP4 = ip
				} else {
					nd.IP6 = ip
				}
			}
		}
		for _, c := range item.Spec.PodCIDRs {
			if p, err := netip.ParsePrefix(c); err == nil {
				if p.Addr().Is4() {
					nd.CIDR4 = p
				} else {
					nd.CIDR6 = p
				}
				n.ranges = append(n.ranges, p)
			}
		}
		for _, ip := range []netip.Addr{nd.IP4, nd.IP6} {
			if ip.IsValid() {
				bits := 16
				if ip.Is6() {
					bits = 64
				}
				p, _ := ip.Prefix(bits)
				n.ranges = append(n.ranges, p)
			}
		}
		n.list = append(n.list, nd)
	}
	sort.Slice(n.list, func(i, j int) bool {
		a, b := n.list[i], n.list[j]
		if a.CIDR4 != b.CIDR4 {
			return a.CIDR4.Addr().Less(b.CIDR4.Addr())
		}
		return a.Name < b.Name
	})
	n.ranges = append(n.ranges, extra...)
	return n, nil
}

// Node is the name of the scenario's i-th node (from 1).
func (n *Nodes) Node(i int) (string, bool) {
	if i < 1 || i > len(n.list) {
		return "", false
	}
	return n.list[i-1].Name, true
}

func (n *Nodes) NodeIP(i int, v6 bool) netip.Addr {
	if i < 1 || i > len(n.list) {
		return netip.Addr{}
	}
	if v6 {
		return n.list[i-1].IP6
	}
	return n.list[i-1].IP4
}

func (n *Nodes) PodCIDR(i int, v6 bool) netip.Prefix {
	if i < 1 || i > len(n.list) {
		return netip.Prefix{}
	}
	if v6 {
		return n.list[i-1].CIDR6
	}
	return n.list[i-1].CIDR4
}

// NodeNames are the nodes in the scenario's order.
func (n *Nodes) NodeNames() []string {
	var out []string
	for _, nd := range n.list {
		out = append(out, nd.Name)
	}
	return out
}

// Containers run the built-in servers on the declared ports from the workload
// image, as sim's kubelet does in-process.
func (n *Nodes) Containers(p *corev1.Pod) []corev1.Container {
	out := make([]corev1.Container, len(p.Spec.Containers))
	for i, c := range p.Spec.Containers {
		out[i] = corev1.Container{Name: c.Name, Image: n.workloadImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Args: []string{"sim", "workload", "--pod", p.Namespace + "/" + p.Name,
				"--ports", workload.FormatPorts(kubelet.WorkloadPorts(c))},
			Ports: c.Ports, Env: c.Env}
	}
	return out
}

// Routed reports whether a probe to a stays in the cluster.
func (n *Nodes) Routed(a netip.Addr) bool {
	for _, p := range n.ranges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
