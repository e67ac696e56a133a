package observe

import (
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
)

// AgentEventCapacity is how many agent events an agent keeps.
const AgentEventCapacity = 1024

// AgentEvents keeps an agent's recent events (Cilium's agent
// notifications: start, policy updates, endpoints created, deleted and
// regenerated) for GetAgentEvents. The zero value is ready.
type AgentEvents struct {
	mu     sync.Mutex
	events []timedEvent // the last AgentEventCapacity, oldest first
	added  chan struct{}
}

type timedEvent struct {
	at time.Time
	ev *flowpb.AgentEvent
}

// Add keeps ev, observed now.
func (a *AgentEvents) Add(ev *flowpb.AgentEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.events) == AgentEventCapacity {
		a.events = append(a.events[:0], a.events[1:]...)
	}
	a.events = append(a.events, timedEvent{time.Now(), ev})
	if a.added != nil {
		close(a.added)
	}
	a.added = make(chan struct{})
}

// since returns the kept events after t (all for the zero time) and a
// channel closed at the next Add.
func (a *AgentEvents) since(t time.Time) ([]timedEvent, <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.added == nil {
		a.added = make(chan struct{})
	}
	var out []timedEvent
	for _, e := range a.events {
		if e.at.After(t) {
			out = append(out, e)
		}
	}
	return out, a.added
}

// Since returns the kept events, oldest first, and a channel closed at the
// next Add.
func (a *AgentEvents) Since() ([]*flowpb.AgentEvent, <-chan struct{}) {
	kept, next := a.since(time.Time{})
	out := make([]*flowpb.AgentEvent, len(kept))
	for i, e := range kept {
		out[i] = e.ev
	}
	return out, next
}

// AgentEventSource is a Source that also keeps agent events.
type AgentEventSource interface {
	AgentEvents() *AgentEvents
}

// GetAgentEvents sends the agent's kept events (first or last Number, in
// Since/Until), then with Follow the new ones.
func (s *Server) GetAgentEvents(req *observerpb.GetAgentEventsRequest, stream grpc.ServerStreamingServer[observerpb.GetAgentEventsResponse]) error {
	src, ok := s.src.(AgentEventSource)
	if !ok {
		return status.Error(codes.Unimplemented, "this observer keeps no agent events")
	}
	var since, until time.Time
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		until = req.GetUntil().AsTime()
	}
	kept, next := src.AgentEvents().since(time.Time{})
	var backlog []timedEvent
	var last time.Time
	for _, e := range kept {
		last = e.at
		if (since.IsZero() || !e.at.Before(since)) && (until.IsZero() || !e.at.After(until)) {
			backlog = append(backlog, e)
		}
	}
	if req.GetFollow() && req.GetNumber() == 0 && req.GetSince() == nil {
		backlog = nil // following from now, as GetFlows
	}
	if n := req.GetNumber(); n > 0 && uint64(len(backlog)) > n {
		if req.GetFirst() {
			backlog = backlog[:n]
		} else {
			backlog = backlog[uint64(len(backlog))-n:]
		}
	}
	send := func(e timedEvent) error {
		return stream.Send(&observerpb.GetAgentEventsResponse{AgentEvent: e.ev, NodeName: s.src.NodeName(), Time: timestamppb.New(e.at)})
	}
	for _, e := range backlog {
		if err := send(e); err != nil {
			return err
		}
	}
	if !req.GetFollow() {
		return nil
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case <-next:
		}
		var batch []timedEvent
		batch, next = src.AgentEvents().since(last)
		for _, e := range batch {
			last = e.at
			if !until.IsZero() && e.at.After(until) {
				return nil
			}
			if err := send(e); err != nil {
				return err
			}
		}
	}
}

// GetDebugEvents: Kestrel's datapath sends no debug messages. Cilium's
// agent has them only when its datapath is built with debugging (off by
// default), so this is what a default Cilium has too: nothing, said
// plainly rather than as a stream that never sends.
func (s *Server) GetDebugEvents(*observerpb.GetDebugEventsRequest, grpc.ServerStreamingServer[observerpb.GetDebugEventsResponse]) error {
	return status.Error(codes.Unimplemented, "Kestrel's datapath emits no debug events (Cilium's does only with datapath debugging on)")
}

// GetAgentEvents is not relayed, as hubble-relay does not: ask an agent.
func (r *Relay) GetAgentEvents(*observerpb.GetAgentEventsRequest, grpc.ServerStreamingServer[observerpb.GetAgentEventsResponse]) error {
	return status.Error(codes.Unimplemented, "GetAgentEvents is not relayed (as hubble-relay): ask a node's agent (its hubble.sock)")
}

// GetDebugEvents is not relayed, as hubble-relay does not.
func (r *Relay) GetDebugEvents(*observerpb.GetDebugEventsRequest, grpc.ServerStreamingServer[observerpb.GetDebugEventsResponse]) error {
	return status.Error(codes.Unimplemented, "GetDebugEvents is not relayed (as hubble-relay), and agents have none")
}
