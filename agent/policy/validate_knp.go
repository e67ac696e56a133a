package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validateNetworkPolicy(c *checker, np *networkingv1.NetworkPolicy) {
	validateKNPSelector(c, &np.Spec.PodSelector, "spec.podSelector")
	for i, t := range np.Spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			c.fail(fmt.Sprintf("spec.policyTypes[%d]", i), "invalid policy type %q (want Ingress or Egress)", t)
		}
	}
	for i, r := range np.Spec.Ingress {
		p := fmt.Sprintf("spec.ingress[%d]", i)
		validatePeers(c, r.From, p+".from")
		validateKNPPorts(c, r.Ports, p+".ports")
	}
	for i, r := range np.Spec.Egress {
		p := fmt.Sprintf("spec.egress[%d]", i)
		validatePeers(c, r.To, p+".to")
		validateKNPPorts(c, r.Ports, p+".ports")
	}
}

// validateKNPSelector checks a Kubernetes label selector field by field, as
// metav1.LabelSelectorAsSelector would refuse it, naming each bad part.
func validateKNPSelector(c *checker, s *metav1.LabelSelector, path string) {
	if s == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(s.MatchLabels)) {
		v := s.MatchLabels[k]
		if _, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: map[string]string{k: v}}); err != nil {
			c.fail(path+".matchLabels."+k, "%v", err)
		}
	}
	for i, e := range s.MatchExpressions {
		p := fmt.Sprintf("%s.matchExpressions[%d]", path, i)
		switch e.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
		default:
			c.fail(p+".operator", "invalid operator %q (want In, NotIn, Exists or DoesNotExist)", e.Operator)
			continue
		}
		if _, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{e}}); err != nil {
			c.fail(p, "%v", err)
		}
	}
}

func validatePeers(c *checker, peers []networkingv1.NetworkPolicyPeer, path string) {
	for i, peer := range peers {
		p := fmt.Sprintf("%s[%d]", path, i)
		if peer.IPBlock != nil {
			if peer.PodSelector != nil || peer.NamespaceSelector != nil {
				c.fail(p, "ipBlock may not be combined with podSelector or namespaceSelector")
			}
			if _, err := parseIPBlock(peer.IPBlock); err != nil {
				c.failErr(p+".ipBlock", err)
			}
			continue
		}
		if peer.PodSelector == nil && peer.NamespaceSelector == nil {
			c.fail(p, "must specify a peer (podSelector, namespaceSelector or ipBlock)")
		}
		validateKNPSelector(c, peer.PodSelector, p+".podSelector")
		validateKNPSelector(c, peer.NamespaceSelector, p+".namespaceSelector")
	}
}

// parseIPBlock parses cidr and except; Kubernetes accepts host bits, masked here.
// Exceptions must lie strictly inside cidr.
func parseIPBlock(b *networkingv1.IPBlock) (cidrSet, error) {
	if !strings.Contains(b.CIDR, "/") {
		return cidrSet{}, errAt("cidr", "invalid CIDR %q", b.CIDR)
	}
	s, err := parseCIDRSet(b.CIDR, b.Except)
	if err != nil {
		return cidrSet{}, err
	}
	for i, e := range s.Except {
		if e.Bits() == s.CIDR.Bits() {
			return cidrSet{}, errAt(fmt.Sprintf("except[%d]", i), "%s must be strictly inside %s", e, s.CIDR)
		}
	}
	return s, nil
}

func knpProtocol(p *corev1.Protocol) (uint8, error) {
	if p == nil {
		return ProtoTCP, nil
	}
	switch *p {
	case corev1.ProtocolTCP:
		return ProtoTCP, nil
	case corev1.ProtocolUDP:
		return ProtoUDP, nil
	case corev1.ProtocolSCTP:
		return ProtoSCTP, nil
	}
	return 0, fmt.Errorf("invalid protocol %q (want TCP, UDP or SCTP)", *p)
}

func validateKNPPorts(c *checker, ports []networkingv1.NetworkPolicyPort, path string) {
	for i, pp := range ports {
		p := fmt.Sprintf("%s[%d]", path, i)
		if _, err := knpProtocol(pp.Protocol); err != nil {
			c.failErr(p+".protocol", err)
		}
		var end int32
		if pp.EndPort != nil {
			end = *pp.EndPort
			if pp.Port == nil || pp.Port.Type != intstr.Int {
				c.fail(p+".endPort", "needs a numeric port")
				continue
			}
		}
		port := ""
		if pp.Port != nil {
			port = pp.Port.String()
			if pp.Port.Type == intstr.Int && (pp.Port.IntVal < 1 || pp.Port.IntVal > 65535) {
				c.fail(p+".port", "%d is out of range 1-65535", pp.Port.IntVal)
				continue
			}
			if pp.Port.Type == intstr.String {
				if _, ok := PortValue(pp.Port.StrVal).Number(); ok {
					c.fail(p+".port", "%q must be a number, not a string, or a port name", pp.Port.StrVal)
					continue
				}
			}
		}
		if err := validatePort(port, end); err != nil {
			c.failErr(p, err)
		}
	}
}
