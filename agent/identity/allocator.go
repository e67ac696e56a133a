package identity

import (
	"fmt"
	"net/netip"
	"sort"
)

// Allocator hands out numeric identities for label sets. The same label set
// always gets the same identity within one allocator. AllocateAll assigns ids
// in the sorted order of the label sets' string forms, so a cluster described
// by the same objects always gets the same numbers.
type Allocator struct {
	byKey     map[string]NumericIdentity
	byID      map[NumericIdentity]Labels
	nextPod   NumericIdentity
	nextLocal NumericIdentity
	cidrs     map[netip.Prefix]NumericIdentity
}

// NewAllocator returns an allocator that knows the reserved identities.
func NewAllocator() *Allocator {
	a := &Allocator{
		byKey:     map[string]NumericIdentity{},
		byID:      map[NumericIdentity]Labels{},
		nextPod:   MinClusterIdentity,
		nextLocal: LocalIdentityFlag | 1,
		cidrs:     map[netip.Prefix]NumericIdentity{},
	}
	for id := range reservedNames {
		if id != Unknown {
			a.byID[id] = ReservedLabels(id)
		}
	}
	return a
}

// Allocate returns the identity of a pod label set, allocating one if needed.
func (a *Allocator) Allocate(ls Labels) NumericIdentity {
	key := ls.String()
	if id, ok := a.byKey[key]; ok {
		return id
	}
	id := a.nextPod
	a.nextPod++
	a.byKey[key] = id
	a.byID[id] = ls
	return id
}

// AllocateAll allocates every label set in sorted order and returns their ids
// in the order given.
func (a *Allocator) AllocateAll(sets []Labels) []NumericIdentity {
	sorted := append([]Labels(nil), sets...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].String() < sorted[j].String() })
	for _, ls := range sorted {
		a.Allocate(ls)
	}
	ids := make([]NumericIdentity, len(sets))
	for i, ls := range sets {
		ids[i] = a.byKey[ls.String()]
	}
	return ids
}

// AllocateCIDR returns the node-local identity of a prefix (masked), with
// labels cidr:<prefix> and reserved:world, as in Cilium. A /0 prefix is the
// world identity itself.
func (a *Allocator) AllocateCIDR(p netip.Prefix) NumericIdentity {
	p = p.Masked()
	if p.Bits() == 0 {
		return World
	}
	if id, ok := a.cidrs[p]; ok {
		return id
	}
	id := a.nextLocal
	a.nextLocal++
	a.cidrs[p] = id
	a.byID[id] = NewLabels(Label{Source: SourceCIDR, Key: p.String()}, Label{Source: SourceReserved, Key: "world"})
	return id
}

// AllocateCIDRs allocates prefixes in sorted order (address family, address, length).
func (a *Allocator) AllocateCIDRs(ps []netip.Prefix) {
	sorted := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		sorted[i] = p.Masked()
	}
	sort.Slice(sorted, func(i, j int) bool { return ComparePrefix(sorted[i], sorted[j]) < 0 })
	for _, p := range sorted {
		a.AllocateCIDR(p)
	}
}

// ComparePrefix orders prefixes by address, then length.
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// CIDRs returns the allocated prefixes and their identities, sorted.
func (a *Allocator) CIDRs() map[netip.Prefix]NumericIdentity {
	out := make(map[netip.Prefix]NumericIdentity, len(a.cidrs))
	for p, id := range a.cidrs {
		out[p] = id
	}
	return out
}

// Labels returns the labels of an allocated or reserved identity.
func (a *Allocator) Labels(id NumericIdentity) (Labels, bool) {
	ls, ok := a.byID[id]
	return ls, ok
}

// IDs returns every known identity (reserved, pod, CIDR), sorted.
func (a *Allocator) IDs() []NumericIdentity {
	ids := make([]NumericIdentity, 0, len(a.byID))
	for id := range a.byID {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Describe returns "id (labels)" or the entity name for a reserved identity.
func (a *Allocator) Describe(id NumericIdentity) string {
	if id == Unknown {
		return "any"
	}
	if n := ReservedName(id); n != "" {
		return fmt.Sprintf("%d (reserved:%s)", id, n)
	}
	ls, _ := a.Labels(id)
	return fmt.Sprintf("%d (%s)", id, ls)
}
