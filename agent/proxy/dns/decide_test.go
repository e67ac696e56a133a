package dnsproxy

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/kestrelnet/kestrel/agent/policy"
)

func query(t *testing.T, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecide(t *testing.T) {
	rules, err := Compile([]policy.FQDNSelector{{MatchName: "one.one.one.one"}, {MatchPattern: "*.cilium.io"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		allow bool
	}{
		{"one.one.one.one.", true},
		{"ONE.one.One.one.", true}, // DNS names are case-insensitive
		{"www.cilium.io.", true},
		{"cilium.io.", false},
		{"a.b.cilium.io.", false}, // '*' stays within one label
		{"one.one.one.one.evil.", false},
	} {
		d, _ := Decide(rules, query(t, c.name, dns.TypeA))
		if d.Allowed != c.allow || d.Query != c.name || d.QType != "A" {
			t.Errorf("%s: %+v, want allowed=%v", c.name, d, c.allow)
		}
	}
	// Anything but one standard question is refused before the rules.
	two := new(dns.Msg)
	two.SetQuestion("one.one.one.one.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "evil.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	resp := new(dns.Msg)
	resp.SetQuestion("one.one.one.one.", dns.TypeA)
	resp.Response = true
	upd := new(dns.Msg)
	upd.SetUpdate("cilium.io.")
	for what, m := range map[string]*dns.Msg{"two questions": two, "a response": resp, "an update": upd} {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := Decide(rules, b); d.Allowed || d.Reason == "" {
			t.Errorf("%s: %+v, want refused with a reason", what, d)
		}
	}
	if d, req := Decide(rules, []byte{0x12, 0x34, 1}); d.Allowed || req != nil {
		t.Errorf("garbage: %+v", d)
	}
	var m dns.Msg
	if err := m.Unpack(Refusal(nil, []byte{0x12, 0x34, 1})); err != nil || m.Id != 0x1234 || m.Rcode != dns.RcodeRefused {
		t.Errorf("refusal of garbage: %v %v", m, err)
	}
	wild, _ := Compile(nil, true)
	if d, _ := Decide(wild, query(t, "anything.example.", dns.TypeAAAA)); !d.Allowed || d.QType != "AAAA" {
		t.Errorf("wildcard: %+v", d)
	}
}

func TestAnswersFollowCNAMEs(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.Response = true
	m.Answer = []dns.RR{
		&dns.CNAME{Hdr: dns.RR_Header{Name: "www.example.com.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: "edge.example.net."},
		&dns.A{Hdr: dns.RR_Header{Name: "edge.example.net.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 20}, A: []byte{203, 0, 113, 5}},
		&dns.AAAA{Hdr: dns.RR_Header{Name: "edge.example.net.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 40}, AAAA: netip.MustParseAddr("2001:db8::5").AsSlice()},
	}
	as := Answers(m)
	if len(as) != 2 || as[0].Name != "www.example.com." || len(as[0].IPs) != 2 || as[0].TTL != 20 || as[1].Name != "edge.example.net." {
		t.Fatalf("answers %+v", as)
	}
	m.Rcode = dns.RcodeNameError
	if as := Answers(m); len(as) != 0 {
		t.Fatalf("an NXDOMAIN answer gave %+v", as)
	}
}
