package httpproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/net/http2"
)

// h2Preface opens every HTTP/2 connection; cleartext HTTP/2 (gRPC without
// TLS) starts with it, "prior knowledge", rather than an HTTP/1.1 Upgrade.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// isH2C reports whether the client's stream starts with the HTTP/2
// preface. Only a stream starting "PRI" waits for the whole preface, so a
// short HTTP/1.1 request is never held back.
func isH2C(br *bufio.Reader) bool {
	if b, err := br.Peek(3); err != nil || string(b) != "PRI" {
		return false
	}
	b, err := br.Peek(len(h2Preface))
	return err == nil && string(b) == h2Preface
}

// bufferedConn is a connection whose first bytes were already read into r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// serveH2C serves an HTTP/2 cleartext connection: each stream's request is
// judged by the same rules (gRPC calls by their path,
// /package.Service/Method), a denied one answered 403 with Cilium's body,
// an allowed one sent over one upstream HTTP/2 connection and answered with
// the upstream's headers, body and trailers (gRPC's status is a trailer).
func (s *Server) serveH2C(c net.Conn, br *bufio.Reader, conn *Connection, client, orig netip.AddrPort) {
	up := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return conn.Dial(ctx, "tcp", orig.String())
		},
	}
	defer up.CloseIdleConnections()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := Record{Time: start, Direction: s.Direction, Client: client, Server: orig, Conn: conn,
			Method: r.Method, URL: r.Host + r.RequestURI, Protocol: r.Proto}
		// Each stream is judged by the policy as it is now; a flow no
		// longer redirected gets no decision and is refused.
		current, err := s.current(conn, client, orig)
		if err == nil {
			rec.Conn = current
		}
		if err != nil || !current.Matcher.Allows(r) {
			rec.Status, rec.Latency = http.StatusForbidden, time.Since(start)
			s.observe(rec)
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, AccessDenied)
			return
		}
		rec.Allowed = true
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = "http", orig.String()
		resp, err := up.RoundTrip(out)
		if err != nil {
			rec.Status, rec.UpstreamErr, rec.Latency = http.StatusBadGateway, err, time.Since(start)
			s.observe(rec)
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		copyFlushing(w, resp.Body)
		for k, vs := range resp.Trailer {
			for _, v := range vs {
				w.Header().Add(http.TrailerPrefix+k, v)
			}
		}
		rec.Status, rec.Latency = resp.StatusCode, time.Since(start)
		s.observe(rec)
	})
	(&http2.Server{}).ServeConn(bufferedConn{Conn: c, r: br}, &http2.ServeConnOpts{Handler: h})
}

// copyFlushing relays a body as it comes (gRPC streams messages).
func copyFlushing(w http.ResponseWriter, r io.Reader) {
	f, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
