package tlsproxy

import (
	"context"
	"github.com/kestrelnet/kestrel/agent/proxy/accept"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/proxy"
)

// helloTimeout bounds how long a client may take to send its ClientHello.
const helloTimeout = 10 * time.Second

// Resolver finds the entry that redirected a connection
// (*proxy.Table.ResolveEntry). An error closes the connection unanswered.
type Resolver interface {
	ResolveEntry(dir policy.Direction, client, orig netip.AddrPort) (*proxy.Resolved, error)
}

// Record is one decision, for the agent's flows.
type Record struct {
	Time       time.Time
	Direction  policy.Direction
	Client     netip.AddrPort
	Server     netip.AddrPort
	Conn       *proxy.Resolved
	ServerName string
	Allowed    bool
	// NotTLS: the client's first bytes were no ClientHello.
	NotTLS      bool
	Latency     time.Duration // to the decision and, if allowed, the upstream connection
	UpstreamErr error
}

// Allows decides a server name by an entry: a wildcarded entry (an L4-only
// rule allows the same key) takes any TLS connection, else one of the
// entry's serverNames must match (ServerNames means TLS with a matching
// SNI is required, as in Cilium).
func Allows(e policy.Entry, serverName string) bool {
	if e.L7Wildcard {
		return true
	}
	for _, p := range e.ServerNames {
		if policy.ServerNameMatches(p, serverName) {
			return true
		}
	}
	return false
}

// Server serves one direction's TLS proxy port.
type Server struct {
	Direction policy.Direction
	Resolver  Resolver
	Observe   func(Record)

	loop accept.Loop
}

// Serve accepts until ln (a transparent listener) is closed.
func (s *Server) Serve(ln net.Listener) error {
	return s.loop.Serve(ln, s.serveConn)
}

// abort ends a denied handshake: a reset, so the client sees the
// connection refused mid-handshake rather than a clean end of stream.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (s *Server) serveConn(c net.Conn) {
	client, orig := accept.AddrPort(c.RemoteAddr()), accept.AddrPort(c.LocalAddr())
	conn, err := s.Resolver.ResolveEntry(s.Direction, client, orig)
	if err != nil {
		return
	}
	start := time.Now()
	c.SetReadDeadline(start.Add(helloTimeout))
	name, hello, ok := ReadClientHello(c)
	c.SetReadDeadline(time.Time{})
	rec := Record{Time: start, Direction: s.Direction, Client: client, Server: orig, Conn: conn, ServerName: name, NotTLS: !ok}
	if !ok || !Allows(conn.Entry, name) {
		rec.Latency = time.Since(start)
		s.observe(rec)
		abort(c)
		return
	}
	rec.Allowed = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	up, err := conn.Dial(ctx, "tcp", orig.String())
	cancel()
	rec.Latency = time.Since(start)
	if err != nil {
		rec.UpstreamErr = err
		s.observe(rec)
		abort(c)
		return
	}
	s.observe(rec)
	defer up.Close()
	if _, err := up.Write(hello); err != nil {
		return
	}
	relay(c, up)
}

// relay copies both ways until either side is done, passing on half-closes.
func relay(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(b, a)
		closeWrite(b)
	}()
	io.Copy(a, b)
	closeWrite(a)
	wg.Wait()
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
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
	name := r.ServerName
	if r.NotTLS {
		name = "(not TLS)"
	}
	return strings.TrimSpace(r.Direction.String() + " " + v + " TLS " + name + " to " + r.Server.String())
}
