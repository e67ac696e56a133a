package observe

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kestrelnet/kestrel/agent/api"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
)

// ringSource is a node's flows in memory, in the order they were added.
type ringSource struct {
	node  string
	mu    sync.Mutex
	flows []api.Flow
	added chan struct{}
	// forgotten flows (the oldest) are no longer kept.
	forgotten uint64
}

func newRingSource(node string) *ringSource {
	return &ringSource{node: node, added: make(chan struct{})}
}

func (r *ringSource) add(f api.Flow) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.Seq = uint64(len(r.flows) + 1)
	f.Node = r.node
	r.flows = append(r.flows, f)
	close(r.added)
	r.added = make(chan struct{})
}

func (r *ringSource) FlowsAfter(seq uint64) (api.Flows, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := api.Flows{Next: uint64(len(r.flows))}
	// Flows up to r.forgotten are gone, as from a ring that wrapped.
	if seq < r.forgotten {
		out.Lost, seq = r.forgotten-seq, r.forgotten
	}
	if seq < uint64(len(r.flows)) {
		out.Flows = append([]api.Flow(nil), r.flows[seq:]...)
	}
	return out, r.added
}

func (r *ringSource) FlowStats() (uint64, uint64, uint64, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return uint64(len(r.flows)), 100, uint64(len(r.flows)), time.Minute
}

func (r *ringSource) NodeName() string { return r.node }

// serve runs obs on a unix socket in a test directory and returns its path.
func serve(t *testing.T, obs observerpb.ObserverServer) string {
	t.Helper()
	path := t.TempDir() + "/hubble.sock"
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewGRPCServer(obs)
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(srv.Stop)
	return path
}

func dial(t *testing.T, addr string) observerpb.ObserverClient {
	t.Helper()
	c, err := grpc.NewClient(Target(addr), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return observerpb.NewObserverClient(c)
}

// collect reads a GetFlows stream until it ends, or until n flows came.
func collect(t *testing.T, cl observerpb.ObserverClient, req *observerpb.GetFlowsRequest, n int) []*observerpb.GetFlowsResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := cl.GetFlows(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var out []*observerpb.GetFlowsResponse
	for n <= 0 || len(out) < n {
		r, err := s.Recv()
		if err != nil {
			break
		}
		out = append(out, r)
	}
	return out
}
