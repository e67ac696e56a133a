package sim

import "github.com/kestrelnet/kestrel/scenarios/engine"

// skipNoSocketLB is why a node's own connection to a service is not probed on a
// backend whose node processes socket LB does not serve (Outside false: kind,
// whose nodes' cgroup v1 layout gives the agents no cgroup v2 directory holding
// the node's processes). Only socket LB translates such a connection, as
// Cilium's does for the host: its packets never pass a device program on their
// way to the node's own address, and a ClusterIP has no route.
const skipNoSocketLB = "a node's own connection to a service (a ClusterIP, a LoadBalancer or external IP, or a NodePort of its own address) is translated by socket LB, which this mode's agents do not run"

// needsSocketLB reports whether probe p is a node's own connection to a
// service: to a ClusterIP, a LoadBalancer or external IP, or a NodePort of the
// node's own address (the engine names the Service in To.Frontend). A NodePort
// of another node is not: the packet reaches that node's device.
func needsSocketLB(p engine.Probe) bool {
	if p.From.Pod != nil || p.From.Node == "" {
		return false
	}
	if p.To.Node != "" {
		return p.To.Node == p.From.Node && p.To.Frontend != ""
	}
	return p.To.Service != "" || p.To.Frontend != ""
}
