package fqdn

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kestrelnet/kestrel/agent/corpus"
)

// TestMatchPatternCorpus checks the matchPattern semantics against the
// expectations recorded from Cilium's own tests.
func TestMatchPatternCorpus(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(corpus.Dir(t), "cilium-policies/fqdn-matchpattern.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Sanitize         map[string]string `json:"sanitize"`
		AnchoredMatching []struct {
			Pattern string   `json:"pattern"`
			Accept  []string `json:"accept"`
			Reject  []string `json:"reject"`
		} `json:"anchoredMatching"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Sanitize) == 0 || len(doc.AnchoredMatching) == 0 {
		t.Fatal("the corpus file holds no cases")
	}
	for in, want := range doc.Sanitize {
		if got := SanitizePattern(in); got != want {
			t.Errorf("SanitizePattern(%q) = %q, want %q", in, got, want)
		}
	}
	for _, c := range doc.AnchoredMatching {
		s, err := NewSelector("", c.Pattern)
		if err != nil {
			t.Fatalf("pattern %q: %v", c.Pattern, err)
		}
		for _, n := range c.Accept {
			if !s.Match(n) {
				t.Errorf("pattern %q does not match %q", c.Pattern, n)
			}
		}
		for _, n := range c.Reject {
			if s.Match(n) {
				t.Errorf("pattern %q matches %q", c.Pattern, n)
			}
		}
	}
}

func TestMatchNameIsAbsolute(t *testing.T) {
	for _, name := range []string{"one.one.one.one", "one.one.one.one.", "ONE.one.one.one"} {
		s, err := NewSelector(name, "")
		if err != nil {
			t.Fatal(err)
		}
		if !s.Match("one.one.one.one.") {
			t.Errorf("matchName %q does not match the absolute name", name)
		}
		if s.Match("two.one.one.one.") || s.Match("one.one.one.") {
			t.Errorf("matchName %q matches another name", name)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []string{"*", "*.cilium.io", "*.ci*.io.", "api.example.com"} {
		if err := ValidatePattern(p); err != nil {
			t.Errorf("ValidatePattern(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "a..b", "[a-z].io", "foo bar", "(.*)", ".io"} {
		if err := ValidatePattern(p); err == nil {
			t.Errorf("ValidatePattern(%q) accepted", p)
		}
	}
	if err := ValidateName("*.io"); err == nil {
		t.Error("ValidateName accepted a wildcard")
	}
	if err := ValidateName("kube-dns.kube-system.svc.cluster.local."); err != nil {
		t.Error(err)
	}
}
