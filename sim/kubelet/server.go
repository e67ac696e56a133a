package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/kestrelnet/kestrel/sim/network"
)

// Port is where a real kubelet serves its API; node-to-host and
// pod-to-host probes (`entity: host`, `remote-node`) connect to it.
const Port = 10250

// serve answers on the node's address at Port: /healthz says ok, every other
// path is refused as unauthenticated, as a real kubelet refuses anonymous
// requests. It is plain HTTP: callers only need a live port on the node.
func (k *Kubelet) serve(ctx context.Context) error {
	addr := net.JoinHostPort(network.NodeIP(k.index).String(), strconv.Itoa(Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("kubelet port: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			k.log.Error("kubelet port stopped", "err", err)
		}
	}()
	return nil
}
