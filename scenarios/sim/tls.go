package sim

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/kestrelnet/kestrel/scenarios/engine"
)

// tlsProbe connects from inside ns and sends a ClientHello naming
// t.ServerName (the server's certificate is not verified: the servers are
// the sim's own). A handshake the server completes is allowed (then the
// http request, if any, gets the server's status); one cut short once
// connected (a reset or an end of stream: what a proxy that refuses the
// server name does) is l7-denied; no connection at all is dropped or
// rejected as for a connect.
func tlsProbe(from origin, to netip.AddrPort, t *engine.TLSRequest, h *engine.HTTPRequest) (string, string, int) {
	raw, err := from.dial(context.Background(), to.String())
	if err != nil {
		return verdictOf(err), fmt.Sprintf("TCP connect %s: %v", to, err), 0
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(3 * probeTimeout))
	c := tls.Client(raw, &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: true})
	if err := c.Handshake(); err != nil {
		ev := fmt.Sprintf("TLS handshake with %s for %q: %v", to, t.ServerName, err)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
			return "dropped", ev, 0
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "l7-denied", ev, 0
		}
		return "error", ev, 0
	}
	ev := fmt.Sprintf("TLS handshake with %s for %q completed", to, t.ServerName)
	if h == nil {
		return "allowed", ev, 0
	}
	if _, err := c.Write(h.Wire(to)); err != nil {
		return "error", ev + fmt.Sprintf("; HTTP write: %v", err), 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "error", ev + fmt.Sprintf("; HTTP %s %s: %v", h.Method, h.Path, err), 0
	}
	resp.Body.Close()
	return "allowed", ev + fmt.Sprintf("; HTTP %s %s: %d", h.Method, h.Path, resp.StatusCode), resp.StatusCode
}
