package policy

import (
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/kestrelnet/kestrel/agent/identity"
)

// Input is a cluster description plus the policies to resolve against it.
type Input struct {
	// EnforceLocalhost subjects traffic from the local node to its pods to
	// ingress policy (Cilium's allow-localhost=policy). The default, false, is
	// Cilium's behaviour in Kubernetes (allow-localhost=auto): the node always
	// reaches its pods, so kubelet probes survive default deny; an explicit deny
	// of the host entity still wins.
	EnforceLocalhost bool
	ClusterName      string
	Namespaces       []*corev1.Namespace
	Pods             []*corev1.Pod
	Policies         []Object
	// PreviousIdentities, if set, is an earlier Result's allocator: label
	// sets and prefixes it numbered keep their numbers (an agent passes its
	// last result's, so identities do not shift under running traffic).
	PreviousIdentities *identity.Allocator
	// Secrets are the Secrets headerMatches may name (CheckSecrets refuses
	// policies that need a missing one; once accepted, a missing Secret
	// makes its match fail closed).
	Secrets Secrets
	// FQDNs are the live addresses the DNS proxy saw answered, by absolute
	// name (fqdn.Cache.Names): toFQDNs selectors select them.
	FQDNs map[string][]netip.Addr
}

// IPCacheEntry maps a prefix to the identity of the addresses in it.
type IPCacheEntry struct {
	Prefix   netip.Prefix
	Identity identity.NumericIdentity
}

// Endpoint is one pod's resolved state.
type Endpoint struct {
	Key      string // namespace/name
	Identity identity.NumericIdentity
	Labels   identity.Labels
	Policy   *EndpointPolicy
	Notes    []string // parsed but not enforced features of selecting rules
}

// Result is the outcome of Resolve.
type Result struct {
	Endpoints  map[string]*Endpoint // by namespace/name
	IPCache    []IPCacheEntry       // sorted by prefix
	Identities *identity.Allocator  // labels of every identity
}

// EndpointKeys returns the endpoint keys, sorted.
func (r *Result) EndpointKeys() []string {
	out := make([]string, 0, len(r.Endpoints))
	for k := range r.Endpoints {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DescribeIdentity names an identity for people: "any", an entity name, or the
// number with its labels.
func (r *Result) DescribeIdentity(id identity.NumericIdentity) string {
	return r.Identities.Describe(id)
}

// allowLocalhostOrigin names the implicit host allow in map state and flows.
var allowLocalhostOrigin = Origin{Kind: "Reserved", Name: "allow-localhost"}

// Resolve computes every pod's identity and policy map state.
func Resolve(in Input) (*Result, error) {
	pols := append([]Object(nil), in.Policies...)
	sort.SliceStable(pols, func(i, j int) bool { return pols[i].String() < pols[j].String() })
	groups := collectCIDRGroups(pols)
	prefixes, blocks, err := policyPrefixes(pols, groups)
	if err != nil {
		return nil, err
	}
	prefixes = append(prefixes, fqdnPrefixes(pols, in.FQDNs)...)
	c := newCluster(in, prefixes, blocks, groups)
	for p, ls := range fqdnLabels(pols, in.FQDNs) {
		c.alloc.AddCIDRLabels(p, ls...)
	}
	res := &Result{Endpoints: map[string]*Endpoint{}, IPCache: c.ipcache(), Identities: c.alloc}
	for _, pi := range c.pods {
		if _, dup := res.Endpoints[pi.Key]; dup {
			return nil, fmt.Errorf("pod %s is given twice", pi.Key)
		}
		b := newBuilder(c.addrIDs)
		ep := &Endpoint{Key: pi.Key, Identity: pi.Identity, Labels: c.labelsOf(pi.Identity)}
		var req requirements
		for i := range pols {
			if pols[i].Cilium != nil {
				collectRequirements(c, pi, &pols[i], &req)
			}
		}
		for i := range pols {
			o := &pols[i]
			switch {
			case o.NetworkPolicy != nil:
				applyNetworkPolicy(c, pi, o, b, req)
			case o.Cilium != nil:
				ep.Notes = append(ep.Notes, applyCiliumPolicy(c, pi, o, b, req)...)
			}
		}
		if b.pol.IngressEnforced && !in.EnforceLocalhost {
			b.add(Ingress, idSet{identity.Host: true}, anyPort, false, allowLocalhostOrigin)
		}
		ep.Policy = b.finish()
		res.Endpoints[pi.Key] = ep
	}
	return res, nil
}

// policyPrefixes collects every CIDR and exception the policies mention (CIDR
// groups included), so each gets an identity and an ipcache entry, and the
// NetworkPolicy ipBlocks, which may have to be decided per pod address.
func policyPrefixes(pols []Object, groups cidrGroups) ([]netip.Prefix, []cidrSet, error) {
	var blocks []cidrSet
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	addSet := func(s cidrSet) {
		for _, p := range append([]netip.Prefix{s.CIDR}, s.Except...) {
			if p.Bits() > 0 && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	for i := range pols {
		o := &pols[i]
		if np := o.NetworkPolicy; np != nil {
			var peers []networkingv1.NetworkPolicyPeer
			for _, r := range np.Spec.Ingress {
				peers = append(peers, r.From...)
			}
			for _, r := range np.Spec.Egress {
				peers = append(peers, r.To...)
			}
			for _, p := range peers {
				if p.IPBlock == nil {
					continue
				}
				s, err := parseIPBlock(p.IPBlock)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: %v", o.Source, err)
				}
				addSet(s)
				blocks = append(blocks, s)
			}
		}
		if o.Cilium != nil {
			for _, r := range o.Cilium.Rules() {
				var sets []cidrSet
				for _, in := range r.Ingress {
					sets = append(sets, groups.sets(in.FromCIDR, in.FromCIDRSet)...)
				}
				for _, in := range r.IngressDeny {
					sets = append(sets, groups.sets(in.FromCIDR, in.FromCIDRSet)...)
				}
				for _, e := range r.Egress {
					sets = append(sets, groups.sets(e.ToCIDR, e.ToCIDRSet)...)
				}
				for _, e := range r.EgressDeny {
					sets = append(sets, groups.sets(e.ToCIDR, e.ToCIDRSet)...)
				}
				for _, s := range sets {
					addSet(s)
				}
			}
		}
	}
	return out, blocks, nil
}
