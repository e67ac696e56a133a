package datapath_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

var (
	podA  = netip.MustParseAddr("10.244.0.10")
	podB  = netip.MustParseAddr("10.244.0.11")
	podC  = netip.MustParseAddr("10.244.0.12")
	world = netip.MustParseAddr("192.0.2.10")
)

const (
	idA, idB, idC = 300, 301, 302
)

// setup installs A (endpoint 1) and B (endpoint 2) and C's address in the ipcache.
func setup(t *testing.T, d *datapath.Datapath, aEgress, bIngress bool) {
	t.Helper()
	must(t, d.SyncIPCache([]datapath.IPCacheEntry{
		{Prefix: netip.PrefixFrom(podA, 32), Identity: idA},
		{Prefix: netip.PrefixFrom(podB, 32), Identity: idB},
		{Prefix: netip.PrefixFrom(podC, 32), Identity: idC},
	}))
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA}, EgressEnforced: aEgress}))
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 2, Identity: idB, IPs: []netip.Addr{podB}, IngressEnforced: bIngress}))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tcp(src, dst netip.Addr, sport, dport uint16, flags ...string) packet.Spec {
	return packet.Spec{Src: src, Dst: dst, Protocol: "TCP", SrcPort: sport, DstPort: dport, Flags: flags}
}

// run sends one crafted frame through a hook and returns its single event.
func run(t *testing.T, d *datapath.Datapath, h datapath.Hook, s packet.Spec) datapath.Event {
	t.Helper()
	frame, err := packet.Build(s)
	must(t, err)
	return runFrame(t, d, h, frame)
}

// runFrame sends raw bytes through a hook and returns the single event, after
// checking that the return code agrees with the event's verdict.
func runFrame(t *testing.T, d *datapath.Datapath, h datapath.Hook, frame []byte) datapath.Event {
	t.Helper()
	res, err := d.Run(h, frame)
	must(t, err)
	return singleEvent(t, h, res)
}

// runFrameOn is runFrame on a given device, whatever the frame's addresses.
func runFrameOn(t *testing.T, d *datapath.Datapath, h datapath.Hook, ifindex uint32, frame []byte) datapath.Event {
	t.Helper()
	res, err := d.RunOn(h, ifindex, frame)
	must(t, err)
	return singleEvent(t, h, res)
}

func singleEvent(t *testing.T, h datapath.Hook, res datapath.RunResult) datapath.Event {
	t.Helper()
	if len(res.Events) != 1 {
		t.Fatalf("%s: want exactly one event, got %d", h, len(res.Events))
	}
	ev := res.Events[0]
	wantCode := uint32(datapath.TCActOK)
	if ev.Verdict == datapath.VerdictDropped {
		wantCode = datapath.TCActShot
	}
	if res.Code != wantCode {
		t.Fatalf("%s: return code %d disagrees with event verdict %s", h, res.Code, ev.Verdict)
	}
	return ev
}

func expectForwarded(t *testing.T, ev datapath.Event) {
	t.Helper()
	if ev.Verdict != datapath.VerdictForwarded {
		t.Fatalf("want forwarded, got %s", ev)
	}
}

func expectDropped(t *testing.T, ev datapath.Event, reason string) {
	t.Helper()
	if ev.Verdict != datapath.VerdictDropped || ev.Reason.String() != reason {
		t.Fatalf("want dropped %s, got %s", reason, ev)
	}
}

func TestUnselectedEndpointsPassEverything(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, false)
	ev := run(t, d, datapath.FromContainer, tcp(podA, podB, 40000, 80, "SYN"))
	expectForwarded(t, ev)
	if ev.SrcIdentity != idA || ev.DstIdentity != idB || ev.Direction != datapath.Egress || ev.EndpointID != 1 {
		t.Fatalf("event fields wrong: %+v", ev)
	}
	if ev.Src != podA || ev.Dst != podB || ev.SrcPort != 40000 || ev.DstPort != 80 || ev.Protocol != 6 {
		t.Fatalf("event tuple wrong: %s", ev)
	}
	expectForwarded(t, run(t, d, datapath.ToContainer, tcp(podA, podB, 40000, 80, "SYN")))
}

func TestIngressPolicyAllowsOnlyTheListedIdentityAndPort(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, true)
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{{Identity: idA, Direction: datapath.Ingress, Protocol: 6, PortLo: 80, Cookie: 7}}))

	ev := run(t, d, datapath.ToContainer, tcp(podA, podB, 40001, 80, "SYN"))
	expectForwarded(t, ev)
	if ev.MatchType.String() != "l3-l4" || ev.Cookie != 7 {
		t.Fatalf("want an l3-l4 match with cookie 7, got %s cookie %d", ev.MatchType, ev.Cookie)
	}
	expectDropped(t, run(t, d, datapath.ToContainer, tcp(podA, podB, 40002, 81, "SYN")), "POLICY_DENIED")
	expectDropped(t, run(t, d, datapath.ToContainer, tcp(podC, podB, 40003, 80, "SYN")), "POLICY_DENIED")
	expectDropped(t, run(t, d, datapath.ToContainer, packet.Spec{Src: podA, Dst: podB, Protocol: "UDP", SrcPort: 5, DstPort: 80}), "POLICY_DENIED")
}

