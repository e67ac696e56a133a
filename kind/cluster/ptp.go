package cluster

// kind's own networking without kindnetd: each node gets a CNI configuration for
// the ptp plugin with host-local addresses from its pod CIDR (the plugins are in
// the node image, from Debian's containernetworking-plugins), and a route to
// every other node's pod CIDR via that node's address (the nodes share kind's
// docker bridge). This is what kindnetd writes and maintains; here it is written
// once, after the nodes have their pod CIDRs. kube-proxy runs (iptables).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// The pod networking `kind up --cni` sets up.
const (
	CNIKestrel = "kestrel"
	CNIPTP     = "ptp"
)

// ptpConfPath is where the nodes' containerd finds the configuration.
const ptpConfPath = "/etc/cni/net.d/10-ptp.conflist"

// ptpConflist is a node's CNI configuration for pod CIDR cidr.
func ptpConflist(cidr netip.Prefix) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "ptp",
		"plugins": []any{
			map[string]any{
				"type": "ptp",
				// Pods reach other nodes' pods unmasqueraded: NetworkPolicy
				// sees their own addresses.
				"ipMasq": false,
				"mtu":    1500,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": "/run/cni-ipam-state",
					"ranges":  []any{[]any{map[string]any{"subnet": cidr.String()}}},
					"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// ptpNode is a node's name, address and IPv4 pod CIDR.
type ptpNode struct {
	name string
	ip   netip.Addr
	cidr netip.Prefix
}

// ptpNodes waits until every node has an IPv4 pod CIDR and address.
func ptpNodes(ctx context.Context, cs kubernetes.Interface, want int, timeout time.Duration) ([]ptpNode, error) {
	deadline := time.Now().Add(timeout)
	for {
		var out []ptpNode
		nl, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, n := range nl.Items {
				pn := ptpNode{name: n.Name}
				for _, c := range n.Spec.PodCIDRs {
					if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
						pn.cidr = p
					}
				}
				for _, a := range n.Status.Addresses {
					if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == corev1.NodeInternalIP && ip.Is4() {
						pn.ip = ip
					}
				}
				if pn.cidr.IsValid() && pn.ip.IsValid() {
					out = append(out, pn)
				}
			}
			if len(out) == want {
				return out, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("nodes without a pod CIDR or address after %s (%d of %d have both; %v)", timeout, len(out), want, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// setupPTP writes each node's CNI configuration and its routes to the others'
// pod CIDRs.
func setupPTP(ctx context.Context, cs kubernetes.Interface, ns []nodes.Node, timeout time.Duration) error {
	pns, err := ptpNodes(ctx, cs, len(ns), timeout)
	if err != nil {
		return err
	}
	byName := map[string]ptpNode{}
	for _, p := range pns {
		byName[p.name] = p
	}
	for _, n := range ns {
		self, ok := byName[n.String()]
		if !ok {
			return fmt.Errorf("node %s is not in the API", n)
		}
		conf, err := ptpConflist(self.cidr)
		if err != nil {
			return err
		}
		if err := n.Command("sh", "-c", "mkdir -p /etc/cni/net.d && cat > "+ptpConfPath+".tmp && mv "+ptpConfPath+".tmp "+ptpConfPath).
			SetStdin(strings.NewReader(string(conf))).Run(); err != nil {
			return fmt.Errorf("node %s: write %s: %w", n, ptpConfPath, err)
		}
		for _, other := range pns {
			if other.name == self.name {
				continue
			}
			if err := n.Command("ip", "route", "replace", other.cidr.String(), "via", other.ip.String()).Run(); err != nil {
				return fmt.Errorf("node %s: route %s via %s: %w", n, other.cidr, other.ip, err)
			}
		}
	}
	return nil
}

// restartPods deletes the pods of a label selector in kube-system, so pods that
// backed off while their image was missing start at once now it is loaded, and
// waits until want new ones are Ready (the DaemonSet's status still counts the
// deleted ones for a while).
func restartPods(ctx context.Context, cs kubernetes.Interface, selector string, want int, timeout time.Duration) error {
	pods := cs.CoreV1().Pods("kube-system")
	old, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err
	}
	gone := map[string]bool{}
	for _, p := range old.Items {
		gone[string(p.UID)] = true
	}
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: selector}); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		pl, err := pods.List(ctx, metav1.ListOptions{LabelSelector: selector})
		ready := 0
		if err == nil {
			for _, p := range pl.Items {
				if !gone[string(p.UID)] && p.DeletionTimestamp == nil && podReady(&p) {
					ready++
				}
			}
			if ready >= want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d of %d pods Ready after %s (%v)", selector, ready, want, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
