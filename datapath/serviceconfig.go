package datapath

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
)

// applyServices sets the service range and hairpin addresses in spec.
func (cfg Config) applyServices(spec *ebpf.CollectionSpec) error {
	var seen4, seen6 bool
	for i, p := range cfg.ServiceRanges {
		if !p.IsValid() || p.Bits() == 0 || p.Addr().Is4In6() {
			return fmt.Errorf("service ranges[%d] %v: want an IPv4 or IPv6 prefix of non-zero length", i, p)
		}
		w, fam := addrWords(p.Masked().Addr())
		if (fam == 4 && seen4) || (fam == 6 && seen6) {
			return fmt.Errorf("service ranges[%d] %v: one range per family", i, p)
		}
		vars := map[string]any{"lb_service_range4": w[0], "lb_service_range4_len": uint8(p.Bits())}
		if fam == 6 {
			vars = map[string]any{"lb_service_range6": w, "lb_service_range6_len": uint8(p.Bits())}
		}
		seen4, seen6 = seen4 || fam == 4, seen6 || fam == 6
		for name, v := range vars {
			if err := spec.Variables[name].Set(v); err != nil {
				return fmt.Errorf("set %s: %w", name, err)
			}
		}
	}
	if a := cfg.HairpinIPv4; a.IsValid() {
		if !a.Is4() {
			return fmt.Errorf("hairpin IPv4 address %v is not IPv4", a)
		}
		w, _ := addrWords(a)
		if err := spec.Variables["lb_hairpin4"].Set(w[0]); err != nil {
			return fmt.Errorf("set lb_hairpin4: %w", err)
		}
	}
	if a := cfg.HairpinIPv6; a.IsValid() {
		if !a.Is6() || a.Is4In6() {
			return fmt.Errorf("hairpin IPv6 address %v is not IPv6", a)
		}
		w, _ := addrWords(a)
		if err := spec.Variables["lb_hairpin6"].Set(w); err != nil {
			return fmt.Errorf("set lb_hairpin6: %w", err)
		}
	}
	return nil
}

// adoptServices reads back what pinned service maps hold, so that a
// restarted agent's SyncServices changes and removes what an earlier run
// wrote rather than losing track of it.
func (d *Datapath) adoptServices() error {
	st := d.svc
	var k lxcLbKey
	var v lxcLbService
	type found struct {
		k lxcLbKey
		v lxcLbService
	}
	var fronts []found
	it := d.objs.LbServices.Iterate()
	for it.Next(&k, &v) {
		if v.Flags&uint8(lxcLbFlagsLB_F_ADDRESS) == 0 {
			fronts = append(fronts, found{k, v})
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("services: read frontends: %w", err)
	}
	ranges := map[uint32][]netip.Prefix{}
	var rk lxcLbSourceRangeKey
	var rv uint32
	rit := d.objs.LbSourceRanges.Iterate()
	for rit.Next(&rk, &rv) {
		ranges[rk.ServiceId] = append(ranges[rk.ServiceId], netip.PrefixFrom(wordsAddr(rk.Addr.Addr, uint8(rk.Family)), int(rk.Prefixlen)-64))
	}
	if err := rit.Err(); err != nil {
		return fmt.Errorf("services: read source ranges: %w", err)
	}
	for _, f := range fronts {
		s := Service{
			ID:              f.v.Id,
			Frontend:        netip.AddrPortFrom(wordsAddr(f.k.Addr.Addr, f.k.Family), f.k.Port),
			Protocol:        f.k.Proto,
			AffinityTimeout: 0,
			Reject:          f.v.Flags&uint8(lxcLbFlagsLB_F_REJECT) != 0,
			External:        f.v.Flags&uint8(lxcLbFlagsLB_F_EXTERNAL) != 0,
			Scope:           ServiceScope(f.k.Scope),
			SourceRanges:    ranges[f.v.Id],
		}
		if f.v.Flags&uint8(lxcLbFlagsLB_F_AFFINITY) != 0 {
			s.AffinityTimeout = secondsDuration(f.v.AffinityTimeoutS)
		}
		for slot := range f.v.BackendCount {
			var b lxcLbAddr
			if err := d.objs.LbBackends.Lookup(lxcLbBackendKey{ServiceId: s.ID, Slot: slot}, &b); err != nil {
				return fmt.Errorf("%s: read backend slot %d: %w", s, slot, err)
			}
			s.Backends = append(s.Backends, netip.AddrPortFrom(wordsAddr(b.Addr.Addr, b.Family), b.Port))
		}
		if f.v.Flags&uint8(lxcLbFlagsLB_F_MAGLEV) != 0 {
			// The table as written (the earlier run may have been given
			// it): slots are the indexes into Backends, which are in slot
			// order.
			s.Algorithm = LBMaglev
			table, err := d.maglevSlots(s.ID)
			if err != nil {
				return err
			}
			for _, slot := range table {
				s.MaglevTable = append(s.MaglevTable, int(slot))
			}
		}
		in := s.plan(&installedService{slots: s.Backends})
		st.byID[s.ID] = in
		st.byFront[s.front()] = s.ID
		st.addrRefs[s.Frontend.Addr()] = append(st.addrRefs[s.Frontend.Addr()], s.ID)
		st.slots += len(in.slots)
	}
	// The pinned filter is rewritten from what was found.
	st.filterDirty = true
	return d.publishFilter(st)
}

func secondsDuration(s uint32) time.Duration { return time.Duration(s) * time.Second }

// maglevSlots reads a service's Maglev table: the slot of each entry.
func (d *Datapath) maglevSlots(id uint32) ([]uint32, error) {
	var innerID ebpf.MapID
	if err := d.objs.LbMaglev.Lookup(id, &innerID); err != nil {
		return nil, fmt.Errorf("service %d: maglev table: %w", id, err)
	}
	inner, err := ebpf.NewMapFromID(innerID)
	if err != nil {
		return nil, fmt.Errorf("service %d: open maglev table: %w", id, err)
	}
	defer inner.Close()
	out := make([]uint32, inner.MaxEntries())
	for i := range out {
		if err := inner.Lookup(uint32(i), &out[i]); err != nil {
			return nil, fmt.Errorf("service %d: maglev entry %d: %w", id, i, err)
		}
	}
	return out, nil
}
