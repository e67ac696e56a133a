package datapath

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// ApplyServices changes the installed services by a difference: each
// service in upsert is installed or rewritten under its id, and each id in
// remove is taken out. It is SyncServices for a caller that knows what
// changed: the checks (each service on its own, unique ids and frontends in
// the resulting set, the maps' limits) and the writes cost the size of the
// change, not of the installed set, so one EndpointSlice change among 100k
// services is as cheap as among ten. Everything is checked before anything
// is written; as in SyncServices, services whose frontends an upsert takes
// go first, then the upserts, and the rest of remove last.
func (d *Datapath) ApplyServices(upsert []Service, remove []uint32) error {
	for _, s := range upsert {
		if err := s.validate(); err != nil {
			return err
		}
	}
	st := d.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	removing := make(map[uint32]bool, len(remove))
	for _, id := range remove {
		removing[id] = true
	}
	ids := make(map[uint32]Service, len(upsert))
	fronts := make(map[lbFront]uint32, len(upsert))
	for _, s := range upsert {
		if o, dup := ids[s.ID]; dup {
			return fmt.Errorf("%s: id also given to %s", s, o)
		}
		if removing[s.ID] {
			return fmt.Errorf("%s: id is both written and removed", s)
		}
		ids[s.ID] = s
		f := s.front()
		if o, dup := fronts[f]; dup {
			return fmt.Errorf("%s: frontend collides with service %d", s, o)
		}
		fronts[f] = s.ID
	}
	// An installed service holding an upsert's frontend must leave it:
	// removed, or rewritten with another frontend.
	var takenFrom []uint32
	for _, s := range upsert {
		o, ok := st.byFront[s.front()]
		if !ok || o == s.ID {
			continue
		}
		if moved, ok := ids[o]; !removing[o] && !(ok && moved.front() != s.front()) {
			return fmt.Errorf("%s: frontend collides with installed service %d", s, o)
		}
		takenFrom = append(takenFrom, o)
	}
	if err := d.checkFitsDelta(st, upsert, removing); err != nil {
		return err
	}
	// The holders go first, so that no write of an upsert is undone by
	// their removal; one that is rewritten comes back with its upsert.
	for _, o := range takenFrom {
		if err := d.removeService(st, o); err != nil {
			return err
		}
	}
	return d.writeThenRemove(st, upsert, remove)
}

// checkFitsDelta is checkFits for ApplyServices: the maps' use after the
// change, counted from what the change touches.
func (d *Datapath) checkFitsDelta(st *serviceState, upsert []Service, removing map[uint32]bool) error {
	services, slots := len(st.byID), st.slots
	tablesDelta := 0
	// refs: the change in services per frontend address it touches.
	refs := map[netip.Addr]int{}
	leave := func(in *installedService) {
		services--
		slots -= len(in.slots)
		refs[in.svc.Frontend.Addr()]--
		if in.table != nil {
			tablesDelta--
		}
	}
	for id := range removing {
		if in, ok := st.byID[id]; ok {
			leave(in)
		}
	}
	for _, s := range upsert {
		if in, ok := st.byID[s.ID]; ok {
			leave(in)
		}
		services++
		slots += len(s.Backends)
		refs[s.Frontend.Addr()]++
		if s.Algorithm == LBMaglev && len(s.Backends) > 0 {
			tablesDelta++
		}
	}
	addrs := len(st.addrRefs)
	for a, delta := range refs {
		before := len(st.addrRefs[a])
		after := before + delta
		switch {
		case before == 0 && after > 0:
			addrs++
		case before > 0 && after <= 0:
			addrs--
		}
	}
	need := []struct {
		m    *ebpf.Map
		name string
		need int
	}{
		{d.objs.LbServices, "lb_services (frontends and frontend addresses)", services + addrs},
		{d.objs.LbBackends, "lb_backends (backend slots)", slots},
		{d.objs.LbRevnat, "lb_revnat (services)", services},
	}
	if tablesDelta > 0 {
		// Counting the installed tables walks every service: only a change
		// that adds Maglev tables pays for it.
		tables := tablesDelta
		for _, in := range st.byID {
			if in.table != nil {
				tables++
			}
		}
		need = append(need, struct {
			m    *ebpf.Map
			name string
			need int
		}{d.objs.LbMaglev, "lb_maglev (Maglev services)", tables})
	}
	for _, c := range need {
		if c.need > int(c.m.MaxEntries()) {
			return &ServiceLimitError{Map: c.name, Need: c.need, Limit: int(c.m.MaxEntries())}
		}
	}
	return nil
}
