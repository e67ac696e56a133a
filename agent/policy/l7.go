package policy

import (
	"fmt"
	"regexp"
)

// Proxy ports are node-wide, one per parser and direction, as Cilium's
// proxy ports are: the proxy learns a connection's endpoint from its
// addresses (the client on egress, the original destination on ingress) and
// its rules from that endpoint's policy (EndpointPolicy.Lookup), so one
// listener serves every endpoint. Nothing listens on a parser's ports until
// its proxy exists, and the datapath drops their flows (PROXY_UNAVAILABLE).
const (
	ProxyPortHTTPIngress  uint16 = 10001
	ProxyPortHTTPEgress   uint16 = 10002
	ProxyPortDNSIngress   uint16 = 10003 // reserved: DNS rules on ingress are refused, as in Cilium
	ProxyPortDNSEgress    uint16 = 10004
	ProxyPortKafkaIngress uint16 = 10005
	ProxyPortKafkaEgress  uint16 = 10006
	ProxyPortOtherIngress uint16 = 10007 // l7proto, listeners: no proxy yet
	ProxyPortOtherEgress  uint16 = 10008
	ProxyPortTLSIngress   uint16 = 10009 // serverNames alone (agent/proxy/tls)
	ProxyPortTLSEgress    uint16 = 10010
)

// proxyPortFor is the port of the parser a toPorts element's rules need.
func proxyPortFor(r PortRule, dir Direction) uint16 {
	in, out := ProxyPortOtherIngress, ProxyPortOtherEgress
	switch {
	case r.Rules != nil && r.Rules.HTTP != nil && len(r.ServerNames) == 0:
		in, out = ProxyPortHTTPIngress, ProxyPortHTTPEgress
	case r.Rules != nil && r.Rules.DNS != nil:
		in, out = ProxyPortDNSIngress, ProxyPortDNSEgress
	case r.Rules != nil && r.Rules.Kafka != nil:
		in, out = ProxyPortKafkaIngress, ProxyPortKafkaEgress
	case sniOnly(r):
		in, out = ProxyPortTLSIngress, ProxyPortTLSEgress
	}
	if dir == Egress {
		return out
	}
	return in
}

// anchored compiles a Cilium rule's regular expression the way Envoy
// matches it: against the whole value.
func anchored(expr string) (*regexp.Regexp, error) {
	// Compiled alone first, so an error quotes what the user wrote.
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

// AnchoredRegexp is anchored for the proxies: rules reaching them were
// validated, so an error here is a bug.
func AnchoredRegexp(expr string) (*regexp.Regexp, error) {
	re, err := anchored(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid RE2 regular expression %q: %w", expr, err)
	}
	return re, nil
}

// headerMatchMismatches are the mismatch actions of headerMatches.
var headerMatchMismatches = map[string]bool{"": true, "LOG": true, "ADD": true, "DELETE": true, "REPLACE": true}

// validateHTTPRules refuses what the proxy could not enforce as written:
// regular expressions RE2 does not accept, unknown mismatch actions.
func validateHTTPRules(c *checker, rs []HTTPRule, path string) {
	for i, r := range rs {
		p := fmt.Sprintf("%s[%d]", path, i)
		for _, f := range []struct{ name, expr string }{{"path", r.Path}, {"method", r.Method}, {"host", r.Host}} {
			if f.expr == "" {
				continue
			}
			if _, err := anchored(f.expr); err != nil {
				c.fail(p+"."+f.name, "invalid RE2 regular expression %q: %v", f.expr, err)
			}
		}
		for j, h := range r.HeaderMatches {
			hp := fmt.Sprintf("%s.headerMatches[%d]", p, j)
			if h.Name == "" {
				c.fail(hp+".name", "a header name is required")
			}
			if !headerMatchMismatches[h.Mismatch] {
				c.fail(hp+".mismatch", "unknown mismatch action %q (LOG, ADD, DELETE or REPLACE)", h.Mismatch)
			}
		}
	}
}

// Lookup finds the entry the datapath decides a flow by (bpf/lib/policy.h):
// for the remote identity and for any identity, the most specific key
// covering protocol and port; a deny of either wins; otherwise the more
// specific of the two, the identity's on a tie. ok is false when no key
// matches (default deny when the direction is enforced).
func (p *EndpointPolicy) Lookup(dir Direction, remote uint32, proto uint8, port uint16) (Key, Entry, bool) {
	best := func(id uint32) (Key, Entry, int, bool) {
		var bk Key
		var be Entry
		bl, found := -1, false
		for k, e := range p.Entries {
			if k.Direction != dir || uint32(k.Identity) != id {
				continue
			}
			l := keySpecificity(k, proto, port)
			if l > bl {
				bk, be, bl, found = k, e, l, true
			}
		}
		return bk, be, bl, found
	}
	var l3k, l4k Key
	var l3e, l4e Entry
	var l3l, l4l int
	var l3ok, l4ok bool
	if remote != 0 {
		l3k, l3e, l3l, l3ok = best(remote)
	}
	l4k, l4e, l4l, l4ok = best(0)
	switch {
	case l3ok && l3e.Deny:
		return l3k, l3e, true
	case l4ok && l4e.Deny:
		return l4k, l4e, true
	case l3ok && l4ok && l4l > l3l:
		return l4k, l4e, true
	case l3ok:
		return l3k, l3e, true
	case l4ok:
		return l4k, l4e, true
	}
	return Key{}, Entry{}, false
}

// keySpecificity is the prefix length the datapath's LPM trie matches k
// by for (proto, port), or -1 when k does not cover them: any protocol 40,
// any port 48, a port range 64 minus the bits its widest covering prefix
// leaves open.
func keySpecificity(k Key, proto uint8, port uint16) int {
	switch {
	case k.Protocol == ProtoAny:
		return 40
	case k.Protocol != proto:
		return -1
	case k.AnyPort:
		return 48
	}
	hi := max(k.PortHi, k.PortLo)
	if port < k.PortLo || port > hi {
		return -1
	}
	// The range is written as aligned prefixes; the one holding port is
	// the largest aligned block around port inside the range.
	for bits := 16; bits > 0; bits-- {
		size := uint32(1) << bits
		start := uint32(port) &^ (size - 1)
		if start >= uint32(k.PortLo) && start+size-1 <= uint32(hi) {
			return 64 - bits
		}
	}
	return 64
}
