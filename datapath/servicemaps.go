package datapath

// Writing, removing and counting the service maps (bpf/lib/lb.h).

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
)

func lbAddrOf(a netip.AddrPort) lxcLbAddr {
	var v lxcLbAddr
	w, fam := addrWords(a.Addr())
	v.Addr.Addr = w
	v.Port = a.Port()
	v.Family = fam
	return v
}

func lbKeyOf(a netip.Addr, port uint16, proto uint8, scope ServiceScope) lxcLbKey {
	var k lxcLbKey
	w, fam := addrWords(a)
	k.Addr.Addr = w
	k.Port = port
	k.Proto = proto
	k.Family = fam
	k.Scope = uint8(scope)
	return k
}

func (s Service) key() lxcLbKey {
	return lbKeyOf(s.Frontend.Addr(), s.Frontend.Port(), s.Protocol, s.Scope)
}

// setSplit marks (or unmarks) the internal entry of a frontend as having an
// external one, which the node device's program then looks up instead. It
// is set after the external entry is written and cleared before it goes,
// so the mark never points at nothing. Callers hold st.mu.
func (d *Datapath) setSplit(st *serviceState, s Service, on bool) error {
	internal := s
	internal.Scope = ScopeInternal
	if _, ok := st.byFront[internal.front()]; !ok {
		return nil
	}
	var v lxcLbService
	k := internal.key()
	if err := d.objs.LbServices.Lookup(k, &v); err != nil {
		return fmt.Errorf("%s: read internal entry: %w", s, err)
	}
	if on {
		v.Flags |= uint8(lxcLbFlagsLB_F_SPLIT)
	} else {
		v.Flags &^= uint8(lxcLbFlagsLB_F_SPLIT)
	}
	if err := d.objs.LbServices.Put(k, &v); err != nil {
		return fmt.Errorf("%s: mark internal entry: %w", s, err)
	}
	return nil
}

// writeServices writes validated services: every one's backends first, then
// every changed Maglev table at once (their RCU waits overlap), then the
// frontends that make them reachable. Callers hold st.mu.
func (d *Datapath) writeServices(st *serviceState, svcs []Service) error {
	type change struct {
		s       Service
		old, in *installedService
	}
	var changes []change
	var tableSvcs []Service
	var tables [][]uint32
	for _, s := range svcs {
		old, err := d.replacing(st, s)
		if err != nil {
			return err
		}
		in := s.plan(old)
		if err := d.writeBackends(s, in, old); err != nil {
			return err
		}
		if tableChanged(old, in) {
			tableSvcs, tables = append(tableSvcs, s), append(tables, in.table)
		}
		changes = append(changes, change{s, old, in})
	}
	if err := d.putMaglevTables(tableSvcs, tables); err != nil {
		return err
	}
	for _, c := range changes {
		if err := d.writeFrontend(st, c.s, c.in, c.old); err != nil {
			return err
		}
	}
	return nil
}

// replacing returns what is installed under s's id, after removing it if it
// had another frontend. Callers hold st.mu.
func (d *Datapath) replacing(st *serviceState, s Service) (*installedService, error) {
	old := st.byID[s.ID]
	if old != nil && (old.svc.Frontend != s.Frontend || old.svc.Protocol != s.Protocol) {
		if err := d.removeService(st, s.ID); err != nil {
			return nil, err
		}
		return nil, nil
	}
	return old, nil
}

func tableChanged(old, in *installedService) bool {
	return in.table != nil && (old == nil || !slices.Equal(old.table, in.table))
}

// writeBackends writes the slots that changed.
func (d *Datapath) writeBackends(s Service, in, old *installedService) error {
	for slot, b := range in.slots {
		if old != nil && slot < len(old.slots) && old.slots[slot] == b {
			continue
		}
		v := lbAddrOf(b)
		if err := d.objs.LbBackends.Put(lxcLbBackendKey{ServiceId: s.ID, Slot: uint32(slot)}, &v); err != nil {
			return fmt.Errorf("%s: write backend slot %d: %w", s, slot, err)
		}
	}
	return nil
}

