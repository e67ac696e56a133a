package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kestrelnet/kestrel/agent/identity"
)

// peerSpec is the L3 part of an ingress/egress (deny) rule, direction-neutral.
type peerSpec struct {
	// Present says one of the peer lists was written, even empty: as in
	// Cilium, `fromEndpoints: []` (or an empty CIDR, CIDRSet or entity list)
	// selects no peer, while leaving every list out is an L3 wildcard.
	Present   bool
	Endpoints []Selector
	Entities  []string
	CIDRs     []string
	CIDRSets  []CIDRRule
	// OwnRequires counts the rule's own fromRequires/toRequires: a rule with
	// only requirements allows nothing by itself (it is not a wildcard).
	OwnRequires int
	// Unenforced names peer kinds that are parsed but not resolved yet
	// (toFQDNs, toServices, toGroups, fromNodes, ...); they select nothing.
	Unenforced []string
}

// absent reports whether the rule names no L3 peer at all (an L3 wildcard).
func (ps peerSpec) absent() bool {
	return !ps.Present && len(ps.Unenforced)+ps.OwnRequires == 0
}

func ingressPeers(c IngressCommon) peerSpec {
	p := peerSpec{Endpoints: c.FromEndpoints, Entities: c.FromEntities, CIDRs: c.FromCIDR, CIDRSets: c.FromCIDRSet, OwnRequires: len(c.FromRequires)}
	p.Present = c.FromEndpoints != nil || c.FromEntities != nil || c.FromCIDR != nil || c.FromCIDRSet != nil
	if len(c.FromGroups) > 0 {
		p.Unenforced = append(p.Unenforced, "fromGroups")
	}
	if len(c.FromNodes) > 0 {
		p.Unenforced = append(p.Unenforced, "fromNodes")
	}
	return p
}

func egressPeers(c EgressCommon, fqdns int) peerSpec {
	p := peerSpec{Endpoints: c.ToEndpoints, Entities: c.ToEntities, CIDRs: c.ToCIDR, CIDRSets: c.ToCIDRSet, OwnRequires: len(c.ToRequires)}
	p.Present = c.ToEndpoints != nil || c.ToEntities != nil || c.ToCIDR != nil || c.ToCIDRSet != nil
	for name, n := range map[string]int{"toGroups": len(c.ToGroups), "toNodes": len(c.ToNodes), "toServices": len(c.ToServices), "toFQDNs": fqdns} {
		if n > 0 {
			p.Unenforced = append(p.Unenforced, name)
		}
	}
	return p
}

// ciliumCtx is one Cilium policy applied to one endpoint.
type ciliumCtx struct {
	c           *cluster
	pi          *podInfo
	o           *Object
	b           *builder
	clusterwide bool
	notes       []string
}

// requirements are the fromRequires/toRequires of every Cilium rule selecting
// a pod, each already evaluated to the identities it admits. They narrow the
// peers of every allow rule that selects the pod: Cilium rules of any peer
// kind, L4-only rules (whose "any peer" becomes every identity the
// requirements admit) and NetworkPolicy peers. Cilium folds them into
// fromEndpoints/toEndpoints only; narrowing everything is the fail-closed
// reading. Deny rules are not narrowed: a deny stays as wide as written.
type requirements struct {
	in, eg []idSet
}

// selectingRules returns the rules of o that select pod pi, with their paths.
func selectingRules(c *cluster, pi *podInfo, o *Object) ([]Rule, []string) {
	if o.Kind == KindCNP && pi.Namespace != o.Namespace {
		return nil, nil
	}
	lbls := c.labelsOf(pi.Identity)
	var rules []Rule
	var paths []string
	for i, r := range o.Cilium.Rules() {
		if r.EndpointSelector != nil && matchIdentity(r.EndpointSelector, lbls) {
			rules = append(rules, r)
			paths = append(paths, rulePath(o, i))
		}
	}
	return rules, paths
}

// collectRequirements adds the requirements of o's rules that select pi.
func collectRequirements(c *cluster, pi *podInfo, o *Object, req *requirements) {
	x := &ciliumCtx{c: c, pi: pi, o: o, clusterwide: o.Kind != KindCNP}
	rules, _ := selectingRules(c, pi, o)
	add := func(dst *[]idSet, sels []Selector) {
		for i := range sels {
			*dst = append(*dst, x.selectEndpoints(&sels[i]))
		}
	}
	for _, r := range rules {
		for _, in := range r.Ingress {
			add(&req.in, in.FromRequires)
		}
		for _, in := range r.IngressDeny {
			add(&req.in, in.FromRequires)
		}
		for _, e := range r.Egress {
			add(&req.eg, e.ToRequires)
		}
		for _, e := range r.EgressDeny {
			add(&req.eg, e.ToRequires)
		}
	}
}

