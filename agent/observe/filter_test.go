package observe

import (
	"testing"

	"github.com/kestrelnet/kestrel/agent/api"
	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
)

func sampleFlow() *flowpb.Flow {
	return ToProto(api.Flow{
		TimeUnixNs: 1, Node: "node-2", Src: "10.244.1.5", Dst: "10.244.0.10", SrcPort: 40000, DstPort: 80,
		Protocol: 6, Direction: "ingress", Verdict: "dropped", Reason: "POLICY_DENIED", EndpointID: 7,
		SrcIdentity: 300, DstIdentity: 256, TCPFlags: 0x02,
		SrcPeer: withWorkload(podPeer("y", "backend-1", "b"), "Deployment/backend"), DstPeer: podPeer("x", "a", "a"),
	}, "default")
}

// Each filter field, given a value the flow has and one it has not.
func TestFilterFields(t *testing.T) {
	f := sampleFlow()
	for _, c := range []struct {
		name      string
		hit, miss *flowpb.FlowFilter
	}{
		{"source pod", &flowpb.FlowFilter{SourcePod: []string{"y/backend-"}}, &flowpb.FlowFilter{SourcePod: []string{"x/backend-"}}},
		{"destination pod", &flowpb.FlowFilter{DestinationPod: []string{"x/a"}}, &flowpb.FlowFilter{DestinationPod: []string{"x/b"}}},
		{"namespace", &flowpb.FlowFilter{DestinationPod: []string{"x/"}}, &flowpb.FlowFilter{DestinationPod: []string{"y/"}}},
		{"pod in any namespace", &flowpb.FlowFilter{SourcePod: []string{"backend"}}, &flowpb.FlowFilter{SourcePod: []string{"frontend"}}},
		{"label", &flowpb.FlowFilter{SourceLabel: []string{"k8s:app=b"}}, &flowpb.FlowFilter{SourceLabel: []string{"k8s:app=a"}}},
		{"label any source", &flowpb.FlowFilter{DestinationLabel: []string{"app in (a, c)"}}, &flowpb.FlowFilter{DestinationLabel: []string{"app notin (a)"}}},
		{"label and", &flowpb.FlowFilter{DestinationLabel: []string{"app=a,io.kubernetes.pod.namespace=x"}}, &flowpb.FlowFilter{DestinationLabel: []string{"app=a,!io.kubernetes.pod.namespace"}}},
		{"workload", &flowpb.FlowFilter{SourceWorkload: []*flowpb.Workload{{Name: "backend"}}}, &flowpb.FlowFilter{SourceWorkload: []*flowpb.Workload{{Kind: "StatefulSet", Name: "backend"}}}},
		{"no workload", &flowpb.FlowFilter{SourcePod: []string{"y/"}}, &flowpb.FlowFilter{DestinationWorkload: []*flowpb.Workload{{Name: "a"}}}},
		{"identity", &flowpb.FlowFilter{SourceIdentity: []uint32{1, 300}}, &flowpb.FlowFilter{SourceIdentity: []uint32{256}}},
		{"ip", &flowpb.FlowFilter{DestinationIp: []string{"10.244.0.10"}}, &flowpb.FlowFilter{DestinationIp: []string{"10.244.0.11"}}},
		{"cidr", &flowpb.FlowFilter{SourceIp: []string{"10.244.1.0/24"}}, &flowpb.FlowFilter{SourceIp: []string{"10.244.0.0/24"}}},
		{"port", &flowpb.FlowFilter{DestinationPort: []string{"80"}}, &flowpb.FlowFilter{DestinationPort: []string{"443"}}},
		{"protocol", &flowpb.FlowFilter{Protocol: []string{"udp", "TCP"}}, &flowpb.FlowFilter{Protocol: []string{"icmp"}}},
		{"verdict", &flowpb.FlowFilter{Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}}, &flowpb.FlowFilter{Verdict: []flowpb.Verdict{flowpb.Verdict_FORWARDED}}},
		{"drop reason", &flowpb.FlowFilter{DropReasonDesc: []flowpb.DropReason{flowpb.DropReason_POLICY_DENIED}}, &flowpb.FlowFilter{DropReasonDesc: []flowpb.DropReason{flowpb.DropReason_POLICY_DENY}}},
		{"direction", &flowpb.FlowFilter{TrafficDirection: []flowpb.TrafficDirection{flowpb.TrafficDirection_INGRESS}}, &flowpb.FlowFilter{TrafficDirection: []flowpb.TrafficDirection{flowpb.TrafficDirection_EGRESS}}},
		{"node", &flowpb.FlowFilter{NodeName: []string{"node-*"}}, &flowpb.FlowFilter{NodeName: []string{"node-1"}}},
		{"tcp flags", &flowpb.FlowFilter{TcpFlags: []*flowpb.TCPFlags{{SYN: true}}}, &flowpb.FlowFilter{TcpFlags: []*flowpb.TCPFlags{{SYN: true, ACK: true}}}},
		{"reply", &flowpb.FlowFilter{Reply: []bool{false}}, &flowpb.FlowFilter{Reply: []bool{true}}},
		{"event type", &flowpb.FlowFilter{EventType: []*flowpb.EventTypeFilter{{Type: eventDrop}}}, &flowpb.FlowFilter{EventType: []*flowpb.EventTypeFilter{{Type: eventTrace}}}},
		{"http (no L7 here)", &flowpb.FlowFilter{}, &flowpb.FlowFilter{HttpMethod: []string{"GET"}}},
	} {
		if !(Filters{Allow: []*flowpb.FlowFilter{c.hit}}).Match(f) {
			t.Errorf("%s: %v does not match", c.name, c.hit)
		}
		if (Filters{Allow: []*flowpb.FlowFilter{c.miss}}).Match(f) {
			t.Errorf("%s: %v matches", c.name, c.miss)
		}
		if (Filters{Deny: []*flowpb.FlowFilter{c.hit}}).Match(f) {
			t.Errorf("%s: denied by %v, but passes", c.name, c.hit)
		}
	}
}

