package observe

import (
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
)

// NewGRPCServer serves obs with the gRPC health service beside it, which
// `hubble status` asks first.
func NewGRPCServer(obs observerpb.ObserverServer, opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(opts...)
	observerpb.RegisterObserverServer(s, obs)
	h := health.NewServer()
	// hubble asks for its observer's service name, not the overall status.
	for _, name := range []string{"hubble.server.Observer", "hubble.relay.Observer"} {
		h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(s, h)
	return s
}

// Listen opens a unix socket ("unix:///path" or an absolute path; a stale
// socket file is replaced) or a TCP address ("localhost:4245", ":4244").
func Listen(addr string) (net.Listener, error) {
	if path, ok := unixPath(addr); ok {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		return ln, os.Chmod(path, 0o600)
	}
	return net.Listen("tcp", addr)
}

// Target is addr as a gRPC dial target.
func Target(addr string) string {
	if path, ok := unixPath(addr); ok {
		return "unix://" + path
	}
	return "passthrough:///" + addr
}

func unixPath(addr string) (string, bool) {
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		return p, true
	}
	return addr, strings.HasPrefix(addr, "/")
}
