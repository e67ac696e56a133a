package dnsproxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// The datapath hands a pod's UDP query to the proxy's socket with
// bpf_sk_assign without rewriting it, so the socket must accept packets for
// addresses that are not the node's (IP_TRANSPARENT) and say each packet's
// original destination (IP_RECVORIGDSTADDR). The answer must come from that
// destination, port included, or the pod's resolver drops it: it is sent
// from a transparent socket bound to the original destination.

// ListenUDP opens the transparent UDP socket of a proxy port for one family
// ("udp4" or "udp6").
func ListenUDP(ctx context.Context, network string, port uint16) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		return setsockopts(c, network, true)
	}}
	host := "0.0.0.0"
	if network == "udp6" {
		host = "::"
	}
	pc, err := lc.ListenPacket(ctx, network, net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		return nil, fmt.Errorf("DNS proxy %s socket on %d: %w", network, port, err)
	}
	return pc.(*net.UDPConn), nil
}

func setsockopts(c syscall.RawConn, network string, recvOrig bool) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		set := func(level, opt int) {
			if serr == nil {
				serr = unix.SetsockoptInt(int(fd), level, opt, 1)
			}
		}
		set(unix.SOL_SOCKET, unix.SO_REUSEADDR)
		if network == "udp4" {
			set(unix.SOL_IP, unix.IP_TRANSPARENT)
			if recvOrig {
				set(unix.SOL_IP, unix.IP_RECVORIGDSTADDR)
			}
		} else {
			set(unix.SOL_IPV6, unix.IPV6_TRANSPARENT)
			if recvOrig {
				set(unix.SOL_IPV6, unix.IPV6_RECVORIGDSTADDR)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// origDst reads the original destination from a packet's control messages.
func origDst(oob []byte) (netip.AddrPort, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.AddrPort{}, err
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_ORIGDSTADDR && len(m.Data) >= 8:
			a := netip.AddrFrom4([4]byte(m.Data[4:8]))
			return netip.AddrPortFrom(a, binary.BigEndian.Uint16(m.Data[2:4])), nil
		case m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_ORIGDSTADDR && len(m.Data) >= 24:
			a := netip.AddrFrom16([16]byte(m.Data[8:24])).Unmap()
			return netip.AddrPortFrom(a, binary.BigEndian.Uint16(m.Data[2:4])), nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("no original destination in the packet's control messages")
}

// replyFrom sends b to client from the address from (the server the client
// asked), through a transparent socket bound to it for this one answer.
func replyFrom(from, client netip.AddrPort, b []byte) error {
	network := "udp4"
	if from.Addr().Is6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		return setsockopts(c, network, false)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, from.String())
	if err != nil {
		return fmt.Errorf("answer from %s: %w", from, err)
	}
	defer pc.Close()
	_, err = pc.(*net.UDPConn).WriteToUDPAddrPort(b, client)
	return err
}
