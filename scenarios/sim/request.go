package sim

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http2"

	httpproxy "github.com/kestrelnet/kestrel/agent/proxy/http"
	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// httpProbe sends the probe's request from inside ns and reads the answer:
// the proxy's 403 with Cilium's body is l7-denied, any other answer is the
// server's (allowed, with its status); no connection is dropped or
// rejected as for a connect.
func httpProbe(ns string, to netip.AddrPort, h *engine.HTTPRequest) (string, string, int, netip.Addr) {
	if h.HTTP2 {
		return h2cProbe(ns, to, h)
	}
	var conn net.Conn
	err := network.Do(ns, func() error {
		var err error
		d := net.Dialer{Timeout: probeTimeout}
		conn, err = d.Dial("tcp", to.String())
		return err
	})
	if err != nil {
		return verdictOf(err), fmt.Sprintf("TCP connect %s: %v", to, err), 0, netip.Addr{}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * probeTimeout))
	if _, err := conn.Write(h.Wire(to)); err != nil {
		return verdictOf(err), fmt.Sprintf("HTTP write %s: %v", to, err), 0, netip.Addr{}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		ev := fmt.Sprintf("HTTP %s %s to %s: %v", h.Method, h.Path, to, err)
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// Connected, then cut off unanswered: a proxy refused the
			// stream (the TLS proxy resets what is no ClientHello).
			return "l7-denied", ev, 0, netip.Addr{}
		}
		return verdictOf(err), ev, 0, netip.Addr{}
	}
	return answerVerdict(h, to, resp)
}

// h2cProbe sends the request over cleartext HTTP/2 from inside ns.
func h2cProbe(ns string, to netip.AddrPort, h *engine.HTTPRequest) (string, string, int, netip.Addr) {
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
		var c net.Conn
		err := network.Do(ns, func() error {
			var err error
			c, err = (&net.Dialer{Timeout: probeTimeout}).DialContext(ctx, "tcp", to.String())
			return err
		})
		return c, err
	}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 3*probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, h.Method, "http://"+to.String()+h.Path, nil)
	if err != nil {
		return "error", err.Error(), 0, netip.Addr{}
	}
	for k, v := range h.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			return verdictOf(op), fmt.Sprintf("HTTP/2 %s %s to %s: %v", h.Method, h.Path, to, err), 0, netip.Addr{}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return "dropped", fmt.Sprintf("HTTP/2 %s %s to %s: %v", h.Method, h.Path, to, err), 0, netip.Addr{}
		}
		return "error", fmt.Sprintf("HTTP/2 %s %s to %s: %v", h.Method, h.Path, to, err), 0, netip.Addr{}
	}
	return answerVerdict(h, to, resp)
}

// answerVerdict reads an answer: the proxy's 403 with Cilium's body is
// l7-denied, anything else is the server's own.
func answerVerdict(h *engine.HTTPRequest, to netip.AddrPort, resp *http.Response) (string, string, int, netip.Addr) {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	ev := fmt.Sprintf("HTTP %s %s to %s: %d %q", h.Method, h.Path, to, resp.StatusCode, body)
	if resp.StatusCode == http.StatusForbidden && string(body) == httpproxy.AccessDenied {
		return "l7-denied", ev, resp.StatusCode, netip.Addr{}
	}
	return "allowed", ev, resp.StatusCode, clientOf(body)
}

// clientOf is the client address a workload server's JSON answer names
// (workload.HTTPReply): the address the server saw. None for another server.
func clientOf(body []byte) netip.Addr {
	var r workload.HTTPReply
	if json.Unmarshal(body, &r) != nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(r.Client)
	return a.Unmap()
}
