package dnsproxy

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// allowedByHand is the fuzz rules' meaning written out independently of the
// matcher: matchName one.one.one.one and matchPattern *.cilium.io.
var oneLabel = regexp.MustCompile(`^[-a-z0-9_]*$`)

func allowedByHand(name string) bool {
	name = strings.ToLower(name)
	if name == "one.one.one.one." {
		return true
	}
	label, ok := strings.CutSuffix(name, ".cilium.io.")
	return ok && oneLabel.MatchString(label)
}

// FuzzDNSProxyForwardsOnlyAllowedQueries feeds arbitrary bytes to the proxy
// as a pod's query and checks, at the upstream server, that whatever got
// through is one standard query for a name the rules allow, and that what
// did not get through was answered REFUSED (or not at all, when there is no
// ID to answer to) without any record from upstream.
func FuzzDNSProxyForwardsOnlyAllowedQueries(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"one.one.one.one.", dns.TypeA}, {"www.cilium.io.", dns.TypeAAAA}, {"a.b.cilium.io.", dns.TypeA}, {"evil.com.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		b, _ := m.Pack()
		f.Add(b)
	}
	two := new(dns.Msg)
	two.SetQuestion("one.one.one.one.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "evil.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	b, _ := two.Pack()
	f.Add(b)
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}) // a name pointing at itself

	rules, err := Compile([]policy.FQDNSelector{{MatchName: "one.one.one.one"}, {MatchPattern: "*.cilium.io"}}, false)
	if err != nil {
		f.Fatal(err)
	}
	client, server := netip.MustParseAddrPort("10.0.0.2:4000"), netip.MustParseAddrPort("10.96.0.10:53")
	f.Fuzz(func(t *testing.T, in []byte) {
		var mu sync.Mutex
		var forwarded [][]byte
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, s := net.Pipe()
			go func() {
				defer s.Close()
				buf := make([]byte, 65535)
				n, err := s.Read(buf)
				if err != nil {
					return
				}
				mu.Lock()
				forwarded = append(forwarded, append([]byte(nil), buf[:n]...))
				mu.Unlock()
				var q dns.Msg
				if q.Unpack(buf[:n]) != nil {
					return
				}
				r := new(dns.Msg)
				r.SetReply(&q)
				r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: []byte{203, 0, 113, 1}}}
				out, _ := r.Pack()
				s.Write(out)
			}()
			return c, nil
		}
		var learned []Answer
		srv := &Server{Direction: policy.Egress,
			Resolver: fixedResolver{&Connection{Rules: rules, Dial: dial}},
			Learn:    func(_ uint32, as []Answer) error { learned = append(learned, as...); return nil }}
		out := srv.handle("udp", client, server, in)

		mu.Lock()
		defer mu.Unlock()
		for _, fw := range forwarded {
			var q dns.Msg
			if err := q.Unpack(fw); err != nil {
				t.Fatalf("forwarded an unparsable message %x: %v", fw, err)
			}
			if q.Response || q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 || !allowedByHand(q.Question[0].Name) {
				t.Fatalf("forwarded %v, which the rules deny (input %x)", q, in)
			}
		}
		for _, a := range learned {
			if !allowedByHand(a.Name) {
				t.Fatalf("learned %+v from a query the rules deny (input %x)", a, in)
			}
		}
		if len(forwarded) == 0 && out != nil {
			var m dns.Msg
			if err := m.Unpack(out); err != nil || m.Rcode != dns.RcodeRefused || len(m.Answer)+len(m.Ns)+len(m.Extra) != 0 || !m.Response {
				t.Fatalf("a query that was not forwarded got %v (%v), want a bare REFUSED", m, err)
			}
		}
	})
}
