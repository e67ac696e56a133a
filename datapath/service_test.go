package datapath_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// Services: a pod's packet to a frontend leaves its device for a backend,
// and the backend's reply enters the pod from the frontend. Every test reads
// the bytes the programs wrote back.

var (
	vip      = netip.MustParseAddr("10.96.0.10")
	vip6     = netip.MustParseAddr("fd00:96::10")
	svcRange = netip.MustParsePrefix("10.96.0.0/16")
	podA6    = netip.MustParseAddr("fd00:244::10")
	podB6    = netip.MustParseAddr("fd00:244::11")
	podC6    = netip.MustParseAddr("fd00:244::12")
	hairpin4 = netip.MustParseAddr("169.254.42.1")
)

// svcSetup loads a datapath with the service ranges and pods A, B and C
// (endpoints 1..3, dual-stack), nothing enforced.
func svcSetup(t *testing.T) *datapath.Datapath {
	t.Helper()
	d := datapathtest.LoadConfig(t, datapath.Config{ServiceRanges: []netip.Prefix{svcRange, netip.MustParsePrefix("fd00:96::/112")}})
	installPods(t, d)
	must(t, d.SyncIPCache(podIPCache()))
	return d
}

var dualStackPods = [][]netip.Addr{{podA, podA6}, {podB, podB6}, {podC, podC6}}

// installPods makes pods A, B and C endpoints 1..3 (dual-stack), nothing enforced.
func installPods(t *testing.T, d *datapath.Datapath) {
	t.Helper()
	for i, ips := range dualStackPods {
		must(t, d.UpsertEndpoint(datapath.Endpoint{ID: uint32(i + 1), Identity: uint32(idA + i), IPs: ips}))
	}
}

// podIPCache gives A, B and C's addresses their identities.
func podIPCache() []datapath.IPCacheEntry {
	var ipc []datapath.IPCacheEntry
	for i, ips := range dualStackPods {
		for _, ip := range ips {
			ipc = append(ipc, datapath.IPCacheEntry{Prefix: netip.PrefixFrom(ip, ip.BitLen()), Identity: uint32(idA + i)})
		}
	}
	return ipc
}

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// runSvc runs a frame through a hook (on the device of its pod-side
// address) and returns the result and its single event, checking the TC
// code against the verdict: forwarded is OK or a redirect, dropped is SHOT
// or, for a reject, a redirect.
func runSvc(t *testing.T, d *datapath.Datapath, h datapath.Hook, frame []byte) (datapath.RunResult, datapath.Event) {
	t.Helper()
	res, err := d.Run(h, frame)
	must(t, err)
	return res, oneEvent(t, res)
}

func oneEvent(t *testing.T, res datapath.RunResult) datapath.Event {
	t.Helper()
	if len(res.Events) != 1 {
		t.Fatalf("want one event, got %v", res.Events)
	}
	ev := res.Events[0]
	if ev.Verdict == datapath.VerdictDropped && res.Code == datapath.TCActOK {
		t.Fatalf("dropped (%s) but the program passed the packet", ev)
	}
	if ev.Verdict == datapath.VerdictForwarded && res.Code == datapath.TCActShot {
		t.Fatalf("forwarded (%s) but the program shot the packet", ev)
	}
	return ev
}

func build(t testing.TB, s packet.Spec) []byte {
	t.Helper()
	f, err := packet.Build(s)
	must(t, err)
	return f
}

// seg is what a frame carries, as gopacket decodes it.
type seg struct {
	src, dst netip.AddrPort
	proto    string
}

// decode reads a frame's addresses and ports and checks every checksum in
// it: gopacket serializes the decoded layers again with checksums computed,
// and the bytes must be the frame's own.
func decode(t testing.TB, frame []byte) seg {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("frame does not decode: %v", el.Error())
	}
	var s seg
	var src, dst netip.Addr
	var net gopacket.NetworkLayer
	var ls []gopacket.SerializableLayer
	if ip4, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		src, dst, net = netip.AddrFrom4([4]byte(ip4.SrcIP.To4())), netip.AddrFrom4([4]byte(ip4.DstIP.To4())), ip4
		ls = append(ls, ip4)
	} else if ip6, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
		src, dst, net = netip.AddrFrom16([16]byte(ip6.SrcIP)), netip.AddrFrom16([16]byte(ip6.DstIP)), ip6
		ls = append(ls, ip6)
	} else {
		t.Fatalf("no IP layer in %x", frame)
	}
	var sport, dport uint16
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		l.SetNetworkLayerForChecksum(net)
		sport, dport, s.proto = uint16(l.SrcPort), uint16(l.DstPort), "TCP"
		ls = append(ls, l, gopacket.Payload(l.Payload))
	case *layers.UDP:
		l.SetNetworkLayerForChecksum(net)
		sport, dport, s.proto = uint16(l.SrcPort), uint16(l.DstPort), "UDP"
		ls = append(ls, l, gopacket.Payload(l.Payload))
	default:
		if ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
			s.proto = fmt.Sprintf("ICMP %d/%d", ic.TypeCode.Type(), ic.TypeCode.Code())
			ls = append(ls, ic, gopacket.Payload(ic.Payload))
		} else if ic, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
			ic.SetNetworkLayerForChecksum(net)
			s.proto = fmt.Sprintf("ICMPv6 %d/%d", ic.TypeCode.Type(), ic.TypeCode.Code())
			ls = append(ls, ic, gopacket.Payload(ic.Payload))
		} else {
			t.Fatalf("no transport layer in %v", p)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...))
	// Past the IP packet there may be Ethernet padding, zeros only.
	n := len(buf.Bytes())
	if len(frame) < 14+n || !bytes.Equal(buf.Bytes(), frame[14:14+n]) || bytes.Count(frame[14+n:], []byte{0}) != len(frame)-14-n {
		t.Fatalf("checksums wrong:\n got  %x\n want %x", frame[14:], buf.Bytes())
	}
	s.src, s.dst = ap(src, sport), ap(dst, dport)
	return s
}

