package daemon

import (
	"net/netip"
	"sort"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	"github.com/kestrelnet/kestrel/agent/observe"
	"github.com/kestrelnet/kestrel/agent/policy"
)

// The agent's events for Hubble's GetAgentEvents, as Cilium's agent
// notifications: it started, a policy came, changed or went, an endpoint
// was created, regenerated (its state written) or deleted.

// AgentEvents implements observe.AgentEventSource.
func (d *Daemon) AgentEvents() *observe.AgentEvents { return &d.events }

func (d *Daemon) endpointEvent(t flowpb.AgentEventType, id uint32, namespace, pod string) {
	d.events.Add(&flowpb.AgentEvent{Type: t, Notification: &flowpb.AgentEvent_EndpointUpdate{
		EndpointUpdate: &flowpb.EndpointUpdateNotification{Id: uint64(id), Namespace: namespace, PodName: pod}}})
}

func (d *Daemon) regeneratedEvent(id uint32, labels []string) {
	d.events.Add(&flowpb.AgentEvent{Type: flowpb.AgentEventType_ENDPOINT_REGENERATE_SUCCESS,
		Notification: &flowpb.AgentEvent_EndpointRegenerate{EndpointRegenerate: &flowpb.EndpointRegenNotification{
			Id: uint64(id), Labels: labels}}})
}

// policyVersion tells a policy's versions apart: its resourceVersion.
func policyVersion(o policy.Object) string {
	switch {
	case o.NetworkPolicy != nil:
		return o.NetworkPolicy.ResourceVersion
	case o.Cilium != nil:
		return o.Cilium.Metadata.ResourceVersion
	}
	return ""
}

// policyEvents reports the policies added or changed (POLICY_UPDATED) and
// removed (POLICY_DELETED) since the last regeneration, each named by
// Cilium's policy labels. Called with d.mu held.
func (d *Daemon) policyEvents(pols []policy.Object, revision uint64) {
	now := map[string]string{}
	byKey := map[string]policy.Object{}
	for _, p := range pols {
		k := p.Kind + "/" + p.Namespace + "/" + p.Name
		now[k], byKey[k] = policyVersion(p), p
	}
	var keys []string
	for k := range now {
		keys = append(keys, k)
	}
	for k := range d.policyVersions {
		if _, ok := now[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		old, had := d.policyVersions[k]
		cur, has := now[k]
		t := flowpb.AgentEventType_POLICY_UPDATED
		switch {
		case has && had && old == cur:
			continue
		case !has:
			t = flowpb.AgentEventType_POLICY_DELETED
		}
		p := byKey[k]
		if !has {
			p = d.policyObjects[k]
		}
		d.events.Add(&flowpb.AgentEvent{Type: t, Notification: &flowpb.AgentEvent_PolicyUpdate{PolicyUpdate: &flowpb.PolicyUpdateNotification{
			Labels: policyLabels(p), Revision: revision, RuleCount: int64(len(pols))}}})
	}
	d.policyVersions, d.policyObjects = now, byKey
}

// policyLabels are the labels Cilium gives a policy's rules.
func policyLabels(p policy.Object) []string {
	out := []string{"k8s:io.cilium.k8s.policy.derived-from=" + p.Kind, "k8s:io.cilium.k8s.policy.name=" + p.Name}
	if p.Namespace != "" {
		out = append(out, "k8s:io.cilium.k8s.policy.namespace="+p.Namespace)
	}
	return out
}

// firstIP is an endpoint's first address (the zero address if none), to
// look its labels up.
func firstIP(ips []netip.Addr) netip.Addr {
	if len(ips) == 0 {
		return netip.Addr{}
	}
	return ips[0]
}
