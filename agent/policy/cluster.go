package policy

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/agent/identity"
)

// podInfo is what resolution needs to know about one pod.
type podInfo struct {
	Key       string // namespace/name
	Namespace string
	Name      string
	Labels    map[string]string
	NSLabels  map[string]string
	Identity  identity.NumericIdentity
	IPs       []netip.Addr
	Ports     []corev1.ContainerPort
	// AddrIDs is set when the pod's identity is split per address (see
	// splitAddresses): each address's own identity, which the ipcache gives it.
	AddrIDs map[netip.Addr]identity.NumericIdentity
}

// podAddr is one pod address that has an identity of its own.
type podAddr struct {
	pod   *podInfo
	addr  netip.Addr
	owner identity.NumericIdentity // the pod's identity
}

// cluster is the resolved view of pods, namespaces and identities.
type cluster struct {
	alloc    *identity.Allocator
	pods     []*podInfo // sorted by Key
	byID     map[identity.NumericIdentity][]*podInfo
	podIDs   []identity.NumericIdentity // sorted, distinct
	cidrs    map[netip.Prefix]identity.NumericIdentity
	nsLabels map[string]map[string]string
	groups   cidrGroups
	// addrIDs are the address identities of each split pod identity, and
	// addrs what each address identity stands for.
	addrIDs map[identity.NumericIdentity][]identity.NumericIdentity
	addrs   map[identity.NumericIdentity]podAddr
	secrets Secrets // what headerMatches read
	// fqdns are the names the DNS proxy saw answered (Input.FQDNs).
	fqdns map[string][]netip.Addr
}

// namespaceLabels returns a namespace's labels plus kubernetes.io/metadata.name,
// which the API server sets on every namespace.
func namespaceLabels(nss []*corev1.Namespace) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, ns := range nss {
		ls := map[string]string{}
		for k, v := range ns.Labels {
			ls[k] = v
		}
		ls["kubernetes.io/metadata.name"] = ns.Name
		out[ns.Name] = ls
	}
	return out
}

func newCluster(in Input, prefixes []netip.Prefix, blocks []cidrSet, groups cidrGroups) *cluster {
	alloc := identity.NewAllocator()
	if in.PreviousIdentities != nil {
		alloc = in.PreviousIdentities.Successor()
	}
	c := &cluster{
		alloc:    alloc,
		byID:     map[identity.NumericIdentity][]*podInfo{},
		nsLabels: namespaceLabels(in.Namespaces),
		groups:   groups,
		addrIDs:  map[identity.NumericIdentity][]identity.NumericIdentity{},
		addrs:    map[identity.NumericIdentity]podAddr{},
		secrets:  in.Secrets,
		fqdns:    in.FQDNs,
	}
	var sets []identity.Labels
	for _, p := range in.Pods {
		ns := p.Namespace
		if ns == "" {
			ns = "default"
		}
		nsl, ok := c.nsLabels[ns]
		if !ok {
			nsl = map[string]string{"kubernetes.io/metadata.name": ns}
			c.nsLabels[ns] = nsl
		}
		pi := &podInfo{Key: ns + "/" + p.Name, Namespace: ns, Name: p.Name, Labels: p.Labels, NSLabels: nsl}
		for _, ip := range p.Status.PodIPs {
			if a, err := netip.ParseAddr(ip.IP); err == nil {
				pi.IPs = append(pi.IPs, a.Unmap())
			}
		}
		if len(pi.IPs) == 0 && p.Status.PodIP != "" {
			if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
				pi.IPs = append(pi.IPs, a.Unmap())
			}
		}
		for _, ctr := range p.Spec.Containers {
			pi.Ports = append(pi.Ports, ctr.Ports...)
		}
		c.pods = append(c.pods, pi)
		sets = append(sets, identity.PodLabels(identity.PodInfo{
			Namespace: ns, Labels: p.Labels, ServiceAccount: p.Spec.ServiceAccountName,
			NamespaceLabels: nsl, Cluster: in.ClusterName,
		}))
	}
	ids := c.alloc.AllocateAll(sets)
	for i, pi := range c.pods {
		pi.Identity = ids[i]
		if len(c.byID[pi.Identity]) == 0 {
			c.podIDs = append(c.podIDs, pi.Identity)
		}
		c.byID[pi.Identity] = append(c.byID[pi.Identity], pi)
	}
	sort.Slice(c.pods, func(i, j int) bool { return c.pods[i].Key < c.pods[j].Key })
	sort.Slice(c.podIDs, func(i, j int) bool { return c.podIDs[i] < c.podIDs[j] })
	c.alloc.AllocateCIDRs(prefixes)
	c.cidrs = c.alloc.CIDRs()
	c.splitAddresses(blocks)
	return c
}

