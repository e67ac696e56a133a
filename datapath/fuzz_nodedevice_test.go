package datapath_test

import (
	"net/netip"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

// FuzzNodeDeviceDecides feeds arbitrary frames to the node device's
// programs, with NodePorts to local and remote backends, masquerade and DSR
// on: every run ends in pass, drop or redirect; a drop is reported once, with
// a named reason; a pass reports at most once and never as a drop.
func FuzzNodeDeviceDecides(f *testing.F) {
	fuzzSeeds(f)
	for _, s := range []struct {
		spec []byte
	}{
		{build(f, tcpSpec(ap(client, 40000), ap(nodeIP, 30080), "SYN"))},
		{build(f, udpSpec(ap(client, 40000), ap(nodeIP, 30081)))},
		{build(f, tcpSpec(ap(podA, 40000), ap(netip.MustParseAddr("203.0.113.11"), 80), "SYN"))},
		{build(f, tcpSpec(ap(remoteBE, 8080), ap(nodeIP, 61000), "SYN", "ACK"))},
		{withDSROption(f, build(f, tcpSpec(ap(client, 40002), ap(podB, 8080), "SYN")), nodeIP, 30080)},
		{withDSRHeader6(build(f, tcpSpec(ap(client6, 40002), ap(podB6, 8080), "SYN")), nodeIP6, 30080)},
		{icmpAbout(f, web.Addr(), 3, 4, build(f, tcpSpec(ap(nodeIP, 61000), web, "ACK")))},
		{icmpAbout(f, podA, 3, 3, build(f, udpSpec(web, ap(podA, 41000))))},
	} {
		f.Add(s.spec, false)
		f.Add(s.spec, true)
	}
	d := datapathtest.LoadConfig(f, datapath.Config{ServiceRanges: []netip.Prefix{svcRange}, NodeDevice: datapath.NodeDevice{
		IPv4: nodeIP, IPv6: nodeIP6, Masquerade: true, DSR: true,
		NonMasqueradeCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}})
	setupFuzz(f, d)
	for _, err := range []error{
		d.UpsertService(nodePortSvc(20, ap(nodeIP, 30080), ap(podB, 8080), ap(remoteBE, 8080))),
		d.UpsertService(datapath.Service{ID: 21, Frontend: ap(nodeIP, 30081), Protocol: datapath.ProtoUDP, External: true, Reject: true}),
		d.UpsertService(datapath.Service{ID: 22, Frontend: ap(lbIP, 80), Protocol: datapath.ProtoTCP, External: true,
			Backends: []netip.AddrPort{ap(remoteBE, 80)}, SourceRanges: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}),
	} {
		if err != nil {
			f.Fatal(err)
		}
	}
	named := namedReasons(f)
	f.Fuzz(func(t *testing.T, frame []byte, egress bool) {
		if !kernelRuns(frame) {
			t.Skip("the kernel refuses to run TC programs on this frame")
		}
		hook := datapath.FromNetdev
		if egress {
			hook = datapath.ToNetdev
		}
		res, err := d.Run(hook, frame)
		if err != nil {
			t.Fatalf("no verdict: %v", err)
		}
		switch res.Code {
		case datapath.TCActOK, datapath.TCActShot, datapath.TCActRedirect:
		default:
			t.Fatalf("return code %d is neither pass, drop nor redirect", res.Code)
		}
		if len(res.Events) > 1 {
			t.Fatalf("one packet, %d events", len(res.Events))
		}
		if res.Code == datapath.TCActShot {
			if len(res.Events) != 1 || res.Events[0].Verdict != datapath.VerdictDropped || !named[res.Events[0].Reason] || res.Events[0].Reason == 0 {
				t.Fatalf("drop without one named reason: %v", res.Events)
			}
		}
		if res.Code == datapath.TCActOK && len(res.Events) == 1 && res.Events[0].Verdict == datapath.VerdictDropped {
			t.Fatalf("pass reported as %s", res.Events[0])
		}
	})
}

// withDSRHeader6 puts the IPv6 DSR Destination Options header naming
// addr:port after an IPv6 frame's header.
func withDSRHeader6(frame []byte, addr netip.Addr, port uint16) []byte {
	opt := append([]byte{frame[14+6], 2, 0x1e, 20, byte(port >> 8), byte(port), 0, 0}, addr.AsSlice()...)
	out := append(append(append([]byte(nil), frame[:54]...), opt...), frame[54:]...)
	out[14+6] = 60
	n := len(out) - 54
	out[18], out[19] = byte(n>>8), byte(n)
	return out
}
