package sim

// Probes to service addresses run in a process of the source pod: socket-level
// load balancing translates the sockets of processes in the pod's cgroup, and
// the runner's own goroutines (which only enter the pod's namespace) are in
// no pod's cgroup. Other probes stay in the runner: the socket programs do
// nothing for an address that is no frontend, so the answer is the same and
// no process start is paid.

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// serviceRanges are the cluster's service CIDRs.
var serviceRanges = sync.OnceValue(func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range strings.Split(controlplane.DefaultServiceCIDR, ",") {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
})

func inServiceRange(a netip.Addr) bool {
	for _, p := range serviceRanges() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// podProcess says where a probe from a pod to `to` runs as a process of the
// pod: the kestrel binary and the pod's cgroup; ok false when it runs in the
// runner (not to a service address, not from a pod, or the pod has no
// cgroup because the machine has no cgroup v2 hierarchy).
//
// A probe from a node runs as a process in the node's host cgroup
// (cgroups.HostDir), below the node's: the node's own processes are where
// socket LB serves a node's connections to its own NodePorts and to
// ClusterIPs, as Cilium's does for the host.
func (r *Runner) podProcess(s *session, from engine.Peer, to netip.Addr) (bin, cgroup string, ok bool, err error) {
	if !r.backend.Outside() {
		if from.Pod == nil && from.Node != "" {
			idx, found := s.nodes[from.Node]
			if !found {
				return "", "", false, fmt.Errorf("node %q is not in the scenario's nodes", from.Node)
			}
			return r.nodeProcess(idx)
		}
		// No per-pod cgroups here: probes stay in the runner (no socket LB).
		return "", "", false, nil
	}
	if from.Pod == nil && from.Node != "" {
		idx, found := s.nodes[from.Node]
		if !found {
			return "", "", false, fmt.Errorf("node %q is not in the scenario's nodes", from.Node)
		}
		if cgroup, err = cgroups.HostDir(r.name, network.NodeName(idx)); err != nil {
			return "", "", false, nil
		}
		if _, err := os.Stat(cgroup); err != nil {
			return "", "", false, nil
		}
		if bin, err = cluster.KestrelBin(r.stateDir); err != nil {
			return "", "", false, err
		}
		return bin, cgroup, true, nil
	}
	if from.Pod == nil || !inServiceRange(to) {
		return "", "", false, nil
	}
	live, found := r.live.pods[from.Pod.Namespace+"/"+from.Pod.Name]
	if !found || live.uid == "" {
		return "", "", false, fmt.Errorf("pod %s/%s is not running", from.Pod.Namespace, from.Pod.Name)
	}
	if cgroup, err = cgroups.FindPod(r.name, live.uid); err != nil {
		return "", "", false, nil
	}
	if bin, err = cluster.KestrelBin(r.stateDir); err != nil {
		return "", "", false, err
	}
	return bin, cgroup, true, nil
}

// inPodProbe is tcpProbe or udpProbe run by a process in the pod's (or
// node's host) cgroup.
func inPodProbe(bin, cgroup, ns, protocol, target string) (string, string, string) {
	res, err := workload.RunInPod(bin, cgroup, workload.ConnectRequest{Netns: ns, Protocol: protocol, Target: target,
		Msg: "kestrel-probe\n", Timeout: probeTimeout})
	proto := strings.ToUpper(protocol)
	switch {
	case err != nil:
		return "error", err.Error(), ""
	case res.Err == "":
		answer := strings.TrimSpace(res.Answer)
		return "allowed", fmt.Sprintf("%s %s answered %q (a process in cgroup %s; peer %s)", proto, target, answer, cgroup, res.Peer), answer
	case res.Refused:
		return "rejected", fmt.Sprintf("%s %s: %s (a process in cgroup %s)", proto, target, res.Err, cgroup), ""
	case res.Timeout:
		return "dropped", fmt.Sprintf("%s %s: %s (a process in cgroup %s)", proto, target, res.Err, cgroup), ""
	}
	return "error", fmt.Sprintf("%s %s: %s", proto, target, res.Err), ""
}
