package observe

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kestrelnet/kestrel/agent/api"
	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	"github.com/kestrelnet/kestrel/datapath"
)

// Cilium's monitor message types (pkg/monitor/api: unspec 0, drop 1, debug
// 2, capture 3, trace 4, policy verdict 5), which Hubble shows as the flow's
// event type and `hubble observe --type` filters on.
const (
	eventDrop          = 1
	eventTrace         = 4
	eventPolicyVerdict = 5
	eventAccessLog     = 129 // an L7 proxy's record
	// Trace subtypes (observation points) of Cilium's monitor.
	traceToLxc   = 0
	traceFromLxc = 5
)

// kestrelReasonMark precedes our name of a reason Cilium lacks in a
// dropped flow's summary.
const kestrelReasonMark = "; Kestrel drop reason: "

// Cilium's policy match types (Flow.policy_match_type), by our names.
var policyMatchTypes = map[string]uint32{"l3-only": 1, "l3-l4": 2, "l4-only": 3, "all": 4}

// ToProto turns one of the agent's flows into Hubble's flow.
func ToProto(f api.Flow, cluster string) *flowpb.Flow {
	out := &flowpb.Flow{
		Time:               timestamppb.New(timeOf(f)),
		Uuid:               flowUUID(f, 'f'),
		Type:               flowpb.FlowType_L3_L4,
		NodeName:           f.Node,
		Verdict:            verdictOf(f.Verdict),
		PolicyMatchType:    policyMatchTypes[f.MatchType],
		IsReply:            wrapperspb.Bool(f.IsReply),
		Reply:              f.IsReply,
		Source:             endpointOf(f.SrcPeer, f.SrcIdentity, cluster),
		Destination:        endpointOf(f.DstPeer, f.DstIdentity, cluster),
		SourceService:      serviceOf(f.SrcPeer.Service),
		DestinationService: serviceOf(f.DstPeer.Service),
	}
	// The endpoint id is that of the pod whose hook saw the packet: the
	// source on egress, the destination on ingress.
	if f.Direction == "egress" {
		out.TrafficDirection = flowpb.TrafficDirection_EGRESS
		out.Source.ID = f.EndpointID
		out.TraceObservationPoint = flowpb.TraceObservationPoint_FROM_ENDPOINT
		out.EventType = &flowpb.CiliumEventType{Type: eventTrace, SubType: traceFromLxc}
	} else {
		out.TrafficDirection = flowpb.TrafficDirection_INGRESS
		out.Destination.ID = f.EndpointID
		out.TraceObservationPoint = flowpb.TraceObservationPoint_TO_ENDPOINT
		out.EventType = &flowpb.CiliumEventType{Type: eventTrace, SubType: traceToLxc}
	}
	if out.Verdict == flowpb.Verdict_DROPPED {
		c, ok := ciliumDropReasons[f.Reason]
		if ok {
			out.DropReasonDesc = flowpb.DropReason(c.Number)
			out.DropReason = uint32(c.Number)
		}
		out.EventType = &flowpb.CiliumEventType{Type: eventDrop, SubType: int32(out.DropReason)}
		out.TraceObservationPoint = flowpb.TraceObservationPoint_UNKNOWN_POINT
	}
	src, _ := netip.ParseAddr(f.Src)
	out.IP = &flowpb.IP{Source: f.Src, Destination: f.Dst, IpVersion: flowpb.IPVersion_IPv4}
	if src.Is6() {
		out.IP.IpVersion = flowpb.IPVersion_IPv6
	}
	out.L4 = layer4(f)
	if f.L7 != nil {
		// A proxy's decision on one request, as Cilium's access log: the
		// response the client got (403 from the proxy when denied).
		out.Type = flowpb.FlowType_L7
		out.EventType = &flowpb.CiliumEventType{Type: eventAccessLog}
		out.TraceObservationPoint = flowpb.TraceObservationPoint_UNKNOWN_POINT
		out.L7 = &flowpb.Layer7{Type: flowpb.L7FlowType_RESPONSE, LatencyNs: f.L7.LatencyNs}
		if h := f.L7.HTTP; h != nil {
			out.L7.Record = &flowpb.Layer7_Http{Http: &flowpb.HTTP{Code: uint32(h.Code), Method: h.Method, Url: h.URL, Protocol: h.Protocol}}
		}
		if k := f.L7.Kafka; k != nil {
			// Hubble's Kafka record has one topic; several are joined.
			out.L7.Type = flowpb.L7FlowType_REQUEST
			out.L7.Record = &flowpb.Layer7_Kafka{Kafka: &flowpb.Kafka{ErrorCode: int32(k.ErrorCode), ApiVersion: int32(k.APIVersion),
				ApiKey: k.APIKey, CorrelationId: k.CorrelationID, Topic: strings.Join(k.Topics, ",")}}
		}
		if d := f.L7.DNS; d != nil {
			out.L7.Record = &flowpb.Layer7_Dns{Dns: &flowpb.DNS{Query: d.Query, Ips: d.IPs, Ttl: d.TTL, Rcode: uint32(max(d.Rcode, 0)), Qtypes: d.QTypes, ObservationSource: "proxy"}}
		}
	}
	out.Summary = summary(f)
	if h := out.GetL7().GetHttp(); h != nil {
		out.Summary = fmt.Sprintf("HTTP/%s %d %s %s", strings.TrimPrefix(h.GetProtocol(), "HTTP/"), h.GetCode(), h.GetMethod(), h.GetUrl())
	}
	if d := out.GetL7().GetDns(); d != nil {
		// As Cilium's DNS proxy summaries read.
		q := fmt.Sprintf("(Proxy %s %s)", d.GetQuery(), strings.Join(d.GetQtypes(), ","))
		if d.GetRcode() == 0 {
			out.Summary = fmt.Sprintf("DNS Answer %q TTL: %d %s", strings.Join(d.GetIps(), ","), d.GetTtl(), q)
		} else {
			out.Summary = fmt.Sprintf("DNS Answer RCode: %s %s", dnsRcodeName(d.GetRcode()), q)
		}
	}
	if _, mapped := ciliumDropReasons[f.Reason]; out.Verdict == flowpb.Verdict_DROPPED && !mapped {
		// A Kestrel-only reason is DROP_REASON_UNKNOWN in Cilium's field;
		// the summary, which hubble prints, names it.
		out.Summary += kestrelReasonMark + f.Reason
	}
	policies := policiesOf(f.Policies)
	if len(policies) == 0 {
		// Default deny: no entry matched, so the policies that isolate the
		// endpoint in this direction are what denied it.
		policies = policiesOf(f.EnforcedBy)
	}
	switch {
	case out.Verdict == flowpb.Verdict_DROPPED && out.TrafficDirection == flowpb.TrafficDirection_EGRESS:
		out.EgressDeniedBy = policies
	case out.Verdict == flowpb.Verdict_DROPPED:
		out.IngressDeniedBy = policies
	case out.TrafficDirection == flowpb.TrafficDirection_EGRESS:
		out.EgressAllowedBy = policies
	default:
		out.IngressAllowedBy = policies
	}
	return out
}

