package datapath_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The remote host of these tests: a namespace of its own behind the node
// (192.0.2.10, the node routing to it from 192.0.2.1 on rmt0), standing in
// for a pod of another node or a server in the world. Its packets reach the
// pod's device forwarded by the node, as a remote node's do.
var remoteIP = netip.MustParseAddr("192.0.2.10")

func addRemote(t *testing.T, n *datapathtest.PodNetwork) netns.NsHandle {
	t.Helper()
	name := fmt.Sprintf("kestrel-test-remote-%d", os.Getpid())
	var remote netns.NsHandle
	var err error
	// NewNamed switches the calling thread: back at once.
	if remote, err = netns.NewNamed(name); err != nil {
		t.Fatalf("create netns: %v", err)
	}
	must(t, netns.Set(n.Orig))
	t.Cleanup(func() {
		remote.Close()
		netns.DeleteNamed(name)
	})
	hn, err := netlink.NewHandleAt(n.Node)
	must(t, err)
	defer hn.Close()
	hr, err := netlink.NewHandleAt(remote)
	must(t, err)
	defer hr.Close()
	must(t, hn.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rmt0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(remote)}))
	node, err := hn.LinkByName("rmt0")
	must(t, err)
	peer, err := hr.LinkByName("eth0")
	must(t, err)
	must(t, hn.AddrAdd(node, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(192, 0, 2, 1), Mask: net.CIDRMask(24, 32)}}))
	must(t, hr.AddrAdd(peer, &netlink.Addr{IPNet: &net.IPNet{IP: remoteIP.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
	must(t, hn.LinkSetUp(node))
	must(t, hr.LinkSetUp(peer))
	must(t, hr.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: net.IPv4(192, 0, 2, 1)}))
	n.In(t, n.Node, func() {
		must(t, os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644))
	})
	return remote
}

// serveSaw answers each connection on addr in ns with "<role> saw <client>".
func serveSaw(t *testing.T, n *datapathtest.PodNetwork, ns netns.NsHandle, addr, role string) {
	t.Helper()
	var ln net.Listener
	var err error
	n.In(t, ns, func() { ln, err = net.Listen("tcp", addr) })
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s saw %s\n", role, c.RemoteAddr())
			c.Close()
		}
	}()
}

// startUpstreamProxy runs a transparent listener on the proxy port. Each
// connection's request line is read; then, on an original port in relay,
// the connection is relayed over datapath.ProxyUpstreamDialer from the
// client's own address with mark and answered "proxied <upstream's line>";
// on any other port it is held open unanswered (held receives each one).
func startUpstreamProxy(t *testing.T, n *datapathtest.PodNetwork, mark int, relay map[int]bool, held chan<- net.Conn) {
	serveProxy(t, n, func(c net.Conn) {
		orig := c.LocalAddr().(*net.TCPAddr)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			c.Close()
			return
		}
		if !relay[orig.Port] {
			held <- c
			return
		}
		defer c.Close()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		from := netip.MustParseAddrPort(c.RemoteAddr().String())
		var up net.Conn
		var derr error
		n.In(t, n.Node, func() {
			up, derr = datapath.ProxyUpstreamDialer(mark, from)(context.Background(), "tcp", orig.String())
		})
		if derr != nil {
			fmt.Fprintf(c, "upstream: %v\n", derr)
			return
		}
		defer up.Close()
		up.SetReadDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(up).ReadString('\n')
		if err != nil {
			fmt.Fprintf(c, "upstream read: %v\n", err)
			return
		}
		fmt.Fprintf(c, "proxied %s", line)
	})
}

// dialLine connects from ns, sends a request line and returns the answer and
// the connection's own address.
func dialLine(t *testing.T, n *datapathtest.PodNetwork, ns netns.NsHandle, addr string) (string, string, error) {
	var c net.Conn
	var err error
	n.In(t, ns, func() { c, err = net.DialTimeout("tcp", addr, time.Second) })
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	line, err := roundTrip(c)
	return strings.TrimSpace(line), c.LocalAddr().String(), err
}

// sendForged sends one TCP segment from ns, built whole (IP_HDRINCL), as a
// hostile host would: from src to dst with flags PSH|ACK and a payload.
func sendForged(t *testing.T, n *datapathtest.PodNetwork, ns netns.NsHandle, src, dst netip.AddrPort) {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: 1, Ack: 1, PSH: true, ACK: true, Window: 512}
	must(t, tcp.SetNetworkLayerForChecksum(ip))
	buf := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp,
		gopacket.Payload("forged answer\n")))
	n.In(t, ns, func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		must(t, err)
		defer unix.Close(fd)
		sa := &unix.SockaddrInet4{Addr: dst.Addr().As4()}
		must(t, unix.Sendto(fd, buf.Bytes(), 0, sa))
	})
}

func dropCount(t *testing.T, d *datapath.Datapath, reason string, dir datapath.Direction) uint64 {
	t.Helper()
	counters, err := d.Counters()
	must(t, err)
	reasons, err := datapath.DropReasons()
	must(t, err)
	return counters[datapath.CounterKey{Reason: reasons[reason], Direction: dir}].Packets
}

