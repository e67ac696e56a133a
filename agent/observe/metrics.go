package observe

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
)

// FlowMetrics are Hubble's flow metrics (pkg/hubble/metrics in Cilium), with
// its names and label sets (no context labels), counted from the flows as
// the Observer serves them, so a Grafana dashboard built on Hubble's reads
// them and a count agrees with what `hubble observe` lists.
type FlowMetrics struct {
	flows        *prometheus.CounterVec // flow
	drops        *prometheus.CounterVec // drop
	tcpFlags     *prometheus.CounterVec // tcp
	verdicts     *prometheus.CounterVec // policy
	httpRequests *prometheus.CounterVec // http
	httpResps    *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	dnsQueries   *prometheus.CounterVec // dns
	dnsResponses *prometheus.CounterVec
	dnsTypes     *prometheus.CounterVec
}

// NewFlowMetrics makes the metrics; register Collectors() to serve them.
func NewFlowMetrics() *FlowMetrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "hubble", Name: name, Help: help}, labels)
	}
	return &FlowMetrics{
		flows:        counter("flows_processed_total", "Total number of flows processed", "protocol", "type", "subtype", "verdict"),
		drops:        counter("drop_total", "Number of drops", "reason", "protocol"),
		tcpFlags:     counter("tcp_flags_total", "TCP flag occurrences", "flag", "family"),
		verdicts:     counter("policy_verdicts_total", "Total number of Cilium network policy verdicts", "direction", "match", "action"),
		httpRequests: counter("http_requests_total", "Count of HTTP requests", "method", "protocol", "reporter"),
		httpResps:    counter("http_responses_total", "Count of HTTP responses", "method", "status", "reporter"),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "hubble", Name: "http_request_duration_seconds",
			Help: "Quantiles of HTTP request duration in seconds", Buckets: prometheus.DefBuckets}, []string{"method", "reporter"}),
		dnsQueries:   counter("dns_queries_total", "Number of DNS queries observed", "rcode", "qtypes", "ips_returned"),
		dnsResponses: counter("dns_responses_total", "Number of DNS responses observed", "rcode", "qtypes", "ips_returned"),
		dnsTypes:     counter("dns_response_types_total", "Number of DNS response types", "type", "qtypes"),
	}
}

// Collectors are the metrics to register.
func (m *FlowMetrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.flows, m.drops, m.tcpFlags, m.verdicts, m.httpRequests, m.httpResps, m.httpDuration,
		m.dnsQueries, m.dnsResponses, m.dnsTypes}
}

// Observe counts one flow (each of ToProtos' flows: a policy verdict is a
// flow of its own, as in Cilium).
func (m *FlowMetrics) Observe(f *flowpb.Flow) {
	proto := flowProtocol(f)
	typeName, subType := eventTypeLabels(f)
	m.flows.WithLabelValues(proto, typeName, subType, f.GetVerdict().String()).Inc()
	if f.GetVerdict() == flowpb.Verdict_DROPPED && f.GetEventType().GetType() == eventDrop {
		m.drops.WithLabelValues(dropReasonOf(f), proto).Inc()
	}
	m.observeTCP(f)
	m.observePolicy(f)
	if l7 := f.GetL7(); l7 != nil && f.GetEventType().GetType() == eventAccessLog {
		m.observeHTTP(f, l7)
		m.observeDNS(l7)
	}
}

// dropReasonOf is Cilium's reason name, or, for a reason Cilium lacks
// (DROP_REASON_UNKNOWN in the flow), ours, which the summary carries.
func dropReasonOf(f *flowpb.Flow) string {
	if f.GetDropReasonDesc() != flowpb.DropReason_DROP_REASON_UNKNOWN {
		return f.GetDropReasonDesc().String()
	}
	if _, ours, ok := strings.Cut(f.GetSummary(), kestrelReasonMark); ok {
		return ours
	}
	return f.GetDropReasonDesc().String()
}

// eventTypeLabels are flows_processed_total's type and subtype: the monitor
// message type, and for traces the observation point.
func eventTypeLabels(f *flowpb.Flow) (string, string) {
	switch f.GetEventType().GetType() {
	case eventAccessLog:
		return "L7", l7Protocol(f.GetL7())
	case eventDrop:
		return "Drop", ""
	case eventTrace:
		return "Trace", traceObservationPoints[f.GetEventType().GetSubType()]
	case eventPolicyVerdict:
		return "PolicyVerdict", ""
	}
	return "Unknown", ""
}

// Cilium's names of the trace observation points Kestrel reports.
var traceObservationPoints = map[int32]string{traceToLxc: "to-endpoint", traceFromLxc: "from-endpoint"}

func l7Protocol(l7 *flowpb.Layer7) string {
	switch {
	case l7.GetDns() != nil:
		return "DNS"
	case l7.GetHttp() != nil:
		return "HTTP"
	case l7.GetKafka() != nil:
		return "Kafka"
	}
	return ""
}

