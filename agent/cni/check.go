package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
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
	ip, ok, err := newIPAMStore(conf).Lookup(args.ContainerID, args.IfName)
	if err != nil {
		return err
	}
	if !ok {
		return types.NewError(types.ErrUnknownContainer,
			fmt.Sprintf("CHECK %s: no IPAM record for %s/%s in %s", args.ContainerID, args.ContainerID, args.IfName, conf.IPAMDir), "")
	}
	var missing []string
	missing = append(missing, checkHost(HostIfName(args.ContainerID), ip)...)
	podMissing, err := checkPod(args.Netns, args.IfName, ip, conf.Gateway)
	if err != nil {
		return err
	}
	missing = append(missing, podMissing...)
	if len(missing) > 0 {
		return types.NewError(types.ErrInternal, fmt.Sprintf("CHECK %s: %s", args.ContainerID, strings.Join(missing, "; ")), "")
	}
	return nil
}

func checkHost(name string, ip netip.Addr) []string {
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
	if want := hostRoute(link.Attrs().Index, ip); !hasRoute(netlink.RouteListFiltered, link, want) {
		missing = append(missing, "node netns: route "+describeRoute(want, name)+" missing")
	}
	return missing
}

func checkPod(nsPath, ifname string, ip, gw netip.Addr) ([]string, error) {
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
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("pod netns: addresses of %s: %w", ifname, err)
	}
	want := hostNet(ip).String()
	found := false
	for _, a := range addrs {
		found = found || a.IPNet.String() == want
	}
	if !found {
		missing = append(missing, fmt.Sprintf("pod netns: address %s on %s missing", want, ifname))
	}
	for _, r := range podRoutes(link.Attrs().Index, gw) {
		if !hasRoute(h.RouteListFiltered, link, r) {
			missing = append(missing, "pod netns: route "+describeRoute(r, ifname)+" missing")
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
		routes, err = list(netlink.FAMILY_V4, &netlink.Route{LinkIndex: link.Attrs().Index}, netlink.RT_FILTER_OIF)
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

// routeDst names a route's destination; netlink lists a default route
// with a nil Dst.
func routeDst(r *netlink.Route) string {
	if r.Dst == nil {
		return "0.0.0.0/0"
	}
	return r.Dst.String()
}
