package kafkaproxy

import (
	"bufio"
	"context"
	"github.com/kestrelnet/kestrel/agent/proxy/accept"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/agent/proxy"
)

// Resolver finds the entry that redirected a connection
// (*proxy.Table.ResolveEntry). An error closes the connection unanswered.
type Resolver interface {
	ResolveEntry(dir policy.Direction, client, orig netip.AddrPort) (*proxy.Resolved, error)
}

// Record is one decision, for the agent's flows.
type Record struct {
	Time        time.Time
	Direction   policy.Direction
	Client      netip.AddrPort
	Server      netip.AddrPort
	Conn        *proxy.Resolved
	Key         int16
	Version     int16
	Correlation int32
	ClientID    string
	Topics      []string
	Allowed     bool
	// ErrorCode is the authorization error a denied request was answered
	// with (0 when allowed, or when no answer could be given).
	ErrorCode int16
}

// Server serves one direction's Kafka proxy port.
type Server struct {
	Direction policy.Direction
	Resolver  Resolver
	Observe   func(Record)

	mu   sync.Mutex
	loop accept.Loop
	// names are topic names by topic ID, as brokers' Metadata answers
	// through this proxy gave them: later requests name topics by ID only.
	names map[[16]byte]string
}

// Serve accepts until ln (a transparent listener) is closed.
func (s *Server) Serve(ln net.Listener) error {
	return s.loop.Serve(ln, s.serveConn)
}

func (s *Server) name(id [16]byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.names[id]
}

func (s *Server) learn(r *kmsg.MetadataResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names == nil {
		s.names = map[[16]byte]string{}
	}
	for _, t := range r.Topics {
		if t.Topic != nil && t.TopicID != ([16]byte{}) {
			s.names[t.TopicID] = *t.Topic
		}
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// answer is the next thing the client is owed, in request order: the
// upstream's response to a forwarded request, or a denial.
type answer struct {
	upstream     bool
	key, version int16
	denial       []byte
}

// generational is a Resolver whose entries change (proxy.Table).
type generational interface{ Generation() uint64 }

// serveConn judges each request of one client connection. Responses go
// back in request order (Kafka clients expect them so): forwarded
// requests' from the upstream connection, denied ones' made here.
func (s *Server) serveConn(c net.Conn) {
	client, orig := addrPort(c.RemoteAddr()), addrPort(c.LocalAddr())
	conn, err := s.Resolver.ResolveEntry(s.Direction, client, orig)
	if err != nil {
		return
	}
	m := Compile(conn.Entry.Kafka, conn.Entry.L7Wildcard)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	up, err := conn.Dial(ctx, "tcp", orig.String())
	cancel()
	if err != nil {
		return
	}
	defer up.Close()
	owed := make(chan answer, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.answer(c, up, owed)
	}()
	br := bufio.NewReader(c)
	for {
		frame, err := readFrame(br)
		if err != nil {
			break
		}
		req, err := ParseRequest(frame, s.name)
		if err != nil {
			break
		}
		// A policy change applies to the requests of a connection already
		// open: its entry is resolved again; a flow no longer redirected
		// gets no decision, and the connection ends.
		if g, ok := s.Resolver.(generational); ok && g.Generation() != conn.Generation {
			if conn, err = s.Resolver.ResolveEntry(s.Direction, client, orig); err != nil {
				break
			}
			m = Compile(conn.Entry.Kafka, conn.Entry.L7Wildcard)
		}
		rec := Record{Time: time.Now(), Direction: s.Direction, Client: client, Server: orig, Conn: conn,
			Key: req.Key, Version: req.Version, Correlation: req.Correlation, ClientID: req.ClientID, Topics: req.Topics}
		if m.Allows(req) {
			rec.Allowed = true
			s.observe(rec)
			if _, err := up.Write(frame); err != nil {
				break
			}
			if p, ok := req.Msg.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
				continue // no response will come
			}
			owed <- answer{upstream: true, key: req.Key, version: req.Version}
			continue
		}
		deny, respond, ok := denial(req)
		if ok && respond {
			rec.ErrorCode = ErrorCodeFor(req.Key)
		}
		s.observe(rec)
		if !ok {
			break // nothing to answer with: end the connection, as Cilium does
		}
		if respond {
			owed <- answer{denial: deny}
		}
	}
	close(owed)
	// The client is gone or refused: what the upstream still owes gets a
	// while to arrive (a produce's timeout), not forever.
	up.SetReadDeadline(time.Now().Add(30 * time.Second))
	<-done
}

// answer writes what the client is owed, in order; it reads the upstream's
// responses (learning topic IDs from Metadata answers).
func (s *Server) answer(c, up net.Conn, owed <-chan answer) {
	ur := bufio.NewReader(up)
	broken := false
	for a := range owed {
		if broken {
			continue
		}
		frame := a.denial
		if a.upstream {
			var err error
			if frame, err = readFrame(ur); err != nil {
				broken = true
				c.Close()
				continue
			}
			if a.key == 3 {
				s.learnFrom(frame, a.version)
			}
		}
		if _, err := c.Write(frame); err != nil {
			broken = true
			up.Close()
		}
	}
}

// learnFrom reads a Metadata response frame for its topic IDs.
func (s *Server) learnFrom(frame []byte, version int16) {
	r := kmsg.NewPtrMetadataResponse()
	r.SetVersion(version)
	rd := kbin.Reader{Src: frame[4:]}
	rd.Int32() // correlation ID
	if r.IsFlexible() {
		kmsg.SkipTags(&rd)
	}
	if !rd.Ok() || r.ReadFrom(rd.Src) != nil {
		return
	}
	s.learn(r)
}

func (s *Server) observe(r Record) {
	if s.Observe != nil {
		s.Observe(r)
	}
}

// KeyName is an apiKey's name as Cilium's rules spell it, or its number.
func KeyName(key int16) string {
	for n, k := range policy.KafkaAPIKeys {
		if k == key {
			return n
		}
	}
	return "apikey-" + strconv.Itoa(int(key))
}

// String is the decision in one line (logs, test failures).
func (r Record) String() string {
	v := "denied"
	if r.Allowed {
		v = "allowed"
	}
	return strings.TrimSpace(r.Direction.String() + " " + v + " Kafka " + KeyName(r.Key) + " v" + strconv.Itoa(int(r.Version)) +
		" client " + r.ClientID + " topics [" + strings.Join(r.Topics, ",") + "]")
}
