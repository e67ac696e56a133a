package daemon

import (
	"errors"
	"net/netip"
	"slices"
	"sync"

	"github.com/kestrelnet/kestrel/datapath"
)

// fakeDatapath records what the daemon writes, in place of a kernel.
type fakeDatapath struct {
	mu        sync.Mutex
	ipcache   map[netip.Prefix]uint32
	endpoints map[uint32]datapath.Endpoint
	policies  map[uint32][]datapath.PolicyEntry
	attached  map[string]int // pin -> ifindex
	failSync  error          // SyncIPCache fails with it while set
	// onIPCache, when set, sees every ipcache the daemon writes (under mu).
	onIPCache func(map[netip.Prefix]uint32)
	// services are the written services by id, byFront their ids by
	// frontend (the benchmarks look a service up by it).
	services map[uint32]datapath.Service
	byFront  map[netip.AddrPort]uint32
	applied  int // ApplyServices calls
}

func (f *fakeDatapath) SyncServices(s []datapath.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services = make(map[uint32]datapath.Service, len(s))
	f.byFront = make(map[netip.AddrPort]uint32, len(s))
	for _, svc := range s {
		f.services[svc.ID] = svc
		f.byFront[svc.Frontend] = svc.ID
	}
	return nil
}

func (f *fakeDatapath) ApplyServices(upsert []datapath.Service, remove []uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.services == nil {
		return errors.New("fake datapath: ApplyServices before any SyncServices")
	}
	for _, id := range remove {
		if s, ok := f.services[id]; ok {
			delete(f.byFront, s.Frontend)
			delete(f.services, id)
		}
	}
	for _, s := range upsert {
		if old, ok := f.services[s.ID]; ok {
			delete(f.byFront, old.Frontend)
		}
		f.services[s.ID] = s
		f.byFront[s.Frontend] = s.ID
	}
	f.applied++
	return nil
}

// serviceList returns the written services, by id.
func (f *fakeDatapath) serviceList() []datapath.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]datapath.Service, 0, len(f.services))
	for _, s := range f.services {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b datapath.Service) int { return int(a.ID) - int(b.ID) })
	return out
}

// serviceAt returns the service written for a frontend.
func (f *fakeDatapath) serviceAt(front netip.AddrPort) (datapath.Service, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[f.byFront[front]]
	return s, ok && s.Frontend == front
}

func (f *fakeDatapath) setFailSync(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failSync = err
}

func newFakeDatapath() *fakeDatapath {
	return &fakeDatapath{
		ipcache:   map[netip.Prefix]uint32{},
		endpoints: map[uint32]datapath.Endpoint{},
		policies:  map[uint32][]datapath.PolicyEntry{},
		attached:  map[string]int{},
	}
}

func (f *fakeDatapath) SyncIPCache(es []datapath.IPCacheEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSync != nil {
		return f.failSync
	}
	f.ipcache = map[netip.Prefix]uint32{}
	for _, e := range es {
		f.ipcache[e.Prefix] = e.Identity
	}
	if f.onIPCache != nil {
		f.onIPCache(f.ipcache)
	}
	return nil
}

func (f *fakeDatapath) SetPolicies(ps map[uint32][]datapath.PolicyEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, p := range ps {
		f.policies[id] = p
	}
	return nil
}

func (f *fakeDatapath) UpsertEndpoint(ep datapath.Endpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endpoints[ep.ID] = ep
	return nil
}

func (f *fakeDatapath) DeleteEndpoint(ep datapath.Endpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.endpoints, ep.ID)
	delete(f.policies, ep.ID)
	return nil
}

func (f *fakeDatapath) Attach(ifindex int, pin string) (Links, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attached[pin] = ifindex
	return &fakeLinks{f: f, pin: pin}, nil
}

type fakeLinks struct {
	f   *fakeDatapath
	pin string
}

func (l *fakeLinks) Close() error { return nil }

func (l *fakeLinks) Detach() error {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	delete(l.f.attached, l.pin)
	return nil
}

// endpoint returns a copy of an endpoint and its policy.
func (f *fakeDatapath) endpoint(id uint32) (datapath.Endpoint, []datapath.PolicyEntry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ep, ok := f.endpoints[id]
	return ep, append([]datapath.PolicyEntry(nil), f.policies[id]...), ok
}
