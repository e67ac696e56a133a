package observe

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
)

// Each event of a flow has its own UUID (version 5), the same every time
// the flow is served, and `--uuid` selects it.
func TestFlowUUIDs(t *testing.T) {
	f := flowAt(10, 1, false)
	f.Node, f.Seq, f.CT, f.MatchType = "node-1", 7, "new", "l3-l4"
	first, again := ToProtos(f, "default"), ToProtos(f, "default")
	if len(first) != 2 {
		t.Fatalf("%d events, want a policy verdict and a trace", len(first))
	}
	for i := range first {
		u, err := uuid.Parse(first[i].GetUuid())
		if err != nil || u.Version() != 5 {
			t.Errorf("uuid %q: %v, version %d", first[i].GetUuid(), err, u.Version())
		}
		if first[i].GetUuid() != again[i].GetUuid() {
			t.Errorf("event %d: uuid %s then %s", i, first[i].GetUuid(), again[i].GetUuid())
		}
	}
	if first[0].GetUuid() == first[1].GetUuid() {
		t.Error("the policy verdict and the trace share a uuid")
	}
	f.Seq = 8
	if ToProtos(f, "default")[1].GetUuid() == first[1].GetUuid() {
		t.Error("two flows share a uuid")
	}
	byUUID := Filters{Allow: []*flowpb.FlowFilter{{Uuid: []string{first[1].GetUuid()}}}}
	if !byUUID.Match(first[1]) || byUUID.Match(first[0]) {
		t.Error("the uuid filter does not select exactly its flow")
	}
}

// GetNamespaces lists the namespaces with flows, from an agent and merged
// by the relay.
func TestGetNamespaces(t *testing.T) {
	now := time.Now()
	a, b := newRingSource("node-a"), newRingSource("node-b")
	fa := flowAt(0, 1, false) // x/a -> y/b
	fa.TimeUnixNs = now.UnixNano()
	a.add(fa)
	fb := flowAt(0, 2, false)
	fb.TimeUnixNs = now.UnixNano()
	fb.SrcPeer, fb.DstPeer = podPeer("z", "c", "c"), podPeer("y", "b", "b")
	b.add(fb)
	old := flowAt(0, 3, false) // two hours ago: not listed
	old.TimeUnixNs = now.Add(-2 * time.Hour).UnixNano()
	old.SrcPeer = podPeer("gone", "g", "g")
	b.add(old)
	peers := []Peer{{"node-a", serve(t, NewServer(a, "default"))}, {"node-b", serve(t, NewServer(b, "default"))}}
	relay := NewRelay(func() []Peer { return peers })
	t.Cleanup(relay.Close)
	for name, addr := range map[string]string{"agent": peers[1].Addr, "relay": serve(t, relay)} {
		resp, err := dial(t, addr).GetNamespaces(context.Background(), &observerpb.GetNamespacesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ns := range resp.GetNamespaces() {
			if ns.GetCluster() != "default" {
				t.Errorf("%s: cluster %q", name, ns.GetCluster())
			}
			got = append(got, ns.GetNamespace())
		}
		want := map[string][]string{"agent": {"y", "z"}, "relay": {"x", "y", "z"}}[name]
		if len(got) != len(want) || (len(got) > 0 && got[0] != want[0]) || got[len(got)-1] != want[len(want)-1] {
			t.Errorf("%s: namespaces %v, want %v", name, got, want)
		}
	}
}

// eventSource is a node that keeps agent events too.
type eventSource struct {
	*ringSource
	events AgentEvents
}

func (e *eventSource) AgentEvents() *AgentEvents { return &e.events }

// GetAgentEvents sends the kept events, the last N, then followed ones;
// the relay, like hubble-relay, and GetDebugEvents say Unimplemented.
func TestGetAgentEvents(t *testing.T) {
	src := &eventSource{ringSource: newRingSource("node-1")}
	for _, ty := range []flowpb.AgentEventType{flowpb.AgentEventType_AGENT_STARTED, flowpb.AgentEventType_ENDPOINT_CREATED,
		flowpb.AgentEventType_POLICY_UPDATED} {
		src.events.Add(&flowpb.AgentEvent{Type: ty})
	}
	addr := serve(t, NewServer(src, "default"))
	cl := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := func(req *observerpb.GetAgentEventsRequest, n int) []flowpb.AgentEventType {
		s, err := cl.GetAgentEvents(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var out []flowpb.AgentEventType
		for n <= 0 || len(out) < n {
			r, err := s.Recv()
			if err != nil {
				break
			}
			if r.GetNodeName() != "node-1" || r.GetTime() == nil {
				t.Errorf("response without node or time: %v", r)
			}
			out = append(out, r.GetAgentEvent().GetType())
		}
		return out
	}
	if got := read(&observerpb.GetAgentEventsRequest{}, 0); len(got) != 3 || got[0] != flowpb.AgentEventType_AGENT_STARTED {
		t.Errorf("all events: %v", got)
	}
	if got := read(&observerpb.GetAgentEventsRequest{Number: 1}, 0); len(got) != 1 || got[0] != flowpb.AgentEventType_POLICY_UPDATED {
		t.Errorf("last event: %v", got)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		src.events.Add(&flowpb.AgentEvent{Type: flowpb.AgentEventType_ENDPOINT_DELETED})
	}()
	if got := read(&observerpb.GetAgentEventsRequest{Follow: true}, 1); len(got) != 1 || got[0] != flowpb.AgentEventType_ENDPOINT_DELETED {
		t.Errorf("followed: %v", got)
	}

	relay := NewRelay(func() []Peer { return []Peer{{"node-1", addr}} })
	t.Cleanup(relay.Close)
	rcl := dial(t, serve(t, relay))
	for name, call := range map[string]func() error{
		"relay agent events": func() error {
			s, _ := rcl.GetAgentEvents(ctx, &observerpb.GetAgentEventsRequest{})
			_, err := s.Recv()
			return err
		},
		"relay debug events": func() error {
			s, _ := rcl.GetDebugEvents(ctx, &observerpb.GetDebugEventsRequest{})
			_, err := s.Recv()
			return err
		},
		"agent debug events": func() error {
			s, _ := cl.GetDebugEvents(ctx, &observerpb.GetDebugEventsRequest{})
			_, err := s.Recv()
			return err
		},
	} {
		if err := call(); status.Code(err) != codes.Unimplemented {
			t.Errorf("%s: %v, want Unimplemented", name, err)
		}
	}
}
