package policy

import (
	"fmt"
	"slices"
	"strings"
)

// validateTLS refuses what Kestrel cannot enforce without terminating TLS:
// TLS interception (terminatingTLS, originatingTLS), which would need the
// proxy to hold the server's key, and HTTP or Kafka rules beside
// serverNames (they would have to read inside the TLS stream). Server names
// must be DNS names, optionally behind one wildcard label: "*." (exactly
// one label) or "**." (one or more).
func validateTLS(c *checker, r PortRule, p string) {
	if r.TerminatingTLS != nil {
		c.fail(p+".terminatingTLS", "TLS interception is not supported: Kestrel checks server names on the ClientHello and never terminates TLS")
	}
	if r.OriginatingTLS != nil {
		c.fail(p+".originatingTLS", "TLS interception is not supported: Kestrel never originates TLS towards the destination")
	}
	if len(r.ServerNames) > 0 && r.TerminatingTLS == nil && r.Rules != nil && (r.Rules.HTTP != nil || r.Rules.Kafka != nil) {
		c.fail(p+".rules", "HTTP or Kafka rules beside serverNames would be read inside TLS, which needs TLS interception (not supported)")
	}
	for i, n := range r.ServerNames {
		if err := checkServerName(n); err != nil {
			c.fail(fmt.Sprintf("%s.serverNames[%d]", p, i), "%v", err)
		}
	}
}

// checkServerName accepts a DNS name, optionally "*." or "**." in front.
func checkServerName(n string) error {
	name := strings.TrimPrefix(strings.TrimPrefix(n, "**."), "*.")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%q is not a server name", n)
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%q is not a server name: empty or over-long label", n)
		}
		for _, ch := range l {
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
				return fmt.Errorf("%q is not a server name: %q in a label (a wildcard is only \"*.\" or \"**.\" in front)", n, ch)
			}
		}
	}
	return nil
}

// ServerNameMatches reports whether the SNI a client sent is allowed by a
// serverNames pattern: an exact name, "*." followed by a name (exactly one
// more label in front), or "**." followed by a name (one or more). DNS names
// compare without case and without a trailing dot.
func ServerNameMatches(pattern, sni string) bool {
	sni = strings.ToLower(strings.TrimSuffix(sni, "."))
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	if sni == "" {
		return false
	}
	switch {
	case strings.HasPrefix(pattern, "**."):
		head, ok := strings.CutSuffix(sni, pattern[2:]) // ".example.com"
		return ok && head != "" && !slices.Contains(strings.Split(head, "."), "")
	case strings.HasPrefix(pattern, "*."):
		head, ok := strings.CutSuffix(sni, pattern[1:])
		return ok && head != "" && !strings.Contains(head, ".")
	}
	return sni == pattern
}

// sniOnly reports a toPorts element the TLS proxy enforces: server names
// and no other L7 rule.
func sniOnly(r PortRule) bool {
	return len(r.ServerNames) > 0 && r.Rules.Empty() && r.Listener == nil && r.TerminatingTLS == nil && r.OriginatingTLS == nil
}
