package daemon

import (
	"net"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/agent/k8s"
	"github.com/kestrelnet/kestrel/agent/service"
)

// syncHealth opens and closes the services' health check ports on this
// node's addresses, and tells the proxy health about this node's object.
func (d *Daemon) syncHealth(snap k8s.Snapshot, checks []service.HealthCheck) {
	var self *corev1.Node
	for _, n := range snap.Nodes {
		if n.Name == d.cfg.Node {
			self = n
		}
	}
	d.proxyHealth.SyncNode(self)
	d.svcHealth.Sync(localOnly(nodeAddresses(snap.Nodes, d.cfg.Node, d.cfg.NodeIP)[d.cfg.Node]), checks)
}

// localOnly keeps the addresses this host holds, sorted: a Node object may
// list an address the node does not hold here (one of another network, or
// not yet configured), and binding it would fail the whole health check.
// When the host's addresses cannot be read, every address is kept.
func localOnly(addrs []netip.Addr) []netip.Addr {
	held := map[netip.Addr]bool{}
	ifAddrs, err := net.InterfaceAddrs()
	for _, a := range ifAddrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				held[ip.Unmap()] = true
			}
		}
	}
	var out []netip.Addr
	for _, a := range addrs {
		if err != nil || held[a] {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}
