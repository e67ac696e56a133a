package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Options describe the underlay to build.
type Options struct {
	Name  string // cluster name; namespaces and links start with "ksim-NAME"
	Nodes int    // nodes node-1 .. node-Nodes
}

// underlayRootPeer is the underlay end of the root namespace's veth.
const underlayRootPeer = "root"

// Up builds or repairs the underlay and the node namespaces. Running it again
// fixes what is missing and removes nodes beyond opts.Nodes.
func Up(opts Options) error {
	if err := ValidateName(opts.Name); err != nil {
		return err
	}
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		return fmt.Errorf("nodes: %d is out of range [1, %d]", opts.Nodes, MaxNodes)
	}
	if err := upUnderlay(opts.Name); err != nil {
		return err
	}
	if err := upRoot(opts); err != nil {
		return err
	}
	if err := upOutside(opts); err != nil {
		return fmt.Errorf("outside host: %w", err)
	}
	for i := 1; i <= opts.Nodes; i++ {
		if err := upNode(opts, i); err != nil {
			return fmt.Errorf("%s: %w", NodeName(i), err)
		}
	}
	return removeNodesBeyond(opts)
}

func upUnderlay(name string) error {
	ul := UnderlayNetns(name)
	if err := EnsureNetns(ul); err != nil {
		return err
	}
	h, closeH, err := handleAt(ul)
	if err != nil {
		return err
	}
	defer closeH()
	if err := setUp(h, "lo"); err != nil {
		return err
	}
	if _, err := h.LinkByName(UnderlayBridge); err != nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: UnderlayBridge}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("netns %s: add bridge %s: %w", ul, UnderlayBridge, err)
		}
	}
	return setUp(h, UnderlayBridge)
}

// upRoot gives the root namespace 172.30.0.1 on the underlay and routes to
// every pod range, so tools on the host reach nodes and pods directly.
func upRoot(opts Options) error {
	root := RootVeth(opts.Name)
	if other := gatewayHolder(); other != "" && other != root {
		return fmt.Errorf("%w: %s is already on %s in the root netns (run `kestrel sim down` for that cluster first)",
			ErrUnderlayTaken, GatewayIP(), other)
	}
	if _, err := netlink.LinkByName(root); err != nil {
		if err := addVethInto(nil, root, UnderlayNetns(opts.Name), underlayRootPeer); err != nil {
			return err
		}
	}
	if err := plugIntoBridge(opts.Name, underlayRootPeer); err != nil {
		return err
	}
	link, err := netlink.LinkByName(root)
	if err != nil {
		return fmt.Errorf("root netns: %s: %w", root, err)
	}
	for _, a := range []*netlink.Addr{addr(GatewayIP(), underlayBits), addr(GatewayIP6(), underlayBits6)} {
		if err := netlink.AddrReplace(link, a); err != nil {
			return fmt.Errorf("root netns: address %s on %s: %w", a.IPNet, root, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("root netns: set %s up: %w", root, err)
	}
	for i := 1; i <= opts.Nodes; i++ {
		for _, r := range podRoutes(link, i) {
			if err := netlink.RouteReplace(r); err != nil {
				return fmt.Errorf("root netns: route %s via %s: %w", r.Dst, r.Gw, err)
			}
		}
	}
	return nil
}

// podRoutes are the routes to node-i's pod ranges, one per family, via its
// underlay addresses.
func podRoutes(dev netlink.Link, i int) []*netlink.Route {
	return []*netlink.Route{routeVia(dev, PodCIDR(i), NodeIP(i)), routeVia(dev, PodCIDR6(i), NodeIP6(i))}
}

// ErrUnderlayTaken means another cluster's root veth holds the underlay
// gateway: all clusters share 172.30.0.0/24, so only one can be up at a time.
var ErrUnderlayTaken = errors.New("the sim underlay is in use by another cluster")

// gatewayHolder names the root-namespace link holding the gateway address, if any.
func gatewayHolder() string {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if a.IP.Equal(net.IP(GatewayIP().AsSlice())) {
			if l, err := netlink.LinkByIndex(a.LinkIndex); err == nil {
				return l.Attrs().Name
			}
		}
	}
	return ""
}

func upNode(opts Options, i int) error {
	nodeNS := NodeNetns(opts.Name, i)
	if err := EnsureNetns(nodeNS); err != nil {
		return err
	}
	h, closeH, err := handleAt(nodeNS)
	if err != nil {
		return err
	}
	defer closeH()
	ulEnd := "node" + strconv.Itoa(i)
	if _, err := h.LinkByName(NodeInterface); err != nil {
		if err := addVethInto(&opts, ulEnd, nodeNS, NodeInterface); err != nil {
			return err
		}
	}
	if err := plugIntoBridge(opts.Name, ulEnd); err != nil {
		return err
	}
	eth0, err := h.LinkByName(NodeInterface)
	if err != nil {
		return fmt.Errorf("netns %s: %s: %w", nodeNS, NodeInterface, err)
	}
	for _, a := range []*netlink.Addr{addr(NodeIP(i), underlayBits), addr(NodeIP6(i), underlayBits6)} {
		if err := h.AddrReplace(eth0, a); err != nil {
			return fmt.Errorf("netns %s: address %s on %s: %w", nodeNS, a.IPNet, NodeInterface, err)
		}
	}
	for _, l := range []string{"lo", NodeInterface} {
		if err := setUp(h, l); err != nil {
			return err
		}
	}
	// Forwarding carries pod traffic; rp_filter would drop replies that come
	// back over the underlay for pods whose routes point at lxc devices.
	// IPv6 forwarding set on "all" also sets "default", so the pods' host
	// veths, made later, forward too.
	err = Do(nodeNS, func() error {
		for _, kv := range [][2]string{
			{"net.ipv4.ip_forward", "1"},
			{"net.ipv6.conf.all.forwarding", "1"},
			{"net.ipv4.conf.all.rp_filter", "0"},
			{"net.ipv4.conf.default.rp_filter", "0"},
			{"net.ipv4.conf." + NodeInterface + ".rp_filter", "0"},
		} {
			if err := writeSysctl(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("netns %s: %w", nodeNS, err)
	}
	return nodeRoutes(h, eth0, opts, i)
}

// nodeRoutes points every other node's pod ranges at that node, adds the
// default routes to the outside host (the world; the root namespace, where
// kube-apiserver listens, is on-link), and drops routes to nodes that left.
func nodeRoutes(h *netlink.Handle, eth0 netlink.Link, opts Options, self int) error {
	want := map[netip.Prefix]bool{}
	for j := 1; j <= opts.Nodes; j++ {
		if j == self {
			continue
		}
		for _, r := range podRoutes(eth0, j) {
			want[prefixOf(r.Dst)] = true
			if err := h.RouteReplace(r); err != nil {
				return fmt.Errorf("route %s via %s: %w", r.Dst, r.Gw, err)
			}
		}
	}
	for _, gw := range []netip.Addr{OutsideIP(), OutsideIP6()} {
		def := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.IP(gw.AsSlice())}
		if err := h.RouteReplace(def); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := h.RouteList(eth0, fam)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst == nil || r.Gw == nil {
				continue
			}
			p := prefixOf(r.Dst)
			if inPodSupernet(p.Addr()) && !want[p] {
				if err := h.RouteDel(&r); err != nil {
					return fmt.Errorf("remove stale route %s: %w", p, err)
				}
			}
		}
	}
	return nil
}

func prefixOf(n *net.IPNet) netip.Prefix {
	ones, _ := n.Mask.Size()
	a, _ := netip.AddrFromSlice(n.IP)
	return netip.PrefixFrom(a.Unmap(), ones)
}

func inPodSupernet(a netip.Addr) bool {
	for _, p := range PodSupernets() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// removeNodesBeyond deletes node namespaces with an index above opts.Nodes,
// left by an earlier, larger Up.
func removeNodesBeyond(opts Options) error {
	names, err := ListNetns()
	if err != nil {
		return err
	}
	for _, ns := range names {
		if !ownedNetns(opts.Name, ns) {
			continue
		}
		idx, err := NodeIndex(ns[len(Prefix(opts.Name))+1:])
		if err == nil && idx > opts.Nodes {
			if err := DeleteNetns(ns); err != nil {
				return err
			}
		}
	}
	return nil
}

// addVethInto makes a veth pair: hostEnd in the underlay namespace (or in the
// root namespace when opts is nil) and peer named peerName in peerNetns.
func addVethInto(opts *Options, hostEnd, peerNetns, peerName string) error {
	peer, err := netns.GetFromName(peerNetns)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", peerNetns, err)
	}
	defer peer.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostEnd},
		PeerName:      peerName,
		PeerNamespace: netlink.NsFd(int(peer)),
	}
	where := "root netns"
	h := (*netlink.Handle)(nil)
	if opts != nil {
		where = "netns " + UnderlayNetns(opts.Name)
		var closeH func()
		h, closeH, err = handleAt(UnderlayNetns(opts.Name))
		if err != nil {
			return err
		}
		defer closeH()
		// A half-made earlier attempt may have left this end behind.
		if old, err := h.LinkByName(hostEnd); err == nil {
			h.LinkDel(old)
		}
		err = h.LinkAdd(veth)
	} else {
		err = netlink.LinkAdd(veth)
	}
	if err != nil {
		return fmt.Errorf("%s: add veth %s (peer %s in %s): %w", where, hostEnd, peerName, peerNetns, err)
	}
	return nil
}

