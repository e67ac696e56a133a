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
//
// An agent recomputes its state on every change; an allocator made with
// Successor keeps the numbers the previous one gave, so identities do not
// shift under running traffic when another label set comes or goes.
type Allocator struct {
	byKey     map[string]NumericIdentity
	byID      map[NumericIdentity]Labels
	nextPod   NumericIdentity
	nextLocal NumericIdentity
	cidrs     map[netip.Prefix]NumericIdentity
	addrs     map[string]NumericIdentity // address label set (Labels.String) -> node-local id
	prev      *Allocator                 // numbers to keep; nil for a fresh allocator
}

// Identity number ranges: pod label sets below the local flag, node-local
// (CIDR) identities above it, each wrapping around to its start when spent.
const (
	maxPodIdentity   = LocalIdentityFlag - 1
	maxLocalIdentity = LocalIdentityFlag | (LocalIdentityFlag - 1)
)

// NewAllocator returns an allocator that knows the reserved identities.
func NewAllocator() *Allocator {
	a := &Allocator{
		byKey:     map[string]NumericIdentity{},
		byID:      map[NumericIdentity]Labels{},
		nextPod:   MinClusterIdentity,
		nextLocal: LocalIdentityFlag | 1,
		cidrs:     map[netip.Prefix]NumericIdentity{},
		addrs:     map[string]NumericIdentity{},
	}
	for id := range reservedNames {
		if id != Unknown {
			a.byID[id] = ReservedLabels(id)
		}
	}
	return a
}

// Successor returns an empty allocator that gives every label set and prefix
// the previous allocator knew the same number again, and new ones numbers
// after the previous allocator's last. Numbers the previous allocator gave to
// sets that are not allocated again are not reused until the range wraps.
func (a *Allocator) Successor() *Allocator {
	s := NewAllocator()
	s.prev, s.nextPod, s.nextLocal = a, a.nextPod, a.nextLocal
	return s
}

// Allocate returns the identity of a pod label set, allocating one if needed.
func (a *Allocator) Allocate(ls Labels) NumericIdentity {
	key := ls.String()
	if id, ok := a.byKey[key]; ok {
		return id
	}
	id, kept := a.prevID(key)
	if _, taken := a.byID[id]; !kept || taken {
		id = a.next(&a.nextPod, MinClusterIdentity, maxPodIdentity)
	}
	a.byKey[key] = id
	a.byID[id] = ls
	return id
}

// next returns the first number from *cursor on (wrapping from max to min)
// that this allocator has not given and the previous one does not hold for a
// set still to come, and moves the cursor past it.
func (a *Allocator) next(cursor *NumericIdentity, min, max NumericIdentity) NumericIdentity {
	for range max - min + 1 {
		id := *cursor
		if *cursor >= max {
			*cursor = min
		} else {
			*cursor++
		}
		if _, taken := a.byID[id]; taken || id < min || id > max || a.prev.holds(id) {
			continue
		}
		return id
	}
	panic("identity: every number of the range is in use") // 16M label sets
}

// holds reports whether this allocator gave id out. A successor numbers new
// sets around those numbers (they only come up again once the range wraps):
// a number whose set is gone stays unused for one more generation, so an
// event or conntrack entry that still carries it is not taken for a new set.
func (a *Allocator) holds(id NumericIdentity) bool {
	if a == nil {
		return false
	}
	_, ok := a.byID[id]
	return ok
}

// AllocateAll allocates every label set in sorted order and returns their ids
// in the order given. Sets the previous allocator numbered keep their numbers
// before any new set is numbered.
func (a *Allocator) AllocateAll(sets []Labels) []NumericIdentity {
	sorted := append([]Labels(nil), sets...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].String() < sorted[j].String() })
	for _, ls := range sorted {
		if _, kept := a.prevID(ls.String()); kept {
			a.Allocate(ls)
		}
	}
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
// labels cidr:<prefix> and reserved:world-ipv4 or reserved:world-ipv6, as in
// Cilium's dual-stack mode (Kestrel is always dual-stack). A /0 prefix is its
// family's world identity itself.
func (a *Allocator) AllocateCIDR(p netip.Prefix) NumericIdentity {
	p = p.Masked()
	if p.Bits() == 0 {
		return WorldOf(p.Addr())
	}
	if id, ok := a.cidrs[p]; ok {
		return id
	}
	id, kept := a.prevCIDR(p)
	if _, taken := a.byID[id]; !kept || taken {
		id = a.next(&a.nextLocal, LocalIdentityFlag|1, maxLocalIdentity)
	}
	a.cidrs[p] = id
	a.byID[id] = NewLabels(Label{Source: SourceCIDR, Key: p.String()}, Label{Source: SourceReserved, Key: ReservedName(WorldOf(p.Addr()))})
	return id
}

