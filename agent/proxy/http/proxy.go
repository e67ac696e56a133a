package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/proxy/accept"
)

// Connection is what the proxy needs to serve one redirected connection.
type Connection struct {
	Matcher *Matcher
	// Dial opens the upstream connection, with the datapath's proxy mark
	// (datapath.ProxyDialer(...).DialContext).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// For the flows: the endpoint the policy is the one of, identities and
	// the policies behind the entry.
	EndpointID               uint32
	SrcIdentity, DstIdentity uint32
	Policies                 []string
	// Generation is the resolver's policy generation the connection was
	// resolved under (Generational); 0 with a resolver that has none.
	Generation uint64
}

// Generational is a Resolver whose policies change: Generation moves on
// whenever they do. A connection opened under an older generation is
// resolved again before its next request, so a policy change applies to
// the requests of connections already open (keep-alive, HTTP/2 streams),
// not only to new ones.
type Generational interface {
	Generation() uint64
}

// Resolver finds the policy entry that redirected a connection from client
// to orig (its original destination) in direction dir. An error closes the
// connection unanswered: nothing is forwarded without a decision.
type Resolver interface {
	Resolve(dir policy.Direction, client, orig netip.AddrPort) (*Connection, error)
}

// Record is one proxy decision, for the agent's flows.
type Record struct {
	Time        time.Time
	Direction   policy.Direction
	Client      netip.AddrPort
	Server      netip.AddrPort
	Conn        *Connection
	Method      string
	URL         string // host and request target
	Protocol    string // HTTP/1.1
	Allowed     bool
	Status      int // the status the client got (403 when denied; 502 when upstream failed)
	Latency     time.Duration
	UpstreamErr error
}

// Server serves one direction's proxy port.
type Server struct {
	Direction policy.Direction
	Resolver  Resolver
	// Observe, when set, gets every decision.
	Observe func(Record)

	loop accept.Loop
}

// Serve accepts until ln is closed. ln must be a transparent listener
// (datapath.ListenProxy), so an accepted connection's local address is the
// original destination.
func (s *Server) Serve(ln net.Listener) error {
	return s.loop.Serve(ln, s.serveConn)
}

// serveConn reads requests one after another (HTTP/1.1 keep-alive), judges
// each, and relays allowed ones over one upstream connection.
func (s *Server) serveConn(c net.Conn) {
	client, orig := accept.AddrPort(c.RemoteAddr()), accept.AddrPort(c.LocalAddr())
	conn, err := s.Resolver.Resolve(s.Direction, client, orig)
	if err != nil {
		return
	}
	br := bufio.NewReader(c)
	if isH2C(br) {
		s.serveH2C(c, br, conn, client, orig)
		return
	}
	var up net.Conn
	var upr *bufio.Reader
	defer func() {
		if up != nil {
			up.Close()
		}
	}()
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				writeStatus(c, http.StatusBadRequest, "Bad request\r\n")
			}
			return
		}
		start := time.Now()
		current, err := s.current(conn, client, orig)
		rec := Record{Time: start, Direction: s.Direction, Client: client, Server: orig, Conn: conn,
			Method: req.Method, URL: req.Host + req.RequestURI, Protocol: req.Proto}
		if err != nil {
			// The flow is no longer redirected under the new policy (now
			// denied, or allowed without L7 rules): nothing judges this
			// request, so it is refused and the connection ended.
			io.Copy(io.Discard, req.Body)
			req.Body.Close()
			rec.Status, rec.Latency = http.StatusForbidden, time.Since(start)
			s.observe(rec)
			writeStatus(c, http.StatusForbidden, AccessDenied)
			return
		}
		conn = current
		rec.Conn = conn
		if !conn.Matcher.Allows(req) {
			io.Copy(io.Discard, req.Body)
			req.Body.Close()
			rec.Status = http.StatusForbidden
			rec.Latency = time.Since(start)
			s.observe(rec)
			if writeStatus(c, http.StatusForbidden, AccessDenied) != nil || req.Close {
				return
			}
			continue
		}
		rec.Allowed = true
		if up == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			up, err = conn.Dial(ctx, "tcp", orig.String())
			cancel()
			if err != nil {
				up = nil
				rec.Status, rec.UpstreamErr, rec.Latency = http.StatusBadGateway, err, time.Since(start)
				s.observe(rec)
				writeStatus(c, http.StatusBadGateway, "upstream connect error\r\n")
				return
			}
			upr = bufio.NewReader(up)
		}
		status, closeAfter, err := relay(req, up, upr, c)
		rec.Status, rec.Latency, rec.UpstreamErr = status, time.Since(start), err
		s.observe(rec)
		if err != nil || closeAfter {
			return
		}
	}
}

// relay sends req upstream and its response back. It reports the status,
// whether either side ends the connection, and an upstream failure (then
// the client got 502 if nothing of the response had been sent).
func relay(req *http.Request, up net.Conn, upr *bufio.Reader, down net.Conn) (int, bool, error) {
	// Buffered: Request.Write writes the header piecemeal, a system call
	// a line on a bare connection. (The response is not: a streamed body
	// must not wait in a buffer.)
	uw := bufio.NewWriter(up)
	err := req.Write(uw)
	if err == nil {
		err = uw.Flush()
	}
	if err != nil {
		writeStatus(down, http.StatusBadGateway, "upstream write error\r\n")
		return http.StatusBadGateway, true, err
	}
	resp, err := http.ReadResponse(upr, req)
	if err != nil {
		writeStatus(down, http.StatusBadGateway, "upstream read error\r\n")
		return http.StatusBadGateway, true, err
	}
	defer resp.Body.Close()
	if err := resp.Write(down); err != nil {
		return resp.StatusCode, true, err
	}
	return resp.StatusCode, req.Close || resp.Close, nil
}

func writeStatus(w io.Writer, code int, body string) error {
	_, err := fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
		code, http.StatusText(code), len(body), body)
	return err
}

// current is conn as the policy now has it: resolved again when the
// resolver's generation moved on since conn was resolved.
func (s *Server) current(conn *Connection, client, orig netip.AddrPort) (*Connection, error) {
	g, ok := s.Resolver.(Generational)
	if !ok || g.Generation() == conn.Generation {
		return conn, nil
	}
	return s.Resolver.Resolve(s.Direction, client, orig)
}

func (s *Server) observe(r Record) {
	if s.Observe != nil {
		s.Observe(r)
	}
}

// String is the decision in one line (logs, test failures).
func (r Record) String() string {
	v := "denied"
	if r.Allowed {
		v = "allowed"
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s %s %s -> %d (%s)", r.Direction, v, r.Method, r.URL, r.Status, r.Latency))
}
