package datapath_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// kernelRuns reports whether BPF_PROG_TEST_RUN accepts the frame at all: the
// kernel refuses frames shorter than an Ethernet header, IPv4 frames shorter
// than a bare IPv4 header, IPv6 frames shorter than a bare IPv6 header, and
// frames larger than its test buffer. Real devices never deliver the first
// three to a TC hook without those bytes; the datapath's own checks are what
// the fuzzer exercises on everything else.
func kernelRuns(frame []byte) bool {
	if len(frame) < 14 || len(frame) > 1514 {
		return false
	}
	switch uint16(frame[12])<<8 | uint16(frame[13]) {
	case 0x0800:
		return len(frame) >= 34
	case 0x86dd:
		return len(frame) >= 54
	}
	return true
}

func fuzzSeeds(f *testing.F) {
	v6a, v6b := netip.MustParseAddr("fd00::a"), netip.MustParseAddr("fd00::b")
	udp := packet.Spec{Src: podA, Dst: world, Protocol: "UDP", SrcPort: 1, DstPort: 53}
	for _, s := range []packet.Spec{
		tcp(podA, podB, 40000, 80, "SYN"),
		tcp(podB, podA, 80, 40000, "SYN", "ACK"),
		tcp(podA, podB, 40000, 80, "RST"),
		udp,
		{Src: podA, Dst: podB, Protocol: "SCTP", SrcPort: 9, DstPort: 80},
		{Src: podA, Dst: podB, Protocol: "ICMP", ICMPType: packet.ICMPv4EchoRequest, ICMPID: 7},
		{Src: world, Dst: podA, Protocol: "ICMP", ICMPType: packet.ICMPv4DestUnreach, ICMPCode: 3, Inner: &udp},
		{Src: v6a, Dst: v6b, Protocol: "TCP", SrcPort: 1, DstPort: 443, Flags: []string{"SYN"}},
		{Src: v6a, Dst: v6b, Protocol: "ICMPv6", ICMPType: packet.ICMPv6NeighborSol},
		{Src: netip.MustParseAddr("fe80::1"), Dst: netip.MustParseAddr("ff02::1:ff00:b"), Protocol: "ICMPv6", ICMPType: packet.ICMPv6NeighborSol, HopLimit: 255},
		// Services (setupFuzz): translated, hairpin, rejected, wrong port.
		tcp(podA, fuzzVIP, 40000, 80, "SYN"),
		tcp(podA, fuzzVIP, 40000, 81, "SYN"),
		{Src: podA, Dst: fuzzVIP, Protocol: "UDP", SrcPort: 5, DstPort: 53},
		tcp(podA, fuzzVIP, 40000, 82, "SYN"),
		{Src: v6a, Dst: netip.MustParseAddr("fd00:96::10"), Protocol: "TCP", SrcPort: 1, DstPort: 80, Flags: []string{"SYN"}},
		tcp(podA, netip.MustParseAddr("169.254.42.1"), 8080, 40000, "SYN", "ACK"),
	} {
		frame, err := packet.Build(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame, false)
		f.Add(frame, true)
	}
	// ARP from A: honest, and claiming B's address.
	for _, sender := range []netip.Addr{podA, podB} {
		frame, err := packet.ARP(1, datapath.TestMAC, datapath.TestMAC, sender, podB)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame, false)
	}
	// Fragments of a UDP datagram, over IPv4 and IPv6: first, middle and last.
	for _, src := range [][2]netip.Addr{{podA, podB}, {v6a, v6b}} {
		frame, err := packet.Build(packet.Spec{Src: src[0], Dst: src[1], Protocol: "UDP", SrcPort: 1, DstPort: 53, Payload: make([]byte, 40)})
		if err != nil {
			f.Fatal(err)
		}
		fs, err := packet.Fragment(frame, 3, 16, 16)
		if err != nil {
			f.Fatal(err)
		}
		for _, fr := range fs {
			f.Add(fr, false)
			f.Add(fr, true)
		}
	}
}