// writeFrontend writes the reverse-NAT entry, the frontend and the address
// entry once backends and table are in, then removes what the service no
// longer has. Callers hold st.mu.
func (d *Datapath) writeFrontend(st *serviceState, s Service, in, old *installedService) error {
	fe := lbAddrOf(s.Frontend)
	if err := d.objs.LbRevnat.Put(s.ID, &fe); err != nil {
		return fmt.Errorf("%s: write reverse NAT: %w", s, err)
	}
	val := lxcLbService{Id: s.ID, BackendCount: uint32(len(in.slots))}
	if in.table != nil {
		val.Flags |= uint8(lxcLbFlagsLB_F_MAGLEV)
		val.MaglevSize = uint32(len(in.table))
	}
	if s.AffinityTimeout > 0 {
		val.Flags |= uint8(lxcLbFlagsLB_F_AFFINITY)
		val.AffinityTimeoutS = uint32(s.AffinityTimeout / time.Second)
	}
	if s.Reject {
		val.Flags |= uint8(lxcLbFlagsLB_F_REJECT)
	}
	if s.External {
		val.Flags |= uint8(lxcLbFlagsLB_F_EXTERNAL)
	}
	ranges := s.sourceRanges()
	if len(ranges) > 0 {
		val.Flags |= uint8(lxcLbFlagsLB_F_SOURCE_RANGES)
	}
	for _, p := range ranges {
		if err := d.objs.LbSourceRanges.Put(sourceRangeKey(s.ID, p), uint32(1)); err != nil {
			return fmt.Errorf("%s: write source range %s: %w", s, p, err)
		}
	}
	if s.Scope == ScopeInternal {
		ext := s
		ext.Scope = ScopeExternal
		if _, ok := st.byFront[ext.front()]; ok {
			val.Flags |= uint8(lxcLbFlagsLB_F_SPLIT)
		}
	}
	if err := d.objs.LbServices.Put(s.key(), &val); err != nil {
		return fmt.Errorf("%s: write frontend: %w", s, err)
	}
	st.byID[s.ID] = in
	st.byFront[s.front()] = s.ID
	if s.Scope == ScopeExternal {
		if err := d.setSplit(st, s, true); err != nil {
			return err
		}
	}
	a := s.Frontend.Addr()
	if !slices.Contains(st.addrRefs[a], s.ID) {
		st.addrRefs[a] = append(st.addrRefs[a], s.ID)
	}
	if err := d.writeAddressEntry(st, a); err != nil {
		return err
	}
	// What the service no longer has goes after the frontend stopped
	// pointing at it: slots past the new count, a Maglev table it dropped,
	// source ranges, and flows and affinities held by backends that left.
	if old != nil {
		if err := d.removeSourceRanges(old.svc, ranges); err != nil {
			return err
		}
		st.slots -= len(old.slots)
		for slot := len(in.slots); slot < len(old.slots); slot++ {
			if err := d.objs.LbBackends.Delete(lxcLbBackendKey{ServiceId: s.ID, Slot: uint32(slot)}); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("%s: remove backend slot %d: %w", s, slot, err)
			}
		}
		if old.table != nil && in.table == nil {
			if err := d.objs.LbMaglev.Delete(s.ID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("%s: remove maglev table: %w", s, err)
			}
		}
		left := map[[4]uint32]map[uint16]bool{}
		for _, b := range old.slots {
			if !slices.Contains(in.slots, b) {
				w, _ := addrWords(b.Addr())
				if left[w] == nil {
					left[w] = map[uint16]bool{}
				}
				left[w][b.Port()] = true
			}
		}
		if len(left) > 0 {
			if err := d.forgetServiceFlows(s.ID, func(be lxcLbAddr) bool { return left[be.Addr.Addr][be.Port] }); err != nil {
				return err
			}
		}
	}
	st.slots += len(in.slots)
	return nil
}

