package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Backend is what the server exposes: the agent's endpoint manager.
type Backend interface {
	PutEndpoint(ctx context.Context, req EndpointRequest) (EndpointResponse, error)
	DeleteEndpoint(ctx context.Context, containerID string) error
	Status(ctx context.Context) Status
	// Healthz returns nil once the agent can serve endpoints.
	Healthz(ctx context.Context) error
}

// ServiceSource is a Backend that also reports its load-balancing state.
type ServiceSource interface {
	Services() Services
}

// FlowSource is a Backend that also keeps the datapath's recent flows.
type FlowSource interface {
	Flows(since uint64) Flows
}

// Errors a Backend wraps to choose the HTTP status; others are 500.
var (
	ErrInvalid  = errors.New("invalid request") // 400
	ErrNotReady = errors.New("agent not ready") // 503
	ErrTimeout  = errors.New("timed out")       // 504
)

// NewHandler routes the API to b.
func NewHandler(b Backend) http.Handler {
	mux := readOnlyMux(b)
	mux.HandleFunc("PUT "+PathEndpoints+"{id}", func(w http.ResponseWriter, r *http.Request) {
		var req EndpointRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, fmt.Errorf("%w: body: %v", ErrInvalid, err))
			return
		}
		if id := r.PathValue("id"); req.ContainerID != id {
			writeError(w, fmt.Errorf("%w: containerID %q in the body differs from %q in the path", ErrInvalid, req.ContainerID, id))
			return
		}
		resp, err := b.PutEndpoint(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
	mux.HandleFunc("DELETE "+PathEndpoints+"{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := b.DeleteEndpoint(r.Context(), r.PathValue("id")); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// NewReadOnlyHandler routes only the API's GET requests (status, flows,
// services, identities, the FQDN cache, healthz) to b: what the TCP listener
// (ListenTCP) serves, where registering endpoints must not be possible.
func NewReadOnlyHandler(b Backend) http.Handler {
	return readOnlyMux(b)
}

func readOnlyMux(b Backend) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status(r.Context()))
	})
	if fs, ok := b.(FlowSource); ok {
		mux.HandleFunc("GET "+PathFlows, func(w http.ResponseWriter, r *http.Request) {
			var since uint64
			if v := r.URL.Query().Get("since"); v != "" {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					writeError(w, fmt.Errorf("%w: since=%q: want a flow sequence number", ErrInvalid, v))
					return
				}
				since = n
			}
			fl := fs.Flows(since)
			if fl.NowNs == 0 { // else the source keeps a clock of its own
				fl.NowNs = monotonicNow()
			}
			writeJSON(w, http.StatusOK, fl)
		})
	}
	if ss, ok := b.(ServiceSource); ok {
		mux.HandleFunc("GET "+PathServices, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, ss.Services())
		})
	}
	registerFQDN(mux, b)
	registerIdentities(mux, b)
	mux.HandleFunc("GET "+PathHealthz, func(w http.ResponseWriter, r *http.Request) {
		if err := b.Healthz(r.Context()); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNotReady):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	writeJSON(w, code, Error{Message: err.Error()})
}

// Listen opens the unix socket, replacing a stale socket file left by an
// earlier agent, and makes it reachable by its owner (root) only.
func Listen(socket string) (net.Listener, error) {
	if fi, err := os.Lstat(socket); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket; not removing it", socket)
		}
		if c, err := net.DialTimeout("unix", socket, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another agent is listening on %s", socket)
		}
		if err := os.Remove(socket); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve answers the API on ln until ctx ends, then stops accepting and lets
// requests in flight finish (briefly).
func Serve(ctx context.Context, ln net.Listener, b Backend, log *slog.Logger) error {
	srv := &http.Server{Handler: NewHandler(b), ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	}
}
