package service

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// maxAffinitySeconds is the API server's bound on
// sessionAffinityConfig.clientIP.timeoutSeconds (one day).
const maxAffinitySeconds = 86400

// serviceState is everything one service contributes, built aside so that a
// service enters the State whole or not at all.
type serviceState struct {
	name       types.NamespacedName
	frontends  []Frontend
	clusterIPs []netip.Addr
	// nodePorts are the node ports the service holds on every node address
	// ("TCP/30080"), healthCheckNodePort included.
	nodePorts []string
	health    *HealthCheck
}

// serviceSpec is the part of a Service that does not depend on the family or
// the port, parsed and checked once.
type serviceSpec struct {
	clusterIPs          []netip.Addr
	externalIPs         []netip.Addr
	lbVIPs              []netip.Addr
	sourceRanges        []netip.Prefix
	externalPolicyLocal bool
	internalPolicyLocal bool
	affinity            time.Duration
	healthCheckNodePort uint16
}

// skipService is kube-proxy's ShouldSkipService: no ClusterIP (headless, or
// none allocated) or ExternalName means no frontend at all.
func skipService(svc *corev1.Service) bool {
	ip := svc.Spec.ClusterIP
	return svc.Spec.Type == corev1.ServiceTypeExternalName || ip == "" || ip == corev1.ClusterIPNone
}

// externallyAccessible is the API's rule for whether externalTrafficPolicy
// applies at all.
func externallyAccessible(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeClusterIP, "":
		return len(svc.Spec.ExternalIPs) > 0
	}
	return false
}

func parseSpec(svc *corev1.Service) (serviceSpec, error) {
	var s serviceSpec
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 {
		ips = []string{svc.Spec.ClusterIP}
	}
	var fams [2]bool
	for i, raw := range ips {
		a, err := parseAddr(raw)
		if err != nil {
			return s, fmt.Errorf("spec.clusterIPs[%d]: %w", i, err)
		}
		if fams[famIndex(a)] {
			return s, fmt.Errorf("spec.clusterIPs[%d]: a second %s ClusterIP (%s)", i, famName(a), a)
		}
		fams[famIndex(a)] = true
		s.clusterIPs = append(s.clusterIPs, a)
	}
	for i, raw := range svc.Spec.ExternalIPs {
		a, err := parseAddr(raw)
		if err != nil {
			return s, fmt.Errorf("spec.externalIPs[%d]: %w", i, err)
		}
		s.externalIPs = append(s.externalIPs, a)
	}
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		// Only VIP-mode ingress IPs are captured on the node; a proxying
		// load balancer (ipMode Proxy) delivers to the node itself.
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode != corev1.LoadBalancerIPModeVIP) {
			continue
		}
		a, err := parseAddr(ing.IP)
		if err != nil {
			return s, fmt.Errorf("status.loadBalancer.ingress[%d].ip: %w", i, err)
		}
		s.lbVIPs = append(s.lbVIPs, a)
	}
	for i, raw := range svc.Spec.LoadBalancerSourceRanges {
		// The API's validation lets whitespace through; kube-proxy trims it.
		p, err := netip.ParsePrefix(strings.TrimSpace(raw))
		if err != nil {
			return s, fmt.Errorf("spec.loadBalancerSourceRanges[%d]: %q is not a CIDR", i, raw)
		}
		s.sourceRanges = append(s.sourceRanges, p.Masked())
	}
	s.externalPolicyLocal = externallyAccessible(svc) && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	s.internalPolicyLocal = svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		secs := corev1.DefaultClientIPServiceAffinitySeconds
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			secs = *c.ClientIP.TimeoutSeconds
		}
		if secs <= 0 || secs > maxAffinitySeconds {
			return s, fmt.Errorf("spec.sessionAffinityConfig.clientIP.timeoutSeconds: %d is outside 1..%d", secs, maxAffinitySeconds)
		}
		s.affinity = time.Duration(secs) * time.Second
	}
	// kube-proxy serves a health check only for LoadBalancer services with
	// externalTrafficPolicy Local (apiservice.NeedsHealthCheck).
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && s.externalPolicyLocal && svc.Spec.HealthCheckNodePort != 0 {
		if svc.Spec.HealthCheckNodePort < 0 || svc.Spec.HealthCheckNodePort > 65535 {
			return s, fmt.Errorf("spec.healthCheckNodePort: %d is not a port", svc.Spec.HealthCheckNodePort)
		}
		s.healthCheckNodePort = uint16(svc.Spec.HealthCheckNodePort)
	}
	return s, nil
}

