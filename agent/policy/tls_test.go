package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serverNames patterns: exact names, "*." one label, "**." one or more;
// no case, no trailing dot, and nothing that merely ends with the suffix.
func TestServerNameMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, sni string
		want         bool
	}{
		{"one.one.one.one", "one.one.one.one", true},
		{"one.one.one.one", "ONE.one.one.one.", true},
		{"one.one.one.one", "two.one.one.one", false},
		{"one.one.one.one", "one.one.one.one.evil.com", false},
		{"one.one.one.one", "", false},
		{"*.cilium.io", "docs.cilium.io", true},
		{"*.cilium.io", "cilium.io", false},
		{"*.cilium.io", "a.docs.cilium.io", false},
		{"*.cilium.io", "evilcilium.io", false},
		{"*.cilium.io", ".cilium.io", false},
		{"**.cilium.io", "docs.cilium.io", true},
		{"**.cilium.io", "a.b.docs.cilium.io", true},
		{"**.cilium.io", "cilium.io", false},
		{"**.cilium.io", "evilcilium.io", false},
		{"**.cilium.io", "a..cilium.io", false},
		{"**.cilium.io", "", false},
	} {
		if got := ServerNameMatches(c.pattern, c.sni); got != c.want {
			t.Errorf("ServerNameMatches(%q, %q) = %v, want %v", c.pattern, c.sni, got, c.want)
		}
	}
}

// TLS interception is refused by name, server names are checked, and the
// names reach the redirected entry on the TLS proxy's port.
func TestTLSRulesAreCheckedAndReachTheirEntry(t *testing.T) {
	_, err := ParseYAML([]byte(cnpHeader+`spec:
  endpointSelector: {}
  egress:
    - toPorts:
      - ports: [{port: "443", protocol: TCP}]
        terminatingTLS: {secret: {name: a}}
        originatingTLS: {secret: {name: b}}
        rules: {http: [{}]}
    - toPorts:
      - ports: [{port: "443", protocol: TCP}]
        serverNames: ["*.ok.io", "a*.bad.io", "***.bad.io", "bad..io", ""]
        rules: {http: [{method: GET}]}
`), "tls.yaml")
	for _, want := range []string{
		"spec.egress[0].toPorts[0].terminatingTLS: TLS interception is not supported",
		"spec.egress[0].toPorts[0].originatingTLS: TLS interception is not supported",
		"spec.egress[1].toPorts[0].serverNames[1]:",
		"spec.egress[1].toPorts[0].serverNames[2]:",
		"spec.egress[1].toPorts[0].serverNames[3]:",
		"spec.egress[1].toPorts[0].serverNames[4]:",
		"spec.egress[1].toPorts[0].rules: HTTP or Kafka rules beside serverNames",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "serverNames[0]") {
		t.Errorf("*.ok.io refused: %v", err)
	}

	r := resolveYAML(t, cnpHeader+`spec:
  endpointSelector: {matchLabels: {app: a}}
  egress:
    - toPorts: [{ports: [{port: "443", protocol: TCP}], serverNames: [one.one.one.one, "**.cilium.io"]}]
`)
	_, e, ok := r.Endpoints["x/a"].Policy.Lookup(Egress, 0, ProtoTCP, 443)
	if !ok || e.ProxyPort != ProxyPortTLSEgress || len(e.ServerNames) != 2 || e.L7Wildcard {
		t.Errorf("egress 443: %+v, want the TLS proxy's port with both names", e)
	}
}

// cilium connectivity test's TLS-interception policies, their templates
// filled as it fills them by default, are refused by name.
func TestTLSInterceptionManifestsAreRefusedByName(t *testing.T) {
	fill := strings.NewReplacer("{{.TestNamespace}}", "cilium-test", "{{.ExternalTarget}}", "one.one.one.one",
		"{{.ExternalTargetCANamespace}}", "cilium-test", "{{.ExternalTargetCAName}}", "cabundle")
	for _, f := range []string{"client-egress-l7-tls.yaml", "client-egress-l7-tls-port-range.yaml"} {
		data, err := os.ReadFile(filepath.Join(corpusDir(t), "cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests", f))
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseYAML([]byte(fill.Replace(string(data))), f)
		for _, want := range []string{".terminatingTLS: TLS interception is not supported", ".originatingTLS: TLS interception is not supported"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want %q", f, err, want)
			}
		}
	}
}
