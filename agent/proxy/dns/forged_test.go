package dnsproxy

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// Only the upstream's answer to the query the proxy forwarded is learned
// and released: a response with another ID arriving first on the upstream
// flow (a late or forged answer) is ignored, and a response a client sends
// the proxy as if it were a query is refused without learning anything.
func TestForgedAnswersAreNotLearned(t *testing.T) {
	rules, err := Compile([]policy.FQDNSelector{{MatchName: "one.one.one.one"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	answer := func(q *dns.Msg, id uint16, ip net.IP) []byte {
		r := new(dns.Msg)
		r.SetReply(q)
		r.Id = id
		r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: ip}}
		b, _ := r.Pack()
		return b
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, s := net.Pipe()
		go func() {
			defer s.Close()
			buf := make([]byte, 65535)
			n, err := s.Read(buf)
			if err != nil {
				return
			}
			var q dns.Msg
			if q.Unpack(buf[:n]) != nil {
				return
			}
			s.Write(answer(&q, q.Id+1, net.IPv4(198, 51, 100, 66))) // forged: wrong ID
			s.Write(answer(&q, q.Id, net.IPv4(203, 0, 113, 11)))
		}()
		return c, nil
	}
	var learned []Answer
	srv := &Server{Direction: policy.Egress, Resolver: fixedResolver{&Connection{Rules: rules, Dial: dial}},
		Learn: func(_ uint32, as []Answer) error { learned = append(learned, as...); return nil }}
	client, server := netip.MustParseAddrPort("10.0.0.2:4000"), netip.MustParseAddrPort("10.96.0.10:53")

	out := srv.handle("udp", client, server, query(t, "one.one.one.one.", dns.TypeA))
	var m dns.Msg
	if err := m.Unpack(out); err != nil || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "203.0.113.11" {
		t.Fatalf("released %v (%v), want the upstream's real answer", m, err)
	}
	if len(learned) != 1 || len(learned[0].IPs) != 1 || learned[0].IPs[0] != netip.MustParseAddr("203.0.113.11") {
		t.Fatalf("learned %+v, want only the real answer's address", learned)
	}

	// A response sent to the proxy by a pod, naming an allowed name.
	q := new(dns.Msg)
	q.SetQuestion("one.one.one.one.", dns.TypeA)
	forged := answer(q, q.Id, net.IPv4(198, 51, 100, 66))
	learned = nil
	out = srv.handle("udp", client, server, forged)
	if err := m.Unpack(out); err != nil || m.Rcode != dns.RcodeRefused || len(m.Answer) != 0 || len(learned) != 0 {
		t.Fatalf("a response sent as a query got %v (%v) and learned %+v; want REFUSED and nothing learned", m, err, learned)
	}
}
