package sim

import (
	"context"
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// nodeMap places a scenario's nodes on the sim cluster's, by position: the
// scenario's i-th node (from 0) is node-(i+1). Its pod CIDRs, 10.244.i.0/24 and
// fd00:10:244:i::/64, are the ones the engine gave the scenario's node, so pods
// keep their addresses.
type nodeMap map[string]int // scenario node name -> sim node index

// mapNodes checks that the cluster has enough nodes for c and returns the map.
func (r *Runner) mapNodes(ctx context.Context, c *engine.Cluster) (nodeMap, error) {
	nodes, err := r.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	if len(c.Nodes) > len(nodes.Items) {
		return nil, fmt.Errorf("the scenario needs %d nodes and sim cluster %q has %d (kestrel sim up --nodes %d)",
			len(c.Nodes), r.name, len(nodes.Items), len(c.Nodes))
	}
	m := nodeMap{}
	for i, name := range c.Nodes {
		idx := i + 1
		node, ok := r.backend.Node(idx)
		if !ok {
			return nil, fmt.Errorf("the scenario needs %d nodes and %s cluster %q has fewer", len(c.Nodes), r.backend.Mode(), r.name)
		}
		if _, live := r.backend.(PodExec); live {
			// The cluster's CNI chooses pod addresses (addrmap.go).
			m[name] = idx
			continue
		}
		for _, want := range c.PodCIDRs[name] {
			have := r.backend.PodCIDR(idx, want.Addr().Is6())
			if want != have {
				return nil, fmt.Errorf("scenario node %s has pod CIDR %s; %s's %s has %s", name, want, r.backend.Mode(), node, have)
			}
		}
		m[name] = idx
	}
	return m, nil
}

// placePods returns c's pods bound to the sim nodes that stand for theirs.
func (m nodeMap) placePods(b Backend, c *engine.Cluster) (*engine.Cluster, error) {
	out := *c
	out.Pods = nil
	for _, p := range c.Pods {
		idx, ok := m[p.Spec.NodeName]
		if !ok {
			return nil, fmt.Errorf("pod %s/%s: node %q is not in the scenario's nodes", p.Namespace, p.Name, p.Spec.NodeName)
		}
		q := p.DeepCopy()
		q.Spec.NodeName, _ = b.Node(idx)
		out.Pods = append(out.Pods, q)
	}
	return &out, nil
}

// hostIP is the sim address of the scenario node a probe names, in the
// family of the address the engine gave it.
func (m nodeMap) hostIP(b Backend, p engine.Peer) (netip.Addr, error) {
	idx, ok := m[p.Node]
	if !ok {
		return netip.Addr{}, fmt.Errorf("node %q is not in the scenario's nodes", p.Node)
	}
	return b.NodeIP(idx, p.IP.Is6()), nil
}