// applyCiliumPolicy adds the keys of a CNP, CCNP or bare rule list to pod pi's
// state and returns notes about parsed-but-unenforced parts.
func applyCiliumPolicy(c *cluster, pi *podInfo, o *Object, b *builder, req requirements) []string {
	x := &ciliumCtx{c: c, pi: pi, o: o, b: b, clusterwide: o.Kind != KindCNP}
	rules, paths := selectingRules(c, pi, o)
	inReq, egReq := req.in, req.eg
	for ri, r := range rules {
		dd := r.EnableDefaultDeny
		if (len(r.Ingress) > 0 || len(r.IngressDeny) > 0) && (dd == nil || dd.Ingress == nil || *dd.Ingress) {
			b.enforce(Ingress, o.Origin())
		}
		if (len(r.Egress) > 0 || len(r.EgressDeny) > 0) && (dd == nil || dd.Egress == nil || *dd.Egress) {
			b.enforce(Egress, o.Origin())
		}
		for i, in := range r.Ingress {
			p := fmt.Sprintf("%s.ingress[%d]", paths[ri], i)
			x.apply(p, Ingress, ingressPeers(in.IngressCommon), inReq, in.ToPorts, in.ICMPs, false)
			if in.Authentication != nil && in.Authentication.Mode != "disabled" {
				x.note("%s.authentication: mode %s is not enforced yet", p, in.Authentication.Mode)
			}
		}
		for i, in := range r.IngressDeny {
			p := fmt.Sprintf("%s.ingressDeny[%d]", paths[ri], i)
			x.apply(p, Ingress, ingressPeers(in.IngressCommon), nil, denyPorts(in.ToPorts), in.ICMPs, true)
		}
		for i, e := range r.Egress {
			p := fmt.Sprintf("%s.egress[%d]", paths[ri], i)
			x.apply(p, Egress, x.c.fqdnPeers(egressPeers(e.EgressCommon, 0), e.ToFQDNs), egReq, e.ToPorts, e.ICMPs, false)
			if e.Authentication != nil && e.Authentication.Mode != "disabled" {
				x.note("%s.authentication: mode %s is not enforced yet", p, e.Authentication.Mode)
			}
		}
		for i, e := range r.EgressDeny {
			p := fmt.Sprintf("%s.egressDeny[%d]", paths[ri], i)
			x.apply(p, Egress, egressPeers(e.EgressCommon, 0), nil, denyPorts(e.ToPorts), e.ICMPs, true)
		}
	}
	return x.notes
}

func rulePath(o *Object, i int) string {
	if o.Kind == KindCiliumRules {
		return o.String()
	}
	if o.Cilium.Spec != nil {
		if i == 0 {
			return o.String() + " spec"
		}
		i--
	}
	return fmt.Sprintf("%s specs[%d]", o.String(), i)
}

func (x *ciliumCtx) note(format string, args ...any) {
	x.notes = append(x.notes, fmt.Sprintf(format, args...))
}

func denyPorts(rs []PortDenyRule) []PortRule {
	out := make([]PortRule, len(rs))
	for i, r := range rs {
		out[i] = PortRule{Ports: r.Ports}
	}
	return out
}

func needsProxy(r PortRule) bool {
	return !r.Rules.Empty() || r.Listener != nil || r.TerminatingTLS != nil || r.OriginatingTLS != nil || len(r.ServerNames) > 0
}

// apply adds the keys of one rule: peers x (toPorts + icmps).
func (x *ciliumCtx) apply(path string, dir Direction, ps peerSpec, requires []idSet, toPorts []PortRule, icmps []ICMPRule, deny bool) {
	origin := x.o.Origin()
	if len(ps.Unenforced) > 0 {
		x.note("%s: %s parsed but not enforced yet (selects no identities)", path, strings.Join(slices.Sorted(slices.Values(ps.Unenforced)), ", "))
	}
	if ps.absent() && len(toPorts) == 0 && len(icmps) == 0 {
		return // an empty rule ({}) selects the endpoint but allows nothing
	}
	peers := x.peers(ps, requires)
	if len(toPorts) == 0 && len(icmps) == 0 {
		x.b.add(dir, peers, anyPort, deny, origin)
		return
	}
	for i, pr := range toPorts {
		var proxy uint16
		if needsProxy(pr) {
			proxy = proxyPortFor(pr, dir)
			x.note("%s.toPorts[%d]: %s redirected to proxy port %d", path, i, l7Kind(pr), proxy)
		}
		x.b.http, x.b.dns, x.b.serverNames, x.b.kafka = nil, nil, nil, nil
		if proxy != 0 {
			x.b.serverNames = pr.ServerNames
		}
		if proxy != 0 && pr.Rules != nil {
			x.b.http = resolveHeaderSecrets(pr.Rules.HTTP, x.o.Namespace, x.c.secrets)
			x.b.dns, x.b.kafka = pr.Rules.DNS, pr.Rules.Kafka
		}
		if len(pr.Ports) == 0 {
			x.b.add(dir, peers, []portSpec{{Proxy: proxy}}, deny, origin)
		}
		for _, pp := range pr.Ports {
			protos, _ := ciliumProtocols(pp.Protocol)
			n, isNum, err := parsePort(string(pp.Port))
			if err != nil {
				continue
			}
			for _, proto := range protos {
				if isNum {
					if n == 0 { // Cilium's port 0: every port of the protocol
						x.b.add(dir, peers, []portSpec{{Protocol: proto, AnyPort: true, Proxy: proxy}}, deny, origin)
						continue
					}
					hi := uint16(n)
					if pp.EndPort != 0 {
						hi = uint16(pp.EndPort)
					}
					x.b.add(dir, peers, []portSpec{{Protocol: proto, PortLo: uint16(n), PortHi: hi, Proxy: proxy}}, deny, origin)
					continue
				}
				x.addNamed(dir, peers, string(pp.Port), proto, proxy, deny)
			}
		}
	}
	for _, ir := range icmps {
		for _, f := range ir.Fields {
			proto, typ, err := icmpKey(f)
			if err != nil {
				continue
			}
			x.b.add(dir, peers, []portSpec{{Protocol: proto, PortLo: typ, PortHi: typ}}, deny, origin)
		}
	}
}

