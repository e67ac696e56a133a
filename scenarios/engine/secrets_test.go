package engine

import (
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

const secretScenario = `apiVersion: kestrel.dev/v1alpha1
kind: Scenario
metadata: {name: secrets}
spec:
  pods:
    - {name: x/a, labels: {app: a}}
  objects:
    - apiVersion: v1
      kind: Secret
      metadata: {name: tok, namespace: x}
      data: {value: QmVhcmVyIDEyMzQ1Ng==}
    - apiVersion: cilium.io/v2
      kind: CiliumNetworkPolicy
      metadata: {name: p, namespace: x}
      spec:
        endpointSelector: {matchLabels: {app: a}}
        egress:
          - toPorts:
              - ports: [{port: "80", protocol: TCP}]
                rules: {http: [{headerMatches: [{name: Authorization, secret: {name: tok}}]}]}
  steps:
`

// A policy applied while its headerMatches Secret is missing refuses the
// whole scenario, naming the object's file and line and the field; the
// Secret applied with it (in any order) or before is fine, and deleting it
// afterwards is no error (the match then fails closed).
func TestAPolicyNeedsItsSecretWhenApplied(t *testing.T) {
	for name, steps := range map[string]string{
		"policy alone":                    "    - apply: [CiliumNetworkPolicy/p]\n",
		"Secret in a later step":          "    - apply: [CiliumNetworkPolicy/p]\n    - apply: [Secret/tok]\n",
		"Secret deleted before the apply": "    - apply: [Secret/tok]\n    - delete: [Secret/tok]\n      apply: [CiliumNetworkPolicy/p]\n",
	} {
		s, err := format.Parse("s.yaml", []byte(secretScenario+steps))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = Expand(s)
		want := "s.yaml:12: spec.egress[0].toPorts[0].rules.http[0].headerMatches[0].secret: CiliumNetworkPolicy/x/p: Secret x/tok does not exist"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", name, err, want)
		}
	}
	for name, steps := range map[string]string{
		"applied together, policy first": "    - apply: [CiliumNetworkPolicy/p, Secret/tok]\n",
		"Secret first":                   "    - apply: [Secret/tok]\n    - apply: [CiliumNetworkPolicy/p]\n",
		"Secret deleted later":           "    - apply: [Secret/tok, CiliumNetworkPolicy/p]\n    - delete: [Secret/tok]\n",
	} {
		plan := expand(t, secretScenario+steps)
		last := plan.Steps[len(plan.Steps)-1].Cluster
		secrets, err := SecretsOf(last.Manifests)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, has := secrets["x/tok"]
		if has == (name == "Secret deleted later") || (has && string(secrets["x/tok"]["value"]) != "Bearer 123456") {
			t.Errorf("%s: Secrets at the end = %q", name, secrets)
		}
	}
}