func verdictOf(v string) flowpb.Verdict {
	switch strings.ToUpper(v) {
	case "FORWARDED":
		return flowpb.Verdict_FORWARDED
	case "DROPPED":
		return flowpb.Verdict_DROPPED
	case "REDIRECTED":
		return flowpb.Verdict_REDIRECTED
	}
	return flowpb.Verdict_VERDICT_UNKNOWN
}

func endpointOf(p api.Peer, id uint32, cluster string) *flowpb.Endpoint {
	ep := &flowpb.Endpoint{Identity: id, Namespace: p.Namespace, PodName: p.Pod, Labels: p.Labels}
	if kind, name, ok := strings.Cut(p.Workload, "/"); ok {
		ep.Workloads = []*flowpb.Workload{{Kind: kind, Name: name}}
	}
	if p.Pod != "" {
		ep.ClusterName = cluster
	}
	return ep
}

// serviceOf is Hubble's Service for "namespace/name" (nil for none).
func serviceOf(name string) *flowpb.Service {
	ns, n, ok := strings.Cut(name, "/")
	if !ok {
		return nil
	}
	return &flowpb.Service{Namespace: ns, Name: n}
}

func layer4(f api.Flow) *flowpb.Layer4 {
	switch f.Protocol {
	case datapath.ProtoTCP:
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{
			SourcePort: uint32(f.SrcPort), DestinationPort: uint32(f.DstPort), Flags: tcpFlags(f.TCPFlags)}}}
	case datapath.ProtoUDP:
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{
			SourcePort: uint32(f.SrcPort), DestinationPort: uint32(f.DstPort)}}}
	case datapath.ProtoSCTP:
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_SCTP{SCTP: &flowpb.SCTP{
			SourcePort: uint32(f.SrcPort), DestinationPort: uint32(f.DstPort)}}}
	case protoICMP:
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_ICMPv4{ICMPv4: &flowpb.ICMPv4{Type: uint32(f.DstPort)}}}
	case protoICMPv6:
		return &flowpb.Layer4{Protocol: &flowpb.Layer4_ICMPv6{ICMPv6: &flowpb.ICMPv6{Type: uint32(f.DstPort)}}}
	}
	return nil
}