// addNamed resolves a named port against the pod receiving the traffic: the
// endpoint itself for ingress, each remote pod identity for egress.
func (x *ciliumCtx) addNamed(dir Direction, peers idSet, name string, proto uint8, proxy uint16, deny bool) {
	name = strings.ToLower(name)
	origin := x.o.Origin()
	if dir == Ingress {
		x.b.add(dir, peers, namedPortSpecs(name, proto, proxy, x.pi.Ports), deny, origin)
		return
	}
	for _, t := range x.c.namedPortTargets(peers) {
		var specs []portSpec
		for _, remote := range t.pods {
			specs = append(specs, namedPortSpecs(name, proto, proxy, remote.Ports)...)
		}
		x.b.add(dir, idSet{t.id: true}, specs, deny, origin)
	}
}

func l7Kind(r PortRule) string {
	switch {
	case r.Rules != nil && r.Rules.HTTP != nil:
		return "HTTP rules"
	case r.Rules != nil && r.Rules.Kafka != nil:
		return "Kafka rules"
	case r.Rules != nil && r.Rules.DNS != nil:
		return "DNS rules"
	case r.Rules != nil && r.Rules.L7Proto != "":
		return r.Rules.L7Proto + " rules"
	case r.Listener != nil:
		return "listener " + r.Listener.Name
	}
	return "TLS/SNI"
}

// peers returns the identities a rule's L3 part selects, narrowed by the
// requirements; nil means any.
func (x *ciliumCtx) peers(ps peerSpec, requires []idSet) idSet {
	if ps.absent() {
		return x.c.narrow(nil, requires)
	}
	out := idSet{}
	for i := range ps.Endpoints {
		for id := range x.selectEndpoints(&ps.Endpoints[i]) {
			out[id] = true
		}
	}
	for _, e := range ps.Entities {
		ids := x.c.entityIDs(e)
		if ids == nil {
			return x.c.narrow(nil, requires)
		}
		for id := range ids {
			out[id] = true
		}
	}
	for _, s := range x.c.groups.sets(ps.CIDRs, ps.CIDRSets) {
		for id := range x.c.selectCIDRSet(s, false) {
			out[id] = true
		}
	}
	worldBoth(out)
	return x.c.narrow(out, requires)
}

// selectEndpoints evaluates an endpoint selector of a from/to rule.
func (x *ciliumCtx) selectEndpoints(s *Selector) idSet {
	out := idSet{}
	empty := isEmptySelector(s)
	scoped := !x.clusterwide && namespaceScoped(s)
	for _, id := range x.c.alloc.IDs() {
		pods := x.c.byID[id]
		if (empty || scoped) && len(pods) == 0 {
			continue
		}
		if scoped && pods[0].Namespace != x.o.Namespace {
			continue
		}
		if matchIdentity(s, x.c.labelsOf(id)) {
			out[id] = true
		}
	}
	return out
}

// entityIDs returns the identities of an entity; nil means all identities.
func (c *cluster) entityIDs(e string) idSet {
	out := idSet{}
	world := func(v4, v6 bool) {
		for p, id := range c.cidrs {
			if (p.Addr().Is4() && v4) || (p.Addr().Is6() && v6) {
				out[id] = true
			}
		}
	}
	switch e {
	case "all":
		return nil
	case "world": // both families, as Cilium's world entity selects 2, 9 and 10
		out[identity.World] = true
		out[identity.WorldIPv4] = true
		out[identity.WorldIPv6] = true
		world(true, true)
	case "world-ipv4":
		out[identity.WorldIPv4] = true
		world(true, false)
	case "world-ipv6":
		out[identity.WorldIPv6] = true
		world(false, true)
	case "cluster":
		for _, id := range []identity.NumericIdentity{identity.Host, identity.Unmanaged, identity.Health,
			identity.Init, identity.RemoteNode, identity.KubeAPIServer} {
			out[id] = true
		}
		for _, id := range c.podIDs {
			out[id] = true
		}
	case "host":
		out[identity.Host] = true
	case "remote-node":
		out[identity.RemoteNode] = true
	case "health":
		out[identity.Health] = true
	case "init":
		out[identity.Init] = true
	case "unmanaged":
		out[identity.Unmanaged] = true
	case "kube-apiserver":
		out[identity.KubeAPIServer] = true
	case "ingress":
		out[identity.Ingress] = true
	}
	return out
}
