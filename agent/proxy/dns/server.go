package dnsproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/kestrelnet/kestrel/agent/proxy/accept"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// Connection is what the proxy needs to judge a redirected flow's queries.
type Connection struct {
	Rules *Rules
	// Dial opens the upstream flow with the datapath's proxy mark
	// (datapath.ProxyDialer(...).DialContext).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// For flows and the cache: the endpoint, identities and the policies
	// behind the entry.
	EndpointID               uint32
	SrcIdentity, DstIdentity uint32
	Policies                 []string
}

// Resolver finds the policy entry that redirected a flow of protocol proto
// ("udp" or "tcp") from client to orig in direction dir. An error drops the
// query unanswered: nothing is forwarded without a decision.
type Resolver interface {
	ResolveDNS(dir policy.Direction, proto string, client, orig netip.AddrPort) (*Connection, error)
}

// Learner takes the addresses an allowed answer gives, for the endpoint
// that asked, and returns once toFQDNs policy allows them: the answer is
// released only then, so the pod never holds an address its policy does not
// know yet. An error is logged by the caller's Observe; the answer is still
// released (what it names stays denied).
type Learner func(endpoint uint32, answers []Answer) error

// Record is one proxy decision, for the agent's flows.
type Record struct {
	Direction   policy.Direction
	Proto       string // udp or tcp
	Client      netip.AddrPort
	Server      netip.AddrPort
	Conn        *Connection
	Decision    Decision
	Rcode       int // the rcode the client got (-1: no answer)
	IPs         []netip.Addr
	TTL         uint32
	Latency     time.Duration
	UpstreamErr error
	LearnErr    error
}

// Server serves one direction's DNS proxy port, UDP and TCP.
type Server struct {
	Direction policy.Direction
	Resolver  Resolver
	Learn     Learner
	// Observe, when set, gets every decision.
	Observe func(Record)
	// Timeout bounds an upstream exchange; 0 means 5 s.
	Timeout time.Duration
	// InNamespace, when set, runs f in the namespace of the proxy's
	// sockets: UDP answers leave from sockets opened per answer, which must
	// be the node's. The agent runs in the node's namespace and leaves it
	// nil; tests whose node is another namespace set it.
	InNamespace func(f func() error) error

	loop accept.Loop
}

func (s *Server) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 5 * time.Second
}

// ServeUDP reads queries until pc is closed. pc must come from ListenUDP.
func (s *Server) ServeUDP(pc *net.UDPConn) error {
	buf := make([]byte, 65535)
	oob := make([]byte, 256)
	for {
		n, oobn, _, client, err := pc.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		orig, err := origDst(oob[:oobn])
		if err != nil {
			continue
		}
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		wire := append([]byte(nil), buf[:n]...)
		go func() {
			if out := s.handle("udp", client, orig, wire); out != nil {
				// The reply leaves from the server the pod asked.
				send := func() error { return replyFrom(orig, client, out) }
				var err error
				if s.InNamespace != nil {
					err = s.InNamespace(send)
				} else {
					err = send()
				}
				if err != nil && s.Observe != nil {
					s.Observe(Record{Direction: s.Direction, Proto: "udp", Client: client, Server: orig, Rcode: -1, UpstreamErr: err})
				}
			}
		}()
	}
}

// ServeTCP accepts until ln is closed. ln must be a transparent listener
// (datapath.ListenProxy): an accepted connection's local address is the
// original destination, and its answers leave from it.
func (s *Server) ServeTCP(ln net.Listener) error {
	return s.loop.Serve(ln, s.serveTCPConn)
}

// serveTCPConn judges each length-prefixed message of a DNS-over-TCP
// connection in turn.
func (s *Server) serveTCPConn(c net.Conn) {
	client, orig := accept.AddrPort(c.RemoteAddr()), accept.AddrPort(c.LocalAddr())
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		wire, err := readTCPMsg(c)
		if err != nil {
			return
		}
		out := s.handle("tcp", client, orig, wire)
		if out == nil {
			return
		}
		if err := writeTCPMsg(c, out); err != nil {
			return
		}
	}
}

func readTCPMsg(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func writeTCPMsg(w io.Writer, b []byte) error {
	if len(b) > 65535 {
		return fmt.Errorf("DNS message of %d bytes", len(b))
	}
	out := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	copy(out[2:], b)
	_, err := w.Write(out)
	return err
}

// handle judges one query and returns the bytes to answer with, or nil to
// answer nothing (the flow was not redirected by the datapath).
func (s *Server) handle(proto string, client, orig netip.AddrPort, wire []byte) []byte {
	start := time.Now()
	rec := Record{Direction: s.Direction, Proto: proto, Client: client, Server: orig, Rcode: -1}
	defer func() {
		rec.Latency = time.Since(start)
		if s.Observe != nil {
			s.Observe(rec)
		}
	}()
	conn, err := s.Resolver.ResolveDNS(s.Direction, proto, client, orig)
	if err != nil {
		rec.UpstreamErr = err
		return nil
	}
	rec.Conn = conn
	d, req := Decide(conn.Rules, wire)
	rec.Decision = d
	if !d.Allowed {
		rec.Rcode = dns.RcodeRefused
		return Refusal(req, wire)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
	defer cancel()
	out, resp, err := exchange(ctx, conn.Dial, proto, orig, wire, req.Id)
	if err != nil {
		rec.UpstreamErr = err
		rec.Rcode = dns.RcodeServerFailure
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		b, _ := m.Pack()
		return b
	}
	rec.Rcode = resp.Rcode
	answers := Answers(resp)
	rec.IPs = IPs(answers)
	if len(answers) > 0 {
		rec.TTL = answers[0].TTL
		if s.Learn != nil {
			rec.LearnErr = s.Learn(conn.EndpointID, answers)
		}
	}
	return out
}

// exchange forwards a query to the server the client asked, over the same
// protocol, and returns the answer as the server sent it.
func exchange(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), proto string, server netip.AddrPort, wire []byte, id uint16) ([]byte, *dns.Msg, error) {
	c, err := dial(ctx, proto, server.String())
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	var out []byte
	if proto == "tcp" {
		if err := writeTCPMsg(c, wire); err != nil {
			return nil, nil, err
		}
		if out, err = readTCPMsg(c); err != nil {
			return nil, nil, err
		}
	} else {
		if _, err := c.Write(wire); err != nil {
			return nil, nil, err
		}
		buf := make([]byte, 65535)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return nil, nil, err
			}
			if n >= 2 && binary.BigEndian.Uint16(buf) == id {
				out = buf[:n]
				break
			}
			// Not the answer to this query (a late one, or forged):
			// keep waiting for the real one until the deadline.
		}
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(out); err != nil {
		return nil, nil, fmt.Errorf("upstream answer: %w", err)
	}
	if resp.Id != id || !resp.Response {
		return nil, nil, fmt.Errorf("upstream answer is not a response to query %d", id)
	}
	return out, resp, nil
}
