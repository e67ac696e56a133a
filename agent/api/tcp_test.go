package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// recorder is an agent that remembers what it was asked to do.
type recorder struct{ puts, deletes int }

func (r *recorder) PutEndpoint(context.Context, EndpointRequest) (EndpointResponse, error) {
	r.puts++
	return EndpointResponse{}, nil
}
func (r *recorder) DeleteEndpoint(context.Context, string) error { r.deletes++; return nil }
func (r *recorder) Status(context.Context) Status {
	return Status{Node: "node-1", PolicyRevision: 42}
}
func (r *recorder) Healthz(context.Context) error { return nil }
func (r *recorder) Flows(since uint64) Flows {
	return Flows{Instance: "i", Next: since + 1, Flows: []Flow{{Seq: since + 1, Reason: "POLICY_DENIED"}}}
}

// The TCP listener serves the GET requests (status with the policy
// revision, flows with the agent's clock) and nothing that changes the
// agent: registering or removing an endpoint over it is refused.
func TestReadOnlyTCP(t *testing.T) {
	ln, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := &recorder{}
	go ServeReadOnly(ctx, ln, b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c := NewTCPClient(ln.Addr().String())
	st, err := c.Status(ctx)
	if err != nil || st.PolicyRevision != 42 {
		t.Fatalf("status = %+v, %v", st, err)
	}
	before := monotonicNow()
	fl, err := c.Flows(ctx, 7)
	if err != nil || len(fl.Flows) != 1 || fl.Flows[0].Seq != 8 || fl.Next != 8 {
		t.Fatalf("flows = %+v, %v", fl, err)
	}
	if fl.NowNs < before || fl.NowNs > monotonicNow() {
		t.Errorf("nowNs %d is not the agent's monotonic clock at the answer (from %d)", fl.NowNs, before)
	}
	if _, err := c.PutEndpoint(ctx, EndpointRequest{ContainerID: "x"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("PUT over TCP: %v, want 404 (no such route)", err)
	}
	req, _ := http.NewRequest(http.MethodDelete, "http://"+ln.Addr().String()+PathEndpoints+"x", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || b.puts+b.deletes != 0 {
		t.Errorf("DELETE over TCP: %s, agent saw %d puts and %d deletes", resp.Status, b.puts, b.deletes)
	}
}

// Only loopback addresses are accepted: the API has no authentication and
// the agent shares the node's network namespace.
func TestListenTCPWantsLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "10.0.0.1:0", "[::]:0"} {
		if ln, err := ListenTCP(addr); err == nil {
			ln.Close()
			t.Errorf("ListenTCP(%s) listened", addr)
		} else if !strings.Contains(err.Error(), "loopback") {
			t.Errorf("ListenTCP(%s): %v, want it to ask for loopback", addr, err)
		}
	}
}
