package httpproxy

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/agent/policy"
)

func request(t *testing.T, raw string) *http.Request {
	t.Helper()
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("request %q: %v", raw, err)
	}
	return req
}

func get(t *testing.T, target string, headers ...string) *http.Request {
	raw := "GET " + target + " HTTP/1.1\r\nHost: api.example.com\r\n"
	for _, h := range headers {
		raw += h + "\r\n"
	}
	return request(t, raw+"\r\n")
}

// Cilium's HTTP rule semantics: method, path and host are RE2 matched
// against the whole value (the path with its query string, as Envoy's
// :path), headers by presence or exact value, rules OR-ed, an empty rule
// list denying everything unless wildcarded.
func TestMatcherFollowsCiliumSemantics(t *testing.T) {
	cases := []struct {
		name  string
		rules []policy.HTTPRule
		req   *http.Request
		allow bool
	}{
		{"method anchored", []policy.HTTPRule{{Method: "GET"}}, get(t, "/"), true},
		{"method prefix is not a match", []policy.HTTPRule{{Method: "GE"}}, get(t, "/"), false},
		{"method regex", []policy.HTTPRule{{Method: "GET|HEAD"}}, request(t, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), true},
		{"other method", []policy.HTTPRule{{Method: "GET"}}, request(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), false},
		{"path exact", []policy.HTTPRule{{Path: "/public"}}, get(t, "/public"), true},
		{"path is anchored at the end", []policy.HTTPRule{{Path: "/public"}}, get(t, "/public/secret"), false},
		{"path is anchored at the start", []policy.HTTPRule{{Path: "/public"}}, get(t, "/x/public"), false},
		{"path with a query string", []policy.HTTPRule{{Path: "/public"}}, get(t, "/public?x=1"), false},
		{"path regex", []policy.HTTPRule{{Path: "/public/.*"}}, get(t, "/public/a/b"), true},
		{"method and path together", []policy.HTTPRule{{Method: "POST", Path: "/public"}}, get(t, "/public"), false},
		{"host", []policy.HTTPRule{{Host: `api\.example\.com`}}, get(t, "/"), true},
		{"host anchored", []policy.HTTPRule{{Host: `example\.com`}}, get(t, "/"), false},
		{"header present", []policy.HTTPRule{{Headers: []string{"X-Present"}}}, get(t, "/", "X-Present: anything"), true},
		{"header absent", []policy.HTTPRule{{Headers: []string{"X-Present"}}}, get(t, "/"), false},
		{"header value", []policy.HTTPRule{{Headers: []string{"X-My-Header: true"}}}, get(t, "/", "X-My-Header: true"), true},
		{"header other value", []policy.HTTPRule{{Headers: []string{"X-My-Header: true"}}}, get(t, "/", "X-My-Header: false"), false},
		{"rules are OR-ed", []policy.HTTPRule{{Path: "/a"}, {Path: "/b"}}, get(t, "/b"), true},
		{"no rule allows nothing", nil, get(t, "/"), false},
		{"headerMatches value", []policy.HTTPRule{{HeaderMatches: []policy.HeaderMatch{{Name: "X-Token", Value: "s3cret"}}}}, get(t, "/", "X-Token: s3cret"), true},
		{"headerMatches mismatch denies", []policy.HTTPRule{{HeaderMatches: []policy.HeaderMatch{{Name: "X-Token", Value: "s3cret"}}}}, get(t, "/", "X-Token: guess"), false},
		{"headerMatches LOG allows", []policy.HTTPRule{{HeaderMatches: []policy.HeaderMatch{{Name: "X-Token", Value: "s3cret", Mismatch: "LOG"}}}}, get(t, "/"), true},
		{"headerMatches from a Secret fails closed", []policy.HTTPRule{{HeaderMatches: []policy.HeaderMatch{{Name: "X-Token", Secret: &policy.SecretRef{Name: "s"}}}}}, get(t, "/", "X-Token: s3cret"), false},
	}
	for _, c := range cases {
		m, err := Compile(c.rules, false)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := m.Allows(c.req); got != c.allow {
			t.Errorf("%s: Allows(%s %s) = %v, want %v", c.name, c.req.Method, c.req.RequestURI, got, c.allow)
		}
	}
}

func TestMatcherWildcardAndRewrites(t *testing.T) {
	m, err := Compile([]policy.HTTPRule{{Path: "/only"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Allows(get(t, "/anything")) {
		t.Error("a wildcarded entry (an L4-only rule on the same key) denied a request")
	}
	m, err = Compile([]policy.HTTPRule{{HeaderMatches: []policy.HeaderMatch{{Name: "X-Token", Value: "v", Mismatch: "REPLACE"}}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	req := get(t, "/", "X-Token: wrong")
	if !m.Allows(req) || req.Header.Get("X-Token") != "v" {
		t.Errorf("REPLACE on mismatch: allowed with X-Token %q, want the rule's value", req.Header.Get("X-Token"))
	}
	m, _ = Compile([]policy.HTTPRule{{HeaderMatches: []policy.HeaderMatch{{Name: "X-Token", Value: "v", Mismatch: "DELETE"}}}}, false)
	req = get(t, "/", "X-Token: wrong")
	if !m.Allows(req) || req.Header.Get("X-Token") != "" {
		t.Errorf("DELETE on mismatch left X-Token %q", req.Header.Get("X-Token"))
	}
	if _, err := Compile([]policy.HTTPRule{{Path: "(unclosed"}}, false); err == nil {
		t.Error("an invalid RE2 compiled")
	}
}
