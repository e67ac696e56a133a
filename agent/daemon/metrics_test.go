package daemon

import (
	"context"
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kestrelnet/kestrel/datapath"
)

func TestTheAgentExposesCiliumAndHubbleMetrics(t *testing.T) {
	c := newCluster(t)
	c.eventually("a regeneration ran", func() bool { return c.d.Healthz(context.Background()) == nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeMaintenance{swept: make(chan struct{}, 1)}
	go c.d.RunMaintenance(ctx, f, "medium", 10*time.Millisecond)
	<-f.swept
	c.d.metrics.observeFlow(droppedFlow())

	srv := httptest.NewServer(c.d.MetricsHandler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`cilium_drop_count_total{direction="INGRESS",reason="POLICY_DENIED"} 2`,
		`cilium_drop_count_total{direction="EGRESS",reason="INVALID_SOURCE"} 1`,
		`cilium_forward_count_total{direction="EGRESS"} 10`,
		`cilium_forward_bytes_total{direction="EGRESS"} 1000`,
		`hubble_lost_events_total{source="perf_event_ring_buffer"} 7`,
		`hubble_drop_total{protocol="TCP",reason="POLICY_DENIED"} 1`,
		`hubble_flows_processed_total{subtype="",type="L3_L4",verdict="DROPPED"} 1`,
		`hubble_policy_verdicts_total{action="dropped",direction="ingress",match="none"} 1`,
		`cilium_policy_regeneration_time_stats_seconds_count{scope="total"}`,
		"cilium_endpoint 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
	// promtool check metrics applies these same lint rules.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c.d, c.d.metrics.flows, c.d.metrics.drops, c.d.metrics.verdicts)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func droppedFlow() datapath.Event {
	return datapath.Event{Verdict: datapath.VerdictDropped, Reason: datapath.DropReason(1), Protocol: 6, Direction: datapath.Ingress,
		Src: netip.MustParseAddr("10.244.1.5"), Dst: netip.MustParseAddr("10.244.0.5"), TCPFlags: 0x02}
}
