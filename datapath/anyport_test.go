package datapath_test

import (
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// An ICMP entry for type 0 (echo reply) is exact: it must not become "any
// ICMP type", which is what port 0 meant before AnyPort existed.
func TestICMPTypeZeroEntryIsExact(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, true)
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{{Identity: idA, Direction: datapath.Ingress, Protocol: 1, PortLo: 0}}))
	icmp := func(typ uint8) packet.Spec {
		return packet.Spec{Src: podA, Dst: podB, Protocol: "ICMP", ICMPType: typ, ICMPID: uint16(100 + typ)}
	}
	expectDropped(t, run(t, d, datapath.ToContainer, icmp(8)), "POLICY_DENIED")
	expectDropped(t, run(t, d, datapath.ToContainer, icmp(13)), "POLICY_DENIED")
	expectForwarded(t, run(t, d, datapath.ToContainer, icmp(0)))
}

func TestAnyPortEntryMatchesEveryPortOfItsProtocol(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, true)
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{
		{Identity: idA, Direction: datapath.Ingress, Protocol: 1, AnyPort: true},
		{Identity: idA, Direction: datapath.Ingress, Protocol: 6, AnyPort: true},
	}))
	expectForwarded(t, run(t, d, datapath.ToContainer, packet.Spec{Src: podA, Dst: podB, Protocol: "ICMP", ICMPType: 8, ICMPID: 7}))
	expectForwarded(t, run(t, d, datapath.ToContainer, tcp(podA, podB, 40010, 1, "SYN")))
	expectForwarded(t, run(t, d, datapath.ToContainer, tcp(podA, podB, 40011, 65535, "SYN")))
	expectDropped(t, run(t, d, datapath.ToContainer, packet.Spec{Src: podA, Dst: podB, Protocol: "UDP", SrcPort: 5, DstPort: 80}), "POLICY_DENIED")
}

// A TCP, UDP or SCTP entry for exact port 0 is a caller that meant "any
// port" the old way; it is refused rather than silently narrowed.
func TestPortZeroWithoutAnyPortIsRefusedForPortProtocols(t *testing.T) {
	for _, e := range []datapath.PolicyEntry{
		{Identity: idA, Protocol: 6},
		{Identity: idA, Protocol: 17},
		{Identity: idA, Protocol: 6, AnyPort: true, PortLo: 80},
	} {
		if err := datapath.CheckPolicy([]datapath.PolicyEntry{e}); err == nil || !strings.Contains(err.Error(), "port") {
			t.Errorf("%+v: err = %v, want a refusal naming the port", e, err)
		}
	}
	if err := datapath.CheckPolicy([]datapath.PolicyEntry{{Identity: idA, Protocol: 1}, {Identity: idA, Protocol: 58, PortLo: 0}}); err != nil {
		t.Errorf("ICMP type 0 refused: %v", err)
	}
}