func expectSeg(t *testing.T, what string, got seg, src, dst netip.AddrPort) {
	t.Helper()
	if got.src != src || got.dst != dst {
		t.Fatalf("%s: %s %s -> %s, want %s -> %s", what, got.proto, got.src, got.dst, src, dst)
	}
}

// A connection through a service, both ways, for TCP and UDP over IPv4 and
// IPv6: the client's packet leaves with the backend as destination, the
// backend's reply enters the client with the frontend as source, and the
// checksums hold throughout.
func TestServiceTranslatesBothWays(t *testing.T) {
	for _, c := range []struct {
		name        string
		front, back netip.AddrPort
		client      netip.Addr
		proto       string
		num         uint8
	}{
		{"TCP over IPv4", ap(vip, 80), ap(podB, 8080), podA, "TCP", datapath.ProtoTCP},
		{"UDP over IPv4", ap(vip, 7000), ap(podB, 7070), podA, "UDP", datapath.ProtoUDP},
		{"TCP over IPv6", ap(vip6, 80), ap(podB6, 8080), podA6, "TCP", datapath.ProtoTCP},
		{"UDP over IPv6", ap(vip6, 7000), ap(podB6, 7070), podA6, "UDP", datapath.ProtoUDP},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := svcSetup(t)
			must(t, d.UpsertService(datapath.Service{ID: 7, Frontend: c.front, Protocol: c.num, Backends: []netip.AddrPort{c.back}}))
			spec := func(src, dst netip.AddrPort, flags ...string) packet.Spec {
				s := packet.Spec{Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(), Protocol: c.proto, Payload: []byte("hello")}
				if c.proto == "TCP" {
					s.Flags = flags
				}
				return s
			}
			client := ap(c.client, 40000)

			res, ev := runSvc(t, d, datapath.FromContainer, build(t, spec(client, c.front, "SYN")))
			expectForwarded(t, ev)
			out := decode(t, res.Out)
			expectSeg(t, "client's packet leaving", out, client, c.back)
			if ev.Dst != c.back.Addr() || ev.DstPort != c.back.Port() || ev.DstIdentity != idB {
				t.Fatalf("the event should show the backend and its identity: %s", ev)
			}
			_, ev = runSvc(t, d, datapath.ToContainer, res.Out)
			expectForwarded(t, ev)

			res, ev = runSvc(t, d, datapath.FromContainer, build(t, spec(c.back, client, "SYN", "ACK")))
			expectForwarded(t, ev)
			res, ev = runSvc(t, d, datapath.ToContainer, res.Out)
			expectForwarded(t, ev)
			if ev.CT.String() != "reply" {
				t.Fatalf("the backend's answer should be a reply, got %s", ev)
			}
			expectSeg(t, "reply entering the client", decode(t, res.Out), c.front, client)

			// The flow's next packet goes the same way.
			res, ev = runSvc(t, d, datapath.FromContainer, build(t, spec(client, c.front, "ACK")))
			expectForwarded(t, ev)
			if ev.CT.String() != "established" {
				t.Fatalf("the client's second packet should be established, got %s", ev)
			}
			expectSeg(t, "client's second packet", decode(t, res.Out), client, c.back)
		})
	}
}

// sendToService sends one SYN from src to the frontend and returns the
// backend it left for.
func sendToService(t *testing.T, d *datapath.Datapath, src netip.AddrPort, front netip.AddrPort) netip.AddrPort {
	t.Helper()
	res, ev := runSvc(t, d, datapath.FromContainer, build(t, tcp(src.Addr(), front.Addr(), src.Port(), front.Port(), "SYN")))
	expectForwarded(t, ev)
	return decode(t, res.Out).dst
}

