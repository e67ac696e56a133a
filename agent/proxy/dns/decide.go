// Package dnsproxy is the node's transparent DNS proxy: it judges each query
// a pod's DNS rules (rules.dns: matchName / matchPattern) redirected to it,
// answers a denied one REFUSED, forwards an allowed one to the server the
// pod asked, and hands the answered addresses to toFQDNs (Learner) before
// the answer is released to the pod.
package dnsproxy

import (
	"fmt"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/kestrelnet/kestrel/agent/fqdn"
	"github.com/kestrelnet/kestrel/agent/policy"
)

// Rules are the compiled DNS rules of one redirected policy entry.
type Rules struct {
	selectors []fqdn.Selector
	// wildcard: some rule allows the same key without DNS rules, so every
	// query is allowed (as in Cilium); the proxy still learns the answers.
	wildcard bool
}

// Compile compiles an entry's DNS rules. Rules reaching the proxy were
// validated, so an error here is a bug, and the query is refused.
func Compile(sels []policy.FQDNSelector, wildcard bool) (*Rules, error) {
	r := &Rules{wildcard: wildcard}
	for _, s := range sels {
		m, err := fqdn.NewSelector(s.MatchName, s.MatchPattern)
		if err != nil {
			return nil, err
		}
		r.selectors = append(r.selectors, m)
	}
	return r, nil
}

// Allows reports whether the rules allow a query for the absolute name.
func (r *Rules) Allows(name string) bool {
	if r == nil {
		return false
	}
	if r.wildcard {
		return true
	}
	for _, s := range r.selectors {
		if s.Match(name) {
			return true
		}
	}
	return false
}

// Decision is the proxy's verdict on one request.
type Decision struct {
	Query   string // the question's name, absolute, as asked
	QType   string // A, AAAA, ...
	Allowed bool
	// Reason says why a request was refused without looking at the rules
	// (not a single-question query); empty when the rules decided.
	Reason string
}

// Decide parses one DNS message as a client sent it and judges it. Only a
// standard query with exactly one question can be allowed: anything else
// (a response, an update, several questions, unparsable bytes) is refused,
// since its name cannot be judged the way the rules mean.
func Decide(r *Rules, wire []byte) (Decision, *dns.Msg) {
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		return Decision{Reason: fmt.Sprintf("unparsable DNS message: %v", err)}, nil
	}
	switch {
	case m.Response:
		return Decision{Reason: "a response, not a query"}, m
	case m.Opcode != dns.OpcodeQuery:
		return Decision{Reason: fmt.Sprintf("opcode %s, not QUERY", dns.OpcodeToString[m.Opcode])}, m
	case len(m.Question) != 1:
		return Decision{Reason: fmt.Sprintf("%d questions, not one", len(m.Question))}, m
	}
	q := m.Question[0]
	d := Decision{Query: q.Name, QType: dns.TypeToString[q.Qtype]}
	if d.QType == "" {
		d.QType = fmt.Sprintf("TYPE%d", q.Qtype)
	}
	if _, ok := dns.IsDomainName(q.Name); !ok || !dns.IsFqdn(q.Name) {
		d.Reason = "the question is no absolute DNS name"
		return d, m
	}
	d.Allowed = r.Allows(q.Name)
	return d, m
}

// Refusal is the answer to a denied query: REFUSED, the question echoed.
// A message that could not be parsed gets a bare header with its ID when
// there are at least two bytes of it.
func Refusal(req *dns.Msg, wire []byte) []byte {
	var m dns.Msg
	if req != nil {
		m.SetRcode(req, dns.RcodeRefused)
		// A response to a response or an update is still only a header
		// and the question: nothing the client sent is echoed back.
		m.Answer, m.Ns, m.Extra = nil, nil, nil
	} else {
		if len(wire) < 2 {
			return nil
		}
		m.Id = uint16(wire[0])<<8 | uint16(wire[1])
		m.Response = true
		m.Rcode = dns.RcodeRefused
	}
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	return b
}

// Answer is what one response says about a name: its addresses, and the
// shortest TTL among the records that gave them.
type Answer struct {
	Name string
	IPs  []netip.Addr
	TTL  uint32
}

// Answers reads the addresses a response gives. The queried name gets
// every address of the answer section (a CNAME chain ends in them), and
// each record's owner name its own; an unsuccessful response gives none.
func Answers(resp *dns.Msg) []Answer {
	if resp == nil || resp.Rcode != dns.RcodeSuccess || len(resp.Question) != 1 {
		return nil
	}
	byName := map[string]*Answer{}
	var order []string
	add := func(name string, ip netip.Addr, ttl uint32) {
		name = fqdn.Canonical(name)
		a := byName[name]
		if a == nil {
			a = &Answer{Name: name, TTL: ttl}
			byName[name] = a
			order = append(order, name)
		}
		a.TTL = min(a.TTL, ttl)
		for _, x := range a.IPs {
			if x == ip {
				return
			}
		}
		a.IPs = append(a.IPs, ip)
	}
	q := resp.Question[0].Name
	for _, rr := range resp.Answer {
		var ip netip.Addr
		switch v := rr.(type) {
		case *dns.A:
			ip, _ = netip.AddrFromSlice(v.A.To4())
		case *dns.AAAA:
			ip, _ = netip.AddrFromSlice(v.AAAA.To16())
		default:
			continue
		}
		if !ip.IsValid() {
			continue
		}
		ttl := rr.Header().Ttl
		add(q, ip.Unmap(), ttl)
		add(rr.Header().Name, ip.Unmap(), ttl)
	}
	out := make([]Answer, 0, len(order))
	for _, n := range order {
		out = append(out, *byName[n])
	}
	return out
}

// IPs lists every address of answers once, for flows.
func IPs(answers []Answer) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, a := range answers {
		for _, ip := range a.IPs {
			if !seen[ip] {
				seen[ip] = true
				out = append(out, ip)
			}
		}
	}
	return out
}
