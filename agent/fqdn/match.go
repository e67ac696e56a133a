// Package fqdn holds what DNS-based policy needs besides the proxy: Cilium's
// matchName/matchPattern semantics and the cache of names the DNS proxy saw
// answered, which toFQDNs selectors are resolved against.
package fqdn

import (
	"fmt"
	"regexp"
	"strings"
)

// dnsChars is one character a DNS label may hold in a pattern's '*'.
const dnsChars = `[-a-zA-Z0-9_]`

// Validation follows the CRD schema of Cilium's FQDNSelector: what it would
// refuse at admission is refused here, naming the field.
var (
	validName    = regexp.MustCompile(`^([-a-zA-Z0-9_]+[.]?)+$`)
	validPattern = regexp.MustCompile(`^([-a-zA-Z0-9_*]+[.]?)+$`)
)

// maxNameLen is the longest presentation form of a DNS name (RFC 1035,
// with its final dot).
const maxNameLen = 255

// ValidateName refuses a matchName the CRD schema would refuse.
func ValidateName(s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("%q is longer than %d characters", s, maxNameLen)
	}
	if !validName.MatchString(s) {
		return fmt.Errorf("%q is not a DNS name (letters, digits, '-', '_' in dot-separated labels)", s)
	}
	return nil
}

// ValidatePattern refuses a matchPattern the CRD schema would refuse.
func ValidatePattern(s string) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("%q is longer than %d characters", s, maxNameLen)
	}
	if !validPattern.MatchString(s) {
		return fmt.Errorf("%q is not a DNS name pattern (letters, digits, '-', '_', '*' in dot-separated labels)", s)
	}
	return nil
}

// Canonical is the form names are compared in: lower case and absolute (a
// name with or without its trailing dot is the same name).
func Canonical(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// SanitizePattern is a pattern as it is matched: lower case and absolute,
// except the lone "*", which matches every name.
func SanitizePattern(p string) string {
	if p == "*" {
		return p
	}
	return Canonical(p)
}

// PatternRegexp is the anchored expression a matchPattern stands for: '*'
// alone matches any absolute name (the root included); inside a pattern it
// matches the DNS characters of one label, none included.
func PatternRegexp(p string) (*regexp.Regexp, error) {
	p = SanitizePattern(p)
	if p == "*" {
		return regexp.Compile(`(^(` + dnsChars + `+[.])+$)|(^[.]$)`)
	}
	var b strings.Builder
	b.WriteString("^")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(dnsChars + "*")
		case '.':
			b.WriteString("[.]")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// Selector is a compiled matchName or matchPattern.
type Selector struct {
	name string
	re   *regexp.Regexp
	// Source is the selector as written, for flows and errors.
	Source string
}

// NewSelector compiles one selector: exactly one of name and pattern is set.
func NewSelector(name, pattern string) (Selector, error) {
	switch {
	case name != "" && pattern != "":
		return Selector{}, fmt.Errorf("both matchName and matchPattern are set")
	case name != "":
		return Selector{name: Canonical(name), Source: "matchName: " + name}, nil
	case pattern != "":
		re, err := PatternRegexp(pattern)
		if err != nil {
			return Selector{}, fmt.Errorf("matchPattern %q: %w", pattern, err)
		}
		return Selector{re: re, Source: "matchPattern: " + pattern}, nil
	}
	return Selector{}, fmt.Errorf("neither matchName nor matchPattern is set")
}

// Match reports whether the selector selects name. A name is matched in its
// canonical form only when it is absolute already: the proxy and the cache
// hold names as DNS carries them (with the final dot), and a relative name
// matches no pattern, as in Cilium.
func (s Selector) Match(name string) bool {
	name = strings.ToLower(name)
	if s.re != nil {
		return s.re.MatchString(name)
	}
	return name == s.name
}
