// Package httpproxy is the node's transparent HTTP/1.1 proxy for L7 policy:
// the datapath hands it redirected connections (bpf/lib/proxy.h), it judges
// each request by the HTTP rules of the policy entry that redirected the
// connection, answers a denied one with 403 as Cilium does, and forwards an
// allowed one to the original destination.
package httpproxy

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/kestrelnet/kestrel/agent/policy"
)

// AccessDenied is the body of Cilium's 403 for a request the rules deny.
const AccessDenied = "Access denied\r\n"

// Matcher decides requests by one policy entry's HTTP rules. A request is
// allowed when the entry is wildcarded (an L4-only rule allows the same
// key) or any rule matches it whole.
type Matcher struct {
	wildcard bool
	rules    []rule
	// effects: some rule rewrites headers on a mismatch, so every rule is
	// tried (each one that matches does its rewrites), as Cilium does,
	// instead of stopping at the first match.
	effects bool
}

type rule struct {
	method, path, host *regexp.Regexp
	headers            []headerCond
	matches            []headerMatch
}

// headerCond is one entry of a rule's `headers`: "Name" requires the
// header, "Name: value" (or "Name value") requires that exact value.
type headerCond struct {
	name, value string
	exact       bool
}

// headerMatch is one `headerMatches` entry. Without a mismatch action a
// mismatch fails the rule (an empty value asks only for the header's
// presence); with one, the rule still matches and the action is done to
// the forwarded request: LOG nothing, ADD appends the value, DELETE removes
// the header, REPLACE sets it to the value.
type headerMatch struct {
	name, value, mismatch string
	// unresolved: the value's Secret could not be read (agent/policy
	// resolveHeaderSecrets); the rule never matches, whatever the action.
	unresolved bool
}

// Compile builds the matcher of a redirected entry. Rules were validated at
// parse time (agent/policy), so an error means a rule that bypassed it.
func Compile(rules []policy.HTTPRule, wildcard bool) (*Matcher, error) {
	m := &Matcher{wildcard: wildcard}
	for _, r := range rules {
		var c rule
		var err error
		for _, f := range []struct {
			expr string
			dst  **regexp.Regexp
		}{{r.Method, &c.method}, {r.Path, &c.path}, {r.Host, &c.host}} {
			if f.expr == "" {
				continue
			}
			if *f.dst, err = policy.AnchoredRegexp(f.expr); err != nil {
				return nil, err
			}
		}
		for _, h := range r.Headers {
			name, value, exact := strings.Cut(strings.TrimSpace(h), " ")
			c.headers = append(c.headers, headerCond{name: strings.TrimSuffix(name, ":"), value: strings.TrimSpace(value), exact: exact})
		}
		for _, h := range r.HeaderMatches {
			// A Secret still named here was never resolved: fail closed.
			c.matches = append(c.matches, headerMatch{name: h.Name, value: h.Value, mismatch: h.Mismatch,
				unresolved: h.Unresolved != "" || h.Secret != nil})
			m.effects = m.effects || (h.Mismatch != "" && h.Mismatch != "LOG")
		}
		m.rules = append(m.rules, c)
	}
	return m, nil
}

// Allows judges req. An allowed request may have been rewritten by a
// matching rule's headerMatches mismatch actions.
func (m *Matcher) Allows(req *http.Request) bool {
	if m.wildcard && !m.effects {
		return true
	}
	allowed := m.wildcard
	for _, r := range m.rules {
		if r.allows(req) {
			allowed = true
			if !m.effects {
				break
			}
		}
	}
	return allowed
}

func (r *rule) allows(req *http.Request) bool {
	if r.method != nil && !r.method.MatchString(req.Method) {
		return false
	}
	// Envoy matches the :path pseudo-header: the request target as sent,
	// query string included.
	if r.path != nil && !r.path.MatchString(req.RequestURI) {
		return false
	}
	if r.host != nil && !r.host.MatchString(req.Host) {
		return false
	}
	for _, h := range r.headers {
		vs, ok := req.Header[http.CanonicalHeaderKey(h.name)]
		if !ok || (h.exact && !contains(vs, h.value)) {
			return false
		}
	}
	var actions []headerMatch
	for _, h := range r.matches {
		if h.unresolved {
			return false
		}
		vs := req.Header.Values(h.name)
		if (h.value == "" && len(vs) > 0) || (h.value != "" && contains(vs, h.value)) {
			continue
		}
		if h.mismatch == "" {
			return false
		}
		actions = append(actions, h)
	}
	for _, h := range actions {
		switch h.mismatch {
		case "ADD":
			req.Header.Add(h.name, h.value)
		case "DELETE":
			req.Header.Del(h.name)
		case "REPLACE":
			req.Header.Set(h.name, h.value)
		}
	}
	return true
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}