// putMaglevTables installs tables concurrently: each swap waits for an RCU
// grace period, and waiting for them one after another would make 100k
// Maglev services take minutes.
func (d *Datapath) putMaglevTables(svcs []Service, tables [][]uint32) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	errs := make(chan error, len(svcs))
	for i := range svcs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := d.putMaglevTable(svcs[i], tables[i]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

// putMaglevTable builds a service's table aside and swaps it in with one
// update (the kernel then waits for an RCU grace period).
func (d *Datapath) putMaglevTable(s Service, table []uint32) error {
	spec := d.maglevSpec.Copy()
	spec.MaxEntries = uint32(len(table))
	m, err := ebpf.NewMap(spec)
	if err != nil {
		return fmt.Errorf("%s: create maglev table of %d: %w", s, len(table), err)
	}
	defer m.Close()
	keys := make([]uint32, len(table))
	for i := range keys {
		keys[i] = uint32(i)
	}
	if _, err := m.BatchUpdate(keys, table, nil); err != nil {
		for i, v := range table {
			if err := m.Put(uint32(i), v); err != nil {
				return fmt.Errorf("%s: fill maglev table: %w", s, err)
			}
		}
	}
	if err := d.objs.LbMaglev.Put(s.ID, m); err != nil {
		return fmt.Errorf("%s: install maglev table: %w", s, err)
	}
	return nil
}

// writeAddressEntry writes (or, with no services left there, removes) the
// entry that marks a frontend address. Callers hold st.mu.
func (d *Datapath) writeAddressEntry(st *serviceState, a netip.Addr) error {
	k := lbKeyOf(a, 0, 0, ScopeInternal)
	ids := st.addrRefs[a]
	if len(ids) == 0 {
		delete(st.addrRefs, a)
		st.filterDirty = true
		if err := d.objs.LbServices.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("services: remove frontend address %s: %w", a, err)
		}
		return nil
	}
	if len(ids) == 1 {
		st.filterDirty = true // possibly a new address
	}
	// An address only external frontends hold (a node's, an external IP)
	// is open: its other ports are no service's. kube-proxy answers wrong
	// ports and rejects on ClusterIPs only.
	v := lxcLbService{Flags: uint8(lxcLbFlagsLB_F_ADDRESS) | uint8(lxcLbFlagsLB_F_OPEN)}
	for _, id := range ids {
		if !st.byID[id].svc.External {
			v.Flags &^= uint8(lxcLbFlagsLB_F_OPEN)
		}
	}
	for _, id := range ids {
		if st.byID[id].svc.Reject && v.Flags&uint8(lxcLbFlagsLB_F_OPEN) == 0 {
			v.Flags |= uint8(lxcLbFlagsLB_F_REJECT)
		}
	}
	if err := d.objs.LbServices.Put(k, &v); err != nil {
		return fmt.Errorf("services: write frontend address %s: %w", a, err)
	}
	return nil
}

// removeService undoes writeService. Callers hold st.mu.
func (d *Datapath) removeService(st *serviceState, id uint32) error {
	in, ok := st.byID[id]
	if !ok {
		return nil
	}
	s := in.svc
	if s.Scope == ScopeExternal {
		if err := d.setSplit(st, s, false); err != nil {
			return err
		}
	}
	if err := d.objs.LbServices.Delete(s.key()); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("%s: remove frontend: %w", s, err)
	}
	if err := d.removeSourceRanges(s, nil); err != nil {
		return err
	}
	delete(st.byFront, s.front())
	a := s.Frontend.Addr()
	st.addrRefs[a] = slices.DeleteFunc(st.addrRefs[a], func(o uint32) bool { return o == id })
	delete(st.byID, id)
	st.slots -= len(in.slots)
	if err := d.writeAddressEntry(st, a); err != nil {
		return err
	}
	if in.table != nil {
		if err := d.objs.LbMaglev.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("%s: remove maglev table: %w", s, err)
		}
	}
	for slot := range in.slots {
		if err := d.objs.LbBackends.Delete(lxcLbBackendKey{ServiceId: id, Slot: uint32(slot)}); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("%s: remove backend slot %d: %w", s, slot, err)
		}
	}
	if err := d.forgetServiceFlows(id, nil); err != nil {
		return err
	}
	if err := d.objs.LbRevnat.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("%s: remove reverse NAT: %w", s, err)
	}
	return nil
}