func TestAFlowKeepsItsBackendAndFlowsSpread(t *testing.T) {
	d := svcSetup(t)
	backends := []netip.AddrPort{ap(podB, 8080), ap(podC, 8080), ap(podB, 8081)}
	must(t, d.UpsertService(datapath.Service{ID: 1, Frontend: ap(vip, 80), Protocol: datapath.ProtoTCP, Backends: backends}))
	first := sendToService(t, d, ap(podA, 40000), ap(vip, 80))
	for range 30 {
		if got := sendToService(t, d, ap(podA, 40000), ap(vip, 80)); got != first {
			t.Fatalf("the flow moved from %s to %s", first, got)
		}
	}
	const flows = 600
	count := map[netip.AddrPort]int{}
	for i := range flows {
		count[sendToService(t, d, ap(podA, uint16(20000+i)), ap(vip, 80))]++
	}
	for _, b := range backends {
		// Random choice: each backend's share of 600 flows is 200 +- 3 sigma (35).
		if count[b] < 140 || count[b] > 260 {
			t.Fatalf("backend %s got %d of %d flows: %v", b, count[b], flows, count)
		}
	}
	if len(count) != len(backends) {
		t.Fatalf("flows went to %v, not only the backends", count)
	}
}

// Maglev: a flow's backend is its table entry's, whatever the flow memory
// holds, and removing one backend moves its flows and hardly any other.
func TestMaglevTableIsHonoured(t *testing.T) {
	d := svcSetup(t)
	var backends []netip.AddrPort
	for i := range 10 {
		backends = append(backends, ap(podB, uint16(8000+i)))
	}
	svc := datapath.Service{ID: 3, Frontend: ap(vip, 80), Protocol: datapath.ProtoTCP, Backends: backends, Algorithm: datapath.LBMaglev}
	must(t, d.UpsertService(svc))
	table, err := d.MaglevTable(3)
	must(t, err)
	if len(table) != 1021 {
		t.Fatalf("10 backends want the smallest table of at least 1000 entries (1021), got %d", len(table))
	}
	share := map[netip.AddrPort]int{}
	for _, b := range table {
		share[b]++
	}
	for _, b := range backends {
		if share[b] < 95 || share[b] > 110 {
			t.Fatalf("backend %s holds %d of 1021 entries: %v", b, share[b], share)
		}
	}

	const flows = 1000
	before := make([]netip.AddrPort, flows)
	for i := range flows {
		before[i] = sendToService(t, d, ap(podA, uint16(10000+i)), ap(vip, 80))
	}
	// Forget the flows: the same tuples must find the same backends.
	must(t, d.FlushServiceFlows(3))
	for i := range flows {
		if got := sendToService(t, d, ap(podA, uint16(10000+i)), ap(vip, 80)); got != before[i] {
			t.Fatalf("flow %d went to %s, then (flows forgotten) to %s: not the table's choice", i, before[i], got)
		}
	}

	gone := backends[4]
	svc.Backends = append(append([]netip.AddrPort{}, backends[:4]...), backends[5:]...)
	must(t, d.UpsertService(svc))
	must(t, d.FlushServiceFlows(3))
	moved, others := 0, 0
	for i := range flows {
		got := sendToService(t, d, ap(podA, uint16(10000+i)), ap(vip, 80))
		if got == gone {
			t.Fatalf("flow %d still goes to the removed backend", i)
		}
		if before[i] != gone {
			others++
			if got != before[i] {
				moved++
			}
		}
	}
	if frac := float64(moved) / float64(others); frac > 0.05 {
		t.Fatalf("removing one of 10 backends moved %d of %d flows of the others (%.1f%%), want at most 5%%", moved, others, 100*frac)
	}
	t.Logf("removing one of 10 backends moved %d of %d other flows", moved, others)
}

func TestSessionAffinityKeepsAClientOnOneBackend(t *testing.T) {
	d := svcSetup(t)
	backends := []netip.AddrPort{ap(podB, 8080), ap(podC, 8080), ap(podB, 8081), ap(podC, 8081)}
	must(t, d.UpsertService(datapath.Service{ID: 4, Frontend: ap(vip, 80), Protocol: datapath.ProtoTCP, Backends: backends, AffinityTimeout: 30 * time.Second}))
	first := sendToService(t, d, ap(podA, 30000), ap(vip, 80))
	for i := 1; i < 100; i++ {
		if got := sendToService(t, d, ap(podA, uint16(30000+i)), ap(vip, 80)); got != first {
			t.Fatalf("new flow %d of the same client went to %s, its affinity holds %s", i, got, first)
		}
	}
	// The backend goes: the client gets another, and keeps that one.
	var rest []netip.AddrPort
	for _, b := range backends {
		if b != first {
			rest = append(rest, b)
		}
	}
	must(t, d.UpsertService(datapath.Service{ID: 4, Frontend: ap(vip, 80), Protocol: datapath.ProtoTCP, Backends: rest, AffinityTimeout: 30 * time.Second}))
	second := sendToService(t, d, ap(podA, 31000), ap(vip, 80))
	if second == first {
		t.Fatalf("the client still goes to the removed backend %s", first)
	}
	for i := 1; i < 50; i++ {
		if got := sendToService(t, d, ap(podA, uint16(31000+i)), ap(vip, 80)); got != second {
			t.Fatalf("after the change, flow %d went to %s, affinity holds %s", i, got, second)
		}
	}
}

