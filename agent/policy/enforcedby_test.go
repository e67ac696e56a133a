package policy

import (
	"fmt"
	"testing"
)

// The policies that make a direction default-deny are named, each once, so a
// drop with no matching entry (POLICY_DENIED) can name what decided it.
func TestEnforcedByNamesTheIsolatingPolicies(t *testing.T) {
	r := resolveYAML(t, knpHeader+"spec: {podSelector: {}}\n---\n"+
		"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: q, namespace: x}\n"+
		"spec: {podSelector: {matchLabels: {app: a}}, policyTypes: [Ingress, Egress], ingress: [{}, {}]}\n---\n"+
		ccnpHeader+"spec: {endpointSelector: {}, egress: [{}]}\n---\n"+
		"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: audit, namespace: x}\n"+
		"spec: {endpointSelector: {}, enableDefaultDeny: {ingress: false}, ingress: [{}]}\n")
	pol := r.Endpoints["x/a"].Policy
	if got, want := fmt.Sprint(pol.IngressEnforcedBy), "[NetworkPolicy/x/p NetworkPolicy/x/q]"; got != want {
		t.Errorf("ingress enforced by %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(pol.EgressEnforcedBy), "[CiliumClusterwideNetworkPolicy/p NetworkPolicy/x/q]"; got != want {
		t.Errorf("egress enforced by %s, want %s", got, want)
	}
	if b := r.Endpoints["x/b"].Policy; fmt.Sprint(b.IngressEnforcedBy) != "[NetworkPolicy/x/p]" || !b.IngressEnforced {
		t.Errorf("x/b ingress enforced %v by %v, want by NetworkPolicy/x/p alone", b.IngressEnforced, b.IngressEnforcedBy)
	}
}
