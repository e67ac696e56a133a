package daemon

import (
	"context"
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
)

// The agent reports Cilium's agent notifications: it started, an endpoint
// was created and regenerated, a policy came and went, the endpoint was
// deleted; each with its ids, pod and labels.
func TestAgentEventsFollowTheAgentsWork(t *testing.T) {
	c := newCluster(t, pod("a", "node-1", "", "a"))
	resp := c.put("c1", "a", "10.244.0.5")
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deny-all", ResourceVersion: "100"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{}}}
	ctx := context.Background()
	if _, err := c.cs.NetworkingV1().NetworkPolicies("default").Create(ctx, np, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the policy is in force", func() bool { return c.d.StreamRevision("networkpolicies") >= 100 })
	if err := c.cs.NetworkingV1().NetworkPolicies("default").Delete(ctx, "deny-all", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventually("the policy is gone", func() bool { return has(c, flowpb.AgentEventType_POLICY_DELETED) })
	if err := c.d.DeleteEndpoint(ctx, "c1"); err != nil {
		t.Fatal(err)
	}

	var types []flowpb.AgentEventType
	events, _ := c.d.AgentEvents().Since()
	for _, e := range events {
		types = append(types, e.GetType())
		switch n := e.GetNotification().(type) {
		case *flowpb.AgentEvent_EndpointUpdate:
			if n.EndpointUpdate.GetId() != uint64(resp.ID) || n.EndpointUpdate.GetPodName() != "a" || n.EndpointUpdate.GetNamespace() != "default" {
				t.Errorf("%v: %v", e.GetType(), n.EndpointUpdate)
			}
		case *flowpb.AgentEvent_EndpointRegenerate:
			if n.EndpointRegenerate.GetId() != uint64(resp.ID) || !slices.Contains(n.EndpointRegenerate.GetLabels(), "k8s:app=a") {
				t.Errorf("%v: %v", e.GetType(), n.EndpointRegenerate)
			}
		case *flowpb.AgentEvent_PolicyUpdate:
			if !slices.Contains(n.PolicyUpdate.GetLabels(), "k8s:io.cilium.k8s.policy.name=deny-all") ||
				!slices.Contains(n.PolicyUpdate.GetLabels(), "k8s:io.cilium.k8s.policy.namespace=default") {
				t.Errorf("%v: %v", e.GetType(), n.PolicyUpdate)
			}
		}
	}
	want := []flowpb.AgentEventType{flowpb.AgentEventType_AGENT_STARTED, flowpb.AgentEventType_ENDPOINT_CREATED,
		flowpb.AgentEventType_ENDPOINT_REGENERATE_SUCCESS, flowpb.AgentEventType_POLICY_UPDATED,
		flowpb.AgentEventType_POLICY_DELETED, flowpb.AgentEventType_ENDPOINT_DELETED}
	i := 0
	for _, got := range types {
		if i < len(want) && got == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("agent events %v, want %v in that order", types, want)
	}
}

func has(c *cluster, t flowpb.AgentEventType) bool {
	events, _ := c.d.AgentEvents().Since()
	return slices.ContainsFunc(events, func(e *flowpb.AgentEvent) bool { return e.GetType() == t })
}