// flowProtocol is the protocol label Hubble's handlers use: the L7
// protocol of a proxy's record, else the L4 protocol.
func flowProtocol(f *flowpb.Flow) string {
	if f.GetEventType().GetType() == eventAccessLog {
		if p := l7Protocol(f.GetL7()); p != "" {
			return p
		}
		return "Unknown L7"
	}
	l4 := f.GetL4()
	switch {
	case l4.GetTCP() != nil:
		return "TCP"
	case l4.GetUDP() != nil:
		return "UDP"
	case l4.GetICMPv4() != nil:
		return "ICMPv4"
	case l4.GetICMPv6() != nil:
		return "ICMPv6"
	case l4.GetSCTP() != nil:
		return "SCTP"
	}
	return "Unknown L4"
}

// observeTCP counts the flags of forwarded TCP packets, SYN and SYN-ACK
// apart, as Hubble's tcp handler.
func (m *FlowMetrics) observeTCP(f *flowpb.Flow) {
	tcp := f.GetL4().GetTCP()
	if f.GetVerdict() != flowpb.Verdict_FORWARDED || tcp.GetFlags() == nil || f.GetIP() == nil ||
		f.GetEventType().GetType() != eventTrace {
		return
	}
	family := f.GetIP().GetIpVersion().String()
	fl := tcp.GetFlags()
	if fl.GetFIN() {
		m.tcpFlags.WithLabelValues("FIN", family).Inc()
	}
	if fl.GetSYN() && fl.GetACK() {
		m.tcpFlags.WithLabelValues("SYN-ACK", family).Inc()
	} else if fl.GetSYN() {
		m.tcpFlags.WithLabelValues("SYN", family).Inc()
	}
	if fl.GetRST() {
		m.tcpFlags.WithLabelValues("RST", family).Inc()
	}
}

// Cilium's policy match type names (monitor API), lowercased as the
// policy handler reports them.
var policyMatchNames = map[uint32]string{0: "none", 1: "l3-only", 2: "l3-l4", 3: "l4-only", 4: "all"}

// observePolicy counts policy-verdict events, and a proxy's L7 verdicts
// as match "l7/<protocol>".
func (m *FlowMetrics) observePolicy(f *flowpb.Flow) {
	var match string
	switch f.GetEventType().GetType() {
	case eventPolicyVerdict:
		match = policyMatchNames[f.GetPolicyMatchType()]
	case eventAccessLog:
		if f.GetL7().GetType() != flowpb.L7FlowType_RESPONSE {
			return
		}
		match = "l7/" + strings.ToLower(l7Protocol(f.GetL7()))
	default:
		return
	}
	m.verdicts.WithLabelValues(strings.ToLower(f.GetTrafficDirection().String()), match,
		strings.ToLower(f.GetVerdict().String())).Inc()
}

// observeHTTP counts a proxy's HTTP record. Kestrel's proxy reports one
// record per exchange, the response, which stands for its request too.
func (m *FlowMetrics) observeHTTP(f *flowpb.Flow, l7 *flowpb.Layer7) {
	h := l7.GetHttp()
	if h == nil {
		return
	}
	reporter := "server"
	if f.GetTrafficDirection() == flowpb.TrafficDirection_EGRESS {
		reporter = "client"
	}
	m.httpRequests.WithLabelValues(h.GetMethod(), h.GetProtocol(), reporter).Inc()
	if l7.GetType() == flowpb.L7FlowType_RESPONSE {
		m.httpResps.WithLabelValues(h.GetMethod(), itoa(h.GetCode()), reporter).Inc()
		m.httpDuration.WithLabelValues(h.GetMethod(), reporter).Observe(float64(l7.GetLatencyNs()) / 1e9)
	}
}

// observeDNS counts a DNS proxy's record (queries and responses).
func (m *FlowMetrics) observeDNS(l7 *flowpb.Layer7) {
	d := l7.GetDns()
	if d == nil {
		return
	}
	qtypes := strings.Join(d.GetQtypes(), ",")
	ips := itoa(uint32(len(d.GetIps())))
	switch l7.GetType() {
	case flowpb.L7FlowType_REQUEST:
		m.dnsQueries.WithLabelValues("", qtypes, ips).Inc()
	case flowpb.L7FlowType_RESPONSE:
		m.dnsResponses.WithLabelValues(dnsRcodes[d.GetRcode()], qtypes, ips).Inc()
		for _, t := range d.GetRrtypes() {
			m.dnsTypes.WithLabelValues(t, qtypes).Inc()
		}
	}
}

// dnsRcodes names the response codes as Hubble's dns handler does.
var dnsRcodes = map[uint32]string{0: "No Error", 1: "Format Error", 2: "Server Failure", 3: "Non-Existent Domain",
	4: "Not Implemented", 5: "Query Refused"}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
