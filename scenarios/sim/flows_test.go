package sim

import (
	"net/netip"
	"testing"

	"github.com/kestrelnet/kestrel/agent/api"
)

func TestAProbeClaimsItsPacketsBothWaysAndNoOthers(t *testing.T) {
	q := probeFlows{src: netip.MustParseAddr("10.244.0.10"), dst: netip.MustParseAddr("10.244.1.10"),
		protocol: protoTCP, port: 80, since: 1000}
	cases := []struct {
		name string
		f    api.Flow
		want bool
	}{
		{"the request", api.Flow{TimeNs: 1001, Src: "10.244.0.10", Dst: "10.244.1.10", SrcPort: 40000, DstPort: 80, Protocol: 6}, true},
		{"the reply", api.Flow{TimeNs: 1002, Src: "10.244.1.10", Dst: "10.244.0.10", SrcPort: 80, DstPort: 40000, Protocol: 6}, true},
		{"an earlier probe's packet", api.Flow{TimeNs: 999, Src: "10.244.0.10", Dst: "10.244.1.10", DstPort: 80, Protocol: 6}, false},
		{"another port", api.Flow{TimeNs: 1001, Src: "10.244.0.10", Dst: "10.244.1.10", DstPort: 81, Protocol: 6}, false},
		{"another protocol", api.Flow{TimeNs: 1001, Src: "10.244.0.10", Dst: "10.244.1.10", DstPort: 80, Protocol: 17}, false},
		{"another destination", api.Flow{TimeNs: 1001, Src: "10.244.0.10", Dst: "10.244.1.11", DstPort: 80, Protocol: 6}, false},
		{"a connection the other way to the same port", api.Flow{TimeNs: 1001, Src: "10.244.1.10", Dst: "10.244.0.10", SrcPort: 40000, DstPort: 80, Protocol: 6}, false},
	}
	for _, c := range cases {
		if got := q.matches(c.f); got != c.want {
			t.Errorf("%s: matches = %v, want %v", c.name, got, c.want)
		}
	}
	icmp := probeFlows{src: q.src, dst: q.dst, protocol: protoICMP, since: 1000}
	if !icmp.matches(api.Flow{TimeNs: 1001, Src: "10.244.1.10", Dst: "10.244.0.10", DstPort: 0, Protocol: 1}) {
		t.Error("an ICMP echo reply is the probe's")
	}
}