// Policy sees the backend after translation: A's egress and the backend's
// ingress are decided on the backend's identity and port, not the frontend's.
func TestPolicyJudgesTheBackendAfterTranslation(t *testing.T) {
	d := svcSetup(t)
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA, podA6}, EgressEnforced: true}))
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 2, Identity: idB, IPs: []netip.Addr{podB, podB6}, IngressEnforced: true}))
	// A may reach B on 8080 only; B admits A on 8080 only.
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: idB, Direction: datapath.Egress, Protocol: 6, PortLo: 8080}}))
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{{Identity: idA, Direction: datapath.Ingress, Protocol: 6, PortLo: 8080}}))
	must(t, d.UpsertService(datapath.Service{ID: 1, Frontend: ap(vip, 80), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 8080)}}))
	must(t, d.UpsertService(datapath.Service{ID: 2, Frontend: ap(vip, 81), Protocol: 6, Backends: []netip.AddrPort{ap(podC, 8080)}}))
	must(t, d.UpsertService(datapath.Service{ID: 5, Frontend: ap(netip.MustParseAddr("10.96.0.11"), 8080), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 80)}}))

	res, ev := runSvc(t, d, datapath.FromContainer, build(t, tcp(podA, vip, 40000, 80, "SYN")))
	expectForwarded(t, ev)
	if ev.DstIdentity != idB || ev.MatchType.String() != "l3-l4" {
		t.Fatalf("A's egress should match B:8080, got %s", ev)
	}
	_, ev = runSvc(t, d, datapath.ToContainer, res.Out)
	expectForwarded(t, ev)

	// C is not allowed: dropped at A's egress, named as C.
	_, ev = runSvc(t, d, datapath.FromContainer, build(t, tcp(podA, vip, 40001, 81, "SYN")))
	expectDropped(t, ev, "POLICY_DENIED")
	if ev.DstIdentity != idC || ev.Dst != podC || ev.DstPort != 8080 {
		t.Fatalf("the drop should name the backend C:8080, got %s", ev)
	}

	// B on port 80 through a frontend on 8080: B's ingress allows 8080, and
	// that must not let port 80 in. (A's egress allows only 8080 too.)
	_, ev = runSvc(t, d, datapath.FromContainer, build(t, tcp(podA, netip.MustParseAddr("10.96.0.11"), 40002, 8080, "SYN")))
	expectDropped(t, ev, "POLICY_DENIED")
	if ev.DstPort != 80 {
		t.Fatalf("A's egress should judge the backend port 80, got %s", ev)
	}
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA, podA6}}))
	res, ev = runSvc(t, d, datapath.FromContainer, build(t, tcp(podA, netip.MustParseAddr("10.96.0.11"), 40003, 8080, "SYN")))
	expectForwarded(t, ev)
	_, ev = runSvc(t, d, datapath.ToContainer, res.Out)
	expectDropped(t, ev, "POLICY_DENIED")
	if ev.DstPort != 80 || ev.SrcIdentity != idA {
		t.Fatalf("B's ingress should judge A on port 80, got %s", ev)
	}
}