// splitAddresses gives every address of a pod identity an identity of its
// own when some ipBlock holds some of that identity's addresses and not
// others: two pods with the same labels on either side of the block, or a
// dual-stack pod whose other family is outside it. The datapath matches
// identities, so only then can the block be decided per address, as
// NetworkPolicy means it. Every other pod address keeps its pod's identity,
// and label selectors select a split identity's address identities too
// (builder.add), so they see no difference.
func (c *cluster) splitAddresses(blocks []cidrSet) {
	var sets []identity.Labels
	var owners []podAddr
	for _, id := range c.podIDs {
		if !c.mixed(id, blocks) {
			continue
		}
		for _, pi := range c.byID[id] {
			for _, a := range pi.IPs {
				sets = append(sets, identity.AddressLabels(a, c.labelsOf(id)))
				owners = append(owners, podAddr{pod: pi, addr: a, owner: id})
			}
		}
	}
	for i, aid := range c.alloc.AllocateAddresses(sets) {
		o := owners[i]
		c.addrIDs[o.owner] = append(c.addrIDs[o.owner], aid)
		c.addrs[aid] = o
		if o.pod.AddrIDs == nil {
			o.pod.AddrIDs = map[netip.Addr]identity.NumericIdentity{}
		}
		o.pod.AddrIDs[o.addr] = aid
	}
}

// mixed reports whether some block holds some but not all of the addresses
// of identity id's pods.
func (c *cluster) mixed(id identity.NumericIdentity, blocks []cidrSet) bool {
	for _, s := range blocks {
		in, out := false, false
		for _, pi := range c.byID[id] {
			for _, a := range pi.IPs {
				if s.contains(a) {
					in = true
				} else {
					out = true
				}
			}
		}
		if in && out {
			return true
		}
	}
	return false
}

// ownerOf is the pod identity an address identity stands for, else id.
func (c *cluster) ownerOf(id identity.NumericIdentity) identity.NumericIdentity {
	if a, ok := c.addrs[id]; ok {
		return a.owner
	}
	return id
}

// narrow keeps the peers that every requirement admits (fromRequires and
// toRequires of the Cilium rules selecting the endpoint). A nil peers (any
// identity) becomes every known identity the requirements admit, so an
// L4-only rule is narrowed too. An address identity is admitted when its pod
// identity is.
func (c *cluster) narrow(peers idSet, reqs []idSet) idSet {
	if len(reqs) == 0 {
		return peers
	}
	if peers == nil {
		peers = idSet{}
		for _, id := range c.alloc.IDs() {
			peers[id] = true
		}
	}
	out := idSet{}
	for id := range peers {
		owner := c.ownerOf(id)
		ok := true
		for _, allowed := range reqs {
			if !allowed[owner] {
				ok = false
				break
			}
		}
		if ok {
			out[id] = true
		}
	}
	return out
}

// target is an identity whose pods receive traffic on named ports.
type target struct {
	id   identity.NumericIdentity
	pods []*podInfo
}

