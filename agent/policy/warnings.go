package policy

import "fmt"

// Warnings names the parts of valid policies that Kestrel does not enforce
// yet, and what happens to the traffic they select instead: it is never let
// through unfiltered.
func Warnings(o *Object) []string {
	if o.Cilium == nil {
		return nil
	}
	var out []string
	warn := func(path, what string) {
		out = append(out, fmt.Sprintf("%s: %s: %s: %s", o.Source, o.Origin(), path, what))
	}
	first := 0 // Rules() is spec, then specs
	if o.Cilium.Spec != nil {
		first = 1
	}
	for i, r := range o.Cilium.Rules() {
		rule := "spec"
		if i >= first {
			rule = fmt.Sprintf("specs[%d]", i-first)
		}
		for j, in := range r.Ingress {
			portWarnings(warn, fmt.Sprintf("%s.ingress[%d]", rule, j), in.ToPorts)
		}
		for j, eg := range r.Egress {
			path := fmt.Sprintf("%s.egress[%d]", rule, j)
			portWarnings(warn, path, eg.ToPorts)
			if len(eg.ToServices) > 0 {
				warn(path+".toServices", "service peers are not built yet: they select no peer, so the traffic they name is dropped (POLICY_DENIED)")
			}
		}
	}
	return out
}

func portWarnings(warn func(path, what string), path string, ports []PortRule) {
	for k, p := range ports {
		// HTTP, DNS, Kafka and TLS server-name rules have their proxies
		// (agent/proxy/...); the other parsers' ports have no listener yet.
		if !needsProxy(p) || proxyPortFor(p, Ingress) == ProxyPortHTTPIngress || proxyPortFor(p, Ingress) == ProxyPortDNSIngress || sniOnly(p) || kafkaOnly(p) {
			continue
		}
		at := fmt.Sprintf("%s.toPorts[%d]", path, k)
		switch {
		case p.Rules != nil && p.Rules.L7Proto != "":
			warn(at+".rules.l7proto", fmt.Sprintf("l7proto %q (a generic proxylib parser) has no proxy in Kestrel: traffic to these ports is dropped (PROXY_UNAVAILABLE), never passed unfiltered", p.Rules.L7Proto))
		case p.Listener != nil:
			warn(at+".listener", fmt.Sprintf("listener %q (an Envoy listener) has no proxy in Kestrel: traffic to these ports is dropped (PROXY_UNAVAILABLE), never passed unfiltered", p.Listener.Name))
		default:
			warn(at, "these L7 rules need a proxy that is not built yet: traffic to these ports is dropped (PROXY_UNAVAILABLE)")
		}
	}
}