// forgetServiceFlows removes a service's remembered flows and affinities
// whose backend matches (all of them when match is nil); with match nil it
// also removes the conntrack entries stamped with the service, whose replies
// could otherwise take another service's frontend once the id is reused.
func (d *Datapath) forgetServiceFlows(id uint32, match func(lxcLbAddr) bool) error {
	if err := deleteWhere(d.objs.LbFlows, func(_ lxcLbFlowKey, v lxcLbFlow) bool {
		return v.ServiceId == id && (match == nil || match(v.Backend))
	}); err != nil {
		return fmt.Errorf("services: forget flows of service %d: %w", id, err)
	}
	if err := deleteWhere(d.objs.LbAffinity, func(k lxcLbAffinityKey, v lxcLbAffinityEntry) bool {
		return k.ServiceId == id && (match == nil || match(v.Backend))
	}); err != nil {
		return fmt.Errorf("services: forget affinities of service %d: %w", id, err)
	}
	if match != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.walkConntrack(func(_ lxcCtKey, v lxcCtEntry) bool { return v.RevNatId == id })
}

// resetServices empties the service maps (Reset).
func (d *Datapath) resetServices() error {
	st := d.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	var errs []error
	for id := range st.byID {
		errs = append(errs, d.removeService(st, id))
	}
	errs = append(errs,
		clearMap[lxcLbKey, lxcLbService](d.objs.LbServices),
		clearMap[lxcLbBackendKey, lxcLbAddr](d.objs.LbBackends),
		clearMap[uint32, lxcLbAddr](d.objs.LbRevnat),
		clearMap[lxcLbFlowKey, lxcLbFlow](d.objs.LbFlows),
		clearMap[lxcLbAffinityKey, lxcLbAffinityEntry](d.objs.LbAffinity))
	fresh := newServiceState()
	st.byID, st.byFront, st.addrRefs, st.slots = fresh.byID, fresh.byFront, fresh.addrRefs, 0
	st.filterDirty = true
	errs = append(errs, d.publishFilter(st))
	return errors.Join(errs...)
}

// FlushServiceFlows forgets which backend each flow to a service was given
// and which backend each client's affinity holds: the next packet of every
// flow picks again (as kube-proxy's conntrack flush for a changed UDP
// service). Open connections may then move, so this is for datagram
// services and tests.
func (d *Datapath) FlushServiceFlows(id uint32) error {
	d.svc.mu.Lock()
	defer d.svc.mu.Unlock()
	return d.forgetServiceFlows(id, func(lxcLbAddr) bool { return true })
}

// MaglevTable returns the backend of each entry of a service's Maglev table
// as the datapath holds it (nil for a service without one).
func (d *Datapath) MaglevTable(id uint32) ([]netip.AddrPort, error) {
	var innerID ebpf.MapID
	if err := d.objs.LbMaglev.Lookup(id, &innerID); errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, nil
	}
	slots, err := d.maglevSlots(id)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, len(slots))
	for i, slot := range slots {
		var b lxcLbAddr
		if err := d.objs.LbBackends.Lookup(lxcLbBackendKey{ServiceId: id, Slot: slot}, &b); err != nil {
			return nil, fmt.Errorf("service %d: maglev entry %d: slot %d: %w", id, i, slot, err)
		}
		out[i] = netip.AddrPortFrom(wordsAddr(b.Addr.Addr, b.Family), b.Port)
	}
	return out, nil
}

