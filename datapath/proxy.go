package datapath

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The datapath's contract with the node's L7 proxies (bpf/lib/proxy.h): a
// proxy listens with IP_TRANSPARENT in the node's namespace on its port; the
// datapath hands it redirected connections with their original addresses;
// the proxy's own upstream connections carry a mark saying what was judged.
const (
	proxyMarkMask    = uint32(lxcProxyMarkPROXY_MARK_MASK)
	proxyMarkToProxy = uint32(lxcProxyMarkPROXY_MARK_TO_PROXY)
	// ProxyRouteTable is the routing table of the node's proxy rule.
	ProxyRouteTable = int(lxcProxyMarkPROXY_ROUTE_TABLE)
)

// ProxyMarkIngress is the SO_MARK of an ingress proxy's connection to the pod
// it serves: the pod's ingress policy was applied by the proxy already.
func ProxyMarkIngress() int { return int(lxcProxyMarkPROXY_MARK_INGRESS) }

// ProxyMarkEgress is the SO_MARK of an egress proxy's upstream connection on
// behalf of a client of identity id: the destination's ingress policy judges
// that identity, not the node. Identities above 16 bits cannot be carried
// and are refused.
func ProxyMarkEgress(id uint32) (int, error) {
	if id > 0xffff {
		return 0, fmt.Errorf("identity %d does not fit the proxy mark's 16 bits", id)
	}
	return int(uint32(lxcProxyMarkPROXY_MARK_EGRESS) | id<<16), nil
}

// InstallProxyRouting makes packets the datapath marked for the proxy go up
// the node's own stack to the socket it assigned, whatever their destination:
// `ip rule fwmark 0x200/0xf00 lookup 2004` and `local default dev lo` in that
// table, for both families. Idempotent. h is a handle in the node's namespace.
func InstallProxyRouting(h *netlink.Handle) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("proxy routing: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("proxy routing: lo up: %w", err)
	}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rule := netlink.NewRule()
		rule.Family = family
		rule.Mark = proxyMarkToProxy
		mask := proxyMarkMask
		rule.Mask = &mask
		rule.Table = ProxyRouteTable
		rule.Priority = 9
		if err := h.RuleAdd(rule); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("proxy routing: rule (family %d): %w", family, err)
		}
		dst := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		if family == netlink.FAMILY_V6 {
			dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		}
		route := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: dst, Table: ProxyRouteTable,
			Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST, Family: family}
		if err := h.RouteReplace(route); err != nil {
			return fmt.Errorf("proxy routing: local route (family %d): %w", family, err)
		}
	}
	return nil
}

// ProxySysctls turns off TCP early demultiplexing in the calling thread's
// network namespace (the node's). Early demux attaches a local socket to a
// packet before routing when the packet's tuple names one; the proxy's
// sockets hold the original destinations, so a pod's packet to another pod
// (forwarded) would get the proxy's socket attached, and the kernel drops a
// packet with a socket it would have to forward (ip_forward). The datapath
// assigns the proxy's socket itself, so nothing depends on early demux.
func ProxySysctls() error {
	for _, f := range []string{SysctlDir + "/net/ipv4/tcp_early_demux", SysctlDir + "/net/ipv4/udp_early_demux"} {
		if err := os.WriteFile(f, []byte("0"), 0o644); err != nil {
			return fmt.Errorf("proxy sysctls: %w", err)
		}
	}
	return nil
}

// ProxyDeviceSysctls lets a pod's host-side device take the frames
// to_container turns back to the proxy when their source is one of the
// node's own addresses (an egress proxy's or another local process's
// connection to a pod with L7 rules): `accept_local`, without which the
// kernel drops them as martians. A pod cannot use it to claim the node's
// address: from_container drops any packet whose source is not the pod's.
func ProxyDeviceSysctls(ifindex int) error {
	ifc, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("proxy device sysctls: %w", err)
	}
	f := SysctlDir + "/net/ipv4/conf/" + ifc.Name + "/accept_local"
	if err := os.WriteFile(f, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("proxy device sysctls: %w", err)
	}
	return nil
}

// ListenProxy opens a proxy's transparent TCP listener on port, both
// families, in the calling thread's network namespace. An accepted
// connection's LocalAddr is the original destination.
func ListenProxy(ctx context.Context, port uint16) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// Both options set the one transparent flag of the socket; a
			// dual-stack listener is an IPv6 socket.
			if network == "tcp4" {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(ctx, "tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return nil, fmt.Errorf("proxy listener on %d: %w", port, err)
	}
	return ln, nil
}

// ProxyDialer dials a proxy's upstream connections with mark (see
// ProxyMarkIngress, ProxyMarkEgress).
func ProxyDialer(mark int) *net.Dialer {
	return &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, mark)
		})
		if err != nil {
			return err
		}
		return serr
	}}
}

// ProxyMarkToProxy is the mark to_container gives a frame it turns back for
// the proxy on port (tests replay such frames).
func ProxyMarkToProxy(port uint16) uint32 { return proxyMarkToProxy | uint32(port)<<16 }

// ProxiedFlow is what the datapath recorded when it redirected a
// connection: the remote identity its policy judged, and the proxy port and
// policies (cookie) of the entry that redirected it.
type ProxiedFlow struct {
	RemoteIdentity uint32
	ProxyPort      uint16
	Cookie         uint32
}

// ProxiedFlow looks up the conntrack entry of a TCP connection from client
// to orig that the datapath redirected in direction dir. ok is false when
// there is none (or it was not redirected): a proxy must then not serve it.
func (d *Datapath) ProxiedFlow(dir Direction, client, orig netip.AddrPort) (ProxiedFlow, bool, error) {
	var k lxcCtKey
	var fam uint8
	k.Saddr.Addr, fam = addrWords(client.Addr())
	k.Daddr.Addr, _ = addrWords(orig.Addr())
	k.Sport, k.Dport = client.Port(), orig.Port()
	k.Proto, k.Family, k.Direction = 6, fam, uint8(dir)
	var e lxcCtEntry
	if err := d.objs.CtTcp.Lookup(&k, &e); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return ProxiedFlow{}, false, nil
		}
		return ProxiedFlow{}, false, fmt.Errorf("conntrack lookup: %w", err)
	}
	if e.ProxyPort == 0 {
		return ProxiedFlow{}, false, nil
	}
	return ProxiedFlow{RemoteIdentity: e.RemoteIdentity, ProxyPort: e.ProxyPort, Cookie: e.Cookie}, true, nil
}