// Traffic the service table cannot serve, each with its reason.
func TestServiceDropsNameTheirReason(t *testing.T) {
	d := svcSetup(t)
	must(t, d.UpsertService(datapath.Service{ID: 1, Frontend: ap(vip, 80), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 8080)}}))
	must(t, d.UpsertService(datapath.Service{ID: 2, Frontend: ap(vip, 443), Protocol: 6}))
	must(t, d.UpsertService(datapath.Service{ID: 3, Frontend: ap(vip, 9000), Protocol: datapath.ProtoSCTP, Backends: []netip.AddrPort{ap(podB, 9000)}}))
	for _, c := range []struct {
		name   string
		spec   packet.Spec
		reason string
	}{
		{"a service without backends", tcp(podA, vip, 40000, 443, "SYN"), "SERVICE_NO_BACKEND"},
		{"a port no service has", tcp(podA, vip, 40000, 81, "SYN"), "SERVICE_WRONG_PORT"},
		{"UDP to a TCP service's port", packet.Spec{Src: podA, Dst: vip, Protocol: "UDP", SrcPort: 5, DstPort: 80}, "SERVICE_WRONG_PORT"},
		{"ping to a frontend", packet.Spec{Src: podA, Dst: vip, Protocol: "ICMP", ICMPType: 8, ICMPID: 9}, "SERVICE_WRONG_PORT"},
		{"an unallocated service address", tcp(podA, netip.MustParseAddr("10.96.0.99"), 40000, 80, "SYN"), "SERVICE_UNALLOCATED"},
		{"SCTP to a frontend", packet.Spec{Src: podA, Dst: vip, Protocol: "SCTP", SrcPort: 5, DstPort: 9000}, "SERVICE_SCTP"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, ev := runSvc(t, d, datapath.FromContainer, build(t, c.spec))
			expectDropped(t, ev, c.reason)
			if res.Code != datapath.TCActShot {
				t.Fatalf("want the packet shot, got code %d", res.Code)
			}
		})
	}
	// Outside the service range, an address no frontend holds is none of
	// the services' business.
	_, ev := runSvc(t, d, datapath.FromContainer, build(t, tcp(podA, world, 40000, 80, "SYN")))
	expectForwarded(t, ev)
}

// A service that rejects answers in place: the client gets ICMP port
// unreachable from the frontend, sent straight back into the pod.
func TestAServiceWithoutBackendsRejects(t *testing.T) {
	for _, c := range []struct {
		name           string
		client, front  netip.Addr
		proto          string
		want           string
		wrongPortProbe bool
	}{
		{"TCP over IPv4", podA, vip, "TCP", "ICMP 3/3", false},
		{"UDP over IPv4", podA, vip, "UDP", "ICMP 3/3", false},
		{"TCP over IPv6", podA6, vip6, "TCP", "ICMPv6 1/4", false},
		{"a wrong port over IPv4", podA, vip, "TCP", "ICMP 3/3", true},
		{"a wrong port over IPv6", podA6, vip6, "UDP", "ICMPv6 1/4", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := svcSetup(t)
			must(t, d.UpsertService(datapath.Service{ID: 1, Frontend: ap(c.front, 80), Protocol: 6, Reject: true}))
			must(t, d.UpsertService(datapath.Service{ID: 2, Frontend: ap(c.front, 80), Protocol: 17, Reject: true}))
			port, reason := uint16(80), "SERVICE_NO_BACKEND"
			if c.wrongPortProbe {
				port, reason = 81, "SERVICE_WRONG_PORT"
			}
			s := packet.Spec{Src: c.client, Dst: c.front, Protocol: c.proto, SrcPort: 40000, DstPort: port, Payload: []byte("x")}
			if c.proto == "TCP" {
				s.Flags = []string{"SYN"}
			}
			sent := build(t, s)
			res, ev := runSvc(t, d, datapath.FromContainer, sent)
			expectDropped(t, ev, reason)
			if res.Code != datapath.TCActRedirect {
				t.Fatalf("want the answer redirected into the pod (code %d), got %d", datapath.TCActRedirect, res.Code)
			}
			got := decode(t, res.Out)
			if got.proto != c.want || got.src.Addr() != c.front || got.dst.Addr() != c.client {
				t.Fatalf("want %s from %s to %s, got %+v", c.want, c.front, c.client, got)
			}
			if !bytes.Equal(res.Out[0:6], sent[6:12]) || !bytes.Equal(res.Out[6:12], sent[0:6]) {
				t.Fatalf("the answer should go back to the sender's MAC: %x", res.Out[:12])
			}
			// The answer quotes the packet it answers (its IP header on).
			quoted := res.Out[14+20+8:]
			if c.client.Is6() {
				quoted = res.Out[14+40+8:]
			}
			if !bytes.Equal(quoted, sent[14:14+len(quoted)]) {
				t.Fatalf("the answer quotes %x, want the start of %x", quoted, sent[14:])
			}
		})
	}
	// Without Reject, the same packet is dropped silently.
	d := svcSetup(t)
	must(t, d.UpsertService(datapath.Service{ID: 1, Frontend: ap(vip, 80), Protocol: 6}))
	res, ev := runSvc(t, d, datapath.FromContainer, build(t, tcp(podA, vip, 40000, 80, "SYN")))
	expectDropped(t, ev, "SERVICE_NO_BACKEND")
	if res.Code != datapath.TCActShot {
		t.Fatalf("without Reject the packet is shot, got code %d", res.Code)
	}
}

