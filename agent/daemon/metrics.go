package daemon

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/agent/observe"
)

// Prometheus metrics under Cilium's agent names and Hubble's flow names, so
// existing dashboards read them. Datapath counters are read at scrape time
// from the per-CPU map; flow metrics count the flows the agent reads. Drop
// reasons are Cilium's where it has the reason (its agent's text in
// cilium_drop_count_total, its enum name in hubble_drop_total), else ours.

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
	flows        *observe.FlowMetrics
}

func newAgentMetrics() *agentMetrics {
	return &agentMetrics{
		regeneration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cilium_policy_regeneration_time_stats_seconds", Help: "Policy regeneration time stats labeled by the scope",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"scope"}),
		flows: observe.NewFlowMetrics(),
	}
}

// observeFlow counts one flow in Hubble's metrics, as the Observer serves
// it (a policy verdict beside its trace or drop).
func (m *agentMetrics) observeFlow(f api.Flow, cluster string) {
	for _, pf := range observe.ToProtos(f, cluster) {
		m.flows.Observe(pf)
	}
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
		reason := observe.DropReasonText(k.Reason.String())
		ch <- prometheus.MustNewConstMetric(dropCount, prometheus.CounterValue, float64(c.Packets), reason, dir)
		ch <- prometheus.MustNewConstMetric(dropBytes, prometheus.CounterValue, float64(c.Bytes), reason, dir)
	}
}

// MetricsHandler serves the agent's metrics in the Prometheus exposition format.
func (d *Daemon) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(d, d.metrics.regeneration)
	reg.MustRegister(d.metrics.flows.Collectors()...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
