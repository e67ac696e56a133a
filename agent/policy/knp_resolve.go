package policy

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// policyTypes applies the Kubernetes default: Ingress always, Egress when the
// policy has egress rules.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

func selectorMatches(s *metav1.LabelSelector, ls map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(s)
	return err == nil && sel.Matches(labels.Set(ls))
}

// applyNetworkPolicy adds the keys of one NetworkPolicy to pod pi's state;
// req (the requirements of Cilium rules selecting pi) narrows its peers.
//
// podSelector (the policy's and its peers') matches the identity labels
// Cilium derives for every endpoint (io.cilium.k8s.policy.serviceaccount,
// io.cilium.k8s.policy.cluster, io.kubernetes.pod.namespace and the
// namespace labels under io.cilium.k8s.namespace.labels.), as a Cilium
// selector does, not only the pod's own labels.
func applyNetworkPolicy(c *cluster, pi *podInfo, o *Object, b *builder, req requirements) {
	np := o.NetworkPolicy
	if pi.Namespace != o.Namespace || !matchIdentity(&np.Spec.PodSelector, c.labelsOf(pi.Identity)) {
		return
	}
	ingress, egress := policyTypes(np)
	origin := o.Origin()
	if ingress {
		b.enforce(Ingress, origin)
		for _, r := range np.Spec.Ingress {
			peers := c.narrow(knpPeers(c, o.Namespace, r.From), req.in)
			if len(r.Ports) == 0 {
				b.add(Ingress, peers, anyPort, false, origin)
				continue
			}
			for _, pp := range r.Ports {
				b.add(Ingress, peers, knpPortSpecs(pp, pi.Ports), false, origin)
			}
		}
	}
	if egress {
		b.enforce(Egress, origin)
		for _, r := range np.Spec.Egress {
			peers := c.narrow(knpPeers(c, o.Namespace, r.To), req.eg)
			if len(r.Ports) == 0 {
				b.add(Egress, peers, anyPort, false, origin)
				continue
			}
			for _, pp := range r.Ports {
				if pp.Port == nil || pp.Port.Type == intstr.Int {
					b.add(Egress, peers, knpPortSpecs(pp, nil), false, origin)
					continue
				}
				// A named port means whatever number each destination pod gives
				// that name, so the key differs per remote identity.
				for _, t := range c.namedPortTargets(peers) {
					var specs []portSpec
					for _, remote := range t.pods {
						specs = append(specs, knpPortSpecs(pp, remote.Ports)...)
					}
					b.add(Egress, idSet{t.id: true}, specs, false, origin)
				}
			}
		}
	}
}

// knpPeers returns the identities the peers select; nil (no peers) means any.
func knpPeers(c *cluster, ns string, peers []networkingv1.NetworkPolicyPeer) idSet {
	if len(peers) == 0 {
		return nil
	}
	out := idSet{}
	for _, p := range peers {
		if p.IPBlock != nil {
			s, err := parseIPBlock(p.IPBlock)
			if err != nil {
				continue
			}
			for id := range c.selectCIDRSet(s, true) {
				out[id] = true
			}
			continue
		}
		// A peer without namespaceSelector is limited to the policy's
		// namespace (Cilium adds io.kubernetes.pod.namespace=<ns> to it).
		for _, id := range c.podIDs {
			pod := c.byID[id][0]
			if p.NamespaceSelector == nil && pod.Namespace != ns {
				continue
			}
			if p.NamespaceSelector != nil && !selectorMatches(p.NamespaceSelector, pod.NSLabels) {
				continue
			}
			if p.PodSelector != nil && !matchIdentity(p.PodSelector, c.labelsOf(id)) {
				continue
			}
			out[id] = true
		}
	}
	worldBoth(out)
	return out
}

// knpPortSpecs resolves one NetworkPolicyPort; a named port is looked up in
// ports (the container ports of the pod that receives the traffic).
func knpPortSpecs(pp networkingv1.NetworkPolicyPort, ports []corev1.ContainerPort) []portSpec {
	proto, err := knpProtocol(pp.Protocol)
	if err != nil {
		return nil
	}
	if pp.Port == nil {
		return []portSpec{{Protocol: proto, AnyPort: true}}
	}
	if pp.Port.Type == intstr.Int {
		lo := uint16(pp.Port.IntVal)
		hi := lo
		if pp.EndPort != nil {
			hi = uint16(*pp.EndPort)
		}
		return []portSpec{{Protocol: proto, PortLo: lo, PortHi: hi}}
	}
	return namedPortSpecs(pp.Port.StrVal, proto, 0, ports)
}

// namedPortSpecs finds the container ports called name with protocol proto.
func namedPortSpecs(name string, proto uint8, proxy uint16, ports []corev1.ContainerPort) []portSpec {
	var out []portSpec
	for _, cp := range ports {
		cproto := corev1.ProtocolTCP
		if cp.Protocol != "" {
			cproto = cp.Protocol
		}
		p, err := knpProtocol(&cproto)
		if err != nil || p != proto || cp.Name != name || cp.ContainerPort <= 0 {
			continue
		}
		port := uint16(cp.ContainerPort)
		out = append(out, portSpec{Protocol: proto, PortLo: port, PortHi: port, Proxy: proxy})
	}
	return out
}
