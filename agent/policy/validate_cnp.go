package policy

import (
	"fmt"
	"github.com/kestrelnet/kestrel/agent/fqdn"
	"net/netip"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func validateCiliumPolicy(c *checker, p *CiliumNetworkPolicy) {
	if p.Spec == nil && len(p.Specs) == 0 {
		c.fail("spec", "one of spec and specs is required")
	}
	if p.Spec != nil {
		validateRule(c, p.Spec, "spec")
	}
	for i := range p.Specs {
		validateRule(c, &p.Specs[i], fmt.Sprintf("specs[%d]", i))
	}
}

func validateRule(c *checker, r *Rule, path string) {
	if (r.EndpointSelector == nil) == (r.NodeSelector == nil) {
		c.fail(path, "exactly one of endpointSelector and nodeSelector is required")
	}
	validateSelector(c, r.EndpointSelector, path+".endpointSelector")
	validateSelector(c, r.NodeSelector, path+".nodeSelector")
	for i := range r.Ingress {
		p := fmt.Sprintf("%s.ingress[%d]", path, i)
		in := &r.Ingress[i]
		validateIngressCommon(c, &in.IngressCommon, p)
		validatePortRules(c, in.ToPorts, p+".toPorts")
		refuseIngressDNS(c, in.ToPorts, p+".toPorts")
		validateAuth(c, in.Authentication, p+".authentication")
	}
	for i := range r.IngressDeny {
		p := fmt.Sprintf("%s.ingressDeny[%d]", path, i)
		in := &r.IngressDeny[i]
		validateIngressCommon(c, &in.IngressCommon, p)
		validatePortDenyRules(c, in.ToPorts, p+".toPorts")
	}
	for i := range r.Egress {
		p := fmt.Sprintf("%s.egress[%d]", path, i)
		e := &r.Egress[i]
		validateEgressCommon(c, &e.EgressCommon, len(e.ToFQDNs), p)
		validatePortRules(c, e.ToPorts, p+".toPorts")
		for j, f := range e.ToFQDNs {
			validateFQDN(c, f, fmt.Sprintf("%s.toFQDNs[%d]", p, j))
		}
		validateAuth(c, e.Authentication, p+".authentication")
	}
	for i := range r.EgressDeny {
		p := fmt.Sprintf("%s.egressDeny[%d]", path, i)
		e := &r.EgressDeny[i]
		validateEgressCommon(c, &e.EgressCommon, 0, p)
		validatePortDenyRules(c, e.ToPorts, p+".toPorts")
	}
}

// exclusivePeers refuses rules that combine several kinds of L3 peer, which
// Cilium does not support either ("combining X and Y is not supported yet").
func exclusivePeers(c *checker, path string, counts map[string]int) {
	var set []string
	for k, n := range counts {
		if n > 0 {
			set = append(set, k)
		}
	}
	sort.Strings(set)
	if len(set) > 1 {
		c.fail(path, "combining %s is not supported", strings.Join(set, " and "))
	}
}

func validateIngressCommon(c *checker, r *IngressCommon, path string) {
	exclusivePeers(c, path, map[string]int{
		"fromEndpoints": len(r.FromEndpoints), "fromCIDR": len(r.FromCIDR), "fromCIDRSet": len(r.FromCIDRSet),
		"fromEntities": len(r.FromEntities), "fromNodes": len(r.FromNodes), "fromGroups": len(r.FromGroups),
	})
	validateSelectors(c, r.FromEndpoints, path+".fromEndpoints")
	validateSelectors(c, r.FromRequires, path+".fromRequires")
	validateSelectors(c, r.FromNodes, path+".fromNodes")
	validateCIDRs(c, r.FromCIDR, r.FromCIDRSet, path, "from")
	validateEntities(c, r.FromEntities, path+".fromEntities")
	validateICMPs(c, r.ICMPs, path+".icmps")
}

func validateEgressCommon(c *checker, r *EgressCommon, fqdns int, path string) {
	exclusivePeers(c, path, map[string]int{
		"toEndpoints": len(r.ToEndpoints), "toCIDR": len(r.ToCIDR), "toCIDRSet": len(r.ToCIDRSet),
		"toEntities": len(r.ToEntities), "toNodes": len(r.ToNodes), "toGroups": len(r.ToGroups),
		"toServices": len(r.ToServices), "toFQDNs": fqdns,
	})
	validateSelectors(c, r.ToEndpoints, path+".toEndpoints")
	validateSelectors(c, r.ToRequires, path+".toRequires")
	validateSelectors(c, r.ToNodes, path+".toNodes")
	validateCIDRs(c, r.ToCIDR, r.ToCIDRSet, path, "to")
	validateEntities(c, r.ToEntities, path+".toEntities")
	for i, s := range r.ToServices {
		p := fmt.Sprintf("%s.toServices[%d]", path, i)
		if (s.K8sService == nil) == (s.K8sServiceSelector == nil) {
			c.fail(p, "exactly one of k8sService and k8sServiceSelector is required")
		}
		if s.K8sServiceSelector != nil {
			validateSelector(c, &s.K8sServiceSelector.Selector, p+".k8sServiceSelector.selector")
		}
	}
	validateICMPs(c, r.ICMPs, path+".icmps")
}

func validateSelectors(c *checker, ss []Selector, path string) {
	for i := range ss {
		validateSelector(c, &ss[i], fmt.Sprintf("%s[%d]", path, i))
	}
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

func validateSelector(c *checker, s *metav1.LabelSelector, path string) {
	if s == nil {
		return
	}
	keys := make([]string, 0, len(s.MatchLabels))
	for k := range s.MatchLabels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := path + ".matchLabels." + k
		if err := checkSelectorKey(k); err != nil {
			c.fail(p, "%v", err)
		}
		if errs := validation.IsValidLabelValue(s.MatchLabels[k]); len(errs) > 0 {
			c.fail(p, "invalid value %q: %s", s.MatchLabels[k], strings.Join(errs, "; "))
		}
	}
	for i, e := range s.MatchExpressions {
		p := fmt.Sprintf("%s.matchExpressions[%d]", path, i)
		if err := checkSelectorKey(e.Key); err != nil {
			c.fail(p+".key", "%v", err)
		}
		switch e.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
			if len(e.Values) == 0 {
				c.fail(p+".values", "must be non-empty for operator %s", e.Operator)
			}
		case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
			if len(e.Values) > 0 {
				c.fail(p+".values", "must be empty for operator %s", e.Operator)
			}
		default:
			c.fail(p+".operator", "invalid operator %q (want In, NotIn, Exists or DoesNotExist)", e.Operator)
		}
		for j, v := range e.Values {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				c.fail(fmt.Sprintf("%s.values[%d]", p, j), "invalid value %q: %s", v, strings.Join(errs, "; "))
			}
		}
	}
}