// plugIntoBridge attaches an underlay-side link to br0 and sets it up.
func plugIntoBridge(name, link string) error {
	h, closeH, err := handleAt(UnderlayNetns(name))
	if err != nil {
		return err
	}
	defer closeH()
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("netns %s: %s: %w", UnderlayNetns(name), link, err)
	}
	br, err := h.LinkByName(UnderlayBridge)
	if err != nil {
		return fmt.Errorf("netns %s: %s: %w", UnderlayNetns(name), UnderlayBridge, err)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("netns %s: attach %s to %s: %w", UnderlayNetns(name), link, UnderlayBridge, err)
		}
	}
	return h.LinkSetUp(l)
}

func handleAt(netnsName string) (*netlink.Handle, func(), error) {
	ns, err := netns.GetFromName(netnsName)
	if err != nil {
		return nil, nil, fmt.Errorf("open netns %s: %w", netnsName, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, nil, fmt.Errorf("netlink in netns %s: %w", netnsName, err)
	}
	return h, func() { h.Close(); ns.Close() }, nil
}

func setUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// addr is an underlay address. An IPv6 one skips duplicate address
// detection: the addresses are fixed by this package, and DAD would keep
// one unusable for a second after Up returns.
func addr(a netip.Addr, bits int) *netlink.Addr {
	na := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(bits, a.BitLen())}}
	if a.Is6() {
		na.Flags = unix.IFA_F_NODAD
	}
	return na
}

func routeVia(dev netlink.Link, dst netip.Prefix, gw netip.Addr) *netlink.Route {
	return &netlink.Route{
		LinkIndex: dev.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IP(dst.Addr().AsSlice()), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())},
		Gw:        net.IP(gw.AsSlice()),
	}
}