func TestDenyWinsOverAllow(t *testing.T) {
	cases := []struct {
		name    string
		entries []datapath.PolicyEntry
		port    uint16
		want    string
	}{
		{"a port deny inside an L3 allow", []datapath.PolicyEntry{
			{Identity: idA, Protocol: 0},
			{Identity: idA, Protocol: 6, PortLo: 80, Action: datapath.PolicyDeny}}, 80, "POLICY_DENYLIST"},
		{"an L3 deny over a port allow of the same identity", []datapath.PolicyEntry{
			{Identity: idA, Action: datapath.PolicyDeny},
			{Identity: idA, Protocol: 6, PortLo: 80}}, 80, "POLICY_DENYLIST"},
		{"a wildcard deny over an identity allow", []datapath.PolicyEntry{
			{Identity: idA, Protocol: 6, PortLo: 80},
			{Identity: 0, Protocol: 6, PortLo: 70, PortHi: 90, Action: datapath.PolicyDeny}}, 80, "POLICY_DENYLIST"},
		{"an allow beside an unrelated deny", []datapath.PolicyEntry{
			{Identity: idA, Protocol: 0},
			{Identity: idA, Protocol: 6, PortLo: 81, Action: datapath.PolicyDeny}}, 80, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := datapathtest.Load(t)
			setup(t, d, false, true)
			must(t, d.SetPolicy(2, c.entries))
			ev := run(t, d, datapath.ToContainer, tcp(podA, podB, 40000, c.port, "SYN"))
			if c.want == "" {
				expectForwarded(t, ev)
			} else {
				expectDropped(t, ev, c.want)
			}
		})
	}
}

func TestPortRangesMatchTheirEdgesOnly(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, true)
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{{Identity: 0, Protocol: 6, PortLo: 5001, PortHi: 5999}}))
	for port, allowed := range map[uint16]bool{5000: false, 5001: true, 5500: true, 5999: true, 6000: false} {
		ev := run(t, d, datapath.ToContainer, tcp(podA, podB, 40000+port, port, "SYN"))
		if allowed {
			expectForwarded(t, ev)
			if ev.MatchType.String() != "l4-only" {
				t.Fatalf("port %d: want l4-only, got %s", port, ev.MatchType)
			}
		} else {
			expectDropped(t, ev, "POLICY_DENIED")
		}
	}
}

func TestConntrackLetsRepliesThroughAndRSTClosesTheFlow(t *testing.T) {
	d := datapathtest.LoadConfig(t, datapath.Config{CTLifetimeClose: 1})
	setup(t, d, true, true)
	// A may open connections to B:80; B's ingress allows A; nothing allows B -> A.
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: idB, Direction: datapath.Egress, Protocol: 6, PortLo: 80}}))
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{{Identity: idA, Direction: datapath.Ingress}}))
	// A's to-container hook polices traffic into A with A's (empty, enforced) ingress.
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA}, EgressEnforced: true, IngressEnforced: true}))

	unsolicited := run(t, d, datapath.ToContainer, tcp(podB, podA, 80, 41000, "SYN", "ACK"))
	expectDropped(t, unsolicited, "POLICY_DENIED")

	expectForwarded(t, run(t, d, datapath.FromContainer, tcp(podA, podB, 41000, 80, "SYN")))
	expectForwarded(t, run(t, d, datapath.ToContainer, tcp(podA, podB, 41000, 80, "SYN")))
	// B's SYN-ACK leaves B (reply to B's ingress entry) and enters A (reply to A's egress entry).
	out := run(t, d, datapath.FromContainer, tcp(podB, podA, 80, 41000, "SYN", "ACK"))
	in := run(t, d, datapath.ToContainer, tcp(podB, podA, 80, 41000, "SYN", "ACK"))
	expectForwarded(t, out)
	expectForwarded(t, in)
	if in.CT.String() != "reply" {
		t.Fatalf("want the SYN-ACK classified as reply, got %s", in.CT)
	}
	est := run(t, d, datapath.FromContainer, tcp(podA, podB, 41000, 80, "ACK"))
	if est.CT.String() != "established" {
		t.Fatalf("want established, got %s", est.CT)
	}
	expectForwarded(t, run(t, d, datapath.ToContainer, tcp(podB, podA, 80, 41000, "RST")))
	// The RST leaves the entry for the close lifetime, so the connection's
	// late segments still match it; once that passes, B's packets are new
	// flows into A and meet A's ingress policy.
	late := run(t, d, datapath.ToContainer, tcp(podB, podA, 80, 41000, "ACK"))
	expectForwarded(t, late)
	if late.CT.String() != "reply" {
		t.Fatalf("want a late segment after RST classified as reply, got %s", late.CT)
	}
	time.Sleep(1100 * time.Millisecond)
	expectDropped(t, run(t, d, datapath.ToContainer, tcp(podB, podA, 80, 41000, "ACK")), "POLICY_DENIED")
}

