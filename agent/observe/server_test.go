package observe

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/kestrelnet/kestrel/agent/api"
	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
	relaypb "github.com/kestrelnet/kestrel/agent/hubbleapi/relay"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// flowAt is a forwarded UDP flow from port src at t0+ms, or a drop no
// policy decided (so one Hubble flow each: no policy-verdict event).
func flowAt(ms int, src uint16, dropped bool) api.Flow {
	f := api.Flow{TimeUnixNs: t0.Add(time.Duration(ms) * time.Millisecond).UnixNano(), Src: "10.0.0.1", Dst: "10.0.0.2",
		SrcPort: src, DstPort: 53, Protocol: 17, Direction: "egress", Verdict: "forwarded",
		SrcPeer: podPeer("x", "a", "a"), DstPeer: podPeer("y", "b", "b")}
	if dropped {
		f.Verdict, f.Reason = "dropped", "UNROUTABLE"
	}
	return f
}

func srcPorts(rs []*observerpb.GetFlowsResponse) []uint32 {
	var out []uint32
	for _, r := range rs {
		out = append(out, r.GetFlow().GetL4().GetUDP().GetSourcePort())
	}
	return out
}

func equal(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGetFlowsSelects(t *testing.T) {
	src := newRingSource("node-1")
	for i := 1; i <= 6; i++ {
		src.add(flowAt(i*10, uint16(i), i%2 == 0))
	}
	cl := dial(t, serve(t, NewServer(src, "default")))
	dropped := []*flowpb.FlowFilter{{Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}}}
	for _, c := range []struct {
		name string
		req  *observerpb.GetFlowsRequest
		want []uint32
	}{
		{"all", &observerpb.GetFlowsRequest{}, []uint32{1, 2, 3, 4, 5, 6}},
		{"last 2", &observerpb.GetFlowsRequest{Number: 2}, []uint32{5, 6}},
		{"first 2", &observerpb.GetFlowsRequest{Number: 2, First: true}, []uint32{1, 2}},
		{"dropped", &observerpb.GetFlowsRequest{Whitelist: dropped}, []uint32{2, 4, 6}},
		{"not dropped, last 2", &observerpb.GetFlowsRequest{Blacklist: dropped, Number: 2}, []uint32{3, 5}},
		{"since/until", &observerpb.GetFlowsRequest{Since: timestamppb.New(t0.Add(20 * time.Millisecond)),
			Until: timestamppb.New(t0.Add(40 * time.Millisecond))}, []uint32{2, 3, 4}},
	} {
		got := collect(t, cl, c.req, 0)
		if !equal(srcPorts(got), c.want) {
			t.Errorf("%s: got flows %v, want %v", c.name, srcPorts(got), c.want)
		}
		for _, r := range got {
			if r.GetNodeName() != "node-1" || r.GetTime() == nil {
				t.Errorf("%s: response without node or time: %v", c.name, r)
			}
		}
	}
}

// Following sends the last N, then new flows as they come, filtered.
func TestGetFlowsFollows(t *testing.T) {
	src := newRingSource("node-1")
	src.add(flowAt(10, 1, true))
	src.add(flowAt(20, 2, true))
	cl := dial(t, serve(t, NewServer(src, "default")))
	go func() {
		time.Sleep(100 * time.Millisecond)
		src.add(flowAt(30, 3, false))
		src.add(flowAt(40, 4, true))
	}()
	got := collect(t, cl, &observerpb.GetFlowsRequest{Follow: true, Number: 1,
		Whitelist: []*flowpb.FlowFilter{{Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}}}}, 2)
	if !equal(srcPorts(got), []uint32{2, 4}) {
		t.Errorf("followed flows %v, want [2 4]", srcPorts(got))
	}
}

// The relay merges nodes' flows in time order and reports each node.
func TestRelayMergesByTime(t *testing.T) {
	a, b := newRingSource("node-a"), newRingSource("node-b")
	for _, ms := range []int{10, 30, 50} {
		a.add(flowAt(ms, uint16(ms), false))
	}
	for _, ms := range []int{20, 40} {
		b.add(flowAt(ms, uint16(ms), true))
	}
	peers := []Peer{{"node-a", serve(t, NewServer(a, "default"))}, {"node-b", serve(t, NewServer(b, "default"))},
		{"node-gone", t.TempDir() + "/nothing.sock"}}
	relay := NewRelay(func() []Peer { return peers })
	relay.Window = 50 * time.Millisecond
	t.Cleanup(relay.Close)
	cl := dial(t, serve(t, relay))

	got := collect(t, cl, &observerpb.GetFlowsRequest{}, 0)
	if !equal(srcPorts(got), []uint32{10, 20, 30, 40, 50}) {
		t.Errorf("merged %v, want [10 20 30 40 50]", srcPorts(got))
	}
	if got := collect(t, cl, &observerpb.GetFlowsRequest{Number: 2}, 0); !equal(srcPorts(got), []uint32{40, 50}) {
		t.Errorf("last 2 of all nodes: %v, want [40 50]", srcPorts(got))
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		b.add(flowAt(60, 60, true))
	}()
	if got := collect(t, cl, &observerpb.GetFlowsRequest{Follow: true, Number: 1}, 3); !equal(srcPorts(got), []uint32{40, 50, 60}) {
		t.Errorf("followed %v, want the last of each node in order then the new one: [40 50 60]", srcPorts(got))
	}

	ctx := context.Background()
	nodes, err := cl.GetNodes(ctx, &observerpb.GetNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]relaypb.NodeState{}
	for _, n := range nodes.GetNodes() {
		states[n.GetName()] = n.GetState()
	}
	if states["node-a"] != relaypb.NodeState_NODE_CONNECTED || states["node-b"] != relaypb.NodeState_NODE_CONNECTED ||
		states["node-gone"] != relaypb.NodeState_NODE_UNAVAILABLE {
		t.Errorf("node states %v", states)
	}
	st, err := cl.ServerStatus(ctx, &observerpb.ServerStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetNumConnectedNodes().GetValue() != 2 || st.GetNumUnavailableNodes().GetValue() != 1 || st.GetNumFlows() != 6 {
		t.Errorf("status %v", st)
	}
}

// A follower that falls behind the ring is told how many flows it lost.
func TestGetFlowsReportsLostFlows(t *testing.T) {
	src := newRingSource("node-1")
	cl := dial(t, serve(t, NewServer(src, "default")))
	go func() {
		time.Sleep(100 * time.Millisecond)
		src.mu.Lock()
		// Three flows arrive and are overwritten before the follower reads.
		for i := 1; i <= 3; i++ {
			src.flows = append(src.flows, flowAt(i, uint16(i), false))
		}
		src.forgotten = 3
		src.mu.Unlock()
		src.add(flowAt(4, 4, false))
	}()
	got := collect(t, cl, &observerpb.GetFlowsRequest{Follow: true}, 2)
	if len(got) != 2 || got[0].GetLostEvents().GetNumEventsLost() != 3 ||
		got[0].GetLostEvents().GetSource() != flowpb.LostEventSource_HUBBLE_RING_BUFFER || got[1].GetFlow() == nil {
		t.Fatalf("got %v, want a lost-events report of 3 then the flow", got)
	}
}
