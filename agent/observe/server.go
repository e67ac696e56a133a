package observe

import (
	"context"
	"sort"
	"time"

	"google.golang.org/grpc"

	"github.com/kestrelnet/kestrel/agent/api"
	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
	relaypb "github.com/kestrelnet/kestrel/agent/hubbleapi/relay"
)

// Version is what ServerStatus and GetNodes report as the server's version.
const Version = "kestrel (hubble api of cilium v1.20.2)"

// Source is the agent's flow ring as the Observer reads it.
type Source interface {
	// FlowsAfter returns the kept flows after seq and a channel closed when
	// another arrives.
	FlowsAfter(seq uint64) (api.Flows, <-chan struct{})
	FlowStats() (kept, capacity, seen uint64, uptime time.Duration)
	NodeName() string
}

// Server is one agent's Hubble Observer.
type Server struct {
	observerpb.UnimplementedObserverServer
	src     Source
	cluster string
}

// NewServer serves src's flows; cluster names the cluster in endpoints.
func NewServer(src Source, cluster string) *Server {
	return &Server{src: src, cluster: cluster}
}

// query is a GetFlows request's selection, applied to converted flows.
type query struct {
	filters      Filters
	since, until time.Time
}

func newQuery(req *observerpb.GetFlowsRequest) query {
	q := query{filters: Filters{Allow: req.GetWhitelist(), Deny: req.GetBlacklist()}}
	if req.GetSince() != nil {
		q.since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		q.until = req.GetUntil().AsTime()
	}
	return q
}

func (q query) match(f *flowpb.Flow) bool {
	t := f.GetTime().AsTime()
	if !q.since.IsZero() && t.Before(q.since) {
		return false
	}
	if !q.until.IsZero() && t.After(q.until) {
		return false
	}
	return q.filters.Match(f)
}

// GetFlows sends the kept flows that match (the first or last Number of
// them, all if Number is 0), then, with Follow, every new one that matches
// until the client goes or Until passes. Following with neither Number nor
// Since starts at the newest flow, as Hubble does.
func (s *Server) GetFlows(req *observerpb.GetFlowsRequest, stream grpc.ServerStreamingServer[observerpb.GetFlowsResponse]) error {
	q := newQuery(req)
	kept, next := s.src.FlowsAfter(0)
	var backlog []*flowpb.Flow
	if !req.GetFollow() || req.GetNumber() > 0 || req.GetSince() != nil {
		for _, f := range kept.Flows {
			for _, pf := range ToProtos(f, s.cluster) {
				if q.match(pf) {
					backlog = append(backlog, pf)
				}
			}
		}
		backlog = selectN(backlog, req.GetNumber(), req.GetFirst())
	}
	for _, f := range backlog {
		if err := s.send(stream, f); err != nil {
			return err
		}
	}
	if !req.GetFollow() {
		return nil
	}
	seq := kept.Next
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case <-next:
		}
		var batch api.Flows
		batch, next = s.src.FlowsAfter(seq)
		seq = batch.Next
		if batch.Lost > 0 {
			// The ring overwrote flows before this reader got them: say
			// so, as Hubble does, rather than skip them silently.
			if err := stream.Send(&observerpb.GetFlowsResponse{
				ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{
					Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: batch.Lost}},
				NodeName: s.src.NodeName(),
			}); err != nil {
				return err
			}
		}
		for _, f := range batch.Flows {
			for _, pf := range ToProtos(f, s.cluster) {
				if !q.until.IsZero() && pf.GetTime().AsTime().After(q.until) {
					return nil
				}
				if !q.match(pf) {
					continue
				}
				if err := s.send(stream, pf); err != nil {
					return err
				}
			}
		}
	}
}

func (s *Server) send(stream grpc.ServerStreamingServer[observerpb.GetFlowsResponse], f *flowpb.Flow) error {
	return stream.Send(&observerpb.GetFlowsResponse{
		ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f},
		NodeName:      f.GetNodeName(),
		Time:          f.GetTime(),
	})
}

// selectN keeps the first or last n flows (all for n = 0).
func selectN(flows []*flowpb.Flow, n uint64, first bool) []*flowpb.Flow {
	if n == 0 || uint64(len(flows)) <= n {
		return flows
	}
	if first {
		return flows[:n]
	}
	return flows[uint64(len(flows))-n:]
}

// ServerStatus reports the ring's figures.
func (s *Server) ServerStatus(context.Context, *observerpb.ServerStatusRequest) (*observerpb.ServerStatusResponse, error) {
	kept, capacity, seen, uptime := s.src.FlowStats()
	return &observerpb.ServerStatusResponse{
		NumFlows: kept, MaxFlows: capacity, SeenFlows: seen, UptimeNs: uint64(uptime), Version: Version,
	}, nil
}

// GetNodes names this node alone: an agent knows no other.
func (s *Server) GetNodes(context.Context, *observerpb.GetNodesRequest) (*observerpb.GetNodesResponse, error) {
	kept, capacity, seen, uptime := s.src.FlowStats()
	return &observerpb.GetNodesResponse{Nodes: []*observerpb.Node{{
		Name: s.src.NodeName(), Version: Version, State: relaypb.NodeState_NODE_CONNECTED,
		UptimeNs: uint64(uptime), NumFlows: kept, MaxFlows: capacity, SeenFlows: seen,
	}}}, nil
}

// namespaceWindow is how far back GetNamespaces looks: Hubble lists the
// namespaces that had flows in the last hour.
const namespaceWindow = time.Hour

// GetNamespaces lists the namespaces of the pods in the kept flows of the
// last hour, sorted by cluster then name.
func (s *Server) GetNamespaces(context.Context, *observerpb.GetNamespacesRequest) (*observerpb.GetNamespacesResponse, error) {
	kept, _ := s.src.FlowsAfter(0)
	since := time.Now().Add(-namespaceWindow).UnixNano()
	seen := map[string]bool{}
	for _, f := range kept.Flows {
		if f.TimeUnixNs < since {
			continue
		}
		for _, p := range []api.Peer{f.SrcPeer, f.DstPeer} {
			if p.Namespace != "" {
				seen[p.Namespace] = true
			}
		}
	}
	var out []*observerpb.Namespace
	for ns := range seen {
		out = append(out, &observerpb.Namespace{Cluster: s.cluster, Namespace: ns})
	}
	sortNamespaces(out)
	return &observerpb.GetNamespacesResponse{Namespaces: out}, nil
}

func sortNamespaces(ns []*observerpb.Namespace) {
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].GetCluster() != ns[j].GetCluster() {
			return ns[i].GetCluster() < ns[j].GetCluster()
		}
		return ns[i].GetNamespace() < ns[j].GetNamespace()
	})
}