// namedPortTargets lists the pod identities (all their pods) and address
// identities (their one pod) among peers; nil peers means every pod identity.
func (c *cluster) namedPortTargets(peers idSet) []target {
	var out []target
	for _, id := range c.podIDs {
		if peers == nil || peers[id] {
			out = append(out, target{id: id, pods: c.byID[id]})
		}
	}
	if peers == nil {
		return out
	}
	for _, aid := range peers.sorted() {
		if a, ok := c.addrs[aid]; ok {
			out = append(out, target{id: aid, pods: []*podInfo{a.pod}})
		}
	}
	return out
}

// labelsOf returns the identity labels of id.
func (c *cluster) labelsOf(id identity.NumericIdentity) identity.Labels {
	ls, _ := c.alloc.Labels(id)
	return ls
}

// selectCIDRSet returns the identities a CIDR-minus-exceptions selects: the CIDR
// identities of known prefixes inside it and not inside an exception, and world
// when it is a /0 (world is every address outside all known prefixes, and every
// exception is a known prefix). With pods set, also every pod identity whose
// pods' addresses all lie in the set (Kubernetes ipBlock semantics).
func (c *cluster) selectCIDRSet(s cidrSet, pods bool) idSet {
	out := idSet{}
	inSet := s.contains
	if s.CIDR.Bits() == 0 {
		out[identity.WorldOf(s.CIDR.Addr())] = true
	}
	for p, id := range c.cidrs {
		if p.Bits() >= s.CIDR.Bits() && inSet(p.Addr()) && !insideAny(p, s.Except) {
			out[id] = true
		}
	}
	if pods {
		for _, id := range c.podIDs {
			if aids := c.addrIDs[id]; len(aids) > 0 {
				// Split per address: each address is in or out by itself.
				for _, aid := range aids {
					if inSet(c.addrs[aid].addr) {
						out[aid] = true
					}
				}
				continue
			}
			all, any := true, false
			for _, pi := range c.byID[id] {
				for _, a := range pi.IPs {
					any = true
					if !inSet(a) {
						all = false
					}
				}
			}
			if all && any {
				out[id] = true
			}
		}
	}
	return out
}

// contains reports whether a lies in the CIDR and in none of the exceptions.
func (s cidrSet) contains(a netip.Addr) bool {
	if !s.CIDR.Contains(a) {
		return false
	}
	for _, e := range s.Except {
		if e.Contains(a) {
			return false
		}
	}
	return true
}

// worldBoth adds world (2) to a peer set that holds both families' worlds,
// as Cilium does for a rule naming 0.0.0.0/0 and ::/0 together.
func worldBoth(s idSet) {
	if s[identity.WorldIPv4] && s[identity.WorldIPv6] {
		s[identity.World] = true
	}
}

func insideAny(p netip.Prefix, es []netip.Prefix) bool {
	for _, e := range es {
		if p.Bits() >= e.Bits() && e.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// ipcache returns pod addresses and policy prefixes with their identities.
func (c *cluster) ipcache() []IPCacheEntry {
	var out []IPCacheEntry
	for _, pi := range c.pods {
		for _, a := range pi.IPs {
			id := pi.Identity
			if aid, ok := pi.AddrIDs[a]; ok {
				id = aid
			}
			out = append(out, IPCacheEntry{Prefix: netip.PrefixFrom(a, a.BitLen()), Identity: id})
		}
	}
	podPrefix := map[netip.Prefix]bool{}
	for _, e := range out {
		podPrefix[e.Prefix] = true
	}
	for p, id := range c.cidrs {
		if !podPrefix[p] { // a pod's own address keeps the pod's identity
			out = append(out, IPCacheEntry{Prefix: p, Identity: id})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if c := identity.ComparePrefix(out[i].Prefix, out[j].Prefix); c != 0 {
			return c < 0
		}
		return out[i].Identity < out[j].Identity
	})
	return out
}

// idSet is a set of identities; a nil idSet where a peer set is expected means
// "any identity" (a wildcard).
type idSet map[identity.NumericIdentity]bool

func (s idSet) sorted() []identity.NumericIdentity {
	out := make([]identity.NumericIdentity, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
