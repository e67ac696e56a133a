// Package noderoutes keeps a route to every other node's pod ranges via that node's
// address, for clusters whose nodes share one L2 network and nothing else routes pod
// ranges (kind: the nodes are containers on one docker bridge). Cilium calls this
// auto-direct-node-routes. The routes carry their own protocol number, so Sync and
// Remove touch no route anyone else made.
package noderoutes

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
)

// Proto marks Kestrel's node routes (rtnetlink protocol; 0-4 are the kernel's and
// iproute2's, and /etc/iproute2/rt_protos names none at this number).
const Proto = netlink.RouteProtocol(0x4b)

// Want computes the routes for this node: every other node's pod ranges via its
// InternalIP of the same family. Nodes without an address of a range's family are
// skipped (nothing could carry it).
func Want(self string, nodes []*corev1.Node) map[netip.Prefix]netip.Addr {
	want := map[netip.Prefix]netip.Addr{}
	for _, n := range nodes {
		if n.Name == self {
			continue
		}
		var v4, v6 netip.Addr
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			ip, err := netip.ParseAddr(a.Address)
			if err != nil {
				continue
			}
			if ip.Is4() && !v4.IsValid() {
				v4 = ip
			} else if ip.Is6() && !v6.IsValid() {
				v6 = ip
			}
		}
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				continue
			}
			gw := v4
			if p.Addr().Is6() {
				gw = v6
			}
			if gw.IsValid() {
				want[p.Masked()] = gw
			}
		}
	}
	return want
}

// Sync makes the routes marked Proto in the main table exactly want: missing or
// changed ones replaced, stale ones deleted. Errors name the route.
func Sync(want map[netip.Prefix]netip.Addr) error {
	have, err := list()
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range have {
		p := prefixOf(r)
		if gw, ok := want[p]; ok && r.Gw != nil && addrOf(r.Gw) == gw {
			continue
		}
		if _, ok := want[p]; !ok {
			if err := netlink.RouteDel(&r); err != nil {
				errs = append(errs, fmt.Errorf("delete route %s: %w", p, err))
			}
		}
	}
	prefixes := make([]netip.Prefix, 0, len(want))
	for p := range want {
		prefixes = append(prefixes, p)
	}
	sort.Slice(prefixes, func(i, j int) bool { return prefixes[i].String() < prefixes[j].String() })
	for _, p := range prefixes {
		gw := want[p]
		r := &netlink.Route{
			Dst:      &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
			Gw:       gw.AsSlice(),
			Protocol: Proto,
		}
		if err := netlink.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", p, gw, err))
		}
	}
	return errors.Join(errs...)
}

// Remove deletes every route marked Proto (uninstall).
func Remove() error { return Sync(nil) }

func list() ([]netlink.Route, error) {
	var out []netlink.Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := netlink.RouteListFiltered(fam, &netlink.Route{Protocol: Proto}, netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

func prefixOf(r netlink.Route) netip.Prefix {
	if r.Dst == nil {
		return netip.Prefix{}
	}
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(addrOf(r.Dst.IP), ones)
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}
