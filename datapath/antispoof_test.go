package datapath_test

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// A hostile pod has CAP_NET_RAW (containerd grants it by default): it writes
// whatever frame it likes to its eth0. These tests attach the programs to
// real veths and attack them that way; each attack must fail with its drop
// reason in the event.

// eventLog keeps every event a live datapath reports.
type eventLog struct {
	mu  sync.Mutex
	evs []datapath.Event
}

func collectEvents(d *datapath.Datapath) *eventLog {
	l := &eventLog{}
	go func() {
		for {
			ev, err := d.ReadEvent()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.evs = append(l.evs, ev)
			l.mu.Unlock()
		}
	}()
	return l
}

// await returns the first event that satisfies match, waiting up to 3 s.
func (l *eventLog) await(t *testing.T, what string, match func(datapath.Event) bool) datapath.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // events come in batches; the machine may be loaded
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, ev := range l.evs {
			if match(ev) {
				l.mu.Unlock()
				return ev
			}
		}
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("no event: %s; saw %v", what, l.evs)
	return datapath.Event{}
}

func droppedAs(reason string, ep uint32) func(datapath.Event) bool {
	return func(ev datapath.Event) bool {
		return ev.Verdict == datapath.VerdictDropped && ev.Reason.String() == reason && ev.EndpointID == ep
	}
}

// threePods attaches the datapath to pods A (endpoint 1), B (2) and the
// attacker C (3) on one node, with identities idA, idB, idC. B admits
// nothing (ingress enforced, no policy); nothing else is enforced.
func threePods(t *testing.T) (*datapath.Datapath, *datapathtest.Node, [3]*datapathtest.Pod, *eventLog) {
	d := datapathtest.Load(t)
	n := datapathtest.NewNode(t, "kst-spoof")
	a := n.AddPod("10.210.0.2", "fd10::2")
	b := n.AddPod("10.210.0.3", "fd10::3")
	c := n.AddPod("10.210.0.4", "fd10::4")
	var ipc []datapath.IPCacheEntry
	for i, p := range []*datapathtest.Pod{a, b, c} {
		for _, ip := range p.IPs {
			ipc = append(ipc, datapath.IPCacheEntry{Prefix: netip.PrefixFrom(ip, ip.BitLen()), Identity: uint32(idA + i)})
		}
		must(t, d.UpsertEndpoint(p.Endpoint(uint32(i+1), uint32(idA+i), i == 1, false)))
		var links *datapath.PodDeviceLinks
		var err error
		n.In(n.NS, func() { links, err = d.AttachPodDevice(p.HostIfindex, "") })
		if err != nil {
			datapathtest.SkipOrFail(t, err)
		}
		t.Cleanup(func() { links.Close() })
	}
	must(t, d.SyncIPCache(ipc))
	return d, n, [3]*datapathtest.Pod{a, b, c}, collectEvents(d)
}

func TestAPodCannotSendWithAnotherSourceAddress(t *testing.T) {
	_, n, pods, log := threePods(t)
	a, c := pods[0], pods[2]
	cases := []struct {
		name string
		src  netip.Addr
	}{
		{"a local pod's IPv4 address", a.IPs[0]},
		{"a local pod's IPv6 address", a.IPs[1]},
		{"a remote pod's address", netip.MustParseAddr("10.210.1.7")},
		{"an unused address", netip.MustParseAddr("10.210.0.99")},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := netip.MustParseAddr("10.210.0.3")
			if tc.src.Is6() {
				dst = netip.MustParseAddr("fd10::3")
			}
			sport := uint16(41000 + i)
			frame, err := packet.Build(packet.Spec{Src: tc.src, Dst: dst, Protocol: "UDP", SrcPort: sport, DstPort: 5432, SrcMAC: c.MAC})
			must(t, err)
			n.SendFrame(c, frame)
			dropped := droppedAs("INVALID_SOURCE", 3)
			log.await(t, "the spoofed datagram dropped at C's device", func(ev datapath.Event) bool {
				return dropped(ev) && ev.Src == tc.src && ev.SrcPort == sport
			})
		})
	}
}

