package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func validateCiliumPolicy(p *CiliumNetworkPolicy) error {
	if p.Spec == nil && len(p.Specs) == 0 {
		return errors.New("spec: one of spec and specs is required")
	}
	if p.Spec != nil {
		if err := validateRule(p.Spec, "spec"); err != nil {
			return err
		}
	}
	for i := range p.Specs {
		if err := validateRule(&p.Specs[i], fmt.Sprintf("specs[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func validateRule(r *Rule, path string) error {
	if (r.EndpointSelector == nil) == (r.NodeSelector == nil) {
		return fmt.Errorf("%s: exactly one of endpointSelector and nodeSelector is required", path)
	}
	if err := validateSelector(r.EndpointSelector, path+".endpointSelector"); err != nil {
		return err
	}
	if err := validateSelector(r.NodeSelector, path+".nodeSelector"); err != nil {
		return err
	}
	for i := range r.Ingress {
		p := fmt.Sprintf("%s.ingress[%d]", path, i)
		in := &r.Ingress[i]
		if err := validateIngressCommon(&in.IngressCommon, p); err != nil {
			return err
		}
		if err := validatePortRules(in.ToPorts, p+".toPorts"); err != nil {
			return err
		}
		if err := validateAuth(in.Authentication, p+".authentication"); err != nil {
			return err
		}
	}
	for i := range r.IngressDeny {
		p := fmt.Sprintf("%s.ingressDeny[%d]", path, i)
		in := &r.IngressDeny[i]
		if err := validateIngressCommon(&in.IngressCommon, p); err != nil {
			return err
		}
		if err := validatePortDenyRules(in.ToPorts, p+".toPorts"); err != nil {
			return err
		}
	}
	for i := range r.Egress {
		p := fmt.Sprintf("%s.egress[%d]", path, i)
		e := &r.Egress[i]
		if err := validateEgressCommon(&e.EgressCommon, len(e.ToFQDNs), p); err != nil {
			return err
		}
		if err := validatePortRules(e.ToPorts, p+".toPorts"); err != nil {
			return err
		}
		for j, f := range e.ToFQDNs {
			if err := validateFQDN(f, fmt.Sprintf("%s.toFQDNs[%d]", p, j)); err != nil {
				return err
			}
		}
		if err := validateAuth(e.Authentication, p+".authentication"); err != nil {
			return err
		}
	}
	for i := range r.EgressDeny {
		p := fmt.Sprintf("%s.egressDeny[%d]", path, i)
		e := &r.EgressDeny[i]
		if err := validateEgressCommon(&e.EgressCommon, 0, p); err != nil {
			return err
		}
		if err := validatePortDenyRules(e.ToPorts, p+".toPorts"); err != nil {
			return err
		}
	}
	return nil
}

// exclusivePeers refuses rules that combine several kinds of L3 peer, which
// Cilium does not support either ("combining X and Y is not supported yet").
func exclusivePeers(path string, counts map[string]int) error {
	var set []string
	for k, n := range counts {
		if n > 0 {
			set = append(set, k)
		}
	}
	sort.Strings(set)
	if len(set) > 1 {
		return fmt.Errorf("%s: combining %s is not supported", path, strings.Join(set, " and "))
	}
	return nil
}

func validateIngressCommon(c *IngressCommon, path string) error {
	if err := exclusivePeers(path, map[string]int{
		"fromEndpoints": len(c.FromEndpoints), "fromCIDR": len(c.FromCIDR), "fromCIDRSet": len(c.FromCIDRSet),
		"fromEntities": len(c.FromEntities), "fromNodes": len(c.FromNodes), "fromGroups": len(c.FromGroups),
	}); err != nil {
		return err
	}
	if err := validateSelectors(c.FromEndpoints, path+".fromEndpoints"); err != nil {
		return err
	}
	if err := validateSelectors(c.FromRequires, path+".fromRequires"); err != nil {
		return err
	}
	if err := validateSelectors(c.FromNodes, path+".fromNodes"); err != nil {
		return err
	}
	if err := validateCIDRs(c.FromCIDR, c.FromCIDRSet, path, "from"); err != nil {
		return err
	}
	if err := validateEntities(c.FromEntities, path+".fromEntities"); err != nil {
		return err
	}
	return validateICMPs(c.ICMPs, path+".icmps")
}

func validateEgressCommon(c *EgressCommon, fqdns int, path string) error {
	if err := exclusivePeers(path, map[string]int{
		"toEndpoints": len(c.ToEndpoints), "toCIDR": len(c.ToCIDR), "toCIDRSet": len(c.ToCIDRSet),
		"toEntities": len(c.ToEntities), "toNodes": len(c.ToNodes), "toGroups": len(c.ToGroups),
		"toServices": len(c.ToServices), "toFQDNs": fqdns,
	}); err != nil {
		return err
	}
	if err := validateSelectors(c.ToEndpoints, path+".toEndpoints"); err != nil {
		return err
	}
	if err := validateSelectors(c.ToRequires, path+".toRequires"); err != nil {
		return err
	}
	if err := validateSelectors(c.ToNodes, path+".toNodes"); err != nil {
		return err
	}
	if err := validateCIDRs(c.ToCIDR, c.ToCIDRSet, path, "to"); err != nil {
		return err
	}
	if err := validateEntities(c.ToEntities, path+".toEntities"); err != nil {
		return err
	}
	for i, s := range c.ToServices {
		p := fmt.Sprintf("%s.toServices[%d]", path, i)
		if (s.K8sService == nil) == (s.K8sServiceSelector == nil) {
			return fmt.Errorf("%s: exactly one of k8sService and k8sServiceSelector is required", p)
		}
		if s.K8sServiceSelector != nil {
			if err := validateSelector(&s.K8sServiceSelector.Selector, p+".k8sServiceSelector.selector"); err != nil {
				return err
			}
		}
	}
	return validateICMPs(c.ICMPs, path+".icmps")
}

func validateSelectors(ss []Selector, path string) error {
	for i := range ss {
		if err := validateSelector(&ss[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

// labelSources are the label sources Cilium knows; a selector key may start
// with one of them followed by ':'.
var labelSources = map[string]bool{
	"k8s": true, "any": true, "reserved": true, "cidr": true, "container": true,
	"unspec": true, "fqdn": true, "cilium-generated": true,
}

// splitSourceKey splits "k8s:app" into ("k8s", "app"); a key without a known
// source prefix has source "any".
func splitSourceKey(key string) (source, name string, err error) {
	src, rest, ok := strings.Cut(key, ":")
	if !ok {
		return "any", key, nil
	}
	if !labelSources[src] {
		return "", "", fmt.Errorf("unknown label source %q in key %q", src, key)
	}
	return src, rest, nil
}

func validateSelector(s *metav1.LabelSelector, path string) error {
	if s == nil {
		return nil
	}
	keys := make([]string, 0, len(s.MatchLabels))
	for k := range s.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := validateSelectorKey(k, path+".matchLabels"); err != nil {
			return err
		}
		if errs := validation.IsValidLabelValue(s.MatchLabels[k]); len(errs) > 0 {
			return fmt.Errorf("%s.matchLabels[%s]: invalid value %q: %s", path, k, s.MatchLabels[k], strings.Join(errs, "; "))
		}
	}
	for i, e := range s.MatchExpressions {
		p := fmt.Sprintf("%s.matchExpressions[%d]", path, i)
		if err := validateSelectorKey(e.Key, p); err != nil {
			return err
		}
		switch e.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
			if len(e.Values) == 0 {
				return fmt.Errorf("%s.values: must be non-empty for operator %s", p, e.Operator)
			}
		case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
			if len(e.Values) > 0 {
				return fmt.Errorf("%s.values: must be empty for operator %s", p, e.Operator)
			}
		default:
			return fmt.Errorf("%s.operator: invalid operator %q (want In, NotIn, Exists or DoesNotExist)", p, e.Operator)
		}
		for j, v := range e.Values {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				return fmt.Errorf("%s.values[%d]: invalid value %q: %s", p, j, v, strings.Join(errs, "; "))
			}
		}
	}
	return nil
}

func validateSelectorKey(key, path string) error {
	src, name, err := splitSourceKey(key)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if src == "reserved" || src == "cidr" {
		return nil
	}
	if errs := validation.IsQualifiedName(name); len(errs) > 0 {
		return fmt.Errorf("%s: invalid label key %q: %s", path, key, strings.Join(errs, "; "))
	}
	return nil
}

// parseCIDR accepts a prefix or a bare address; host bits are masked.
func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func validateCIDRs(cidrs []string, sets []CIDRRule, path, dir string) error {
	for i, c := range cidrs {
		if _, err := parseCIDR(c); err != nil {
			return fmt.Errorf("%s.%sCIDR[%d]: %v", path, dir, i, err)
		}
	}
	for i, s := range sets {
		p := fmt.Sprintf("%s.%sCIDRSet[%d]", path, dir, i)
		if err := validateCIDRGroupRule(s, p); err != nil {
			return err
		}
		if s.Cidr == "" {
			continue // a group reference; resolved against CiliumCIDRGroup objects
		}
		if _, err := parseCIDRSet(s.Cidr, s.Except); err != nil {
			return fmt.Errorf("%s.%v", p, err)
		}
	}
	return nil
}

// cidrSet is a prefix minus exceptions.
type cidrSet struct {
	CIDR   netip.Prefix
	Except []netip.Prefix
}

func parseCIDRSet(cidr string, except []string) (cidrSet, error) {
	p, err := parseCIDR(cidr)
	if err != nil {
		return cidrSet{}, fmt.Errorf("cidr: %v", err)
	}
	out := cidrSet{CIDR: p}
	for i, e := range except {
		ep, err := parseCIDR(e)
		if err != nil {
			return cidrSet{}, fmt.Errorf("except[%d]: %v", i, err)
		}
		if ep.Addr().Is4() != p.Addr().Is4() || ep.Bits() < p.Bits() || !p.Contains(ep.Addr()) {
			return cidrSet{}, fmt.Errorf("except[%d]: %s is not inside %s", i, ep, p)
		}
		out.Except = append(out.Except, ep)
	}
	return out, nil
}

// entityNames are the entities Cilium defines.
var entityNames = map[string]bool{
	"world": true, "world-ipv4": true, "world-ipv6": true, "host": true, "remote-node": true,
	"cluster": true, "init": true, "ingress": true, "health": true, "unmanaged": true,
	"kube-apiserver": true, "all": true,
}

func validateEntities(es []string, path string) error {
	for i, e := range es {
		if !entityNames[e] {
			return fmt.Errorf("%s[%d]: unknown entity %q", path, i, e)
		}
	}
	return nil
}

func validatePortRules(rs []PortRule, path string) error {
	for i, r := range rs {
		p := fmt.Sprintf("%s[%d]", path, i)
		if err := validatePorts(r.Ports, p+".ports"); err != nil {
			return err
		}
		if r.Rules != nil && !r.Rules.Empty() {
			n := 0
			for _, b := range []bool{r.Rules.HTTP != nil, r.Rules.Kafka != nil, r.Rules.DNS != nil, r.Rules.L7Proto != ""} {
				if b {
					n++
				}
			}
			if n > 1 {
				return fmt.Errorf("%s.rules: only one of http, kafka, dns and l7proto may be set", p)
			}
			for j, d := range r.Rules.DNS {
				if err := validateFQDN(d, fmt.Sprintf("%s.rules.dns[%d]", p, j)); err != nil {
					return err
				}
			}
		}
		if r.Listener != nil && (r.Listener.EnvoyConfig == nil || r.Listener.Name == "") {
			return fmt.Errorf("%s.listener: envoyConfig and name are required", p)
		}
	}
	return nil
}

func validatePortDenyRules(rs []PortDenyRule, path string) error {
	for i, r := range rs {
		if err := validatePorts(r.Ports, fmt.Sprintf("%s[%d].ports", path, i)); err != nil {
			return err
		}
	}
	return nil
}

func validatePorts(ps []PortProtocol, path string) error {
	for i, pp := range ps {
		p := fmt.Sprintf("%s[%d]", path, i)
		protos, err := ciliumProtocols(pp.Protocol)
		if err != nil {
			return fmt.Errorf("%s.protocol: %v", p, err)
		}
		if isExtendedProtocol(protos[0]) && pp.Port != "" && pp.Port != "0" {
			return fmt.Errorf("%s.port: protocol %s has no ports", p, pp.Protocol)
		}
		if err := validatePort(string(pp.Port), pp.EndPort); err != nil {
			return fmt.Errorf("%s.%v", p, err)
		}
	}
	return nil
}

// validatePort checks a port number or name and an optional endPort.
func validatePort(port string, endPort int32) error {
	n, isNum, err := parsePort(port)
	if err != nil {
		return fmt.Errorf("port: %v", err)
	}
	if endPort != 0 {
		if !isNum || n == 0 {
			return fmt.Errorf("endPort: needs a numeric, non-zero port")
		}
		if endPort < int32(n) || endPort > 65535 {
			return fmt.Errorf("endPort: %d must be between port %d and 65535", endPort, n)
		}
	}
	return nil
}

// parsePort returns a port number (isNum) or validates a port name.
func parsePort(port string) (n int, isNum bool, err error) {
	if port == "" {
		return 0, true, nil
	}
	if v, ok := PortValue(port).Number(); ok {
		if v < 0 || v > 65535 {
			return 0, false, fmt.Errorf("%d is out of range 0-65535", v)
		}
		return v, true, nil
	}
	if errs := validation.IsValidPortName(strings.ToLower(port)); len(errs) > 0 {
		return 0, false, fmt.Errorf("invalid port name %q: %s", port, strings.Join(errs, "; "))
	}
	return 0, false, nil
}

// ciliumProtocols expands a toPorts protocol; ANY (or empty) is TCP, UDP and SCTP.
func ciliumProtocols(p string) ([]uint8, error) {
	switch strings.ToUpper(p) {
	case "", "ANY":
		return []uint8{ProtoTCP, ProtoUDP, ProtoSCTP}, nil
	case "TCP":
		return []uint8{ProtoTCP}, nil
	case "UDP":
		return []uint8{ProtoUDP}, nil
	case "SCTP":
		return []uint8{ProtoSCTP}, nil
	case "VRRP":
		return []uint8{ProtoVRRP}, nil
	case "IGMP":
		return []uint8{ProtoIGMP}, nil
	}
	return nil, fmt.Errorf("invalid protocol %q (want TCP, UDP, SCTP, ANY, VRRP or IGMP)", p)
}

func validateICMPs(rs []ICMPRule, path string) error {
	for i, r := range rs {
		for j, f := range r.Fields {
			if _, _, err := icmpKey(f); err != nil {
				return fmt.Errorf("%s[%d].fields[%d].%v", path, i, j, err)
			}
		}
	}
	return nil
}

func validateFQDN(f FQDNSelector, path string) error {
	if (f.MatchName == "") == (f.MatchPattern == "") {
		return fmt.Errorf("%s: exactly one of matchName and matchPattern is required", path)
	}
	return nil
}

func validateAuth(a *Authentication, path string) error {
	if a == nil {
		return nil
	}
	switch a.Mode {
	case "disabled", "required", "test-always-fail":
		return nil
	}
	return fmt.Errorf("%s.mode: invalid mode %q (want disabled, required or test-always-fail)", path, a.Mode)
}

// Extended protocols (Cilium 1.18+) are matched by protocol number alone.
const (
	ProtoIGMP uint8 = 2
	ProtoVRRP uint8 = 112
)

func isExtendedProtocol(p uint8) bool { return p == ProtoIGMP || p == ProtoVRRP }