// A pod reaching itself through its own service: the packet comes back to
// it from the hairpin address (so its answer leaves the pod), turned back
// on its own device, and the answer returns to it from the frontend.
func TestHairpin(t *testing.T) {
	d := svcSetup(t)
	// A admits only itself, on 8080: the hairpin is judged as A -> A.
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA, podA6}, IngressEnforced: true}))
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: idA, Direction: datapath.Ingress, Protocol: 6, PortLo: 8080}}))
	must(t, d.UpsertService(datapath.Service{ID: 1, Frontend: ap(vip, 80), Protocol: 6, Backends: []netip.AddrPort{ap(podA, 8080)}}))
	dev, ok := d.DeviceOf(1)
	if !ok {
		t.Fatal("A has no test device")
	}

	res, ev := runSvc(t, d, datapath.FromContainer, build(t, tcp(podA, vip, 40000, 80, "SYN")))
	expectForwarded(t, ev)
	if res.Code != datapath.TCActRedirect {
		t.Fatalf("the hairpin should turn back to A's device, got code %d", res.Code)
	}
	expectSeg(t, "hairpin leaving A", decode(t, res.Out), ap(hairpin4, 40000), ap(podA, 8080))
	sent := build(t, tcp(podA, vip, 40000, 80, "SYN"))
	if !bytes.Equal(res.Out[0:6], sent[6:12]) || !bytes.Equal(res.Out[6:12], sent[0:6]) {
		t.Fatalf("a frame turned back to A must be addressed to A's MAC: %x", res.Out[:12])
	}

	in, err := d.RunTurnedBack(dev, res.Out)
	must(t, err)
	ev = oneEvent(t, in)
	expectForwarded(t, ev)
	if ev.SrcIdentity != idA || ev.MatchType.String() != "l3-l4" {
		t.Fatalf("A's ingress should see A itself, got %s", ev)
	}

	// A answers the hairpin address; the answer turns back to A with A
	// as its destination, and enters A from the frontend.
	res, ev = runSvc(t, d, datapath.FromContainer, build(t, tcp(podA, hairpin4, 8080, 40000, "SYN", "ACK")))
	expectForwarded(t, ev)
	if res.Code != datapath.TCActRedirect || ev.CT.String() != "reply" {
		t.Fatalf("A's answer should be a reply turned back, got code %d %s", res.Code, ev)
	}
	expectSeg(t, "answer leaving A", decode(t, res.Out), ap(podA, 8080), ap(podA, 40000))
	in, err = d.RunTurnedBack(dev, res.Out)
	must(t, err)
	ev = oneEvent(t, in)
	expectForwarded(t, ev)
	expectSeg(t, "answer entering A", decode(t, in.Out), ap(vip, 80), ap(podA, 40000))

	// The hairpin address is A's own identity only when A's own device
	// turned the packet back: from anywhere else it is the world.
	_, ev = runSvc(t, d, datapath.ToContainer, build(t, tcp(hairpin4, podA, 40001, 8080, "SYN")))
	expectDropped(t, ev, "POLICY_DENIED")
	if ev.SrcIdentity == idA {
		t.Fatalf("a packet from the hairpin address that A's device did not turn back was given A's identity: %s", ev)
	}
}

func TestServiceAPIChecksBeforeWriting(t *testing.T) {
	d := svcSetup(t)
	good := datapath.Service{ID: 1, Frontend: ap(vip, 80), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 8080)}}
	must(t, d.UpsertService(good))
	for _, c := range []struct {
		name string
		svc  datapath.Service
		want string
	}{
		{"id 0", datapath.Service{Frontend: ap(vip, 81), Protocol: 6}, "id must be"},
		{"id too large", datapath.Service{ID: datapath.ServiceMaxID, Frontend: ap(vip, 81), Protocol: 6}, "id must be"},
		{"port 0", datapath.Service{ID: 2, Frontend: ap(vip, 0), Protocol: 6}, "non-zero port"},
		{"ICMP", datapath.Service{ID: 2, Frontend: ap(vip, 81), Protocol: 1}, "protocol 1"},
		{"mixed families", datapath.Service{ID: 2, Frontend: ap(vip, 81), Protocol: 6, Backends: []netip.AddrPort{ap(podB6, 80)}}, "not of the frontend's family"},
		{"a backend twice", datapath.Service{ID: 2, Frontend: ap(vip, 81), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 80), ap(podB, 80)}}, "listed twice"},
		{"a frontend taken", datapath.Service{ID: 2, Frontend: ap(vip, 80), Protocol: 6}, "collides with installed service 1"},
		{"a table size not listed", datapath.Service{ID: 2, Frontend: ap(vip, 81), Protocol: 6, Algorithm: datapath.LBMaglev, MaglevTableSize: 1000}, "want one of"},
		{"an affinity below a second", datapath.Service{ID: 2, Frontend: ap(vip, 81), Protocol: 6, AffinityTimeout: time.Millisecond}, "affinity timeout"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := d.UpsertService(c.svc)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Fatalf("want an error about %q, got %v", c.want, err)
			}
		})
	}
	// A bad service in a sync writes nothing at all.
	err := d.SyncServices([]datapath.Service{
		{ID: 9, Frontend: ap(vip, 90), Protocol: 6, Backends: []netip.AddrPort{ap(podC, 90)}},
		{ID: 10, Frontend: ap(vip, 90), Protocol: 6},
	})
	if err == nil {
		t.Fatal("two services on one frontend were accepted")
	}
	if got := d.Services(); len(got) != 1 || !got[0].Frontend.IsValid() || got[0].ID != 1 {
		t.Fatalf("a refused sync changed the services: %v", got)
	}
	_, ev := runSvc(t, d, datapath.FromContainer, build(t, tcp(podA, vip, 40000, 90, "SYN")))
	expectDropped(t, ev, "SERVICE_WRONG_PORT")
}

