package sim

import (
	"net/netip"
	"strings"
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

// A probe to a ClusterIP claims the flows past the translation: to and from
// one of the service's backends, and nothing to a pod that is none.
func TestAServiceProbeClaimsItsTranslatedFlows(t *testing.T) {
	q := probeFlows{src: netip.MustParseAddr("10.244.0.10"), dst: netip.MustParseAddr("10.96.0.10"), protocol: protoTCP, port: 80, since: 1000,
		backends: []netip.AddrPort{netip.MustParseAddrPort("10.244.1.10:8080"), netip.MustParseAddrPort("10.244.1.11:8080")}}
	cases := []struct {
		name string
		f    api.Flow
		want bool
	}{
		{"before translation", api.Flow{TimeNs: 1001, Src: "10.244.0.10", Dst: "10.96.0.10", SrcPort: 40000, DstPort: 80, Protocol: 6}, true},
		{"at a backend", api.Flow{TimeNs: 1001, Src: "10.244.0.10", Dst: "10.244.1.11", SrcPort: 40000, DstPort: 8080, Protocol: 6}, true},
		{"a backend's reply", api.Flow{TimeNs: 1002, Src: "10.244.1.10", Dst: "10.244.0.10", SrcPort: 8080, DstPort: 40000, Protocol: 6}, true},
		{"a backend's other port", api.Flow{TimeNs: 1001, Src: "10.244.0.10", Dst: "10.244.1.10", DstPort: 9090, Protocol: 6}, false},
		{"a pod that is no backend", api.Flow{TimeNs: 1001, Src: "10.244.0.10", Dst: "10.244.1.12", DstPort: 8080, Protocol: 6}, false},
		{"another client at a backend", api.Flow{TimeNs: 1001, Src: "10.244.0.11", Dst: "10.244.1.10", DstPort: 8080, Protocol: 6}, false},
	}
	for _, c := range cases {
		if got := q.matches(c.f); got != c.want {
			t.Errorf("%s: matches = %v, want %v", c.name, got, c.want)
		}
	}
}

// Sync's wait passes only when the agent translates every expected frontend
// to exactly its backends.
func TestServicesDiffNamesTheFirstMismatch(t *testing.T) {
	want := map[string][]netip.AddrPort{"10.96.0.10:80/TCP": {netip.MustParseAddrPort("10.244.0.10:8080"), netip.MustParseAddrPort("10.244.1.10:8080")}}
	svc := func(front string, backends ...string) api.Service {
		s := api.Service{Frontend: front}
		for _, b := range backends {
			s.Backends = append(s.Backends, api.ServiceBackend{Address: b})
		}
		return s
	}
	for _, c := range []struct {
		name string
		got  []api.Service
		want string
	}{
		{"all there, in another order, beside other services", []api.Service{svc("10.96.0.1:443/TCP", "172.30.0.1:6443"), svc("10.96.0.10:80/TCP", "10.244.1.10:8080", "10.244.0.10:8080")}, ""},
		{"missing", []api.Service{svc("10.96.0.10:80/UDP", "10.244.0.10:8080")}, "no frontend 10.96.0.10:80/TCP"},
		{"a backend short", []api.Service{svc("10.96.0.10:80/TCP", "10.244.0.10:8080")}, "frontend 10.96.0.10:80/TCP goes to [10.244.0.10:8080]"},
	} {
		got := servicesDiff(want, api.Services{Services: c.got})
		if c.want == "" && got != "" || c.want != "" && !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: diff %q, want %q", c.name, got, c.want)
		}
	}
}
