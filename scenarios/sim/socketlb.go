package sim

import "github.com/kestrelnet/kestrel/scenarios/engine"

// skipNoSocketLB is why a node's own connection to a service is not probed on a
// backend whose node processes socket LB does not serve (Outside false: kind,
// whose nodes' cgroup v1 layout gives the agents no cgroup v2 directory holding
// the node's processes). Only socket LB translates such a connection, as
// Cilium's does for the host: its packets never pass a device program on their
// way to the node's own address, and a ClusterIP has no route.
const skipNoSocketLB = "a node's own connection to a service (a ClusterIP, a LoadBalancer or external IP, or a NodePort of its own address) is translated by socket LB, which this mode's agents do not run"

// NodeProcesses is a Backend whose node probes can run as processes of the node
// (kind's: in the node's cgroup, which its agent's socket LB serves) although it
// has no sim cgroups (Outside false). bin is empty where they cannot.
type NodeProcesses interface {
	NodeProcess(i int) (bin, cgroup string, err error)
}

// nodeProcess is where a probe from the scenario's i-th node runs as a process
// of the node on a backend without sim's cgroups; ok false: in the runner.
func (r *Runner) nodeProcess(i int) (bin, cgroup string, ok bool, err error) {
	np, is := r.backend.(NodeProcesses)
	if !is || r.backend.Outside() {
		return "", "", false, nil
	}
	bin, cgroup, err = np.NodeProcess(i)
	return bin, cgroup, err == nil && bin != "", err
}

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

// servesNodeProcesses reports whether probes from scenario node `node` run as
// processes of the node (so socket LB serves them).
func (r *Runner) servesNodeProcesses(s *session, node string) bool {
	idx, found := s.nodes[node]
	if !found {
		return false
	}
	_, _, ok, _ := r.nodeProcess(idx)
	return ok
}
