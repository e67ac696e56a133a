package cni

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// HostIfName is the node-side veth of a container: "lxc" and 11 hex digits
// of sha1(containerID). It is derived, not stored, so DEL finds it without
// any state, and it fits IFNAMSIZ (15).
func HostIfName(containerID string) string {
	sum := sha1.Sum([]byte(containerID))
	return "lxc" + hex.EncodeToString(sum[:])[:11]
}

// createVeth makes the pair with its peer born inside the pod netns under
// its final name, so no temporary name can clash in the node netns and a
// failure never leaves the peer behind in the wrong namespace. A leftover
// host veth of the same container (a retried ADD) is replaced.
func createVeth(hostName, podIfName string, mtu int, podNS netns.NsHandle) (netlink.Link, error) {
	if err := deleteLink(hostName); err != nil {
		return nil, err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostName
	attrs.MTU = mtu
	veth := &netlink.Veth{
		LinkAttrs:     attrs,
		PeerName:      podIfName,
		PeerNamespace: netlink.NsFd(podNS),
		PeerTxQLen:    -1,
	}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create veth %s/%s: an interface of that name exists in the node or pod netns: %w", hostName, podIfName, err)
		}
		return nil, fmt.Errorf("create veth %s/%s: %w", hostName, podIfName, err)
	}
	host, err := netlink.LinkByName(hostName)
	if err != nil {
		return nil, fmt.Errorf("veth %s vanished after creation: %w", hostName, err)
	}
	return host, nil
}

// podRoutes are the pod's routes in ip's family. IPv4: the gateway is
// on-link (the pod's address is a /32, so nothing else is), and everything
// goes through it. IPv6: everything goes through the link-local GatewayV6,
// which is on-link by being link-local. Every packet thus leaves by the host
// veth and meets the datapath there, even pod-to-pod on one node.
func podRoutes(linkIndex int, ip, gw4 netip.Addr) []*netlink.Route {
	if ip.Is6() {
		return []*netlink.Route{
			{LinkIndex: linkIndex, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, Gw: GatewayV6.AsSlice()},
		}
	}
	return []*netlink.Route{
		{LinkIndex: linkIndex, Dst: hostNet(gw4), Scope: netlink.SCOPE_LINK},
		{LinkIndex: linkIndex, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: gw4.AsSlice()},
	}
}

// podAddr is the pod's address on its interface: a host route, so the pod
// sends everything to its gateway. An IPv6 one skips duplicate address
// detection, which would keep it unusable for a second after ADD returns;
// the address is the pod's by IPAM.
func podAddr(ip netip.Addr) *netlink.Addr {
	a := &netlink.Addr{IPNet: hostNet(ip)}
	if ip.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// configurePod sets the pod side up through a netlink handle bound to the
// pod netns, so no OS thread has to switch namespaces.
func configurePod(h *netlink.Handle, ifname string, ips []netip.Addr, gw4 netip.Addr) (netlink.Link, error) {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("pod netns: lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return nil, fmt.Errorf("pod netns: set lo up: %w", err)
	}
	link, err := h.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("pod netns: %s: %w", ifname, err)
	}
	for _, ip := range ips {
		if err := h.AddrReplace(link, podAddr(ip)); err != nil {
			return nil, fmt.Errorf("pod netns: address %s on %s: %w", hostNet(ip), ifname, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("pod netns: set %s up: %w", ifname, err)
	}
	for _, ip := range ips {
		for _, r := range podRoutes(link.Attrs().Index, ip, gw4) {
			if err := h.RouteReplace(r); err != nil {
				return nil, fmt.Errorf("pod netns: route %s: %w", describeRoute(r, ifname), err)
			}
		}
	}
	return link, nil
}

// hostSysctls are the per-interface settings of the host veth. proxy_arp
// makes the node answer the pod's ARP for the gateway, which no interface
// holds; the kernel proxies only an address it routes through another
// interface, so the node needs a route covering the gateway that does not
// point at this veth (a default route does). forwarding lets it route what
// the pod sends. proxy_delay=0 answers
// at once instead of after a random wait of up to 0.8s, which the kernel
// adds for proxied broadcast requests.
var hostSysctls = []struct{ path, value string }{
	{"net/ipv4/conf/%s/proxy_arp", "1"},
	{"net/ipv4/conf/%s/forwarding", "1"},
	{"net/ipv4/neigh/%s/proxy_delay", "0"},
}

// configureHost sets the node side: the veth up, its sysctls, GatewayV6 on
// it when the pod has an IPv6 address, and the route to each of the pod's
// addresses. It runs in the plugin's own netns, which is the node's.
func configureHost(host netlink.Link, ips []netip.Addr) error {
	name := host.Attrs().Name
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	for _, s := range hostSysctls {
		p := filepath.Join("/proc/sys", fmt.Sprintf(s.path, name))
		if err := os.WriteFile(p, []byte(s.value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", p, s.value, err)
		}
	}
	if slices.ContainsFunc(ips, netip.Addr.Is6) {
		if err := netlink.AddrReplace(host, hostGatewayV6()); err != nil {
			return fmt.Errorf("address %s on %s: %w", hostGatewayV6().IPNet, name, err)
		}
	}
	for _, ip := range ips {
		r := hostRoute(host.Attrs().Index, ip)
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s: %w", describeRoute(r, name), err)
		}
	}
	return nil
}

// hostGatewayV6 is GatewayV6 as the host veth holds it. It skips duplicate
// address detection: every host veth holds the same link-local address, and
// one still being checked could not answer the pod's first solicitation.
func hostGatewayV6() *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: GatewayV6.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
}

// hostRoute is the node's route to a pod address. IPv6 routes have no scope
// (the kernel reports them as universe), so only IPv4 ones say link.
func hostRoute(linkIndex int, ip netip.Addr) *netlink.Route {
	r := &netlink.Route{LinkIndex: linkIndex, Dst: hostNet(ip), Scope: netlink.SCOPE_LINK}
	if ip.Is6() {
		r.Scope = netlink.SCOPE_UNIVERSE
	}
	return r
}

// deleteLink removes a node-side link; its veth peer goes with it. A link
// that is already gone is fine.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func hostNet(ip netip.Addr) *net.IPNet {
	return &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())}
}

func describeRoute(r *netlink.Route, dev string) string {
	s := r.Dst.String()
	if ones, _ := r.Dst.Mask.Size(); ones == 0 {
		s = "default"
	}
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	s += " dev " + dev
	if r.Scope == netlink.SCOPE_LINK {
		s += " scope link"
	}
	return s
}