func TestAPodCannotSendWithAnotherSourceMAC(t *testing.T) {
	_, n, pods, log := threePods(t)
	a, c := pods[0], pods[2]
	frame, err := packet.Build(packet.Spec{Src: c.IPs[0], Dst: netip.MustParseAddr("10.210.0.3"), Protocol: "UDP",
		SrcPort: 41999, DstPort: 5432, SrcMAC: a.MAC})
	must(t, err)
	n.SendFrame(c, frame)
	log.await(t, "the frame with A's MAC dropped at C's device", droppedAs("INVALID_SOURCE_MAC", 3))
}

func TestARPFromAPodMustSpeakForItself(t *testing.T) {
	_, n, pods, log := threePods(t)
	a, c := pods[0], pods[2]
	gw := n.GatewayIP4
	// C claims A's address (sender IP A, C's own MAC): it would steer the
	// node's traffic for A to C if the node believed it.
	claimA, err := packet.ARP(2, c.MAC, c.MAC, a.IPs[0], gw)
	must(t, err)
	n.SendFrame(c, claimA)
	log.await(t, "ARP claiming A's address dropped", droppedAs("INVALID_SOURCE", 3))
	// C claims its own address is at A's MAC.
	otherMAC, err := packet.ARP(2, c.MAC, a.MAC, c.IPs[0], gw)
	must(t, err)
	n.SendFrame(c, otherMAC)
	log.await(t, "ARP with a foreign sender MAC dropped", droppedAs("INVALID_SOURCE_MAC", 3))
	// C's honest ARP passes: it resolves its gateway and reaches B... (B
	// admits nothing, so the proof is that the ARP itself was forwarded).
	honest, err := packet.ARP(1, c.MAC, c.MAC, c.IPs[0], gw)
	must(t, err)
	n.SendFrame(c, honest)
	log.await(t, "C's own ARP request forwarded", func(ev datapath.Event) bool {
		return ev.EndpointID == 3 && ev.Verdict == datapath.VerdictForwarded && ev.CT.String() == "untracked" && ev.Src == c.IPs[0]
	})
}

// The forged-reply attack: C forges B:5432 -> A:40000 so that conntrack holds
// an entry for it; then A's A:40000 -> B:5432 would look like a reply at B
// and skip B's ingress policy. C's frame must die at C's device, and A's
// packet must meet B's ingress policy.
func TestAForgedReplyCannotOpenAPodsIngress(t *testing.T) {
	for _, proto := range []string{"UDP", "TCP"} {
		t.Run(proto, func(t *testing.T) {
			_, n, pods, log := threePods(t)
			a, b, c := pods[0], pods[1], pods[2]
			forged := packet.Spec{Src: b.IPs[0], Dst: a.IPs[0], Protocol: proto, SrcPort: 5432, DstPort: 40000, SrcMAC: c.MAC}
			if proto == "TCP" {
				forged.Flags = []string{"SYN", "ACK"}
			}
			frame, err := packet.Build(forged)
			must(t, err)
			n.SendFrame(c, frame)
			log.await(t, "the forged reply dropped at C's device", droppedAs("INVALID_SOURCE", 3))

			// B listens on 5432; A sends from port 40000.
			var got chan string
			n.In(b.NS, func() { got = listenOnce(t, proto, net.JoinHostPort(b.IPs[0].String(), "5432")) })
			n.In(a.NS, func() {
				local := &net.UDPAddr{IP: a.IPs[0].AsSlice(), Port: 40000}
				remote := net.JoinHostPort(b.IPs[0].String(), "5432")
				var conn net.Conn
				var err error
				if proto == "UDP" {
					conn, err = net.DialUDP("udp", local, net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.IPs[0], 5432)))
				} else {
					dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: local.IP, Port: 40000}, Timeout: 500 * time.Millisecond}
					conn, err = dialer.Dial("tcp", remote)
				}
				if err == nil {
					conn.Write([]byte("hello\n"))
					conn.Close()
				}
			})
			select {
			case m := <-got:
				t.Fatalf("B received %q from A although B admits nothing", m)
			case <-time.After(700 * time.Millisecond):
			}
			ev := log.await(t, "A's packet meets B's ingress policy", droppedAs("POLICY_DENIED", 2))
			if ev.Src != a.IPs[0] || ev.SrcPort != 40000 || ev.CT.String() != "new" {
				t.Fatalf("B's drop %s, want A:40000 as a new flow", ev)
			}
		})
	}
}