const (
	protoICMP   = 1
	protoICMPv6 = 58
)

func tcpFlags(b uint8) *flowpb.TCPFlags {
	return &flowpb.TCPFlags{
		FIN: b&0x01 != 0, SYN: b&0x02 != 0, RST: b&0x04 != 0, PSH: b&0x08 != 0,
		ACK: b&0x10 != 0, URG: b&0x20 != 0, ECE: b&0x40 != 0, CWR: b&0x80 != 0,
	}
}

// policiesOf parses the agent's policy names (Kind/namespace/name, or
// Kind/name for cluster-wide ones).
func policiesOf(names []string) []*flowpb.Policy {
	var out []*flowpb.Policy
	for _, n := range names {
		parts := strings.SplitN(n, "/", 3)
		p := &flowpb.Policy{Kind: parts[0]}
		switch len(parts) {
		case 3:
			p.Namespace, p.Name = parts[1], parts[2]
		case 2:
			p.Name = parts[1]
		default:
			p.Name = n
		}
		out = append(out, p)
	}
	return out
}

func timeOf(f api.Flow) time.Time { return time.Unix(0, f.TimeUnixNs) }

// summary is what Cilium's parser puts in Flow.summary for the packet's
// outermost layer: "TCP Flags: SYN, ACK", "UDP", "ICMPv4 type 8".
func summary(f api.Flow) string {
	switch f.Protocol {
	case datapath.ProtoTCP:
		var names []string
		for _, fl := range []struct {
			bit  uint8
			name string
		}{{0x02, "SYN"}, {0x10, "ACK"}, {0x04, "RST"}, {0x01, "FIN"}, {0x08, "PSH"}, {0x20, "URG"}, {0x40, "ECE"}, {0x80, "CWR"}} {
			if f.TCPFlags&fl.bit != 0 {
				names = append(names, fl.name)
			}
		}
		return "TCP Flags: " + strings.Join(names, ", ")
	case datapath.ProtoUDP:
		return "UDP"
	case datapath.ProtoSCTP:
		return "SCTP"
	case protoICMP:
		return fmt.Sprintf("ICMPv4 type %d", f.DstPort)
	case protoICMPv6:
		return fmt.Sprintf("ICMPv6 type %d", f.DstPort)
	}
	return fmt.Sprintf("IP protocol %d", f.Protocol)
}

// ToProtos is the flow as Cilium reports it: a packet whose verdict policy
// decided (a new connection allowed by an entry, or a POLICY_ drop) gives a
// policy-verdict event before its trace or drop, as Cilium's datapath
// sends both. hubble shows the deciding policies on the policy verdict
// (`--print-policy-names`) and `--type policy-verdict` selects them.
func ToProtos(f api.Flow, cluster string) []*flowpb.Flow {
	main := ToProto(f, cluster)
	decided := f.L7 == nil && strings.HasPrefix(f.Reason, "POLICY_") ||
		(main.GetVerdict() != flowpb.Verdict_DROPPED && f.CT == "new" && main.GetPolicyMatchType() != 0)
	if !decided {
		return []*flowpb.Flow{main}
	}
	pv := proto.Clone(main).(*flowpb.Flow)
	pv.EventType = &flowpb.CiliumEventType{Type: eventPolicyVerdict}
	pv.Uuid = flowUUID(f, 'p')
	pv.TraceObservationPoint = flowpb.TraceObservationPoint_UNKNOWN_POINT
	return []*flowpb.Flow{pv, main}
}

// dnsRcodeName names the rcodes a DNS proxy answers with, as Cilium's
// summaries do; others by number.
func dnsRcodeName(rc uint32) string {
	switch rc {
	case 1:
		return "Format Error"
	case 2:
		return "Server Failure"
	case 3:
		return "Non-Existent Domain"
	case 5:
		return "Refused"
	}
	return fmt.Sprint(rc)
}
