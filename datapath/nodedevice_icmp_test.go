package datapath_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// ICMP errors about flows the node device translates (masquerade, NodePort
// with SNAT, NodePort to a local backend). An error quotes the packet as it
// left the node, translated; its sender's socket only hears of it when it
// arrives quoting the packet that sender sent, addressed to it. Without
// this a masqueraded pod never learns a path MTU (TCP black-holes behind a
// router with a smaller MTU) and a UDP client never sees ECONNREFUSED.

var (
	router = netip.MustParseAddr("192.0.2.1")
	web    = ap(netip.MustParseAddr("203.0.113.11"), 7000) // not 53: gopacket would decode "hi" as DNS
)

// ipPacket is a frame's IP packet without the Ethernet header and without
// the padding a short IPv4 frame gets.
func ipPacket(frame []byte) []byte {
	p := frame[14:]
	if p[0]>>4 == 4 {
		p = p[:int(p[2])<<8|int(p[3])]
	}
	return p
}

// icmpAbout builds an IPv4 ICMP error from src about the packet in frame,
// quoting all of it byte for byte, sent to that packet's source.
func icmpAbout(t testing.TB, src netip.Addr, typ, code uint8, frame []byte) []byte {
	t.Helper()
	f := build(t, packet.Spec{Src: src, Dst: decode(t, frame).src.Addr(), Protocol: "ICMP", ICMPType: typ, ICMPCode: code})
	l4 := 14 + int(f[14]&0xf)*4
	f = append(f[:l4+8:l4+8], ipPacket(frame)...)
	copy(f[l4+4:l4+8], []byte{0, 0, 0, 0}) // unused (or the next hop's MTU)
	n := len(f) - 14
	f[16], f[17] = byte(n>>8), byte(n)
	fixIPv4Checksum(f)
	f[l4+2], f[l4+3] = 0, 0
	c := onesComplement(f[l4:])
	f[l4+2], f[l4+3] = byte(c>>8), byte(c)
	return f
}

// expectICMPAbout checks that frame is an ICMP error src -> dst quoting
// exactly the packet in want (checksums included: decode checks the outer
// ones).
func expectICMPAbout(t *testing.T, frame []byte, src, dst netip.Addr, want []byte) {
	t.Helper()
	got := decode(t, frame)
	if got.src.Addr() != src || got.dst.Addr() != dst {
		t.Fatalf("error %s -> %s, want %s -> %s", got.src.Addr(), got.dst.Addr(), src, dst)
	}
	_, quoted := icmpBody(t, frame)
	w := ipPacket(want)
	if len(quoted) > len(w) {
		quoted = quoted[:len(w)]
	}
	if !bytes.Equal(quoted, w[:len(quoted)]) {
		t.Fatalf("quoted packet not the sender's own:\n got  %x\n want %x", quoted, w)
	}
}

func TestICMPErrorsAboutMasqueradedFlowsReachThePod(t *testing.T) {
	d := nodeSetup(t, datapath.NodeDevice{Masquerade: true, NonMasqueradeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}})
	for _, c := range []struct {
		name      string
		spec      packet.Spec
		from      netip.Addr
		typ, code uint8
	}{
		{"fragmentation needed from a router (path MTU)", tcpSpec(ap(podA, 41000), ap(web.Addr(), 443), "ACK"), router, packet.ICMPv4DestUnreach, 4},
		{"port unreachable from the server itself", udpSpec(ap(podA, 41001), web), web.Addr(), packet.ICMPv4DestUnreach, packet.ICMPv4PortUnreach},
	} {
		t.Run(c.name, func(t *testing.T) {
			sent := build(t, c.spec)
			res := runNet(t, d, datapath.ToNetdev, sent)
			left := res.Out
			if decode(t, left).src.Addr() != nodeIP {
				t.Fatalf("not masqueraded: %s", decode(t, left).src)
			}
			res = runNet(t, d, datapath.FromNetdev, icmpAbout(t, c.from, c.typ, c.code, left))
			if res.Code != datapath.TCActOK {
				t.Fatalf("the error goes up the node's stack to the pod: code %d", res.Code)
			}
			expectICMPAbout(t, res.Out, c.from, podA, sent)
			ev := oneEvent(t, res)
			expectForwarded(t, ev)
			if !ev.NodeDevice || ev.Dst != podA {
				t.Fatalf("the event should come from the node device and name the pod: %s", ev)
			}
			// The pod's own program takes it as related to the pod's flow.
			_, pev := runSvc(t, d, datapath.FromContainer, sent)
			expectForwarded(t, pev)
			_, pev = runSvc(t, d, datapath.ToContainer, res.Out)
			if pev.Verdict != datapath.VerdictForwarded || pev.CT.String() != "related" {
				t.Fatalf("the pod should get the error as related to its flow: %s", pev)
			}
		})
	}

	// The pod's own error about the world's reply leaves from the node,
	// about the packet the world sent to the node's port.
	sent := build(t, udpSpec(ap(podA, 41002), web))
	left := runNet(t, d, datapath.ToNetdev, sent).Out
	natted := decode(t, left).src
	worldReply := build(t, udpSpec(web, natted))
	in := runNet(t, d, datapath.FromNetdev, worldReply).Out
	res := runNet(t, d, datapath.ToNetdev, icmpAbout(t, podA, packet.ICMPv4DestUnreach, packet.ICMPv4PortUnreach, in))
	expectICMPAbout(t, res.Out, nodeIP, web.Addr(), worldReply)
}