func waitDrops(t *testing.T, d *datapath.Datapath, reason string, dir datapath.Direction, before uint64) {
	t.Helper()
	for i := 0; i < 50; i++ {
		if dropCount(t, d, reason, dir) > before {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no new %s drop in direction %v", reason, dir)
}

// An ingress proxy's upstream connection leaves from the client's own
// address and port, so the pod sees the remote client, not the node; the
// pod's answer, addressed to the client, goes to the upstream's socket
// (from_container assigns it), and the client gets it through the proxy.
// A pod answering the client past the proxy, on a flow the proxy holds but
// has not relayed, is dropped as PROXY_UNAVAILABLE.
func TestIngressProxyUpstreamKeepsTheClientAddressLive(t *testing.T) {
	d, n := proxyPodNetwork(t)
	remote := addRemote(t, n)
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{
		{Identity: 0, Direction: datapath.Ingress, Protocol: 6, PortLo: 8080, PortHi: 8081, Action: datapath.PolicyRedirect, ProxyPort: testProxyPort},
	}))
	serveSaw(t, n, n.Pod, netip.AddrPortFrom(n.PodIP, 8080).String(), "pod")
	held := make(chan net.Conn, 4)
	startUpstreamProxy(t, n, datapath.ProxyMarkIngress(), map[int]bool{8080: true}, held)

	for i := 0; i < 2; i++ {
		line, local, err := dialLine(t, n, remote, netip.AddrPortFrom(n.PodIP, 8080).String())
		if err != nil {
			t.Fatalf("connection %d from the remote client through the ingress proxy: %v", i, err)
		}
		if want := "proxied pod saw " + local; line != want {
			t.Fatalf("connection %d: got %q, want %q (the pod sees the client's own address and port)", i, line, want)
		}
	}

	// The pod, hostile, answers the client of a held flow itself.
	answerPastTheProxy(t, d, n, remote, netip.AddrPortFrom(n.PodIP, 8081), n.Pod, held, datapath.Egress)
}

// An egress proxy's upstream connection to a remote server leaves from the
// pod's own address and port: the server (another node's pod, judged there
// by the pod's identity) sees the pod. Its answer comes back forwarded to
// the pod's device, and to_container turns it back to the upstream's socket;
// the proxy's own answer (from the node's stack) reaches the pod. A server
// answering the pod past the proxy, on a flow the proxy holds but has not
// relayed, is dropped as PROXY_UNAVAILABLE.
func TestEgressProxyUpstreamKeepsThePodAddressLive(t *testing.T) {
	d, n := proxyPodNetwork(t)
	remote := addRemote(t, n)
	mark, err := datapath.ProxyMarkEgress(idA)
	must(t, err)
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{
		{Identity: 0, Direction: datapath.Egress, Protocol: 6, PortLo: 80, PortHi: 81, Action: datapath.PolicyRedirect, ProxyPort: testProxyPort},
	}))
	serveSaw(t, n, remote, netip.AddrPortFrom(remoteIP, 80).String(), "server")
	held := make(chan net.Conn, 4)
	startUpstreamProxy(t, n, mark, map[int]bool{80: true}, held)

	for i := 0; i < 2; i++ {
		line, local, err := dialLine(t, n, n.Pod, netip.AddrPortFrom(remoteIP, 80).String())
		if err != nil {
			t.Fatalf("connection %d from the pod through the egress proxy: %v", i, err)
		}
		if want := "proxied server saw " + local; line != want {
			t.Fatalf("connection %d: got %q, want %q (the server sees the pod's own address and port)", i, line, want)
		}
	}

	// The server, hostile, answers the pod of a held flow itself.
	answerPastTheProxy(t, d, n, n.Pod, netip.AddrPortFrom(remoteIP, 81), remote, held, datapath.Ingress)
}

// answerPastTheProxy opens a connection from clientNS to server, which the
// proxy takes and holds without an upstream, then forges the server's
// answer to the client from serverNS: the datapath must drop it as
// PROXY_UNAVAILABLE (counted in direction dir) and the client read nothing.
func answerPastTheProxy(t *testing.T, d *datapath.Datapath, n *datapathtest.PodNetwork, clientNS netns.NsHandle,
	server netip.AddrPort, serverNS netns.NsHandle, held <-chan net.Conn, dir datapath.Direction) {
	t.Helper()
	var c net.Conn
	var err error
	n.In(t, clientNS, func() { c, err = net.DialTimeout("tcp", server.String(), 2*time.Second) })
	must(t, err)
	defer c.Close()
	_, err = c.Write([]byte("request\n"))
	must(t, err)
	select {
	case h := <-held:
		defer h.Close()
	case <-time.After(3 * time.Second):
		t.Fatalf("the proxy never took the connection to %s", server)
	}
	before := dropCount(t, d, "PROXY_UNAVAILABLE", dir)
	sendForged(t, n, serverNS, server, netip.MustParseAddrPort(c.LocalAddr().String()))
	waitDrops(t, d, "PROXY_UNAVAILABLE", dir, before)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if b, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Fatalf("the client read %q sent past the proxy", b)
	}
}
