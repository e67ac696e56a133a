package datapath

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
)

// LBAlgorithm is how a service picks the backend of a new flow.
type LBAlgorithm int

const (
	LBRandom LBAlgorithm = iota // uniformly at random
	LBMaglev                    // by the flow's hash in the service's Maglev table
)

// Protocols a service frontend may have. SCTP frontends are accepted, and
// their packets dropped as SERVICE_SCTP: a changed port would need the whole
// packet's CRC32c recomputed.
const (
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoSCTP = 132
)

// ServiceMaxID is one past the largest service id: the programs keep a flag
// above the id (LB_HAIRPIN in bpf/lib/lb.h).
const ServiceMaxID = 1 << 30

// Service is one frontend as the datapath sees it: an address, port and
// protocol, and the backends it sends new flows to. A Kubernetes Service
// with two ports and two cluster IPs is four of these, each with its own ID.
type Service struct {
	ID        uint32 // non-zero, below ServiceMaxID; keys backends, table and reverse NAT
	Frontend  netip.AddrPort
	Protocol  uint8            // ProtoTCP, ProtoUDP or ProtoSCTP
	Backends  []netip.AddrPort // same family as the frontend; none: see Reject
	Algorithm LBAlgorithm
	// MaglevTableSize: zero picks the smallest table of at least 100 times
	// the backends; otherwise one of the listed primes (maglev.go).
	MaglevTableSize uint32
	// MaglevTable, when given, is the table itself as the control plane
	// built it (agent/service.Maglev): entry i is an index into Backends.
	// Its length is the table size (at most MaglevMaxTable); the datapath
	// maps the indexes to its slots.
	MaglevTable []int
	// AffinityTimeout > 0 is ClientIP session affinity: a client keeps its
	// backend while it sends to the service at least this often.
	AffinityTimeout time.Duration
	// Reject answers a packet to a service without backends with ICMP port
	// unreachable (kube-proxy's REJECT) instead of dropping it; on the
	// frontend address, a port no service has is answered the same way when
	// any service there has Reject. Either way the event is a drop with its
	// reason (SERVICE_NO_BACKEND, SERVICE_WRONG_PORT).
	Reject bool
	// External frontends (NodePort, LoadBalancer, externalIP, hostPort) are
	// also served on the node's device, to traffic from outside the node;
	// other ports on an address that only external frontends hold are no
	// service's (a node's own ports stay reachable).
	External bool
	// Scope ScopeExternal is the entry for traffic from outside only, when
	// it differs from what the node's pods get (externalTrafficPolicy
	// Local: local backends only). It needs External, and an internal
	// service with the same frontend serves the rest.
	Scope ServiceScope
	// SourceRanges (loadBalancerSourceRanges) limit new flows to clients in
	// them, from outside and from pods alike, dropped as
	// SERVICE_SOURCE_RANGE otherwise. Only prefixes of the frontend's family
	// count; with none, there is no filter.
	SourceRanges []netip.Prefix
}

// ServiceScope says whose traffic a service entry serves.
type ServiceScope uint8

const (
	ScopeInternal ServiceScope = ServiceScope(lxcLbScopeLB_SCOPE_INTERNAL) // everyone, unless an external entry exists
	ScopeExternal ServiceScope = ServiceScope(lxcLbScopeLB_SCOPE_EXTERNAL) // traffic entering by the node's device
)

func (s Service) String() string {
	if s.Scope == ScopeExternal {
		return fmt.Sprintf("service %d (%s/%d, external)", s.ID, s.Frontend, s.Protocol)
	}
	return fmt.Sprintf("service %d (%s/%d)", s.ID, s.Frontend, s.Protocol)
}

// Default capacities of the service maps (bpf/lib/lb.h).
const (
	ServiceEntriesMax = 524288  // frontends plus one entry per frontend address
	BackendSlotsMax   = 2097152 // backends summed over services
	MaglevTablesMax   = 524288  // services using Maglev
)

// installedService is what the datapath wrote for a service.
type installedService struct {
	svc   Service
	slots []netip.AddrPort // backend of each slot
	table []uint32         // Maglev slots, nil for random
}

