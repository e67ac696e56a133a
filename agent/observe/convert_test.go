package observe

import (
	"testing"

	"github.com/kestrelnet/kestrel/agent/api"
	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
)

func podPeer(ns, pod, app string) api.Peer {
	return api.Peer{Namespace: ns, Pod: pod, Labels: []string{"k8s:app=" + app, "k8s:io.kubernetes.pod.namespace=" + ns}}
}

// A denied TCP SYN into x/a becomes Hubble's drop: Cilium's reason name and
// number, the ingress direction, the endpoints' pods and labels, the flags
// and the denying policy.
func TestToProtoDrop(t *testing.T) {
	f := api.Flow{
		TimeUnixNs: 1_700_000_000_123_456_789, Node: "node-1",
		Src: "10.244.1.5", Dst: "10.244.0.10", SrcPort: 40000, DstPort: 80, Protocol: 6,
		Direction: "ingress", Verdict: "dropped", Reason: "POLICY_DENYLIST", MatchType: "l3-only",
		EndpointID: 7, SrcIdentity: 300, DstIdentity: 256, TCPFlags: 0x02,
		SrcPeer: podPeer("y", "b", "b"), DstPeer: podPeer("x", "a", "a"),
		Policies: []string{"CiliumNetworkPolicy/x/deny-b"},
	}
	p := ToProto(f, "default")
	if p.GetVerdict() != flowpb.Verdict_DROPPED || p.GetDropReasonDesc() != flowpb.DropReason_POLICY_DENY || p.GetDropReason() != 181 {
		t.Errorf("verdict %v reason %v (%d), want DROPPED POLICY_DENY (181)", p.GetVerdict(), p.GetDropReasonDesc(), p.GetDropReason())
	}
	if p.GetTrafficDirection() != flowpb.TrafficDirection_INGRESS || p.GetDestination().GetID() != 7 || p.GetSource().GetID() != 0 {
		t.Errorf("direction %v, endpoint ids src %d dst %d: want INGRESS with the destination's id 7",
			p.GetTrafficDirection(), p.GetSource().GetID(), p.GetDestination().GetID())
	}
	if d := p.GetDestination(); d.GetNamespace() != "x" || d.GetPodName() != "a" || d.GetIdentity() != 256 || d.GetClusterName() != "default" {
		t.Errorf("destination %v", d)
	}
	if s := p.GetSource(); s.GetNamespace() != "y" || s.GetPodName() != "b" || s.GetLabels()[0] != "k8s:app=b" {
		t.Errorf("source %v", s)
	}
	tcp := p.GetL4().GetTCP()
	if tcp.GetSourcePort() != 40000 || tcp.GetDestinationPort() != 80 || !tcp.GetFlags().GetSYN() || tcp.GetFlags().GetACK() {
		t.Errorf("L4 %v", p.GetL4())
	}
	if got := p.GetIngressDeniedBy(); len(got) != 1 || got[0].GetKind() != "CiliumNetworkPolicy" || got[0].GetNamespace() != "x" || got[0].GetName() != "deny-b" {
		t.Errorf("ingress denied by %v", got)
	}
	if p.GetEventType().GetType() != eventDrop || p.GetEventType().GetSubType() != 181 {
		t.Errorf("event type %v, want drop (1) with the reason as subtype", p.GetEventType())
	}
	if p.GetTime().AsTime().UnixNano() != f.TimeUnixNs || p.GetPolicyMatchType() != 1 || p.GetSummary() != "TCP Flags: SYN" {
		t.Errorf("time %v match %d summary %q", p.GetTime().AsTime(), p.GetPolicyMatchType(), p.GetSummary())
	}
}

// A reason Cilium lacks stays DROP_REASON_UNKNOWN in Cilium's field and is
// named in the summary.
func TestToProtoKestrelOnlyReason(t *testing.T) {
	p := ToProto(api.Flow{Src: "fd00::1", Dst: "fd00::2", Protocol: 17, Direction: "egress", Verdict: "dropped",
		Reason: "SERVICE_UNALLOCATED", EndpointID: 3}, "default")
	if p.GetDropReasonDesc() != flowpb.DropReason_DROP_REASON_UNKNOWN || p.GetSummary() != "UDP; Kestrel drop reason: SERVICE_UNALLOCATED" {
		t.Errorf("reason %v summary %q", p.GetDropReasonDesc(), p.GetSummary())
	}
	if p.GetIP().GetIpVersion() != flowpb.IPVersion_IPv6 || p.GetTrafficDirection() != flowpb.TrafficDirection_EGRESS || p.GetSource().GetID() != 3 {
		t.Errorf("ip %v direction %v source %v", p.GetIP(), p.GetTrafficDirection(), p.GetSource())
	}
}

// A default-deny drop (no entry, so no cookie) is denied by the policies
// that isolate the endpoint in that direction.
func TestToProtoDefaultDenyNamesTheIsolatingPolicies(t *testing.T) {
	p := ToProto(api.Flow{Src: "10.0.0.1", Dst: "10.0.0.2", Protocol: 6, Direction: "egress", Verdict: "dropped",
		Reason: "POLICY_DENIED", EnforcedBy: []string{"NetworkPolicy/x/deny-all", "CiliumClusterwideNetworkPolicy/lockdown"}}, "default")
	got := p.GetEgressDeniedBy()
	if len(got) != 2 || got[0].GetName() != "deny-all" || got[0].GetNamespace() != "x" || got[1].GetKind() != "CiliumClusterwideNetworkPolicy" ||
		got[1].GetName() != "lockdown" || got[1].GetNamespace() != "" || len(p.GetIngressDeniedBy()) != 0 {
		t.Errorf("egress denied by %v", got)
	}
}

