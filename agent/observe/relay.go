package observe

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
	relaypb "github.com/kestrelnet/kestrel/agent/hubbleapi/relay"
)

// Peer is one agent's Observer as the relay reaches it.
type Peer struct {
	Name string // the node
	Addr string // unix socket path or host:port
}

// Relay serves the flows of every peer as one Observer, ordered by time,
// as hubble-relay does.
type Relay struct {
	observerpb.UnimplementedObserverServer
	peers func() []Peer // asked on every call, so nodes may come and go
	// Window is how long followed flows wait to be put in time order with
	// the other nodes' before they are sent.
	Window time.Duration

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewRelay relays the peers that peers returns.
func NewRelay(peers func() []Peer) *Relay {
	return &Relay{peers: peers, Window: 300 * time.Millisecond, conns: map[string]*grpc.ClientConn{}}
}

func (r *Relay) client(p Peer) (observerpb.ObserverClient, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.conns[p.Addr]
	if !ok {
		var err error
		c, err = grpc.NewClient(Target(p.Addr), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		r.conns[p.Addr] = c
	}
	return observerpb.NewObserverClient(c), nil
}

// Close closes the connections to the peers.
func (r *Relay) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = map[string]*grpc.ClientConn{}
}

// GetFlows asks every peer the same question. Without Follow it sorts all
// answers by time and keeps the first or last Number; with Follow it sends
// flows in time order once they are Window old.
func (r *Relay) GetFlows(req *observerpb.GetFlowsRequest, stream grpc.ServerStreamingServer[observerpb.GetFlowsResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	got := make(chan *observerpb.GetFlowsResponse, 1024)
	var wg sync.WaitGroup
	for _, p := range r.peers() {
		cl, err := r.client(p)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := cl.GetFlows(ctx, req)
			if err != nil {
				return
			}
			for {
				resp, err := s.Recv()
				if err != nil {
					return
				}
				select {
				case got <- resp:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(got) }()

	if !req.GetFollow() {
		var all []*observerpb.GetFlowsResponse
		for resp := range got {
			if resp.GetFlow() != nil {
				all = append(all, resp)
			}
		}
		sortByTime(all)
		for _, resp := range selectResponses(all, req.GetNumber(), req.GetFirst()) {
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
		return nil
	}
	var pending []*observerpb.GetFlowsResponse
	tick := time.NewTicker(r.Window / 3)
	defer tick.Stop()
	flush := func(all bool) error {
		sortByTime(pending)
		cut := time.Now().Add(-r.Window)
		n := 0
		for n < len(pending) && (all || pending[n].GetTime().AsTime().Before(cut)) {
			if err := stream.Send(pending[n]); err != nil {
				return err
			}
			n++
		}
		pending = pending[n:]
		return nil
	}
	for {
		select {
		case resp, ok := <-got:
			if !ok {
				return flush(true)
			}
			pending = append(pending, resp)
		case <-tick.C:
			if err := flush(false); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func sortByTime(rs []*observerpb.GetFlowsResponse) {
	sort.SliceStable(rs, func(i, j int) bool {
		return rs[i].GetTime().AsTime().Before(rs[j].GetTime().AsTime())
	})
}

func selectResponses(rs []*observerpb.GetFlowsResponse, n uint64, first bool) []*observerpb.GetFlowsResponse {
	if n == 0 || uint64(len(rs)) <= n {
		return rs
	}
	if first {
		return rs[:n]
	}
	return rs[uint64(len(rs))-n:]
}

// nodeStatus asks one peer for its figures.
func (r *Relay) nodeStatus(ctx context.Context, p Peer) *observerpb.Node {
	n := &observerpb.Node{Name: p.Name, Address: p.Addr, State: relaypb.NodeState_NODE_UNAVAILABLE}
	cl, err := r.client(p)
	if err != nil {
		return n
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := cl.ServerStatus(ctx, &observerpb.ServerStatusRequest{})
	if err != nil {
		return n
	}
	n.State = relaypb.NodeState_NODE_CONNECTED
	n.Version, n.UptimeNs = st.GetVersion(), st.GetUptimeNs()
	n.NumFlows, n.MaxFlows, n.SeenFlows = st.GetNumFlows(), st.GetMaxFlows(), st.GetSeenFlows()
	return n
}

func (r *Relay) nodes(ctx context.Context) []*observerpb.Node {
	peers := r.peers()
	out := make([]*observerpb.Node, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = r.nodeStatus(ctx, p) }()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// GetNodes lists every peer, connected or not.
func (r *Relay) GetNodes(ctx context.Context, _ *observerpb.GetNodesRequest) (*observerpb.GetNodesResponse, error) {
	return &observerpb.GetNodesResponse{Nodes: r.nodes(ctx)}, nil
}

// ServerStatus adds up the connected peers' figures.
func (r *Relay) ServerStatus(ctx context.Context, _ *observerpb.ServerStatusRequest) (*observerpb.ServerStatusResponse, error) {
	out := &observerpb.ServerStatusResponse{Version: Version}
	var connected, unavailable uint32
	for _, n := range r.nodes(ctx) {
		if n.State != relaypb.NodeState_NODE_CONNECTED {
			unavailable++
			out.UnavailableNodes = append(out.UnavailableNodes, n.Name)
			continue
		}
		connected++
		out.NumFlows += n.NumFlows
		out.MaxFlows += n.MaxFlows
		out.SeenFlows += n.SeenFlows
		out.UptimeNs = max(out.UptimeNs, n.UptimeNs)
	}
	if connected == 0 && unavailable > 0 {
		return nil, errors.New("no node's observer answers")
	}
	out.NumConnectedNodes = wrapUInt32(connected)
	out.NumUnavailableNodes = wrapUInt32(unavailable)
	return out, nil
}

func wrapUInt32(v uint32) *wrapperspb.UInt32Value { return wrapperspb.UInt32(v) }

// GetNamespaces merges the connected peers' namespaces.
func (r *Relay) GetNamespaces(ctx context.Context, req *observerpb.GetNamespacesRequest) (*observerpb.GetNamespacesResponse, error) {
	peers := r.peers()
	answers := make([][]*observerpb.Namespace, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		cl, err := r.client(p)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if resp, err := cl.GetNamespaces(ctx, req); err == nil {
				answers[i] = resp.GetNamespaces()
			}
		}()
	}
	wg.Wait()
	seen := map[[2]string]bool{}
	var out []*observerpb.Namespace
	for _, a := range answers {
		for _, ns := range a {
			k := [2]string{ns.GetCluster(), ns.GetNamespace()}
			if !seen[k] {
				seen[k] = true
				out = append(out, ns)
			}
		}
	}
	sortNamespaces(out)
	return &observerpb.GetNamespacesResponse{Namespaces: out}, nil
}
