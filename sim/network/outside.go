package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The outside host is a namespace on the underlay that is not a node: it
// stands for the world around the cluster. It holds the addresses of servers
// outside the cluster and of clients that reach the cluster from outside
// (on its loopback device, WorldDevice, added as scenarios need them), and it has
// no route to any pod range, so a pod's packet to the world only gets an
// answer once its node has masqueraded it to the node's address. Nodes route
// their default traffic to it.
//
// A client on the outside host enters the cluster at a chosen node: its
// socket carries the mark ViaMark(i), and a rule sends marked packets to
// table ViaTable(i), whose default routes go to node-i's underlay addresses.
// A mark rather than a rule per source address: probes from the same
// address through different nodes can then run at the same time, and
// nothing is left to remove after a probe.

// OutsideInterface is the outside host's underlay interface.
const OutsideInterface = "eth0"

// WorldDevice is the outside host's device holding world addresses: its
// loopback, as this machine's kernel has no dummy links.
const WorldDevice = "lo"

// underlayOutsidePeer is the underlay end of the outside host's veth.
const underlayOutsidePeer = "outside"

var (
	outsideIP  = netip.MustParseAddr("172.30.0.254")
	outsideIP6 = netip.MustParseAddr("fd00:172:30::fe")
)

// viaBase offsets the routing tables and marks of ViaTable and ViaMark.
const viaBase = 100

// OutsideIP is the outside host's underlay address, the nodes' IPv4 gateway.
func OutsideIP() netip.Addr { return outsideIP }

// OutsideIP6 is the outside host's IPv6 underlay address, the nodes' IPv6 gateway.
func OutsideIP6() netip.Addr { return outsideIP6 }

// ViaTable is the outside host's routing table that sends everything to node-i.
func ViaTable(i int) int { return viaBase + i }

// ViaMark is the socket mark (SO_MARK) that selects ViaTable(i).
func ViaMark(i int) uint32 { return uint32(viaBase + i) }

// upOutside builds or repairs the outside host for opts.Nodes nodes.
func upOutside(opts Options) error {
	ns := OutsideNetns(opts.Name)
	if err := EnsureNetns(ns); err != nil {
		return err
	}
	h, closeH, err := handleAt(ns)
	if err != nil {
		return err
	}
	defer closeH()
	if _, err := h.LinkByName(OutsideInterface); err != nil {
		if err := addVethInto(&opts, underlayOutsidePeer, ns, OutsideInterface); err != nil {
			return err
		}
	}
	if err := plugIntoBridge(opts.Name, underlayOutsidePeer); err != nil {
		return err
	}
	eth0, err := h.LinkByName(OutsideInterface)
	if err != nil {
		return fmt.Errorf("netns %s: %s: %w", ns, OutsideInterface, err)
	}
	for _, a := range []*netlink.Addr{addr(OutsideIP(), underlayBits), addr(OutsideIP6(), underlayBits6)} {
		if err := h.AddrReplace(eth0, a); err != nil {
			return fmt.Errorf("netns %s: address %s on %s: %w", ns, a.IPNet, OutsideInterface, err)
		}
	}
	for _, l := range []string{"lo", OutsideInterface} {
		if err := setUp(h, l); err != nil {
			return fmt.Errorf("netns %s: %w", ns, err)
		}
	}
	// rp_filter off: a pod's packet that was not masqueraded arrives from a
	// pod address the outside host has no route to. It is still received
	// (a server may see it); only the answer cannot leave.
	err = Do(ns, func() error {
		for _, key := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter", "net.ipv4.conf." + OutsideInterface + ".rp_filter"} {
			if err := writeSysctl(key, "0"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	if err := viaRoutes(h, eth0, opts.Nodes); err != nil {
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	return nil
}

// viaRoutes makes ViaTable(i) and its mark rule for every node, both
// families, and removes those of nodes beyond n.
func viaRoutes(h *netlink.Handle, eth0 netlink.Link, n int) error {
	for i := 1; i <= n; i++ {
		for _, gw := range NodeIPs(i) {
			def := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.IP(gw.AsSlice()), Table: ViaTable(i)}
			if gw.Is6() {
				def.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
			}
			if err := h.RouteReplace(def); err != nil {
				return fmt.Errorf("table %d: default route via %s: %w", ViaTable(i), gw, err)
			}
		}
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := h.RuleList(fam)
		if err != nil {
			return fmt.Errorf("list rules: %w", err)
		}
		have := map[int]bool{}
		for _, r := range rules {
			idx := r.Table - viaBase
			if idx < 1 || idx > MaxNodes {
				continue
			}
			if idx > n || r.Mark != ViaMark(idx) {
				if err := h.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
					return fmt.Errorf("remove rule for table %d: %w", r.Table, err)
				}
				continue
			}
			have[idx] = true
		}
		for i := 1; i <= n; i++ {
			if have[i] {
				continue
			}
			r := netlink.NewRule()
			r.Family = fam
			r.Mark = ViaMark(i)
			mask := ^uint32(0)
			r.Mask = &mask
			r.Table = ViaTable(i)
			r.Priority = 1000 + i
			if err := h.RuleAdd(r); err != nil {
				return fmt.Errorf("rule fwmark %d lookup %d: %w", r.Mark, r.Table, err)
			}
		}
	}
	// Tables of nodes that left: their default routes.
	for i := n + 1; i <= MaxNodes; i++ {
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			routes, err := h.RouteListFiltered(fam, &netlink.Route{Table: ViaTable(i)}, netlink.RT_FILTER_TABLE)
			if err != nil {
				return err
			}
			for _, r := range routes {
				if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
					return fmt.Errorf("remove route of table %d: %w", ViaTable(i), err)
				}
			}
		}
	}
	return nil
}

// AddWorldAddr gives the outside host address a (a /32 or /128 on
// WorldDevice), for a server outside the cluster or a client that enters it
// from outside. An address it has is left as is.
func AddWorldAddr(name string, a netip.Addr) error {
	return worldAddr(name, a, true)
}

// DelWorldAddr takes address a from the outside host; a missing one is no error.
func DelWorldAddr(name string, a netip.Addr) error {
	return worldAddr(name, a, false)
}

func worldAddr(name string, a netip.Addr, add bool) error {
	ns := OutsideNetns(name)
	h, closeH, err := handleAt(ns)
	if err != nil {
		return err
	}
	defer closeH()
	dev, err := h.LinkByName(WorldDevice)
	if err != nil {
		return fmt.Errorf("netns %s: %s: %w", ns, WorldDevice, err)
	}
	na := addr(a, a.BitLen())
	if add {
		err = h.AddrReplace(dev, na)
	} else if err = h.AddrDel(dev, na); errors.Is(err, unix.EADDRNOTAVAIL) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("netns %s: address %s on %s: %w", ns, a, WorldDevice, err)
	}
	return nil
}
