package datapath_test

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// The programs on real veths: a pod's TCP connection to a ClusterIP reaches
// a backend pod on the same node, a pod reaches itself through its own
// service, and a service without backends refuses the connection at once.

// echoOnce serves one connection on addr inside the caller's namespace:
// reads a line and writes it back.
func echoOnce(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		c.Write(buf[:n])
	}()
}

// dialAndEcho connects to addr, sends msg and returns what came back and
// the address the connection's peer had.
func dialAndEcho(addr, msg string) (string, string, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", "", err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return "", "", err
	}
	return string(buf), c.RemoteAddr().String(), nil
}

func TestLiveClusterIPConnections(t *testing.T) {
	d, n, pods, log := threePods(t)
	a, b := pods[0], pods[1]
	// B admits A on 8080 only: the connection to the frontend's port 80
	// passes B's ingress because policy sees the backend port.
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{{Identity: idA, Direction: datapath.Ingress, Protocol: 6, PortLo: 8080}}))
	clusterIP := netip.MustParseAddr("10.96.7.1")
	must(t, d.SyncServices([]datapath.Service{
		{ID: 1, Frontend: ap(clusterIP, 80), Protocol: 6, Backends: []netip.AddrPort{ap(b.IPs[0], 8080)}},
		{ID: 2, Frontend: ap(clusterIP, 81), Protocol: 6, Backends: []netip.AddrPort{ap(a.IPs[0], 9090)}},
		{ID: 3, Frontend: ap(clusterIP, 82), Protocol: 6, Reject: true},
	}))

	t.Run("to a backend pod", func(t *testing.T) {
		n.In(b.NS, func() { echoOnce(t, net.JoinHostPort(b.IPs[0].String(), "8080")) })
		var got, peer string
		var err error
		n.In(a.NS, func() { got, peer, err = dialAndEcho("10.96.7.1:80", "through the service") })
		must(t, err)
		if got != "through the service" || peer != "10.96.7.1:80" {
			t.Fatalf("got %q from %s, want the echo from the ClusterIP", got, peer)
		}
		log.await(t, "A's SYN translated to B", func(ev datapath.Event) bool {
			return ev.EndpointID == 1 && ev.Verdict == datapath.VerdictForwarded && ev.Dst == b.IPs[0] && ev.DstPort == 8080 && ev.DstIdentity == idB
		})
	})

	t.Run("hairpin: a pod to itself", func(t *testing.T) {
		n.In(a.NS, func() { echoOnce(t, net.JoinHostPort(a.IPs[0].String(), "9090")) })
		var got, peer string
		var err error
		n.In(a.NS, func() { got, peer, err = dialAndEcho("10.96.7.1:81", "to myself") })
		if err != nil {
			log.mu.Lock()
			for _, ev := range log.evs {
				t.Log(ev)
			}
			log.mu.Unlock()
		}
		must(t, err)
		if got != "to myself" || peer != "10.96.7.1:81" {
			t.Fatalf("got %q from %s, want the echo from the ClusterIP", got, peer)
		}
	})

	t.Run("no backends: refused", func(t *testing.T) {
		var err error
		start := time.Now()
		n.In(a.NS, func() { _, _, err = dialAndEcho("10.96.7.1:82", "x") })
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("want connection refused (ICMP port unreachable), got %v", err)
		}
		if time.Since(start) > time.Second {
			t.Fatalf("the refusal took %s: it was a timeout, not an answer", time.Since(start))
		}
		log.await(t, "the SYN dropped as SERVICE_NO_BACKEND", droppedAs("SERVICE_NO_BACKEND", 1))
	})
}

// A UDP socket connected to a ClusterIP hears of the backend's closed port:
// the backend's port unreachable names the backend, and only its reverse
// translation makes the client's kernel match it to the socket. A forged
// error about a flow the sender never had dies at its device.
func TestLiveICMPErrorFromABackendReachesTheClient(t *testing.T) {
	d, n, pods, log := threePods(t)
	a, b, c := pods[0], pods[1], pods[2]
	// B admits A's datagrams to 7070, where nothing listens.
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{{Identity: idA, Direction: datapath.Ingress, Protocol: 17, PortLo: 7070}}))
	front4, front6 := netip.MustParseAddr("10.96.7.2"), netip.MustParseAddr("fd00:96::7:2")
	must(t, d.SyncServices([]datapath.Service{
		{ID: 1, Frontend: ap(front4, 7000), Protocol: 17, Backends: []netip.AddrPort{ap(b.IPs[0], 7070)}},
		{ID: 2, Frontend: ap(front6, 7000), Protocol: 17, Backends: []netip.AddrPort{ap(b.IPs[1], 7070)}},
	}))
	for _, front := range []netip.Addr{front4, front6} {
		t.Run(front.String(), func(t *testing.T) {
			// Untranslated, the error matches no socket and the read
			// times out instead. (The deadline leaves time for IPv6
			// neighbour discovery, which waits for the node side's
			// fe80::1 to finish duplicate address detection.)
			var err error
			n.In(a.NS, func() {
				var conn *net.UDPConn
				conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap(front, 7000)))
				if err != nil {
					return
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err = conn.Write([]byte("anyone?")); err != nil {
					return
				}
				_, err = conn.Read(make([]byte, 16))
			})
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("want connection refused from the backend's port unreachable, got %v", err)
			}
			log.await(t, "the error entering A as related", func(ev datapath.Event) bool {
				return ev.EndpointID == 1 && ev.Verdict == datapath.VerdictForwarded && ev.CT.String() == "related"
			})
		})
	}

	t.Run("forged", func(t *testing.T) {
		// C claims to be B and reports a flow of A's to B that A never had.
		inner := packet.Spec{Src: a.IPs[0], Dst: b.IPs[0], Protocol: "UDP", SrcPort: 40999, DstPort: 7070}
		frame, err := packet.Build(packet.Spec{Src: c.IPs[0], Dst: a.IPs[0], Protocol: "ICMP",
			ICMPType: packet.ICMPv4DestUnreach, ICMPCode: packet.ICMPv4PortUnreach, Inner: &inner, SrcMAC: c.MAC})
		must(t, err)
		n.SendFrame(c, frame)
		log.await(t, "the forged error dropped at C's device", droppedAs("ICMP_ERROR_UNRELATED", 3))
	})
}
