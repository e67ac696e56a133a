package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Check verifies that what ADD made is still there, and names every piece
// that is not, so an operator sees the whole damage in one answer.
func Check(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	ips, err := newIPAMStore(conf).Lookup(args.ContainerID, args.IfName)
	if err != nil {
		return err
	}
	if len(ips) == 0 {
		return types.NewError(types.ErrUnknownContainer,
			fmt.Sprintf("CHECK %s: no IPAM record for %s/%s in %s", args.ContainerID, args.ContainerID, args.IfName, conf.IPAMDir), "")
	}
	var missing []string
	missing = append(missing, checkHost(HostIfName(args.ContainerID), ips)...)
	podMissing, err := checkPod(args.Netns, args.IfName, ips, conf.Gateway)
	if err != nil {
		return err
	}
	missing = append(missing, podMissing...)
	if len(missing) > 0 {
		return types.NewError(types.ErrInternal, fmt.Sprintf("CHECK %s: %s", args.ContainerID, strings.Join(missing, "; ")), "")
	}
	return nil
}

func checkHost(name string, ips []netip.Addr) []string {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return []string{fmt.Sprintf("node netns: host veth %s missing: %v", name, err)}
	}
	var missing []string
	if link.Attrs().Flags&net.FlagUp == 0 {
		missing = append(missing, fmt.Sprintf("node netns: %s is down", name))
	}
	for _, s := range hostSysctls {
		p := filepath.Join("/proc/sys", fmt.Sprintf(s.path, name))
		b, err := os.ReadFile(p)
		if err != nil || strings.TrimSpace(string(b)) != s.value {
			missing = append(missing, fmt.Sprintf("node netns: sysctl %s is not %s", p, s.value))
		}
	}
	if slices.ContainsFunc(ips, netip.Addr.Is6) {
		want := hostGatewayV6().IPNet.String()
		if !hasAddr(netlink.AddrList, link, netlink.FAMILY_V6, want) {
			missing = append(missing, fmt.Sprintf("node netns: address %s on %s missing", want, name))
		}
	}
	for _, ip := range ips {
		if want := hostRoute(link.Attrs().Index, ip); !hasRoute(netlink.RouteListFiltered, link, want) {
			missing = append(missing, "node netns: route "+describeRoute(want, name)+" missing")
		}
	}
	return missing
}

// hasAddr says whether link holds the address want (in CIDR notation).
func hasAddr(list func(netlink.Link, int) ([]netlink.Addr, error), link netlink.Link, family int, want string) bool {
	addrs, err := list(link, family)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == want })
}

func checkPod(nsPath, ifname string, ips []netip.Addr, gw4 netip.Addr) ([]string, error) {
	podNS, err := netns.GetFromPath(nsPath)
	if err != nil {
		return []string{fmt.Sprintf("pod netns %s missing: %v", nsPath, err)}, nil
	}
	defer podNS.Close()
	h, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return nil, fmt.Errorf("netlink in pod netns %s: %w", nsPath, err)
	}
	defer h.Delete()

	link, err := h.LinkByName(ifname)
	if err != nil {
		return []string{fmt.Sprintf("pod netns: %s missing: %v", ifname, err)}, nil
	}
	var missing []string
	if link.Attrs().Flags&net.FlagUp == 0 {
		missing = append(missing, fmt.Sprintf("pod netns: %s is down", ifname))
	}
	for _, ip := range ips {
		if want := hostNet(ip).String(); !hasAddr(h.AddrList, link, familyOf(ip), want) {
			missing = append(missing, fmt.Sprintf("pod netns: address %s on %s missing", want, ifname))
		}
		for _, r := range podRoutes(link.Attrs().Index, ip, gw4) {
			if !hasRoute(h.RouteListFiltered, link, r) {
				missing = append(missing, "pod netns: route "+describeRoute(r, ifname)+" missing")
			}
		}
	}
	return missing, nil
}

type routeLister func(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error)

// hasRoute looks for want among the main-table routes of link. A dump
// interrupted by a concurrent change is retried, since its partial answer
// could report a present route as missing.
func hasRoute(list routeLister, link netlink.Link, want *netlink.Route) bool {
	var routes []netlink.Route
	var err error
	for range 3 {
		routes, err = list(familyOf(routeAddr(want)), &netlink.Route{LinkIndex: link.Attrs().Index}, netlink.RT_FILTER_OIF)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return false
	}
	for _, r := range routes {
		if routeDst(&r) == routeDst(want) && r.Gw.Equal(want.Gw) && r.Scope == want.Scope {
			return true
		}
	}
	return false
}

// routeDst names a route's destination; netlink may list a default route
// with a nil Dst.
func routeDst(r *netlink.Route) string {
	if r.Dst != nil {
		return r.Dst.String()
	}
	if r.Gw != nil && r.Gw.To4() == nil {
		return "::/0"
	}
	return "0.0.0.0/0"
}

// routeAddr is an address of the route's family.
func routeAddr(r *netlink.Route) netip.Addr {
	ip := r.Gw
	if r.Dst != nil {
		ip = r.Dst.IP
	}
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func familyOf(ip netip.Addr) int {
	if ip.Is6() {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}
