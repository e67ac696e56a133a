package observe

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
)

// Query is what `kestrel observe` asks for, in hubble observe's terms.
// Either-side fields (Pod, Namespace, Label, IP, Port, Identity) match the
// source or the destination; From* and To* fields one side only.
type Query struct {
	Pod, FromPod, ToPod                   []string
	Namespace, FromNamespace, ToNamespace []string
	Label, FromLabel, ToLabel             []string
	IP, FromIP, ToIP                      []string
	Port, FromPort, ToPort                []string
	Identity, FromIdentity, ToIdentity    []uint32
	Protocol, Verdict, DropReason, Node   []string
	Direction                             []string // ingress, egress
	Since, Until                          string   // RFC 3339 or a duration ago (5m)
	Follow, First                         bool
	Number                                uint64 // first or last N; 0: all
}

// Request turns q into a GetFlows request, or says which value is wrong.
func (q Query) Request(now time.Time) (*observerpb.GetFlowsRequest, error) {
	base := &flowpb.FlowFilter{
		SourcePod: append(podPatterns(q.FromPod), nsPatterns(q.FromNamespace)...), DestinationPod: append(podPatterns(q.ToPod), nsPatterns(q.ToNamespace)...),
		SourceLabel: q.FromLabel, DestinationLabel: q.ToLabel,
		SourceIp: q.FromIP, DestinationIp: q.ToIP,
		SourcePort: q.FromPort, DestinationPort: q.ToPort,
		SourceIdentity: q.FromIdentity, DestinationIdentity: q.ToIdentity,
		Protocol: q.Protocol, NodeName: q.Node,
	}
	for _, v := range q.Verdict {
		n, ok := flowpb.Verdict_value[strings.ToUpper(v)]
		if !ok {
			return nil, fmt.Errorf("--verdict %q: want one of FORWARDED, DROPPED, ...", v)
		}
		base.Verdict = append(base.Verdict, flowpb.Verdict(n))
	}
	for _, r := range q.DropReason {
		n, ok := flowpb.DropReason_value[strings.ToUpper(r)]
		if !ok {
			return nil, fmt.Errorf("--drop-reason-desc %q is not one of Cilium's drop reasons (e.g. POLICY_DENIED)", r)
		}
		base.DropReasonDesc = append(base.DropReasonDesc, flowpb.DropReason(n))
	}
	for _, d := range q.Direction {
		n, ok := flowpb.TrafficDirection_value[strings.ToUpper(d)]
		if !ok || n == 0 {
			return nil, fmt.Errorf("--traffic-direction %q: want ingress or egress", d)
		}
		base.TrafficDirection = append(base.TrafficDirection, flowpb.TrafficDirection(n))
	}
	for _, p := range append(append(append([]string{}, q.Port...), q.FromPort...), q.ToPort...) {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return nil, fmt.Errorf("port %q: want a number up to 65535", p)
		}
	}
	req := &observerpb.GetFlowsRequest{Follow: q.Follow, First: q.First, Number: q.Number}
	var err error
	if req.Since, err = timeArg("--since", q.Since, now); err != nil {
		return nil, err
	}
	if req.Until, err = timeArg("--until", q.Until, now); err != nil {
		return nil, err
	}
	// Either-side values make two filters, one per side, as hubble does.
	either := len(q.Pod)+len(q.Namespace)+len(q.Label)+len(q.IP)+len(q.Port)+len(q.Identity) > 0
	if !either {
		req.Whitelist = []*flowpb.FlowFilter{base}
		return req, nil
	}
	src, dst := cloneFilter(base), cloneFilter(base)
	src.SourcePod = append(src.SourcePod, append(podPatterns(q.Pod), nsPatterns(q.Namespace)...)...)
	src.SourceLabel = append(src.SourceLabel, q.Label...)
	src.SourceIp = append(src.SourceIp, q.IP...)
	src.SourcePort = append(src.SourcePort, q.Port...)
	src.SourceIdentity = append(src.SourceIdentity, q.Identity...)
	dst.DestinationPod = append(dst.DestinationPod, append(podPatterns(q.Pod), nsPatterns(q.Namespace)...)...)
	dst.DestinationLabel = append(dst.DestinationLabel, q.Label...)
	dst.DestinationIp = append(dst.DestinationIp, q.IP...)
	dst.DestinationPort = append(dst.DestinationPort, q.Port...)
	dst.DestinationIdentity = append(dst.DestinationIdentity, q.Identity...)
	req.Whitelist = []*flowpb.FlowFilter{src, dst}
	return req, nil
}

func cloneFilter(f *flowpb.FlowFilter) *flowpb.FlowFilter {
	return proto.Clone(f).(*flowpb.FlowFilter)
}

// podPatterns keeps "ns/pod" and reads a bare name as a pod of "default",
// as hubble's --pod does.
func podPatterns(pods []string) []string {
	var out []string
	for _, p := range pods {
		if !strings.Contains(p, "/") {
			p = "default/" + p
		}
		out = append(out, p)
	}
	return out
}

func nsPatterns(nss []string) []string {
	var out []string
	for _, ns := range nss {
		out = append(out, strings.TrimSuffix(ns, "/")+"/")
	}
	return out
}

func timeArg(flag, v string, now time.Time) (*timestamppb.Timestamp, error) {
	if v == "" {
		return nil, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return timestamppb.New(now.Add(-d)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, fmt.Errorf("%s %q: want RFC 3339 (2026-01-02T15:04:05Z) or a duration ago (5m)", flag, v)
	}
	return timestamppb.New(t), nil
}
