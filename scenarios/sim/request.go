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
	"github.com/kestrelnet/kestrel/sim/workload"
)

// httpProbe sends the probe's request from its origin and reads the answer:
// the proxy's 403 with Cilium's body is l7-denied, any other answer is the
// server's (allowed, with its status, and the pod and client address a
// workload server names); no connection is dropped or rejected as for a
// connect.
func httpProbe(from origin, to netip.AddrPort, h *engine.HTTPRequest) (string, string, int, workload.HTTPReply) {
	if h.HTTP2 {
		return h2cProbe(from, to, h)
	}
	conn, err := from.dial(context.Background(), to.String())
	if err != nil {
		return verdictOf(err), fmt.Sprintf("TCP connect %s: %v", to, err), 0, workload.HTTPReply{}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * probeTimeout))
	if _, err := conn.Write(h.Wire(to)); err != nil {
		return verdictOf(err), fmt.Sprintf("HTTP write %s: %v", to, err), 0, workload.HTTPReply{}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		ev := fmt.Sprintf("HTTP %s %s to %s: %v", h.Method, h.Path, to, err)
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// Connected, then cut off unanswered: a proxy refused the
			// stream (the TLS proxy resets what is no ClientHello).
			return "l7-denied", ev, 0, workload.HTTPReply{}
		}
		return verdictOf(err), ev, 0, workload.HTTPReply{}
	}
	return answerVerdict(h, to, resp)
}

// h2cProbe sends the request over cleartext HTTP/2 from its origin.
func h2cProbe(from origin, to netip.AddrPort, h *engine.HTTPRequest) (string, string, int, workload.HTTPReply) {
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
		return from.dial(ctx, to.String())
	}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 3*probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, h.Method, "http://"+to.String()+h.Path, nil)
	if err != nil {
		return "error", err.Error(), 0, workload.HTTPReply{}
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
			return verdictOf(op), fmt.Sprintf("HTTP/2 %s %s to %s: %v", h.Method, h.Path, to, err), 0, workload.HTTPReply{}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return "dropped", fmt.Sprintf("HTTP/2 %s %s to %s: %v", h.Method, h.Path, to, err), 0, workload.HTTPReply{}
		}
		return "error", fmt.Sprintf("HTTP/2 %s %s to %s: %v", h.Method, h.Path, to, err), 0, workload.HTTPReply{}
	}
	return answerVerdict(h, to, resp)
}

// answerVerdict reads an answer: the proxy's 403 with Cilium's body is
// l7-denied, anything else is the server's own.
func answerVerdict(h *engine.HTTPRequest, to netip.AddrPort, resp *http.Response) (string, string, int, workload.HTTPReply) {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	ev := fmt.Sprintf("HTTP %s %s to %s: %d %q", h.Method, h.Path, to, resp.StatusCode, body)
	if resp.StatusCode == http.StatusForbidden && string(body) == httpproxy.AccessDenied {
		return "l7-denied", ev, resp.StatusCode, workload.HTTPReply{}
	}
	var r workload.HTTPReply
	if json.Unmarshal(body, &r) != nil {
		r = workload.HTTPReply{} // another server's answer names nobody
	}
	return "allowed", ev, resp.StatusCode, r
}
