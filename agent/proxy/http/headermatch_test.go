package httpproxy

import (
	"net/http"
	"testing"

	"github.com/kestrelnet/kestrel/agent/policy"
)

func matchRule(hm ...policy.HeaderMatch) []policy.HTTPRule {
	return []policy.HTTPRule{{Method: "GET", HeaderMatches: hm}}
}

// headerMatches as Cilium's proxy applies them: without an action a
// mismatch fails the rule (an empty value asks for presence only); LOG,
// ADD, DELETE and REPLACE let the rule match and do their rewrite; an
// unresolved Secret fails the rule whatever its action, and a request the
// rule's other fields deny is never rewritten.
func TestHeaderMatchActions(t *testing.T) {
	for _, c := range []struct {
		name    string
		hm      policy.HeaderMatch
		req     *http.Request
		allow   bool
		after   []string // the header's values on the forwarded request
		unknown bool
	}{
		{"exact value", policy.HeaderMatch{Name: "X-Token", Value: "v"}, get(t, "/", "X-Token: v"), true, []string{"v"}, false},
		{"one of several values", policy.HeaderMatch{Name: "X-Token", Value: "v"}, get(t, "/", "X-Token: a", "X-Token: v"), true, []string{"a", "v"}, false},
		{"a prefix is no match", policy.HeaderMatch{Name: "X-Token", Value: "v"}, get(t, "/", "X-Token: vv"), false, nil, false},
		{"case matters in the value", policy.HeaderMatch{Name: "X-Token", Value: "v"}, get(t, "/", "X-Token: V"), false, nil, false},
		{"not in the name", policy.HeaderMatch{Name: "x-token", Value: "v"}, get(t, "/", "X-TOKEN: v"), true, []string{"v"}, false},
		{"presence", policy.HeaderMatch{Name: "X-Token"}, get(t, "/", "X-Token: anything"), true, []string{"anything"}, false},
		{"presence missing", policy.HeaderMatch{Name: "X-Token"}, get(t, "/"), false, nil, false},
		{"LOG keeps the request", policy.HeaderMatch{Name: "X-Token", Value: "v", Mismatch: "LOG"}, get(t, "/", "X-Token: w"), true, []string{"w"}, false},
		{"ADD appends", policy.HeaderMatch{Name: "X-Token", Value: "v", Mismatch: "ADD"}, get(t, "/", "X-Token: w"), true, []string{"w", "v"}, false},
		{"ADD to none", policy.HeaderMatch{Name: "X-Token", Value: "v", Mismatch: "ADD"}, get(t, "/"), true, []string{"v"}, false},
		{"DELETE removes every value", policy.HeaderMatch{Name: "X-Token", Value: "v", Mismatch: "DELETE"}, get(t, "/", "X-Token: w", "X-Token: x"), true, nil, false},
		{"REPLACE sets the value", policy.HeaderMatch{Name: "Authorization", Value: "Bearer 123456", Mismatch: "REPLACE"}, get(t, "/", "Authorization: Bearer guess"), true, []string{"Bearer 123456"}, false},
		{"REPLACE adds a missing header", policy.HeaderMatch{Name: "Authorization", Value: "Bearer 123456", Mismatch: "REPLACE"}, get(t, "/"), true, []string{"Bearer 123456"}, false},
		{"a match is left alone", policy.HeaderMatch{Name: "X-Token", Value: "v", Mismatch: "DELETE"}, get(t, "/", "X-Token: v"), true, []string{"v"}, false},
		{"unresolved fails", policy.HeaderMatch{Name: "Authorization", Unresolved: "Secret x/s does not exist"}, get(t, "/", "Authorization: Bearer 123456"), false, nil, true},
		{"unresolved fails REPLACE too", policy.HeaderMatch{Name: "Authorization", Mismatch: "REPLACE", Unresolved: "Secret x/s does not exist"}, get(t, "/", "Authorization: x"), false, nil, true},
		{"an unread Secret fails", policy.HeaderMatch{Name: "Authorization", Mismatch: "LOG", Secret: &policy.SecretRef{Name: "s"}}, get(t, "/"), false, nil, true},
	} {
		m, err := Compile(matchRule(c.hm), false)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := m.Allows(c.req)
		if got != c.allow {
			t.Errorf("%s: allowed %v, want %v", c.name, got, c.allow)
			continue
		}
		if vs := c.req.Header.Values(c.hm.Name); got && !equal(vs, c.after) {
			t.Errorf("%s: forwarded %s %q, want %q", c.name, c.hm.Name, vs, c.after)
		}
	}

	// A rewrite belongs to a request the rule allows: a POST the rule's
	// method denies is not rewritten (and is denied).
	m, _ := Compile(matchRule(policy.HeaderMatch{Name: "Authorization", Value: "Bearer 123456", Mismatch: "REPLACE"}), false)
	post := request(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
	if m.Allows(post) || post.Header.Get("Authorization") != "" {
		t.Errorf("a denied request was rewritten: Authorization %q", post.Header.Get("Authorization"))
	}
	// A wildcarded entry still does the rewrites of the rules that match.
	m, _ = Compile(matchRule(policy.HeaderMatch{Name: "Authorization", Value: "Bearer 123456", Mismatch: "REPLACE"}), true)
	req := get(t, "/")
	if !m.Allows(req) || req.Header.Get("Authorization") != "Bearer 123456" {
		t.Errorf("wildcard: Authorization %q, want the rule's rewrite", req.Header.Get("Authorization"))
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
