package policy

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validateNetworkPolicy(np *networkingv1.NetworkPolicy) error {
	if _, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil {
		return fmt.Errorf("spec.podSelector: %v", err)
	}
	for i, t := range np.Spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			return fmt.Errorf("spec.policyTypes[%d]: invalid policy type %q (want Ingress or Egress)", i, t)
		}
	}
	for i, r := range np.Spec.Ingress {
		p := fmt.Sprintf("spec.ingress[%d]", i)
		if err := validatePeers(r.From, p+".from"); err != nil {
			return err
		}
		if err := validateKNPPorts(r.Ports, p+".ports"); err != nil {
			return err
		}
	}
	for i, r := range np.Spec.Egress {
		p := fmt.Sprintf("spec.egress[%d]", i)
		if err := validatePeers(r.To, p+".to"); err != nil {
			return err
		}
		if err := validateKNPPorts(r.Ports, p+".ports"); err != nil {
			return err
		}
	}
	return nil
}

func validatePeers(peers []networkingv1.NetworkPolicyPeer, path string) error {
	for i, peer := range peers {
		p := fmt.Sprintf("%s[%d]", path, i)
		if peer.IPBlock != nil {
			if peer.PodSelector != nil || peer.NamespaceSelector != nil {
				return fmt.Errorf("%s: ipBlock may not be combined with podSelector or namespaceSelector", p)
			}
			if _, err := parseIPBlock(peer.IPBlock); err != nil {
				return fmt.Errorf("%s.ipBlock.%v", p, err)
			}
			continue
		}
		if peer.PodSelector == nil && peer.NamespaceSelector == nil {
			return fmt.Errorf("%s: must specify a peer (podSelector, namespaceSelector or ipBlock)", p)
		}
		if peer.PodSelector != nil {
			if _, err := metav1.LabelSelectorAsSelector(peer.PodSelector); err != nil {
				return fmt.Errorf("%s.podSelector: %v", p, err)
			}
		}
		if peer.NamespaceSelector != nil {
			if _, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector); err != nil {
				return fmt.Errorf("%s.namespaceSelector: %v", p, err)
			}
		}
	}
	return nil
}

// parseIPBlock parses cidr and except; Kubernetes accepts host bits, masked here.
// Exceptions must lie strictly inside cidr.
func parseIPBlock(b *networkingv1.IPBlock) (cidrSet, error) {
	if !strings.Contains(b.CIDR, "/") {
		return cidrSet{}, fmt.Errorf("cidr: invalid CIDR %q", b.CIDR)
	}
	s, err := parseCIDRSet(b.CIDR, b.Except)
	if err != nil {
		return cidrSet{}, err
	}
	for i, e := range s.Except {
		if e.Bits() == s.CIDR.Bits() {
			return cidrSet{}, fmt.Errorf("except[%d]: %s must be strictly inside %s", i, e, s.CIDR)
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

func validateKNPPorts(ports []networkingv1.NetworkPolicyPort, path string) error {
	for i, pp := range ports {
		p := fmt.Sprintf("%s[%d]", path, i)
		if _, err := knpProtocol(pp.Protocol); err != nil {
			return fmt.Errorf("%s.protocol: %v", p, err)
		}
		var end int32
		if pp.EndPort != nil {
			end = *pp.EndPort
			if pp.Port == nil || pp.Port.Type != intstr.Int {
				return fmt.Errorf("%s.endPort: needs a numeric port", p)
			}
		}
		port := ""
		if pp.Port != nil {
			port = pp.Port.String()
			if pp.Port.Type == intstr.Int && (pp.Port.IntVal < 1 || pp.Port.IntVal > 65535) {
				return fmt.Errorf("%s.port: %d is out of range 1-65535", p, pp.Port.IntVal)
			}
			if pp.Port.Type == intstr.String {
				if _, ok := PortValue(pp.Port.StrVal).Number(); ok {
					return fmt.Errorf("%s.port: %q must be a number, not a string, or a port name", p, pp.Port.StrVal)
				}
			}
		}
		if err := validatePort(port, end); err != nil {
			return fmt.Errorf("%s.%v", p, err)
		}
	}
	return nil
}