// buildService turns one Service into its frontends. eps holds the service's
// endpoints per family (index famIndex). It returns nil for a service that
// gets no frontend.
func buildService(svc *corev1.Service, eps [2]endpointsByPort, cfg *Config) (*serviceState, error) {
	if skipService(svc) {
		return nil, nil
	}
	spec, err := parseSpec(svc)
	if err != nil {
		return nil, err
	}
	name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	st := &serviceState{name: name}
	localReady := map[netip.Addr]bool{}
	for _, cip := range spec.clusterIPs {
		st.clusterIPs = append(st.clusterIPs, cip)
		v6 := cip.Is6()
		extIPs := ofFamily(spec.externalIPs, v6)
		vips := ofFamily(spec.lbVIPs, v6)
		var ranges []netip.Prefix
		for _, p := range spec.sourceRanges {
			if p.Addr().Is6() == v6 {
				ranges = append(ranges, p)
			}
		}
		if len(vips) > 0 && len(ranges) > 0 && anyContains(ranges, ofFamily(cfg.NodeIPs, v6)) {
			for _, v := range vips {
				ranges = append(ranges, netip.PrefixFrom(v, v.BitLen()))
			}
		}
		for i, p := range svc.Spec.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if proto != corev1.ProtocolTCP && proto != corev1.ProtocolUDP && proto != corev1.ProtocolSCTP {
				return nil, fmt.Errorf("spec.ports[%d].protocol: %q is not TCP, UDP or SCTP", i, p.Protocol)
			}
			if p.Port <= 0 || p.Port > 65535 {
				return nil, fmt.Errorf("spec.ports[%d].port: %d is not a port", i, p.Port)
			}
			if p.NodePort < 0 || p.NodePort > 65535 {
				return nil, fmt.Errorf("spec.ports[%d].nodePort: %d is not a port", i, p.NodePort)
			}
			portEPs := eps[famIndex(cip)][portKey{p.Name, proto}]
			for _, e := range portEPs {
				if e.local && e.ready {
					localReady[e.addr] = true
				}
			}
			extAccessible := p.NodePort != 0 || len(vips) > 0 || len(extIPs) > 0
			// kube-proxy's UsesClusterEndpoints / UsesLocalEndpoints: even
			// with externalTrafficPolicy Local the cluster endpoints are
			// needed, for traffic from this node (the short-circuit).
			usesCluster := !spec.internalPolicyLocal || extAccessible
			usesLocal := spec.internalPolicyLocal || (spec.externalPolicyLocal && extAccessible)
			c := categorize(portEPs, usesCluster, usesLocal, cfg.NodeZone)

			base := Frontend{
				Port:                uint16(p.Port),
				Protocol:            proto,
				Service:             ServicePortName{NamespacedName: name, Port: p.Name, Protocol: proto},
				ExternalPolicyLocal: spec.externalPolicyLocal,
				InternalPolicyLocal: spec.internalPolicyLocal,
				AffinityTimeout:     spec.affinity,
			}

			internal := base
			internal.Addr, internal.Kind = cip, ClusterIP
			internal.Action, internal.Backends = decide(c.hasAny, spec.internalPolicyLocal, c.cluster, c.local)
			st.frontends = append(st.frontends, internal)

			external := base
			external.Action, external.Backends = decide(c.hasAny, spec.externalPolicyLocal, c.cluster, c.local)
			if spec.externalPolicyLocal && c.hasAny {
				external.LocalOriginBackends = c.cluster
			}
			for _, a := range extIPs {
				f := external
				f.Addr, f.Kind = a, ExternalIP
				st.frontends = append(st.frontends, f)
			}
			for _, a := range vips {
				f := external
				f.Addr, f.Kind, f.SourceRanges = a, LoadBalancer, ranges
				st.frontends = append(st.frontends, f)
			}
			if p.NodePort != 0 {
				st.nodePorts = append(st.nodePorts, fmt.Sprintf("%s/%d", proto, p.NodePort))
				addrs := ofFamily(cfg.NodeIPs, v6)
				if len(addrs) == 0 {
					// No node address of this family is known: the
					// unspecified address stands for "every local address",
					// as kube-proxy's nodePortAddresses default.
					addrs = []netip.Addr{unspecified(v6)}
				}
				for _, a := range addrs {
					f := external
					f.Port, f.Addr, f.Kind = uint16(p.NodePort), a, NodePort
					st.frontends = append(st.frontends, f)
				}
			}
		}
	}
	if spec.healthCheckNodePort != 0 {
		st.nodePorts = append(st.nodePorts, fmt.Sprintf("%s/%d", corev1.ProtocolTCP, spec.healthCheckNodePort))
		st.health = &HealthCheck{Service: name, Port: spec.healthCheckNodePort, LocalEndpoints: len(localReady)}
	}
	return st, nil
}

// decide is kube-proxy's choice between the policy chain, "drop" and REJECT:
// no usable endpoint anywhere rejects; a Local policy with endpoints only on
// other nodes drops.
func decide(hasAny, policyLocal bool, cluster, local []Backend) (Action, []Backend) {
	switch {
	case !hasAny:
		return Reject, nil
	case policyLocal && len(local) == 0:
		return Drop, nil
	case policyLocal:
		return Forward, local
	}
	return Forward, cluster
}

func parseAddr(raw string) (netip.Addr, error) {
	a, err := netip.ParseAddr(raw)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", raw)
	}
	return a.Unmap(), nil
}

func famIndex(a netip.Addr) int {
	if a.Is6() {
		return 1
	}
	return 0
}

func famName(a netip.Addr) string {
	if a.Is6() {
		return "IPv6"
	}
	return "IPv4"
}

func unspecified(v6 bool) netip.Addr {
	if v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func ofFamily(addrs []netip.Addr, v6 bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if a.Is6() == v6 {
			out = append(out, a)
		}
	}
	return out
}

func anyContains(ranges []netip.Prefix, addrs []netip.Addr) bool {
	for _, p := range ranges {
		for _, a := range addrs {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}
