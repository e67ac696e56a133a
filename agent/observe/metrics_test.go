package observe

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kestrelnet/kestrel/agent/api"
)

// Hubble's metrics count the flows as the Observer serves them: a drop's
// reason is Cilium's name (ours for a reason Cilium lacks), a proxy's HTTP
// record counts as an L7 verdict and an HTTP exchange.
func TestFlowMetricsUseHubblesNamesAndLabels(t *testing.T) {
	m := NewFlowMetrics()
	for _, f := range []api.Flow{
		{Src: "10.0.0.1", Dst: "10.0.0.2", Protocol: 6, Direction: "ingress", Verdict: "dropped", Reason: "POLICY_DENIED", TCPFlags: 0x02},
		{Src: "fd00::1", Dst: "fd00::2", Protocol: 17, Direction: "egress", Verdict: "dropped", Reason: "SERVICE_UNALLOCATED"},
		{Src: "10.0.0.1", Dst: "10.0.0.2", Protocol: 6, Direction: "egress", Verdict: "forwarded", CT: "new", MatchType: "l3-l4", TCPFlags: 0x02},
		{Src: "10.0.0.1", Dst: "10.0.0.2", Protocol: 6, Direction: "ingress", Verdict: "dropped", Reason: "POLICY_DENIED",
			L7: &api.L7Flow{Type: "http", LatencyNs: 2_000_000, HTTP: &api.HTTPFlow{Method: "GET", URL: "/x", Protocol: "HTTP/1.1", Code: 403}}},
	} {
		for _, pf := range ToProtos(f, "default") {
			m.Observe(pf)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.Collectors()...)
	want := `
# HELP hubble_drop_total Number of drops
# TYPE hubble_drop_total counter
hubble_drop_total{protocol="TCP",reason="POLICY_DENIED"} 1
hubble_drop_total{protocol="UDP",reason="SERVICE_UNALLOCATED"} 1
# HELP hubble_policy_verdicts_total Total number of Cilium network policy verdicts
# TYPE hubble_policy_verdicts_total counter
hubble_policy_verdicts_total{action="dropped",direction="ingress",match="l7/http"} 1
hubble_policy_verdicts_total{action="dropped",direction="ingress",match="none"} 1
hubble_policy_verdicts_total{action="forwarded",direction="egress",match="l3-l4"} 1
# HELP hubble_tcp_flags_total TCP flag occurrences
# TYPE hubble_tcp_flags_total counter
hubble_tcp_flags_total{family="IPv4",flag="SYN"} 1
# HELP hubble_http_responses_total Count of HTTP responses
# TYPE hubble_http_responses_total counter
hubble_http_responses_total{method="GET",reporter="server",status="403"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hubble_drop_total", "hubble_policy_verdicts_total",
		"hubble_tcp_flags_total", "hubble_http_responses_total"); err != nil {
		t.Error(err)
	}
	// Each event is one flow, under its type and observation point.
	if n := testutil.ToFloat64(m.flows.WithLabelValues("HTTP", "L7", "HTTP", "DROPPED")); n != 1 {
		t.Errorf("L7 HTTP flows processed: %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.flows.WithLabelValues("TCP", "Trace", "from-endpoint", "FORWARDED")); n != 1 {
		t.Errorf("forwarded egress traces processed: %v, want 1", n)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
