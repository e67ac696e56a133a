package daemon

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kestrelnet/kestrel/datapath"
)

// Prometheus metrics under Cilium's agent names and Hubble's flow names, so
// existing dashboards read them. Datapath counters are read at scrape time
// from the per-CPU map; flow metrics count the flows the agent reads.

var (
	dropCount = prometheus.NewDesc("cilium_drop_count_total",
		"Total dropped packets, tagged by drop reason and ingress/egress direction", []string{"reason", "direction"}, nil)
	dropBytes = prometheus.NewDesc("cilium_drop_bytes_total",
		"Total dropped bytes, tagged by drop reason and ingress/egress direction", []string{"reason", "direction"}, nil)
	forwardCount = prometheus.NewDesc("cilium_forward_count_total",
		"Total forwarded packets, tagged by ingress/egress direction", []string{"direction"}, nil)
	forwardBytes = prometheus.NewDesc("cilium_forward_bytes_total",
		"Total forwarded bytes, tagged by ingress/egress direction", []string{"direction"}, nil)
	endpointCount = prometheus.NewDesc("cilium_endpoint",
		"Number of endpoints managed by this agent", nil, nil)
	identityCount = prometheus.NewDesc("cilium_identity",
		"Number of identities currently allocated", []string{"type"}, nil)
	policyCount = prometheus.NewDesc("cilium_policy",
		"Number of policies currently loaded", nil, nil)
	gcRuns = prometheus.NewDesc("cilium_datapath_conntrack_gc_runs_total",
		"Number of times that the conntrack garbage collector process was run", []string{"status"}, nil)
	gcEntries = prometheus.NewDesc("cilium_datapath_conntrack_gc_entries",
		"The number of alive and deleted conntrack entries at the end of a garbage collector run", []string{"status"}, nil)
	lostEvents = prometheus.NewDesc("hubble_lost_events_total",
		"Number of lost events", []string{"source"}, nil)
)

// agentMetrics are the metrics the agent updates as it works.
type agentMetrics struct {
	regeneration *prometheus.HistogramVec
	flows        *prometheus.CounterVec
	drops        *prometheus.CounterVec
	verdicts     *prometheus.CounterVec
	tcpFlags     *prometheus.CounterVec
}

func newAgentMetrics() *agentMetrics {
	return &agentMetrics{
		regeneration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cilium_policy_regeneration_time_stats_seconds", Help: "Policy regeneration time stats labeled by the scope",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"scope"}),
		flows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubble_flows_processed_total", Help: "Total number of flows processed",
		}, []string{"type", "subtype", "verdict"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubble_drop_total", Help: "Number of drops",
		}, []string{"reason", "protocol"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubble_policy_verdicts_total", Help: "Total number of Cilium network policy verdicts",
		}, []string{"direction", "match", "action"}),
		tcpFlags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubble_tcp_flags_total", Help: "TCP flag occurrences",
		}, []string{"flag", "family"}),
	}
}

// observeFlow counts one flow in the Hubble metrics.
func (m *agentMetrics) observeFlow(ev datapath.Event) {
	verdict := ev.Verdict.String()
	m.flows.WithLabelValues("L3_L4", "", verdict).Inc()
	if ev.Verdict == datapath.VerdictDropped {
		m.drops.WithLabelValues(ev.Reason.String(), protocolName(ev.Protocol)).Inc()
	}
	if ev.MatchType.String() != "none" || strings.HasPrefix(ev.Reason.String(), "POLICY_") {
		action := "forwarded"
		if ev.Verdict == datapath.VerdictDropped {
			action = "dropped"
		}
		m.verdicts.WithLabelValues(ev.Direction.String(), ev.MatchType.String(), action).Inc()
	}
	if ev.Protocol == 6 {
		family := "IPv4"
		if ev.Src.Is6() {
			family = "IPv6"
		}
		for _, f := range []struct {
			bit  uint8
			name string
		}{{0x02, "SYN"}, {0x10, "ACK"}, {0x01, "FIN"}, {0x04, "RST"}} {
			if ev.TCPFlags&f.bit != 0 {
				m.tcpFlags.WithLabelValues(f.name, family).Inc()
			}
		}
	}
}

func protocolName(p uint8) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 132:
		return "SCTP"
	case 1:
		return "ICMPv4"
	case 58:
		return "ICMPv6"
	}
	return "Unknown"
}

// Describe implements prometheus.Collector for the scrape-time metrics.
func (d *Daemon) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{dropCount, dropBytes, forwardCount, forwardBytes, endpointCount,
		identityCount, policyCount, gcRuns, gcEntries, lostEvents} {
		ch <- desc
	}
}

// Collect implements prometheus.Collector.
func (d *Daemon) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	distinct := map[uint32]bool{}
	for _, id := range d.identities {
		distinct[id] = true
	}
	policies := d.policies
	d.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(endpointCount, prometheus.GaugeValue, float64(len(d.registry.List())))
	ch <- prometheus.MustNewConstMetric(identityCount, prometheus.GaugeValue, float64(len(distinct)), "cluster_local")
	ch <- prometheus.MustNewConstMetric(policyCount, prometheus.GaugeValue, float64(policies))

	d.maint.mu.Lock()
	m, runs, removed := d.maint.m, d.maint.runs, d.maint.removed
	d.maint.mu.Unlock()
	if m == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(gcRuns, prometheus.CounterValue, float64(runs), "completed")
	ch <- prometheus.MustNewConstMetric(gcEntries, prometheus.GaugeValue, float64(removed), "deleted")
	if lost, err := m.EventsLost(); err == nil {
		ch <- prometheus.MustNewConstMetric(lostEvents, prometheus.CounterValue, float64(lost), "perf_event_ring_buffer")
	}
	counters, err := m.Counters()
	if err != nil {
		return
	}
	for k, c := range counters {
		dir := strings.ToUpper(k.Direction.String())
		if k.Reason == 0 {
			ch <- prometheus.MustNewConstMetric(forwardCount, prometheus.CounterValue, float64(c.Packets), dir)
			ch <- prometheus.MustNewConstMetric(forwardBytes, prometheus.CounterValue, float64(c.Bytes), dir)
			continue
		}
		ch <- prometheus.MustNewConstMetric(dropCount, prometheus.CounterValue, float64(c.Packets), k.Reason.String(), dir)
		ch <- prometheus.MustNewConstMetric(dropBytes, prometheus.CounterValue, float64(c.Bytes), k.Reason.String(), dir)
	}
}

// MetricsHandler serves the agent's metrics in the Prometheus exposition format.
func (d *Daemon) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(d, d.metrics.regeneration, d.metrics.flows, d.metrics.drops, d.metrics.verdicts, d.metrics.tcpFlags)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
