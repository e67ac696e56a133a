package sim

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	httpproxy "github.com/kestrelnet/kestrel/agent/proxy/http"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/network"
)

// httpProbe sends the probe's request from inside ns and reads the answer:
// the proxy's 403 with Cilium's body is l7-denied, any other answer is the
// server's (allowed, with its status); no connection is dropped or
// rejected as for a connect.
func httpProbe(ns string, to netip.AddrPort, h *engine.HTTPRequest) (string, string, int) {
	var conn net.Conn
	err := network.Do(ns, func() error {
		var err error
		d := net.Dialer{Timeout: probeTimeout}
		conn, err = d.Dial("tcp", to.String())
		return err
	})
	if err != nil {
		return verdictOf(err), fmt.Sprintf("TCP connect %s: %v", to, err), 0
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * probeTimeout))
	if _, err := conn.Write(h.Wire(to)); err != nil {
		return verdictOf(err), fmt.Sprintf("HTTP write %s: %v", to, err), 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return verdictOf(err), fmt.Sprintf("HTTP %s %s to %s: %v", h.Method, h.Path, to, err), 0
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	ev := fmt.Sprintf("HTTP %s %s to %s: %d %q", h.Method, h.Path, to, resp.StatusCode, body)
	if resp.StatusCode == http.StatusForbidden && string(body) == httpproxy.AccessDenied {
		return "l7-denied", ev, resp.StatusCode
	}
	return "allowed", ev, resp.StatusCode
}