// FuzzDatapathAlwaysDecides feeds arbitrary frames to both pod hooks: each run
// must return pass or drop, emit exactly one event that agrees with the return
// code, and every drop must carry a named reason.
func FuzzDatapathAlwaysDecides(f *testing.F) {
	fuzzSeeds(f)
	d := datapathtest.Load(f)
	setupFuzz(f, d)
	devA, _ := d.DeviceOf(1)
	devB, _ := d.DeviceOf(2)
	named := namedReasons(f)
	f.Fuzz(func(t *testing.T, frame []byte, toContainer bool) {
		if !kernelRuns(frame) {
			t.Skip("the kernel refuses to run TC programs on this frame")
		}
		hook := datapath.FromContainer
		if toContainer {
			hook = datapath.ToContainer
		}
		// Frames cross A's device unless they are addressed to B: a device
		// no endpoint owns would drop them before the parser sees them.
		dev := devA
		if dst := frameDst(frame); toContainer && (dst == podB || dst == netip.MustParseAddr("fd00::b")) {
			dev = devB
		}
		res, err := d.RunOn(hook, dev, frame)
		if err != nil {
			t.Fatalf("no verdict: %v", err)
		}
		if res.Code != datapath.TCActOK && res.Code != datapath.TCActShot && res.Code != datapath.TCActRedirect {
			t.Fatalf("return code %d is neither pass, drop nor redirect", res.Code)
		}
		if len(res.Events) != 1 {
			t.Fatalf("want one event per verdict, got %d", len(res.Events))
		}
		ev := res.Events[0]
		switch {
		case res.Code == datapath.TCActShot && (ev.Verdict != datapath.VerdictDropped || ev.Reason == 0 || !named[ev.Reason]):
			t.Fatalf("drop without a named reason: %s", ev)
		case res.Code == datapath.TCActOK && (ev.Verdict == datapath.VerdictDropped || ev.Reason != 0):
			t.Fatalf("pass reported as %s", ev)
		case res.Code == datapath.TCActRedirect && ev.Verdict == datapath.VerdictDropped && !named[ev.Reason]:
			// A redirect is a hairpin turned back (forwarded) or a
			// service's reject answer (a drop with its reason).
			t.Fatalf("reject without a named reason: %s", ev)
		}
	})
}

// namedReasons is the set of drop reasons the datapath names.
func namedReasons(tb testing.TB) map[datapath.DropReason]bool {
	reasons, err := datapath.DropReasons()
	if err != nil {
		tb.Fatal(err)
	}
	named := map[datapath.DropReason]bool{}
	for _, r := range reasons {
		named[r] = true
	}
	return named
}

// setupFuzz gives the fuzzer enforced endpoints with allow and deny entries,
// so the policy and conntrack paths are reachable.
func setupFuzz(tb testing.TB, d *datapath.Datapath) {
	for _, err := range []error{
		d.SyncIPCache([]datapath.IPCacheEntry{
			{Prefix: netip.PrefixFrom(podA, 32), Identity: idA},
			{Prefix: netip.PrefixFrom(podB, 32), Identity: idB},
			{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Identity: 1<<24 | 1},
		}),
		d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA, netip.MustParseAddr("fd00::a")}, EgressEnforced: true, IngressEnforced: true}),
		d.UpsertEndpoint(datapath.Endpoint{ID: 2, Identity: idB, IPs: []netip.Addr{podB, netip.MustParseAddr("fd00::b")}}),
		d.SetPolicy(1, []datapath.PolicyEntry{
			{Identity: idB, Direction: datapath.Egress, Protocol: 6, PortLo: 80, PortHi: 90},
			{Identity: 0, Direction: datapath.Egress, Protocol: 17, PortLo: 53},
			{Identity: idB, Direction: datapath.Egress, Protocol: 6, PortLo: 85, Action: datapath.PolicyDeny},
			{Identity: idB, Direction: datapath.Ingress},
			{Identity: 0, Direction: datapath.Egress, Protocol: 6, PortLo: 8080, Action: datapath.PolicyRedirect, ProxyPort: 10001},
		}),
		d.SyncServices([]datapath.Service{
			{ID: 1, Frontend: netip.AddrPortFrom(fuzzVIP, 80), Protocol: 6, Backends: []netip.AddrPort{netip.AddrPortFrom(podB, 80)}, Algorithm: datapath.LBMaglev},
			{ID: 2, Frontend: netip.AddrPortFrom(fuzzVIP, 81), Protocol: 6, Backends: []netip.AddrPort{netip.AddrPortFrom(podA, 8080)}},
			{ID: 3, Frontend: netip.AddrPortFrom(fuzzVIP, 53), Protocol: 17, Reject: true},
			{ID: 4, Frontend: netip.MustParseAddrPort("[fd00:96::10]:80"), Protocol: 6, Reject: true, AffinityTimeout: time.Minute,
				Backends: []netip.AddrPort{netip.MustParseAddrPort("[fd00::b]:80")}},
		}),
	} {
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// fuzzVIP is a frontend address of setupFuzz's services.
var fuzzVIP = netip.MustParseAddr("10.96.0.10")

// frameDst is an IPv4 or IPv6 frame's destination, if it has one.
func frameDst(frame []byte) netip.Addr {
	switch {
	case len(frame) >= 34 && frame[12] == 0x08 && frame[13] == 0x00:
		return netip.AddrFrom4([4]byte(frame[30:34]))
	case len(frame) >= 54 && frame[12] == 0x86 && frame[13] == 0xdd:
		return netip.AddrFrom16([16]byte(frame[38:54]))
	}
	return netip.Addr{}
}