func TestServiceMapLimitsAreErrors(t *testing.T) {
	d := datapathtest.LoadConfig(t, datapath.Config{LBServiceEntries: 4, LBBackendSlots: 3})
	// Two frontends on one address: three entries.
	must(t, d.SyncServices([]datapath.Service{
		{ID: 1, Frontend: ap(vip, 80), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 80)}},
		{ID: 2, Frontend: ap(vip, 81), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 81)}},
	}))
	err := d.UpsertService(datapath.Service{ID: 3, Frontend: ap(netip.MustParseAddr("10.96.0.11"), 80), Protocol: 6})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("limit of 4")) {
		t.Fatalf("a fifth entry should be refused naming the limit, got %v", err)
	}
	err = d.UpsertService(datapath.Service{ID: 2, Frontend: ap(vip, 81), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 81), ap(podC, 81), ap(podA, 81)}})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("limit of 3")) {
		t.Fatalf("a fourth backend slot should be refused naming the limit, got %v", err)
	}
	// Defaults: 100k services with two ports each fit.
	def := datapathtest.Load(t)
	if n := def.ServiceLimits(); n.Entries < 300_000 || n.BackendSlots < 600_000 {
		t.Fatalf("default limits %+v do not hold 100k two-port services", n)
	}
}

func TestDeletingAServiceRemovesItAll(t *testing.T) {
	d := svcSetup(t)
	must(t, d.UpsertService(datapath.Service{ID: 1, Frontend: ap(vip, 80), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 8080), ap(podC, 8080)},
		Algorithm: datapath.LBMaglev, AffinityTimeout: time.Minute}))
	sendToService(t, d, ap(podA, 40000), ap(vip, 80))
	before, err := d.ConntrackEntries()
	must(t, err)
	must(t, d.DeleteService(1))
	if after, _ := d.ConntrackEntries(); after != before-1 {
		t.Fatalf("the service's flow should leave conntrack: %d entries, then %d", before, after)
	}
	if table, err := d.MaglevTable(1); err != nil || table != nil {
		t.Fatalf("the maglev table is still there: %d entries, %v", len(table), err)
	}
	if n := d.ServiceEntries(); n != (datapath.ServiceCounts{}) {
		t.Fatalf("service maps still hold %+v", n)
	}
	_, ev := runSvc(t, d, datapath.FromContainer, build(t, tcp(podA, vip, 40001, 80, "SYN")))
	expectDropped(t, ev, "SERVICE_UNALLOCATED")
}

func TestResetForgetsServices(t *testing.T) {
	d := svcSetup(t)
	must(t, d.SyncServices([]datapath.Service{
		{ID: 1, Frontend: ap(vip, 80), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 8080)}, Algorithm: datapath.LBMaglev},
		{ID: 2, Frontend: ap(vip6, 80), Protocol: 6, Backends: []netip.AddrPort{ap(podB6, 8080)}, AffinityTimeout: time.Minute},
	}))
	sendToService(t, d, ap(podA, 40000), ap(vip, 80))
	sendToService(t, d, ap(podA6, 40000), ap(vip6, 80))
	if n := d.ServiceEntries(); n.Entries != 4 || n.BackendSlots != 2 || n.MaglevTables != 1 || n.Flows != 2 || n.Affinities != 1 {
		t.Fatalf("before the reset the maps hold %+v", n)
	}
	must(t, d.Reset())
	if n := d.ServiceEntries(); n != (datapath.ServiceCounts{}) || len(d.Services()) != 0 {
		t.Fatalf("after the reset the maps hold %+v, services %v", n, d.Services())
	}
	// The same ids and frontends can be written again.
	must(t, d.UpsertService(datapath.Service{ID: 1, Frontend: ap(vip, 80), Protocol: 6, Backends: []netip.AddrPort{ap(podC, 8080)}}))
}

