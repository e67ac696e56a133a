package observe

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
	"github.com/kestrelnet/kestrel/agent/observe/promtooltest"
)

// The relay serves hubble-relay's metrics: its peers by connection state
// and its gRPC calls by method; promtool accepts them.
func TestRelayMetrics(t *testing.T) {
	a := newRingSource("node-a")
	a.add(flowAt(10, 1, false))
	peers := []Peer{{"node-a", serve(t, NewServer(a, "default"))}, {"node-gone", t.TempDir() + "/nothing.sock"}}
	relay := NewRelay(func() []Peer { return peers })
	relay.Window = 50 * time.Millisecond
	t.Cleanup(relay.Close)
	srv, metrics := NewRelayGRPCServer(relay)
	path := t.TempDir() + "/relay.sock"
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(srv.Stop)
	cl := dial(t, path)
	if got := collect(t, cl, &observerpb.GetFlowsRequest{}, 0); len(got) != 1 {
		t.Fatalf("relayed %d flows, want 1", len(got))
	}
	h := httptest.NewServer(metrics)
	defer h.Close()
	body := promtooltest.Scrape(t, h.URL)
	text := string(body)
	for _, want := range []string{
		`hubble_relay_pool_peer_connection_status{status="READY"} 1`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="GetFlows",grpc_service="observer.Observer",grpc_type="server_stream"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("relay metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
	promtooltest.Check(t, body)
}