// listenOnce serves one message on addr and hands it over.
func listenOnce(t *testing.T, proto, addr string) chan string {
	t.Helper()
	got := make(chan string, 1)
	if proto == "UDP" {
		pc, err := net.ListenPacket("udp", addr)
		must(t, err)
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 64)
			if n, _, err := pc.ReadFrom(buf); err == nil {
				got <- string(buf[:n])
			}
		}()
		return got
	}
	ln, err := net.Listen("tcp", addr)
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		if c, err := ln.Accept(); err == nil {
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			got <- fmt.Sprintf("connection: %q", buf[:n])
			c.Close()
		}
	}()
	return got
}

// Real IPv6 on a real veth: the pod resolves its gateway with neighbour
// discovery and does duplicate address detection, which must pass untouched,
// and then talks over IPv6 through the programs.
func TestIPv6NeighbourDiscoveryWorksOnARealVeth(t *testing.T) {
	d, n, pods, log := threePods(t)
	a, c := pods[0], pods[2]
	got := make(chan string)
	var ln net.Listener
	var err error
	n.In(c.NS, func() { ln, err = net.Listen("tcp", "[fd10::4]:8080") })
	must(t, err)
	defer ln.Close()
	go func() {
		if conn, err := ln.Accept(); err == nil {
			buf := make([]byte, 16)
			k, _ := conn.Read(buf)
			got <- string(buf[:k])
			conn.Close()
		}
	}()
	n.In(a.NS, func() {
		conn, err := net.DialTimeout("tcp", "[fd10::4]:8080", 3*time.Second)
		must(t, err)
		conn.Write([]byte("v6"))
		conn.Close()
	})
	select {
	case m := <-got:
		if m != "v6" {
			t.Fatalf("C got %q", m)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no IPv6 connection from A to C")
	}
	log.await(t, "A's neighbour solicitation passed untracked", func(ev datapath.Event) bool {
		return ev.EndpointID == 1 && ev.Verdict == datapath.VerdictForwarded && ev.CT.String() == "untracked" &&
			ev.Protocol == 58 && ev.DstPort == 135
	})
	// A solicitation that crossed a router (hop limit below 255) is no
	// neighbour discovery: from C to A's global address it meets A's
	// policy like any packet... and from C with A's source it is spoofed.
	ns, err := packet.Build(packet.Spec{Src: a.IPs[1], Dst: netip.MustParseAddr("fd10::3"), Protocol: "ICMPv6",
		ICMPType: 135, SrcMAC: c.MAC, HopLimit: 255})
	must(t, err)
	n.SendFrame(c, ns)
	log.await(t, "ND claiming A's address from C's device dropped", droppedAs("INVALID_SOURCE", 3))
	// ND-typed packets to a global address would leave the link: they meet
	// egress policy like any packet (C's egress admits nothing here).
	must(t, d.UpsertEndpoint(c.Endpoint(3, idC, false, true)))
	leak, err := packet.Build(packet.Spec{Src: c.IPs[1], Dst: netip.MustParseAddr("2001:db8::1"), Protocol: "ICMPv6",
		ICMPType: 136, SrcMAC: c.MAC, HopLimit: 255})
	must(t, err)
	n.SendFrame(c, leak)
	log.await(t, "ND-typed packet to a global address policed", func(ev datapath.Event) bool {
		return droppedAs("POLICY_DENIED", 3)(ev) && ev.Dst == netip.MustParseAddr("2001:db8::1")
	})
}
