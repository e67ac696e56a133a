package servicemap

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kestrelnet/kestrel/agent/api"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
	"github.com/kestrelnet/kestrel/agent/observe"
)

// source is a node's flow ring as the Observer reads it.
type source struct {
	mu    sync.Mutex
	flows []api.Flow
	added chan struct{}
}

func (s *source) add(f api.Flow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.Seq = uint64(len(s.flows) + 1)
	s.flows = append(s.flows, f)
	close(s.added)
	s.added = make(chan struct{})
}

func (s *source) FlowsAfter(seq uint64) (api.Flows, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return api.Flows{Flows: append([]api.Flow{}, s.flows[seq:]...), Next: uint64(len(s.flows))}, s.added
}

func (s *source) FlowStats() (uint64, uint64, uint64, time.Duration) {
	return uint64(len(s.flows)), 100, uint64(len(s.flows)), time.Second
}

func (s *source) NodeName() string { return "node-1" }

func peer(ns, pod string) api.Peer {
	return api.Peer{Namespace: ns, Pod: pod, Labels: []string{"k8s:io.kubernetes.pod.namespace=" + ns}}
}

// The page's event stream: a denied connection and an allowed one, as
// edges between their pods with verdict, reason, port and policies; the
// namespace filter keeps only flows with an end in it.
func TestFlowsStreamAsEdges(t *testing.T) {
	src := &source{added: make(chan struct{})}
	now := time.Now().UnixNano()
	src.add(api.Flow{TimeUnixNs: now, Node: "node-1", Src: "10.0.1.2", Dst: "10.0.0.2", SrcPort: 40000, DstPort: 80, Protocol: 6,
		Direction: "ingress", Verdict: "dropped", Reason: "POLICY_DENIED", TCPFlags: 0x02, SrcPeer: peer("y", "b"), DstPeer: peer("x", "a"),
		EnforcedBy: []string{"NetworkPolicy/x/deny-ingress"}})
	dst := peer("y", "b")
	dst.Service = "y/dns"
	src.add(api.Flow{TimeUnixNs: now + 1, Node: "node-1", Src: "10.0.1.3", Dst: "10.0.2.2", SrcPort: 40001, DstPort: 53, Protocol: 17,
		Direction: "egress", Verdict: "forwarded", CT: "new", SrcPeer: peer("z", "c"), DstPeer: dst})

	ln, err := observe.Listen(t.TempDir() + "/hubble.sock")
	if err != nil {
		t.Fatal(err)
	}
	srv := observe.NewGRPCServer(observe.NewServer(src, "default"))
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(observe.Target(ln.Addr().String()), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	web := httptest.NewServer(Handler(observerpb.NewObserverClient(conn)))
	t.Cleanup(web.Close)

	edges := readEdges(t, web.URL+"/api/flows", 2)
	d, f := edges[0], edges[1]
	if d.Src.ID != "y/Pod/b" || d.Dst.ID != "x/Pod/a" || d.Verdict != "DROPPED" || d.Reason != "POLICY_DENIED" ||
		d.Protocol != "TCP" || d.Port != 80 || len(d.Policies) != 1 || d.Policies[0] != "NetworkPolicy/x/deny-ingress" {
		t.Errorf("dropped edge %+v", d)
	}
	if f.Src.ID != "z/Pod/c" || f.Dst.ID != "y/Pod/b" || f.Verdict != "FORWARDED" || f.Protocol != "UDP" || f.Port != 53 ||
		f.Service == nil || f.Service.ID != "y/Service/dns" || d.Service != nil {
		t.Errorf("forwarded edge %+v", f)
	}
	if got := readEdges(t, web.URL+"/api/flows?namespace=x", 1); got[0].Dst.Namespace != "x" {
		t.Errorf("namespace x: %+v", got)
	}

	for path, want := range map[string]string{"/": "<title>Kestrel service map</title>", "/app.js": "kestrelServiceMap", "/api/namespaces": `["x","y","z"]`} {
		resp, err := http.Get(web.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			b.WriteString(sc.Text())
		}
		resp.Body.Close()
		if !strings.Contains(b.String(), want) {
			t.Errorf("GET %s lacks %s", path, want)
		}
	}
}

// readEdges reads n events from the stream.
func readEdges(t *testing.T, url string, n int) []Edge {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var out []Edge
	sc := bufio.NewScanner(resp.Body)
	for len(out) < n && sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e Edge
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if len(out) < n {
		t.Fatalf("%d edges from %s, want %d (%v)", len(out), url, n, sc.Err())
	}
	return out
}