// AddCIDRLabels adds labels to the identity of an allocated prefix: the
// fqdn:<selector> labels of an address a toFQDNs selector selects, next to
// its cidr: label (Cilium labels such addresses by the selectors that
// return them). The number stays the prefix's, so an address a name starts
// or stops resolving to is not renumbered under established connections.
// It reports whether p has an identity to label.
func (a *Allocator) AddCIDRLabels(p netip.Prefix, ls ...Label) bool {
	id, ok := a.cidrs[p.Masked()]
	if !ok {
		return false
	}
	a.byID[id] = NewLabels(append(append(Labels(nil), a.byID[id]...), ls...)...)
	return true
}

// AllocateCIDRs allocates prefixes in sorted order (address family, address, length).
func (a *Allocator) AllocateCIDRs(ps []netip.Prefix) {
	sorted := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		sorted[i] = p.Masked()
	}
	sort.Slice(sorted, func(i, j int) bool { return ComparePrefix(sorted[i], sorted[j]) < 0 })
	for _, p := range sorted {
		if _, kept := a.prevCIDR(p); kept {
			a.AllocateCIDR(p)
		}
	}
	for _, p := range sorted {
		a.AllocateCIDR(p)
	}
}

// AddressLabels are the labels of one pod address's own identity: the pod's
// labels plus cidr:<address>/<bits>, so label selectors and requirements
// still see the pod, and the address is named.
func AddressLabels(addr netip.Addr, pod Labels) Labels {
	p := netip.PrefixFrom(addr, addr.BitLen())
	return NewLabels(append(append(Labels(nil), pod...), Label{Source: SourceCIDR, Key: p.String()})...)
}

// AllocateAddresses gives each label set (made by AddressLabels) a
// node-local identity, keeping the numbers the previous allocator gave.
// A pod address gets an identity of its own only where one policy decides
// per address what another decides per label set (ipBlock over pods that
// share labels, or over one dual-stack pod); see agent/README.md.
func (a *Allocator) AllocateAddresses(sets []Labels) []NumericIdentity {
	alloc := func(ls Labels, keptOnly bool) NumericIdentity {
		key := ls.String()
		if id, ok := a.addrs[key]; ok {
			return id
		}
		var id NumericIdentity
		kept := false
		if a.prev != nil {
			id, kept = a.prev.addrs[key]
		}
		if keptOnly && !kept {
			return 0
		}
		if _, taken := a.byID[id]; !kept || taken {
			id = a.next(&a.nextLocal, LocalIdentityFlag|1, maxLocalIdentity)
		}
		a.addrs[key] = id
		a.byID[id] = ls
		return id
	}
	sorted := append([]Labels(nil), sets...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].String() < sorted[j].String() })
	for _, ls := range sorted {
		alloc(ls, true)
	}
	ids := make([]NumericIdentity, len(sets))
	for _, ls := range sorted {
		alloc(ls, false)
	}
	for i, ls := range sets {
		ids[i] = a.addrs[ls.String()]
	}
	return ids
}

// prevID is the number the previous allocator gave a label set, if any.
func (a *Allocator) prevID(key string) (NumericIdentity, bool) {
	if a.prev == nil {
		return 0, false
	}
	id, ok := a.prev.byKey[key]
	return id, ok
}

// prevCIDR is the number the previous allocator gave a prefix, if any.
func (a *Allocator) prevCIDR(p netip.Prefix) (NumericIdentity, bool) {
	if a.prev == nil {
		return 0, false
	}
	id, ok := a.prev.cidrs[p]
	return id, ok
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