// A restarted agent adopts pinned service maps: it sees what the earlier run
// wrote, keeps it working, and its sync removes what is no longer wanted.
func TestPinnedServicesAreAdopted(t *testing.T) {
	cfg := datapath.Config{PinPath: filepath.Join(datapathtest.BPFFS(t), "maps")}
	want := []datapath.Service{
		{ID: 1, Frontend: ap(vip, 80), Protocol: 6, Backends: []netip.AddrPort{ap(podB, 8080), ap(podC, 8080)}, Algorithm: datapath.LBMaglev, MaglevTableSize: 251},
		{ID: 2, Frontend: ap(vip, 53), Protocol: 17, Backends: []netip.AddrPort{ap(podC, 5353)}, AffinityTimeout: time.Hour, Reject: true},
	}
	first := datapathtest.LoadConfig(t, cfg)
	must(t, first.SyncServices(want))
	table, err := first.MaglevTable(1)
	must(t, err)
	first.Close()

	second := datapathtest.LoadConfig(t, cfg)
	got := second.Services()
	if len(got) != 2 || !slices.Equal(got[0].Backends, want[0].Backends) || got[0].Algorithm != datapath.LBMaglev ||
		got[1].AffinityTimeout != time.Hour || !got[1].Reject || got[1].Frontend != want[1].Frontend {
		t.Fatalf("adopted %+v, want %+v", got, want)
	}
	again, err := second.MaglevTable(1)
	must(t, err)
	if !slices.Equal(table, again) {
		t.Fatal("the Maglev table changed across the restart")
	}
	// Syncing the same services changes nothing; dropping one removes it.
	must(t, second.SyncServices(want))
	if again, _ = second.MaglevTable(1); !slices.Equal(table, again) {
		t.Fatal("a sync of the same services rebuilt the table differently")
	}
	must(t, second.SyncServices(want[:1]))
	if n := second.ServiceEntries(); n.Entries != 2 || n.BackendSlots != 2 || n.RevNAT != 1 {
		t.Fatalf("after dropping service 2 the maps hold %+v", n)
	}
}

// A table the control plane built is the table the datapath uses.
func TestAGivenMaglevTableIsUsed(t *testing.T) {
	d := svcSetup(t)
	backends := []netip.AddrPort{ap(podB, 8080), ap(podC, 8080)}
	// Entries 0..250: all but the last on C.
	given := make([]int, 251)
	for i := range given {
		given[i] = 1
	}
	given[250] = 0
	must(t, d.UpsertService(datapath.Service{ID: 1, Frontend: ap(vip, 80), Protocol: 6, Backends: backends, Algorithm: datapath.LBMaglev, MaglevTable: given}))
	table, err := d.MaglevTable(1)
	must(t, err)
	for i, b := range table {
		if b != backends[given[i]] {
			t.Fatalf("entry %d holds %s, the given table says %s", i, b, backends[given[i]])
		}
	}
	onC := 0
	for i := range 200 {
		if sendToService(t, d, ap(podA, uint16(20000+i)), ap(vip, 80)) == backends[1] {
			onC++
		}
	}
	if onC < 190 {
		t.Fatalf("%d of 200 flows went to C, which holds 250 of 251 entries", onC)
	}
	err = d.UpsertService(datapath.Service{ID: 2, Frontend: ap(vip, 81), Protocol: 6, Backends: backends, Algorithm: datapath.LBMaglev, MaglevTable: []int{0, 2}})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("not a backend index")) {
		t.Fatalf("an index past the backends should be refused, got %v", err)
	}
}

// A tuple reused by a new connection through a service after a direct one
// (and back) takes the new connection's reverse NAT: its replies come from
// the frontend, then from the backend itself again.
func TestAReusedTupleTakesTheNewConnectionsReverseNAT(t *testing.T) {
	d := svcSetup(t)
	front, back, client := ap(vip, 80), ap(podB, 8080), ap(podA, 40000)
	must(t, d.UpsertService(datapath.Service{ID: 7, Frontend: front, Protocol: datapath.ProtoTCP, Backends: []netip.AddrPort{back}}))
	replyFrom := func() netip.AddrPort {
		res, _ := runSvc(t, d, datapath.FromContainer, build(t, tcpSpec(back, client, "SYN", "ACK")))
		res, ev := runSvc(t, d, datapath.ToContainer, res.Out)
		expectForwarded(t, ev)
		return decode(t, res.Out).src
	}
	for i, c := range []struct {
		to, want netip.AddrPort
	}{{back, back}, {front, front}, {back, back}} {
		res, ev := runSvc(t, d, datapath.FromContainer, build(t, tcpSpec(client, c.to, "SYN")))
		expectForwarded(t, ev)
		expectSeg(t, "leaving", decode(t, res.Out), client, back)
		if got := replyFrom(); got != c.want {
			t.Fatalf("connection %d to %s: the reply comes from %s, want %s", i+1, c.to, got, c.want)
		}
	}
}
