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
}

// cluster is the resolved view of pods, namespaces and identities.
type cluster struct {
	alloc    *identity.Allocator
	pods     []*podInfo // sorted by Key
	byID     map[identity.NumericIdentity][]*podInfo
	podIDs   []identity.NumericIdentity // sorted, distinct
	cidrs    map[netip.Prefix]identity.NumericIdentity
	nsLabels map[string]map[string]string
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

func newCluster(in Input, prefixes []netip.Prefix) *cluster {
	alloc := identity.NewAllocator()
	if in.PreviousIdentities != nil {
		alloc = in.PreviousIdentities.Successor()
	}
	c := &cluster{
		alloc:    alloc,
		byID:     map[identity.NumericIdentity][]*podInfo{},
		nsLabels: namespaceLabels(in.Namespaces),
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
	return c
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
	inSet := func(a netip.Addr) bool {
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
	if s.CIDR.Bits() == 0 {
		out[identity.World] = true
	}
	for p, id := range c.cidrs {
		if p.Bits() >= s.CIDR.Bits() && inSet(p.Addr()) && !insideAny(p, s.Except) {
			out[id] = true
		}
	}
	if pods {
		for _, id := range c.podIDs {
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
			out = append(out, IPCacheEntry{Prefix: netip.PrefixFrom(a, a.BitLen()), Identity: pi.Identity})
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