func TestICMPErrorsAboutTrackedFlowsAreRelated(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, false)
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA}, IngressEnforced: true}))
	udp := packet.Spec{Src: podA, Dst: world, Protocol: "UDP", SrcPort: 5353, DstPort: 53}
	unreach := packet.Spec{Src: world, Dst: podA, Protocol: "ICMP", ICMPType: packet.ICMPv4DestUnreach, ICMPCode: 3, Inner: &udp}

	// Before the datagram, the error is about no flow of A's.
	expectDropped(t, run(t, d, datapath.ToContainer, unreach), "ICMP_ERROR_UNRELATED")
	expectForwarded(t, run(t, d, datapath.FromContainer, udp))
	ev := run(t, d, datapath.ToContainer, unreach)
	expectForwarded(t, ev)
	if ev.CT.String() != "related" {
		t.Fatalf("want related, got %s", ev.CT)
	}
}

func TestMalformedFramesAreDroppedWithANamedReason(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, false)
	good, err := packet.Build(tcp(podA, podB, 1, 80, "SYN"))
	must(t, err)
	v6, err := packet.Build(packet.Spec{Src: netip.MustParseAddr("fd00::a"), Dst: netip.MustParseAddr("fd00::b"), Protocol: "UDP", SrcPort: 1, DstPort: 53})
	must(t, err)
	v6short := v6[:56]
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"a bare IPv4 header", good[:34], "TRUNCATED"},
		{"a bare Ethernet header of an unknown type", mutate(func(b []byte) []byte { b[12], b[13] = 0x88, 0xb5; return b[:14] }), "UNSUPPORTED_L3"},
		{"an IPv6 payload length beyond the frame", v6short, "TRUNCATED"},
		{"an IPv4 version field of 6", mutate(func(b []byte) []byte { b[14] = 0x65; return b }), "INVALID_IPV4"},
		{"a TCP header cut short", good[:40], "TRUNCATED"},
		{"an IHL below five words", mutate(func(b []byte) []byte { b[14] = 0x44; return b }), "INVALID_IPV4"},
		{"a total length beyond the frame", mutate(func(b []byte) []byte { b[16], b[17] = 0x05, 0xdc; return b }), "TRUNCATED"},
		{"a later fragment whose first was not seen", mutate(func(b []byte) []byte { b[20] = 0x00; b[21] = 0x10; return b }), "FRAG_NOT_FOUND"},
		{"an unknown ethertype", mutate(func(b []byte) []byte { b[12], b[13] = 0x88, 0xb5; return b }), "UNSUPPORTED_L3"},
		{"a TCP data offset below five", mutate(func(b []byte) []byte { b[46] = 0x40; return b }), "INVALID_L4"},
		{"a spoofed source address", mutate(func(b []byte) []byte { b[26] = 11; return b }), "INVALID_SOURCE"},
	}
	// Each frame leaves A's own device, whatever its addresses say.
	dev, _ := d.DeviceOf(1)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectDropped(t, runFrameOn(t, d, datapath.FromContainer, dev, c.frame), c.want)
		})
	}
}

func TestCountersFollowVerdicts(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, true)
	must(t, d.SetPolicy(2, nil))
	run(t, d, datapath.ToContainer, tcp(podA, podB, 1, 80, "SYN"))
	run(t, d, datapath.FromContainer, tcp(podA, podB, 1, 80, "SYN"))
	c, err := d.Counters()
	must(t, err)
	reasons, err := datapath.DropReasons()
	must(t, err)
	denied := c[datapath.CounterKey{Reason: reasons["POLICY_DENIED"], Direction: datapath.Ingress}]
	fwd := c[datapath.CounterKey{Reason: 0, Direction: datapath.Egress}]
	if denied.Packets != 1 || fwd.Packets != 1 || denied.Bytes == 0 {
		t.Fatalf("counters: %+v", c)
	}
}

func TestResetLeavesNothingBehind(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, true, true)
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: idB, Direction: datapath.Egress}}))
	expectForwarded(t, run(t, d, datapath.FromContainer, tcp(podA, podB, 1, 80, "SYN")))
	must(t, d.Reset())

	if n, err := d.ConntrackEntries(); err != nil || n != 0 {
		t.Fatalf("conntrack holds %d entries after reset (%v)", n, err)
	}
	if c, err := d.Counters(); err != nil || len(c) != 0 {
		t.Fatalf("counters after reset: %v (%v)", c, err)
	}
	expectDropped(t, run(t, d, datapath.FromContainer, tcp(podA, podB, 1, 80, "SYN")), "INVALID_SOURCE")
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA}}))
	ev := run(t, d, datapath.FromContainer, tcp(podA, podB, 2, 80, "SYN"))
	expectForwarded(t, ev)
	if ev.DstIdentity != 2 || ev.CT.String() != "new" {
		t.Fatalf("after reset B must be unknown (world) and the flow new, got %s", ev)
	}
}
