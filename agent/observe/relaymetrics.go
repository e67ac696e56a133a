package observe

import (
	"net/http"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// peerConnStatus is hubble-relay's gauge of its connections to the nodes'
// observers, by gRPC connectivity state (NIL_CONNECTION: none opened yet).
var peerConnStatus = prometheus.NewDesc("hubble_relay_pool_peer_connection_status",
	"Measures the connectivity status of all peers by counting the number of peers for each given connection status.",
	[]string{"status"}, nil)

// Describe implements prometheus.Collector.
func (r *Relay) Describe(ch chan<- *prometheus.Desc) { ch <- peerConnStatus }

// Collect counts the peers by the state of their connections, every state
// present (at 0 when no peer is in it), as hubble-relay reports them.
func (r *Relay) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{"NIL_CONNECTION": 0}
	for _, s := range []connectivity.State{connectivity.Idle, connectivity.Connecting, connectivity.Ready,
		connectivity.TransientFailure, connectivity.Shutdown} {
		counts[s.String()] = 0
	}
	peers := r.peers()
	r.mu.Lock()
	for _, p := range peers {
		if c, ok := r.conns[p.Addr]; ok {
			counts[c.GetState().String()]++
		} else {
			counts["NIL_CONNECTION"]++
		}
	}
	r.mu.Unlock()
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(peerConnStatus, prometheus.GaugeValue, float64(n), status)
	}
}

// NewRelayGRPCServer is the relay's gRPC server, with hubble-relay's
// metrics: its peers' connection states, the gRPC server's (grpc_server_*,
// by method and code, from go-grpc-middleware's provider as hubble-relay
// uses) and the Go runtime's and process's. The handler serves them.
func NewRelayGRPCServer(r *Relay) (*grpc.Server, http.Handler) {
	m := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	srv := NewGRPCServer(r, grpc.ChainUnaryInterceptor(m.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(m.StreamServerInterceptor()))
	m.InitializeMetrics(srv)
	reg := prometheus.NewRegistry()
	reg.MustRegister(r, m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return srv, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