// ServiceCounts are entries of the service maps.
type ServiceCounts struct {
	Entries      int // lb_services: frontends, and one per frontend address
	BackendSlots int // lb_backends
	RevNAT       int // lb_revnat: one per service
	MaglevTables int // lb_maglev: one per Maglev service with backends
	Flows        int // lb_flows: flows whose backend is remembered (LRU)
	Affinities   int // lb_affinity: clients' affinities (LRU)
}

// ServiceLimits returns the capacity of each service map.
func (d *Datapath) ServiceLimits() ServiceCounts {
	return ServiceCounts{
		Entries:      int(d.objs.LbServices.MaxEntries()),
		BackendSlots: int(d.objs.LbBackends.MaxEntries()),
		RevNAT:       int(d.objs.LbRevnat.MaxEntries()),
		MaglevTables: int(d.objs.LbMaglev.MaxEntries()),
		Flows:        int(d.objs.LbFlows.MaxEntries()),
		Affinities:   int(d.objs.LbAffinity.MaxEntries()),
	}
}

// ServiceEntries counts what the service maps hold.
func (d *Datapath) ServiceEntries() ServiceCounts {
	count := func(m *ebpf.Map) int {
		n := 0
		var k, v []byte
		it := m.Iterate()
		for it.Next(&k, &v) {
			n++
		}
		return n
	}
	return ServiceCounts{
		Entries:      count(d.objs.LbServices),
		BackendSlots: count(d.objs.LbBackends),
		RevNAT:       count(d.objs.LbRevnat),
		MaglevTables: count(d.objs.LbMaglev),
		Flows:        count(d.objs.LbFlows),
		Affinities:   count(d.objs.LbAffinity),
	}
}

// lbFilterWords is the size of lb_frontend_filter's bitmap (LB_FILTER_BITS).
const lbFilterWords = (1 << 19) / 64

// lbFilterBit is lb_filter_bit in bpf/lib/lb.h: the filter bit of an address.
func lbFilterBit(a netip.Addr) uint32 {
	w, _ := addrWords(a)
	h := uint32(0x2545f491)
	for _, x := range w {
		h = (h ^ x) * 0x9e3779b1
	}
	return (h ^ h>>16) & (lbFilterWords*64 - 1)
}

// publishFilter writes the filter of frontend addresses when they changed.
// Callers hold st.mu, and call it after writing frontends (they become
// visible) and after removing them.
func (d *Datapath) publishFilter(st *serviceState) error {
	if !st.filterDirty {
		return nil
	}
	var bits [lbFilterWords]uint64
	for a := range st.addrRefs {
		b := lbFilterBit(a)
		bits[b/64] |= 1 << (b % 64)
	}
	if err := d.objs.LbFrontendFilter.Put(uint32(0), &bits); err != nil {
		return fmt.Errorf("services: write the frontend filter: %w", err)
	}
	st.filterDirty = false
	return nil
}

// sourceRanges are the service's loadBalancerSourceRanges of its frontend's
// family (kube-proxy filters each family by its own ranges; none of the
// family means no filter).
func (s Service) sourceRanges() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s.SourceRanges {
		if p.Addr().Is4() == s.Frontend.Addr().Is4() && !slices.Contains(out, p.Masked()) {
			out = append(out, p.Masked())
		}
	}
	return out
}

func sourceRangeKey(id uint32, p netip.Prefix) lxcLbSourceRangeKey {
	w, fam := addrWords(p.Addr())
	k := lxcLbSourceRangeKey{Prefixlen: 64 + uint32(p.Bits()), ServiceId: id, Family: uint32(fam)}
	k.Addr.Addr = w
	return k
}

// removeSourceRanges removes a service's source ranges except keep.
func (d *Datapath) removeSourceRanges(s Service, keep []netip.Prefix) error {
	for _, p := range s.sourceRanges() {
		if slices.Contains(keep, p) {
			continue
		}
		if err := d.objs.LbSourceRanges.Delete(sourceRangeKey(s.ID, p)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("%s: remove source range %s: %w", s, p, err)
		}
	}
	return nil
}