// serviceState is the Go view of the service maps (Datapath.services).
type serviceState struct {
	mu       sync.Mutex
	byID     map[uint32]*installedService
	byFront  map[lbFront]uint32      // frontend -> service id
	addrRefs map[netip.Addr][]uint32 // frontend address -> ids of its services
	// filterDirty: the set of frontend addresses changed since the filter
	// (lb_frontend_filter) was last written.
	filterDirty bool
	slots       int // backend slots in use
}

type lbFront struct {
	addr  netip.AddrPort
	proto uint8
	scope ServiceScope
}

func (s Service) front() lbFront { return lbFront{s.Frontend, s.Protocol, s.Scope} }

func newServiceState() *serviceState {
	return &serviceState{byID: map[uint32]*installedService{}, byFront: map[lbFront]uint32{}, addrRefs: map[netip.Addr][]uint32{}}
}

// validate checks a service on its own.
func (s Service) validate() error {
	if s.ID == 0 || s.ID >= ServiceMaxID {
		return fmt.Errorf("%s: id must be in 1..%d", s, ServiceMaxID-1)
	}
	if !s.Frontend.IsValid() || s.Frontend.Port() == 0 {
		return fmt.Errorf("%s: frontend needs an address and a non-zero port", s)
	}
	if s.Frontend.Addr().Is4In6() || s.Frontend.Addr().Zone() != "" {
		return fmt.Errorf("%s: frontend address must be plain IPv4 or IPv6", s)
	}
	switch s.Protocol {
	case ProtoTCP, ProtoUDP, ProtoSCTP:
	default:
		return fmt.Errorf("%s: protocol %d: want TCP (6), UDP (17) or SCTP (132)", s, s.Protocol)
	}
	if s.Scope != ScopeInternal && (s.Scope != ScopeExternal || !s.External) {
		return fmt.Errorf("%s: scope %d: want internal, or external on an External service", s, s.Scope)
	}
	for i, p := range s.SourceRanges {
		if !p.IsValid() || p.Addr().Is4In6() {
			return fmt.Errorf("%s: source range [%d] %v is not an IPv4 or IPv6 prefix", s, i, p)
		}
	}
	if s.Algorithm != LBRandom && s.Algorithm != LBMaglev {
		return fmt.Errorf("%s: unknown algorithm %d", s, s.Algorithm)
	}
	if s.AffinityTimeout < 0 || s.AffinityTimeout > 24*time.Hour || (s.AffinityTimeout > 0 && s.AffinityTimeout < time.Second) {
		return fmt.Errorf("%s: affinity timeout %s: want 0 (none) or 1s..24h", s, s.AffinityTimeout)
	}
	seen := map[netip.AddrPort]bool{}
	for i, b := range s.Backends {
		switch {
		case !b.IsValid() || b.Port() == 0:
			return fmt.Errorf("%s: backends[%d] %v needs an address and a non-zero port", s, i, b)
		case b.Addr().Is4() != s.Frontend.Addr().Is4() || b.Addr().Is4In6():
			return fmt.Errorf("%s: backends[%d] %v is not of the frontend's family", s, i, b)
		case seen[b]:
			return fmt.Errorf("%s: backends[%d] %v is listed twice", s, i, b)
		}
		seen[b] = true
	}
	if len(s.MaglevTable) > 0 {
		if s.Algorithm != LBMaglev || len(s.Backends) == 0 || len(s.MaglevTable) > MaglevMaxTable {
			return fmt.Errorf("%s: a Maglev table needs LBMaglev, backends, and at most %d entries", s, MaglevMaxTable)
		}
		for i, idx := range s.MaglevTable {
			if idx < 0 || idx >= len(s.Backends) {
				return fmt.Errorf("%s: maglev table[%d] = %d is not a backend index (0..%d)", s, i, idx, len(s.Backends)-1)
			}
		}
	} else if s.Algorithm == LBMaglev {
		if _, err := maglevSize(s.MaglevTableSize, len(s.Backends)); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// plan assigns slots and the Maglev table. A backend that stays keeps its
// slot, so a change moves as few flows as it must; new backends fill the
// slots that went.
func (s Service) plan(old *installedService) *installedService {
	n := len(s.Backends)
	slots := make([]netip.AddrPort, n)
	used := make([]bool, n)
	keep := map[netip.AddrPort]bool{}
	if old != nil {
		for i, b := range old.slots {
			if i < n && slices.Contains(s.Backends, b) {
				slots[i], used[i], keep[b] = b, true, true
			}
		}
	}
	free := 0
	for _, b := range s.Backends {
		if keep[b] {
			continue
		}
		for used[free] {
			free++
		}
		slots[free], used[free] = b, true
	}
	in := &installedService{svc: s, slots: slots}
	if len(s.MaglevTable) > 0 {
		slotOf := map[netip.AddrPort]uint32{}
		for i, b := range slots {
			slotOf[b] = uint32(i)
		}
		in.table = make([]uint32, len(s.MaglevTable))
		for i, idx := range s.MaglevTable {
			in.table[i] = slotOf[s.Backends[idx]]
		}
	} else if s.Algorithm == LBMaglev && n > 0 {
		m, _ := maglevSize(s.MaglevTableSize, n)
		// The table is computed over the backends in a fixed order, so it
		// depends on the set of backends only, then mapped to slots.
		sorted := slices.Clone(s.Backends)
		slices.SortFunc(sorted, func(a, b netip.AddrPort) int { return a.Compare(b) })
		slotOf := map[netip.AddrPort]uint32{}
		for i, b := range slots {
			slotOf[b] = uint32(i)
		}
		in.table = maglevTable(sorted, m)
		for i, idx := range in.table {
			in.table[i] = slotOf[sorted[idx]]
		}
	}
	return in
}

// ServiceLimitError says a service map is full, and its limit.
type ServiceLimitError struct {
	Map   string
	Need  int
	Limit int
}

func (e *ServiceLimitError) Error() string {
	return fmt.Sprintf("services: %s would need %d entries, above its limit of %d", e.Map, e.Need, e.Limit)
}

// checkFits checks the maps can take the services in want (replacing those
// of the same ids).
func (d *Datapath) checkFits(st *serviceState, want []Service) error {
	entries, slots, tables := 0, st.slots, 0
	addrs := map[netip.Addr]bool{}
	for a := range st.addrRefs {
		addrs[a] = true
	}
	replaced := map[uint32]bool{}
	for _, s := range want {
		replaced[s.ID] = true
		addrs[s.Frontend.Addr()] = true
		slots += len(s.Backends)
		if s.Algorithm == LBMaglev && len(s.Backends) > 0 {
			tables++
		}
	}
	for id, in := range st.byID {
		if replaced[id] {
			slots -= len(in.slots)
			continue
		}
		if in.table != nil {
			tables++
		}
	}
	entries = len(st.byID) + len(want) + len(addrs)
	for id := range replaced {
		if _, ok := st.byID[id]; ok {
			entries--
		}
	}
	for _, c := range []struct {
		m    *ebpf.Map
		name string
		need int
	}{
		{d.objs.LbServices, "lb_services (frontends and frontend addresses)", entries},
		{d.objs.LbBackends, "lb_backends (backend slots)", slots},
		{d.objs.LbMaglev, "lb_maglev (Maglev services)", tables},
		{d.objs.LbRevnat, "lb_revnat (services)", entries - len(addrs)},
	} {
		if c.need > int(c.m.MaxEntries()) {
			return &ServiceLimitError{Map: c.name, Need: c.need, Limit: int(c.m.MaxEntries())}
		}
	}
	return nil
}

// checkAgainst checks that want's ids and frontends do not collide with each
// other or with installed services outside replacing (ids being rewritten).
func (st *serviceState) checkAgainst(want []Service, replacing map[uint32]bool) error {
	ids := map[uint32]Service{}
	fronts := map[lbFront]uint32{}
	for _, s := range want {
		if o, dup := ids[s.ID]; dup {
			return fmt.Errorf("%s: id also given to %s", s, o)
		}
		ids[s.ID] = s
		f := s.front()
		if o, dup := fronts[f]; dup {
			return fmt.Errorf("%s: frontend collides with service %d", s, o)
		}
		fronts[f] = s.ID
		if o, ok := st.byFront[f]; ok && o != s.ID && !replacing[o] {
			return fmt.Errorf("%s: frontend collides with installed service %d", s, o)
		}
	}
	return nil
}

// UpsertService installs or changes one service. Everything is checked
// before anything is written; then the backends, the Maglev table and the
// reverse-NAT entry go in before the frontend entry that makes them
// reachable, so a packet never finds half a service.
func (d *Datapath) UpsertService(s Service) error {
	if err := s.validate(); err != nil {
		return err
	}
	st := d.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.checkAgainst([]Service{s}, nil); err != nil {
		return err
	}
	if err := d.checkFits(st, []Service{s}); err != nil {
		return err
	}
	if err := d.writeServices(st, []Service{s}); err != nil {
		return err
	}
	return d.publishFilter(st)
}

// DeleteService removes a service, in the reverse order of its writing: the
// frontend first, so no new flow finds it, then its table and backends, the
// flows that used it, and last its reverse-NAT entry. Deleting an absent id
// does nothing.
func (d *Datapath) DeleteService(id uint32) error {
	st := d.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := d.removeService(st, id); err != nil {
		return err
	}
	return d.publishFilter(st)
}

// SyncServices makes the installed services exactly want: all are checked
// (each on its own, ids and frontends unique, the maps' limits) before any is
// written, then changed and new ones are written, then the rest removed.
func (d *Datapath) SyncServices(want []Service) error {
	for _, s := range want {
		if err := s.validate(); err != nil {
			return err
		}
	}
	st := d.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	keep := map[uint32]bool{}
	for _, s := range want {
		keep[s.ID] = true
	}
	// Installed services that go may hold frontends the new ones take.
	replacing := map[uint32]bool{}
	for id := range st.byID {
		replacing[id] = true
	}
	if err := st.checkAgainst(want, replacing); err != nil {
		return err
	}
	gone := map[uint32]bool{}
	for id := range st.byID {
		if !keep[id] {
			gone[id] = true
		}
	}
	// Remove first the services whose frontends a new one takes over.
	for _, s := range want {
		if o, ok := st.byFront[s.front()]; ok && o != s.ID && gone[o] {
			if err := d.removeService(st, o); err != nil {
				return err
			}
			delete(gone, o)
		}
	}
	if err := d.checkFits(st, want); err != nil {
		return err
	}
	return d.writeThenRemove(st, want, slices.Collect(maps.Keys(gone)))
}

// writeThenRemove writes the services of want that differ from what is
// installed, publishes their frontends once all are written, then removes
// the ids in remove (each removal tried, the errors joined) and publishes
// again.
func (d *Datapath) writeThenRemove(st *serviceState, want []Service, remove []uint32) error {
	var changed []Service
	for _, s := range want {
		if in, ok := st.byID[s.ID]; !ok || !in.svc.equal(s) {
			changed = append(changed, s)
		}
	}
	if err := d.writeServices(st, changed); err != nil {
		return err
	}
	// New frontends become visible here, once all of them are written.
	if err := d.publishFilter(st); err != nil {
		return err
	}
	var errs []error
	for _, id := range remove {
		errs = append(errs, d.removeService(st, id))
	}
	errs = append(errs, d.publishFilter(st))
	return errors.Join(errs...)
}

func (s Service) equal(o Service) bool {
	return s.ID == o.ID && s.Frontend == o.Frontend && s.Protocol == o.Protocol && slices.Equal(s.Backends, o.Backends) &&
		s.Algorithm == o.Algorithm && s.MaglevTableSize == o.MaglevTableSize && slices.Equal(s.MaglevTable, o.MaglevTable) &&
		s.AffinityTimeout == o.AffinityTimeout &&
		s.Reject == o.Reject && s.External == o.External && s.Scope == o.Scope && slices.Equal(s.SourceRanges, o.SourceRanges)
}

// Services returns the installed services, by id.
func (d *Datapath) Services() []Service {
	st := d.svc
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]Service, 0, len(st.byID))
	for _, in := range st.byID {
		out = append(out, in.svc)
	}
	slices.SortFunc(out, func(a, b Service) int { return int(a.ID) - int(b.ID) })
	return out
}
