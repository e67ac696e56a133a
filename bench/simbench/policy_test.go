package simbench

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The policy has the number of rules asked for, only its last one allows
// the named pod, and it selects only the Kestrel node's client.
func TestEgressPolicyHasTheRulesAndAllowsOnlyTheLastOnesPod(t *testing.T) {
	for _, n := range []int{1, 10, 1000} {
		p := egressPolicy(n, "echo-1")
		if len(p.Spec.Egress) != n {
			t.Fatalf("%d rules asked, %d made", n, len(p.Spec.Egress))
		}
		for i, r := range p.Spec.Egress {
			path := field.NewPath("spec", "egress").Index(i)
			labels := r.To[0].PodSelector.MatchLabels
			last := i == n-1
			if last && labels["app"] != "echo-1" {
				t.Errorf("%s: the last rule allows %v", path, labels)
			}
			if !last && labels["rule"] != fmt.Sprintf("r%d", i) {
				t.Errorf("%s: %v, want a label no pod has", path, labels)
			}
			if r.Ports[0].Port.IntValue() != echoPort {
				t.Errorf("%s: port %v", path, r.Ports[0].Port)
			}
		}
		if got := p.Spec.PodSelector.MatchLabels["app"]; got != "client-node-1" {
			t.Errorf("selects app=%s", got)
		}
	}
}
