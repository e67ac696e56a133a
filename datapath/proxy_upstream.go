package datapath

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// DialFunc opens a proxy's upstream connection to addr.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ProxyUpstreamDialer dials a proxy's upstream connection with mark from the
// client's own address and port (from: the redirected flow's source), on an
// IP_TRANSPARENT socket, so the server sees the client and another node
// judges the client's identity; the datapath hands the replies to this
// socket (bpf/lib/proxy.h). The flow's tuple is the client's, so where it
// cannot be had (a socket of the node's holds it already: the node's own
// connection through an ingress proxy, a listener on the client's port) or
// from is not valid, the connection leaves from the node's address with
// mark alone, as ProxyDialer's do.
func ProxyUpstreamDialer(mark int, from netip.AddrPort) DialFunc {
	node := ProxyDialer(mark)
	if !from.IsValid() {
		return node.DialContext
	}
	d := &net.Dialer{
		LocalAddr: net.TCPAddrFromAddrPort(from),
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = transparentUpstream(int(fd), network, mark)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil && (errors.Is(err, unix.EADDRINUSE) || errors.Is(err, unix.EADDRNOTAVAIL)) {
			return node.DialContext(ctx, network, addr)
		}
		return c, err
	}
}

// transparentUpstream readies an upstream socket to bind a foreign address:
// the mark, IP_TRANSPARENT (only CAP_NET_ADMIN may set either), and
// SO_REUSEADDR, because one client port may be proxied to two destinations
// at once and each upstream binds it.
func transparentUpstream(fd int, network string, mark int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, mark); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	if network == "tcp4" || network == "udp4" {
		return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TRANSPARENT, 1)
	}
	return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1)
}

// IsNodeAddress reports whether a is one of the addresses of the namespace
// the caller runs in: a socket can bind it without IP_TRANSPARENT.
func IsNodeAddress(a netip.Addr) bool {
	c, err := net.ListenPacket("udp", netip.AddrPortFrom(a.Unmap(), 0).String())
	if err != nil {
		return false
	}
	c.Close()
	return true
}
