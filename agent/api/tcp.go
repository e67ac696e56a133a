package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// ListenTCP opens the read-only API's TCP listener (--api-listen-address).
// It must be a loopback address: the API has no authentication, and the
// agent runs in the node's network namespace (hostNetwork), so any other
// address would give the node's flows to whoever reaches the node. A
// runner on another machine reaches it through the Kubernetes API's
// port-forward of the agent pod, which dials the node's loopback (RBAC on
// pods/portforward in the agent's namespace decides who may).
func ListenTCP(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if host != "localhost" {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("%s: want a loopback address (127.0.0.1:PORT or [::1]:PORT): the read-only API has no authentication", addr)
		}
	}
	return net.Listen("tcp", addr)
}

// ServeReadOnly answers the read-only API on ln until ctx ends.
func ServeReadOnly(ctx context.Context, ln net.Listener, b Backend, log *slog.Logger) {
	srv := &http.Server{Handler: NewReadOnlyHandler(b), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	srv.Serve(ln)
}

// NewTCPClient returns a client for an agent's read-only API at addr
// (host:port), e.g. a local end of a port-forward to it.
func NewTCPClient(addr string) *Client {
	return &Client{socket: addr, base: "http://" + addr, http: &http.Client{Timeout: 30 * time.Second}}
}

// monotonicNow is CLOCK_MONOTONIC in ns, the clock of the flows' TimeNs.
func monotonicNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