func checkSelectorKey(key string) error {
	src, name, err := splitSourceKey(key)
	if err != nil {
		return err
	}
	if src == "reserved" || src == "cidr" {
		return nil
	}
	if errs := validation.IsQualifiedName(name); len(errs) > 0 {
		return fmt.Errorf("invalid label key %q: %s", key, strings.Join(errs, "; "))
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

func validateCIDRs(c *checker, cidrs []string, sets []CIDRRule, path, dir string) {
	for i, s := range cidrs {
		if _, err := parseCIDR(s); err != nil {
			c.failErr(fmt.Sprintf("%s.%sCIDR[%d]", path, dir, i), err)
		}
	}
	for i, s := range sets {
		p := fmt.Sprintf("%s.%sCIDRSet[%d]", path, dir, i)
		if !validateCIDRGroupRule(c, s, p) || s.Cidr == "" {
			continue // a group reference is resolved against CiliumCIDRGroup objects
		}
		if _, err := parseCIDRSet(s.Cidr, s.Except); err != nil {
			c.failErr(p, err)
		}
	}
}

// cidrSet is a prefix minus exceptions.
type cidrSet struct {
	CIDR   netip.Prefix
	Except []netip.Prefix
}

func parseCIDRSet(cidr string, except []string) (cidrSet, error) {
	p, err := parseCIDR(cidr)
	if err != nil {
		return cidrSet{}, errAt("cidr", "%v", err)
	}
	out := cidrSet{CIDR: p}
	for i, e := range except {
		ep, err := parseCIDR(e)
		if err != nil {
			return cidrSet{}, errAt(fmt.Sprintf("except[%d]", i), "%v", err)
		}
		if ep.Addr().Is4() != p.Addr().Is4() || ep.Bits() < p.Bits() || !p.Contains(ep.Addr()) {
			return cidrSet{}, errAt(fmt.Sprintf("except[%d]", i), "%s is not inside %s", ep, p)
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

func validateEntities(c *checker, es []string, path string) {
	for i, e := range es {
		if !entityNames[e] {
			c.fail(fmt.Sprintf("%s[%d]", path, i), "unknown entity %q", e)
		}
	}
}

func validatePortRules(c *checker, rs []PortRule, path string) {
	for i, r := range rs {
		p := fmt.Sprintf("%s[%d]", path, i)
		validatePorts(c, r.Ports, p+".ports")
		if r.Rules != nil && !r.Rules.Empty() {
			n := 0
			for _, b := range []bool{r.Rules.HTTP != nil, r.Rules.Kafka != nil, r.Rules.DNS != nil, r.Rules.L7Proto != ""} {
				if b {
					n++
				}
			}
			if n > 1 {
				c.fail(p+".rules", "only one of http, kafka, dns and l7proto may be set")
			}
			validateHTTPRules(c, r.Rules.HTTP, p+".rules.http")
			validateKafkaRules(c, r.Rules.Kafka, p+".rules.kafka")
			for j, d := range r.Rules.DNS {
				validateFQDN(c, d, fmt.Sprintf("%s.rules.dns[%d]", p, j))
			}
		}
		if r.Listener != nil && (r.Listener.EnvoyConfig == nil || r.Listener.Name == "") {
			c.fail(p+".listener", "envoyConfig and name are required")
		}
		validateTLS(c, r, p)
	}
}

// refuseIngressDNS refuses DNS rules on ingress, as Cilium does ("DNS rules
// are not allowed on ingress"): the DNS proxy judges the queries a pod
// sends, so a DNS server cannot restrict what it is asked with them. A
// server's ingress is restricted at L3/L4 instead.
func refuseIngressDNS(c *checker, rs []PortRule, path string) {
	for i, r := range rs {
		if r.Rules != nil && len(r.Rules.DNS) > 0 {
			c.fail(fmt.Sprintf("%s[%d].rules.dns", path, i), "DNS rules are not allowed on ingress (as in Cilium: the DNS proxy only judges a pod's own queries, on egress)")
		}
	}
}

func validatePortDenyRules(c *checker, rs []PortDenyRule, path string) {
	for i, r := range rs {
		validatePorts(c, r.Ports, fmt.Sprintf("%s[%d].ports", path, i))
	}
}

func validatePorts(c *checker, ps []PortProtocol, path string) {
	for i, pp := range ps {
		p := fmt.Sprintf("%s[%d]", path, i)
		protos, err := ciliumProtocols(pp.Protocol)
		if err != nil {
			c.failErr(p+".protocol", err)
		} else if isExtendedProtocol(protos[0]) && pp.Port != "" && pp.Port != "0" {
			c.fail(p+".port", "protocol %s has no ports", pp.Protocol)
		}
		if err := validatePort(string(pp.Port), pp.EndPort); err != nil {
			c.failErr(p, err)
		}
	}
}

// validatePort checks a port number or name and an optional endPort.
func validatePort(port string, endPort int32) error {
	n, isNum, err := parsePort(port)
	if err != nil {
		return errAt("port", "%v", err)
	}
	if endPort != 0 {
		if !isNum || n == 0 {
			return errAt("endPort", "needs a numeric, non-zero port")
		}
		if endPort < int32(n) || endPort > 65535 {
			return errAt("endPort", "%d must be between port %d and 65535", endPort, n)
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

func validateICMPs(c *checker, rs []ICMPRule, path string) {
	for i, r := range rs {
		for j, f := range r.Fields {
			if _, _, err := icmpKey(f); err != nil {
				c.failErr(fmt.Sprintf("%s[%d].fields[%d]", path, i, j), err)
			}
		}
	}
}

func validateFQDN(c *checker, f FQDNSelector, path string) {
	if (f.MatchName == "") == (f.MatchPattern == "") {
		c.fail(path, "exactly one of matchName and matchPattern is required")
		return
	}
	if f.MatchName != "" {
		if err := fqdn.ValidateName(f.MatchName); err != nil {
			c.failErr(path+".matchName", err)
		}
		return
	}
	if err := fqdn.ValidatePattern(f.MatchPattern); err != nil {
		c.failErr(path+".matchPattern", err)
	}
}

func validateAuth(c *checker, a *Authentication, path string) {
	if a == nil {
		return
	}
	switch a.Mode {
	case "disabled", "required", "test-always-fail":
		return
	}
	c.fail(path+".mode", "invalid mode %q (want disabled, required or test-always-fail)", a.Mode)
}

// Extended protocols (Cilium 1.18+) are matched by protocol number alone.
const (
	ProtoIGMP uint8 = 2
	ProtoVRRP uint8 = 112
)

func isExtendedProtocol(p uint8) bool { return p == ProtoIGMP || p == ProtoVRRP }
