package simbench

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// client is one way a pod's connects meet a datapath: the client pod on
// the datapath's node, its process in the pod's cgroup or not. On the
// Kestrel node that choice is socket LB on or off: the agent's socket
// programs are attached to the node's cgroup, which holds the pods'
// cgroups, so a process in the pod's cgroup has its connect() to a VIP
// translated there (socket LB), and one outside it sends the VIP on the
// wire for the pod's from-container program to translate (per packet).
// kube-proxy nodes have no socket programs: their client runs in the pod's
// cgroup, as the pod's own processes do.
type client struct {
	Name     string
	dp       datapath
	inCgroup bool
	socketLB bool // the agent's socket LB must translate its connects to VIPs
}

var clients = []client{
	{Name: "kestrel-socket-lb", dp: datapaths[0], inCgroup: true, socketLB: true},
	{Name: "kestrel-per-packet", dp: datapaths[0]},
	{Name: "kube-proxy-iptables-legacy", dp: datapaths[1], inCgroup: true},
	{Name: "kube-proxy-iptables-nft", dp: datapaths[2], inCgroup: true},
	{Name: "kube-proxy-nftables", dp: datapaths[3], inCgroup: true},
}

// clientBin is the kestrel binary whose `sim connect` makes a client's
// connects, as a process of the pod.
func (r *runner) clientBin() string { return filepath.Join(r.binDir, "kestrel") }

// connects makes n TCP connects from c to dst, each timed around connect()
// alone (`kestrel sim connect`, a process in the pod's network namespace,
// and in its cgroup when c says so). A connect that fails ends that
// process's run; the rest are made by another, so a failure is counted
// and the run goes on.
func (r *runner) connects(c client, dst netip.AddrPort, n int) (times []time.Duration, failed int, firstErr error) {
	uid := r.clientUIDs[c.dp.Node]
	cg := ""
	if c.inCgroup {
		var err error
		if cg, err = cgroups.FindPod(ClusterName, uid); err != nil {
			return nil, n, err
		}
	}
	for len(times) < n && failed < n {
		// Count 1 would exchange a message instead of timing a connect.
		req := workload.ConnectRequest{Netns: network.PodNetns(ClusterName, uid), Protocol: "tcp",
			Target: dst.String(), Count: max(n-len(times), 2), Timeout: 2 * time.Second}
		res, err := workload.RunInPod(r.clientBin(), cg, req)
		if err != nil {
			return times, n - len(times), err
		}
		for _, ns := range res.ConnectNs {
			if len(times) < n {
				times = append(times, time.Duration(ns))
			}
		}
		if res.Err != "" {
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("%s", res.Err)
			}
		}
	}
	return times, failed, firstErr
}

// socketTranslations is the count of sockets the agent of c's node has
// translated (0 where there is no Kestrel agent with socket LB).
func (r *runner) socketTranslations(ctx context.Context, c client) (int, error) {
	if c.dp.Mode != "" {
		return 0, nil
	}
	st, err := api.NewClient(cluster.AgentSocket(ClusterName, network.NodeName(c.dp.Node))).Status(ctx)
	if err != nil {
		return 0, err
	}
	if st.Datapath == nil {
		return 0, nil
	}
	return st.Datapath.SocketLBTranslations, nil
}

// checkSocketLB says whether the agent translated connects to a VIP as c
// says it must: some for socket LB (the map is an LRU, so not necessarily
// every one is still counted), none for per packet.
func checkSocketLB(c client, target string, translated, connects int) error {
	switch {
	case c.socketLB && connects > 0 && translated == 0:
		return fmt.Errorf("%s: socket LB translated none of %d connects to %s: its programs did not apply", c.Name, connects, target)
	case !c.socketLB && translated > 0:
		return fmt.Errorf("%s: socket LB translated %d connects to %s, want none (per packet)", c.Name, translated, target)
	}
	return nil
}
