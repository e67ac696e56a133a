package daemon

import (
	"context"
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/agent/observe/promtooltest"
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
	c.d.RecordFlow(droppedFlow())
	c.d.RecordFlow(synAckFlow())

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
		// Cilium's agent's texts for its reasons.
		`cilium_drop_count_total{direction="INGRESS",reason="Policy denied"} 2`,
		`cilium_drop_count_total{direction="EGRESS",reason="Invalid source ip"} 1`,
		`cilium_forward_count_total{direction="EGRESS"} 10`,
		`cilium_forward_bytes_total{direction="EGRESS"} 1000`,
		`hubble_lost_events_total{source="perf_event_ring_buffer"} 7`,
		// Hubble's names: the enum's, and its event types.
		`hubble_drop_total{protocol="TCP",reason="POLICY_DENIED"} 1`,
		`hubble_flows_processed_total{protocol="TCP",subtype="",type="Drop",verdict="DROPPED"} 1`,
		`hubble_flows_processed_total{protocol="TCP",subtype="",type="PolicyVerdict",verdict="DROPPED"} 1`,
		`hubble_flows_processed_total{protocol="TCP",subtype="to-endpoint",type="Trace",verdict="FORWARDED"} 1`,
		`hubble_policy_verdicts_total{action="dropped",direction="ingress",match="none"} 1`,
		`hubble_tcp_flags_total{family="IPv4",flag="SYN-ACK"} 1`,
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
	// The SYN is counted as a drop, not among the forwarded TCP flags.
	if strings.Contains(text, `flag="SYN"`) {
		t.Error("a dropped SYN is counted in hubble_tcp_flags_total")
	}
	promtooltest.Check(t, body)
}

func droppedFlow() datapath.Event {
	return datapath.Event{Verdict: datapath.VerdictDropped, Reason: datapath.DropReason(1), Protocol: 6, Direction: datapath.Ingress,
		Src: netip.MustParseAddr("10.244.1.5"), Dst: netip.MustParseAddr("10.244.0.5"), TCPFlags: 0x02}
}

func synAckFlow() datapath.Event {
	return datapath.Event{Verdict: datapath.VerdictForwarded, Protocol: 6, Direction: datapath.Ingress, CT: datapath.CTReply,
		Src: netip.MustParseAddr("10.244.1.6"), Dst: netip.MustParseAddr("10.244.0.6"), TCPFlags: 0x12}
}
