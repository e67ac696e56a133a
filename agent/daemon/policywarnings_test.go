package daemon

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kestrelnet/kestrel/agent/k8s"
	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/datapath"
)

// A policy with an l7proto rule (a generic proxylib parser Kestrel has no
// proxy for) is reported when it is applied, naming the object and the
// field: in the status and as a Warning Event on the policy. It stays in
// force: its port redirects to a proxy port nothing listens on, which the
// datapath drops as PROXY_UNAVAILABLE (scenarios/library/cilium-l3l4/
// l7-fails-closed.yaml probes that drop and its flow).
func TestL7ProtoPolicyIsReportedWhenApplied(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, pod("a", "node-1", "", "a"))
	resp := c.put("c1", "a", "10.244.0.5")
	cnp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
		"metadata": map[string]any{"namespace": "default", "name": "r2d2", "resourceVersion": "300", "uid": "u-r2d2"},
		"spec": map[string]any{
			"endpointSelector": map[string]any{"matchLabels": map[string]any{"app": "a"}},
			"ingress": []any{map[string]any{"toPorts": []any{map[string]any{
				"ports": []any{map[string]any{"port": "80", "protocol": "TCP"}},
				"rules": map[string]any{"l7proto": "r2d2", "l7": []any{map[string]any{"cmd": "READ"}}},
			}}}},
		},
	}}
	if _, err := c.dyn.Resource(k8s.CNPResource).Namespace("default").Create(ctx, cnp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the policy is in force", func() bool {
		ep, _, _ := c.dp.endpoint(resp.ID)
		return ep.IngressEnforced
	})
	const field = "CiliumNetworkPolicy/default/r2d2: spec.ingress[0].toPorts[0].rules.l7proto: l7proto \"r2d2\""
	st := c.d.Status(ctx)
	if len(st.PolicyWarnings) != 1 || !strings.Contains(st.PolicyWarnings[0], field) || !strings.Contains(st.PolicyWarnings[0], "PROXY_UNAVAILABLE") {
		t.Fatalf("status warnings %q: want one naming %q and PROXY_UNAVAILABLE", st.PolicyWarnings, field)
	}
	if len(st.PolicyErrors) != 0 {
		t.Fatalf("the policy was rejected (%q); it must stay in force and fail closed", st.PolicyErrors)
	}
	_, entries, _ := c.dp.endpoint(resp.ID)
	redirected := false
	for _, e := range entries {
		if e.Direction == datapath.Ingress && e.PortLo == 80 && e.ProxyPort == policy.ProxyPortOtherIngress {
			redirected = true
		}
	}
	if !redirected {
		t.Fatalf("port 80 is not redirected to the l7proto proxy port %d (where nothing listens): %+v", policy.ProxyPortOtherIngress, entries)
	}
	c.eventually("a warning event names the field", func() bool {
		evs, _ := c.cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "r2d2" && e.Reason == "PolicyNotEnforcedAsWritten" && e.Type == "Warning" && strings.Contains(e.Message, "rules.l7proto") {
				return true
			}
		}
		return false
	})
}
