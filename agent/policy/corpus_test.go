package policy

import (
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/agent/corpus"
)

func corpusDir(t *testing.T) string { return corpus.Dir(t) }

// expectedRefusals lists corpus files Kestrel refuses on purpose, keyed by path
// relative to the corpus, with a substring of the error they must fail with.
var expectedRefusals = map[string]string{
	// Not a Kubernetes object: expected matchPattern results, used by the FQDN tests.
	"cilium-policies/fqdn-matchpattern.yaml": "kind: missing",
	// TLS interception: Kestrel checks server names and never terminates TLS.
	"cilium-policies/examples/kubernetes-tls-inspection/l7-visibility-tls.yaml": "terminatingTLS: TLS interception is not supported",
	// Uses "auth", the pre-release name of "authentication"; Cilium refuses it too.
	"cilium-policies/examples/policies/auth/auth.yaml": "spec.egress[0].auth: unknown field",
	// metadata has no "description" field (it belongs in spec).
	"cilium-policies/examples/policies/kubernetes/clustermesh/cross-cluster-policy.yaml": "metadata.description: unknown field",
	// Lower-case "apiversion" is not the apiVersion field.
	"cilium-policies/examples/policies/l3/entities/from_nodes.yaml": "apiversion: unknown field",
	// Selector operators are case-sensitive (In, not in), as in Kubernetes.
	"cilium-policies/examples/policies/l3/match-expressions/and-statement.yaml": `invalid operator "in"`,
	"cilium-policies/examples/policies/l3/match-expressions/or-statement.yaml":  `invalid operator "in"`,
	// cilium-cli renders these with Go templates at test time ({{.TestNamespace}}, {{.ExternalIP}}, ...).
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-l7-http.yaml":                               "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-l7-http-external-node.yaml":                 "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-l7-http-matchheader-secret.yaml":            "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-l7-http-matchheader-secret-port-range.yaml": "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-l7-http-named-port.yaml":                    "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-l7-http-port-range.yaml":                    "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-l7-tls.yaml":                                "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-l7-tls-port-range.yaml":                     "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-node-local-dns.yaml":                        "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-to-cidr-cp-host-knp.yaml":                   "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-to-cidr-external.yaml":                      "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-to-cidr-external-deny.yaml":                 "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-to-cidr-external-knp.yaml":                  "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-to-cidr-k8s.yaml":                           "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-to-cidr-node-knp.yaml":                      "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-to-fqdns.yaml":                              "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/client-egress-to-fqdns-port-ranges.yaml":                  "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/deny-cidr.yaml":                                           "Go template placeholders",
	"cilium-connectivity-manifests/cilium-cli/connectivity/builder/manifests/echo-ingress-from-cidr.yaml":                              "Go template placeholders",
}

func corpusFiles(t *testing.T, root string) []string {
	var files []string
	for _, sub := range []string{"cilium-policies", "cilium-connectivity-manifests"} {
		err := filepath.WalkDir(filepath.Join(root, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") || strings.HasSuffix(p, ".json")) {
				rel, _ := filepath.Rel(root, p)
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(files)
	return files
}

func TestCorpusFilesParseOrAreRefusedForAStatedReason(t *testing.T) {
	root := corpusDir(t)
	files := corpusFiles(t, root)
	if len(files) < 200 {
		t.Fatalf("found only %d corpus files under %s", len(files), root)
	}
	seen := map[string]bool{}
	for _, rel := range files {
		seen[rel] = true
		objs, err := ParseFile(filepath.Join(root, rel))
		reason, refused := expectedRefusals[rel]
		switch {
		case refused && err == nil:
			t.Errorf("%s: parsed (%d objects) but is listed as refused (%q)", rel, len(objs), reason)
		case refused && !strings.Contains(err.Error(), reason):
			t.Errorf("%s: refused with %q, want reason containing %q", rel, err, reason)
		case !refused && err != nil:
			t.Errorf("%s: %v", rel, err)
		}
	}
	for rel := range expectedRefusals {
		if !seen[rel] {
			t.Errorf("expectedRefusals names %s, which is not in the corpus", rel)
		}
	}
}