// Allow filters are alternatives; fields within one filter must all match.
func TestFilterListsCombine(t *testing.T) {
	f := sampleFlow()
	srcX := &flowpb.FlowFilter{SourcePod: []string{"x/a"}}
	dstX := &flowpb.FlowFilter{DestinationPod: []string{"x/a"}}
	if !(Filters{Allow: []*flowpb.FlowFilter{srcX, dstX}}).Match(f) {
		t.Error("--pod x/a (source or destination) does not match a flow to x/a")
	}
	both := &flowpb.FlowFilter{DestinationPod: []string{"x/a"}, Verdict: []flowpb.Verdict{flowpb.Verdict_FORWARDED}}
	if (Filters{Allow: []*flowpb.FlowFilter{both}}).Match(f) {
		t.Error("a filter whose verdict does not match passed")
	}
	if (Filters{Allow: []*flowpb.FlowFilter{dstX}, Deny: []*flowpb.FlowFilter{{Protocol: []string{"tcp"}}}}).Match(f) {
		t.Error("a flow matching a deny filter passed")
	}
}

func withWorkload(p api.Peer, w string) api.Peer {
	p.Workload = w
	return p
}

// A flow to a Service's backend carries the Service, and --to-service
// (namespace/name prefix, or a name prefix) selects it.
func TestServiceFilters(t *testing.T) {
	dst := podPeer("y", "b", "b")
	dst.Service = "y/web"
	f := ToProto(api.Flow{Src: "10.0.0.1", Dst: "10.0.0.2", Protocol: 6, DstPort: 80, Direction: "egress", Verdict: "forwarded",
		SrcPeer: podPeer("x", "a", "a"), DstPeer: dst}, "default")
	if s := f.GetDestinationService(); s.GetNamespace() != "y" || s.GetName() != "web" || f.GetSourceService() != nil {
		t.Fatalf("services %v %v", f.GetSourceService(), s)
	}
	for want, match := range map[string]bool{"y/web": true, "y/we": true, "web": true, "x/web": false, "y/api": false} {
		fs := Filters{Allow: []*flowpb.FlowFilter{{DestinationService: []string{want}}}}
		if fs.Match(f) != match {
			t.Errorf("--to-service %s: match %v, want %v", want, !match, match)
		}
	}
	if (Filters{Allow: []*flowpb.FlowFilter{{SourceService: []string{"y/web"}}}}).Match(f) {
		t.Error("--from-service matched a flow from no Service")
	}
}