// A policy's verdict comes as a policy-verdict event first, then the drop or
// trace; other verdicts come alone.
func TestToProtosAddsPolicyVerdicts(t *testing.T) {
	denied := ToProtos(api.Flow{Src: "10.0.0.1", Dst: "10.0.0.2", Protocol: 6, Direction: "ingress", Verdict: "dropped",
		Reason: "POLICY_DENIED", CT: "new", EnforcedBy: []string{"NetworkPolicy/x/deny"}}, "default")
	if len(denied) != 2 || denied[0].GetEventType().GetType() != eventPolicyVerdict || denied[1].GetEventType().GetType() != eventDrop ||
		denied[0].GetIngressDeniedBy()[0].GetName() != "deny" || denied[0].GetDropReasonDesc() != flowpb.DropReason_POLICY_DENIED {
		t.Errorf("denied: %v", denied)
	}
	allowed := ToProtos(api.Flow{Src: "10.0.0.1", Dst: "10.0.0.2", Protocol: 6, Direction: "egress", Verdict: "forwarded",
		CT: "new", MatchType: "l3-l4", Policies: []string{"CiliumNetworkPolicy/x/allow"}}, "default")
	if len(allowed) != 2 || allowed[0].GetEventType().GetType() != eventPolicyVerdict || allowed[1].GetEventType().GetType() != eventTrace ||
		allowed[0].GetEgressAllowedBy()[0].GetName() != "allow" || allowed[0].GetPolicyMatchType() != 2 {
		t.Errorf("allowed: %v", allowed)
	}
	for _, f := range []api.Flow{
		{Direction: "egress", Verdict: "forwarded", CT: "established", MatchType: "l3-l4"}, // decided earlier
		{Direction: "egress", Verdict: "forwarded", CT: "new", MatchType: "none"},          // direction not enforced
		{Direction: "ingress", Verdict: "dropped", Reason: "UNROUTABLE"},
	} {
		if got := ToProtos(f, "default"); len(got) != 1 {
			t.Errorf("%+v gave %d flows, want 1", f, len(got))
		}
	}
}

// A proxy's decision is Hubble's L7 flow, filtered by the HTTP filters, and
// comes without a policy-verdict event.
func TestL7FlowsAndHTTPFilters(t *testing.T) {
	f := api.Flow{Src: "10.0.0.1", Dst: "10.0.0.2", SrcPort: 40000, DstPort: 80, Protocol: 6, Direction: "ingress",
		Verdict: "dropped", Reason: "POLICY_DENIED", CT: "l7", Policies: []string{"CiliumNetworkPolicy/x/l7"},
		L7: &api.L7Flow{Type: "http", LatencyNs: 1000, HTTP: &api.HTTPFlow{Method: "GET", URL: "10.0.0.2:80/private/x", Protocol: "HTTP/1.1", Code: 403}}}
	ps := ToProtos(f, "default")
	if len(ps) != 1 {
		t.Fatalf("%d flows, want the L7 one alone", len(ps))
	}
	p := ps[0]
	h := p.GetL7().GetHttp()
	if p.GetType() != flowpb.FlowType_L7 || p.GetEventType().GetType() != eventAccessLog || h.GetCode() != 403 || h.GetMethod() != "GET" ||
		p.GetL7().GetLatencyNs() != 1000 || p.GetSummary() != "HTTP/1.1 403 GET 10.0.0.2:80/private/x" || p.GetIngressDeniedBy()[0].GetName() != "l7" {
		t.Errorf("L7 flow %v", p)
	}
	for _, c := range []struct {
		flt  *flowpb.FlowFilter
		want bool
	}{
		{&flowpb.FlowFilter{HttpStatusCode: []string{"403"}}, true},
		{&flowpb.FlowFilter{HttpStatusCode: []string{"4+"}}, true},
		{&flowpb.FlowFilter{HttpStatusCode: []string{"2+", "404"}}, false},
		{&flowpb.FlowFilter{HttpMethod: []string{"get"}}, true},
		{&flowpb.FlowFilter{HttpMethod: []string{"POST"}}, false},
		{&flowpb.FlowFilter{HttpPath: []string{"/private/.*"}}, true},
		{&flowpb.FlowFilter{HttpPath: []string{"/public"}}, false},
		{&flowpb.FlowFilter{HttpUrl: []string{`10\.0\.0\.2:80/`}}, true},
	} {
		if got := (Filters{Allow: []*flowpb.FlowFilter{c.flt}}).Match(p); got != c.want {
			t.Errorf("%v matches %v, want %v", c.flt, got, c.want)
		}
	}
	l4 := ToProto(api.Flow{Src: "10.0.0.1", Dst: "10.0.0.2", Protocol: 6, Direction: "ingress", Verdict: "forwarded"}, "default")
	if (Filters{Allow: []*flowpb.FlowFilter{{HttpMethod: []string{"GET"}}}}).Match(l4) {
		t.Error("an HTTP filter matched a flow with no HTTP")
	}
}