func TestICMPErrorsAboutNodePortFlowsReachTheClientAndTheBackend(t *testing.T) {
	t.Run("SNAT to a remote backend: the backend's error reaches the client", func(t *testing.T) {
		d := nodeSetup(t, datapath.NodeDevice{})
		front, back, cl := ap(nodeIP, 30080), ap(remoteBE, 8080), ap(client, 40000)
		must(t, d.UpsertService(nodePortSvc(9, front, back)))
		sent := build(t, tcpSpec(cl, front, "SYN"))
		left := runNet(t, d, datapath.FromNetdev, sent).Out
		res := runNet(t, d, datapath.FromNetdev, icmpAbout(t, remoteBE, packet.ICMPv4DestUnreach, packet.ICMPv4PortUnreach, left))
		if res.Code != datapath.TCActRedirect {
			t.Fatalf("the error leaves again by the device to the client: code %d", res.Code)
		}
		// From the frontend, since the backend sent it: the client never
		// talked to the backend. The quote is one hop older: the node
		// routed it on.
		expectICMPAbout(t, res.Out, nodeIP, client, oneHopOlder(sent))
	})
	t.Run("a local backend: its error and the client's", func(t *testing.T) {
		d := nodeSetup(t, datapath.NodeDevice{})
		front, back, cl := ap(nodeIP, 30081), ap(podB, 8080), ap(client, 40001)
		must(t, d.UpsertService(datapath.Service{ID: 9, Frontend: front, Protocol: datapath.ProtoUDP, Backends: []netip.AddrPort{back}, External: true}))
		sent := build(t, udpSpec(cl, front))
		toPod := runNet(t, d, datapath.FromNetdev, sent).Out
		// The backend's own port unreachable leaves from the frontend.
		res := runNet(t, d, datapath.ToNetdev, icmpAbout(t, podB, packet.ICMPv4DestUnreach, packet.ICMPv4PortUnreach, toPod))
		if res.Code != datapath.TCActOK {
			t.Fatalf("code %d", res.Code)
		}
		expectICMPAbout(t, res.Out, nodeIP, client, sent)
		// The client's error about the backend's reply reaches the backend.
		reply := build(t, udpSpec(back, cl))
		leftReply := runNet(t, d, datapath.ToNetdev, reply).Out
		expectSeg(t, "the reply leaving", decode(t, leftReply), front, cl)
		res = runNet(t, d, datapath.FromNetdev, icmpAbout(t, client, packet.ICMPv4DestUnreach, packet.ICMPv4PortUnreach, leftReply))
		if res.Code != datapath.TCActOK {
			t.Fatalf("code %d", res.Code)
		}
		expectICMPAbout(t, res.Out, client, podB, reply)
	})
}

// Errors no translated flow explains are never translated towards a pod:
// one quoting a node port the flow does not hold, one quoting the right
// port but a peer the flow never talked to, one not addressed to the
// quoted packet's source. They go to the node untouched (its own
// business). A pod's error to the world about nothing it received is
// dropped by name rather than leaked with the pod's address.
func TestUnexplainedICMPErrorsAreNotTranslated(t *testing.T) {
	d := nodeSetup(t, datapath.NodeDevice{Masquerade: true, NonMasqueradeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}})
	left := runNet(t, d, datapath.ToNetdev, build(t, udpSpec(ap(podA, 41000), web))).Out
	natted := decode(t, left).src
	stranger := ap(netip.MustParseAddr("203.0.113.66"), 7000)
	for name, quoted := range map[string]packet.Spec{
		"another node port": udpSpec(ap(nodeIP, natted.Port()+1), web),
		"another peer":      udpSpec(natted, stranger),
		"another peer port": udpSpec(natted, ap(web.Addr(), 7001)),
	} {
		t.Run(name, func(t *testing.T) {
			forged := icmpAbout(t, router, packet.ICMPv4DestUnreach, 4, build(t, quoted))
			res := runNet(t, d, datapath.FromNetdev, forged)
			if res.Code != datapath.TCActOK || len(res.Events) != 0 || !bytes.Equal(res.Out, forged) {
				t.Fatalf("an unexplained error must reach the node untouched: code %d, %d events", res.Code, len(res.Events))
			}
		})
	}
	t.Run("not addressed to the quoted packet's source", func(t *testing.T) {
		forged := icmpAbout(t, router, packet.ICMPv4DestUnreach, 4, left)
		// Readdress it to node 2 (as seen on this node's device).
		f := append([]byte(nil), forged...)
		copy(f[14+16:], nodeIP2.AsSlice())
		fixIPv4Checksum(f)
		res := runNet(t, d, datapath.FromNetdev, f)
		if res.Code != datapath.TCActOK || len(res.Events) != 0 || !bytes.Equal(res.Out, f) {
			t.Fatalf("a misaddressed error must not be translated: code %d, %d events", res.Code, len(res.Events))
		}
	})
	t.Run("a pod's error about nothing it received", func(t *testing.T) {
		bogus := icmpAbout(t, podA, packet.ICMPv4DestUnreach, packet.ICMPv4PortUnreach, build(t, udpSpec(stranger, ap(podA, 9))))
		expectDropped(t, oneEvent(t, runNet(t, d, datapath.ToNetdev, bogus)), "ICMP_ERROR_UNRELATED")
	})
}

// oneHopOlder is an IPv4 frame with one TTL less, as a router passes it on.
func oneHopOlder(frame []byte) []byte {
	f := append([]byte(nil), frame...)
	f[14+8]--
	fixIPv4Checksum(f)
	return f
}

// fixIPv4Checksum recomputes the outer IPv4 header checksum of a frame.
func fixIPv4Checksum(f []byte) {
	h := f[14 : 14+int(f[14]&0xf)*4]
	h[10], h[11] = 0, 0
	c := onesComplement(h)
	h[10], h[11] = byte(c>>8), byte(c)
}

// onesComplement is the Internet checksum of b (RFC 1071).
func onesComplement(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
