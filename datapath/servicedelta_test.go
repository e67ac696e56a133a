package datapath

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// loadForDelta loads a datapath with test devices (datapathtest imports this
// package, so these internal tests load it themselves).
func loadForDelta(t *testing.T, cfg Config) *Datapath {
	t.Helper()
	cfg.TestDevices = true
	d, err := Load(cfg)
	if err != nil {
		var missing *MissingFeatureError
		if errors.As(err, &missing) && os.Getenv("KESTREL_REQUIRE_PRIVILEGED") != "1" {
			t.Skipf("datapath unavailable here: %v", err)
		}
		t.Fatalf("load datapath: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// serviceMaps is every service map's content, each entry as text, and the
// Maglev tables by service id as backends.
func serviceMaps(t *testing.T, d *Datapath) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	add := func(name, entry string) {
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		out[name][entry] = true
	}
	dump := func(name string, m *ebpf.Map, k, v any) {
		it := m.Iterate()
		for it.Next(k, v) {
			add(name, fmt.Sprintf("%+v => %+v", reflect.ValueOf(k).Elem().Interface(), reflect.ValueOf(v).Elem().Interface()))
		}
		if err := it.Err(); err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
	}
	dump("lb_services", d.objs.LbServices, new(lxcLbKey), new(lxcLbService))
	dump("lb_backends", d.objs.LbBackends, new(lxcLbBackendKey), new(lxcLbAddr))
	dump("lb_revnat", d.objs.LbRevnat, new(uint32), new(lxcLbAddr))
	dump("lb_source_ranges", d.objs.LbSourceRanges, new(lxcLbSourceRangeKey), new(uint32))
	var filter [lbFilterWords]uint64
	if err := d.objs.LbFrontendFilter.Lookup(uint32(0), &filter); err != nil {
		t.Fatalf("read the frontend filter: %v", err)
	}
	for i, w := range filter {
		if w != 0 {
			add("lb_frontend_filter", fmt.Sprintf("%d:%x", i, w))
		}
	}
	for _, s := range d.Services() {
		table, err := d.MaglevTable(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if table != nil {
			add("lb_maglev", fmt.Sprintf("%d => %v", s.ID, table))
		}
	}
	return out
}

func deltaService(id uint32, vip netip.Addr, port uint16, backends ...netip.AddrPort) Service {
	return Service{ID: id, Frontend: netip.AddrPortFrom(vip, port), Protocol: ProtoTCP, Backends: backends}
}

func v4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }

// One service's backends change among 10k: ApplyServices leaves the maps as
// SyncServices of the whole set does, the changed service's entries hold the
// new backend, and nothing else moved.
func TestApplyingOneChangeAmong10kServicesWritesWhatASyncDoes(t *testing.T) {
	const n = 10_000
	services := make([]Service, n)
	for i := range services {
		services[i] = deltaService(uint32(i+1), v4(10, 96, byte(i/250), byte(i%250+1)), 80)
		for e := range 10 {
			services[i].Backends = append(services[i].Backends, netip.AddrPortFrom(v4(10, byte(100+e), byte(i/250), byte(i%250+1)), 8080))
		}
	}
	byDelta, bySync := loadForDelta(t, Config{}), loadForDelta(t, Config{})
	for _, d := range []*Datapath{byDelta, bySync} {
		if err := d.SyncServices(services); err != nil {
			t.Fatal(err)
		}
	}
	before := serviceMaps(t, byDelta)
	changed := services[4321]
	changed.Backends = slices.Clone(changed.Backends)
	newBackend := netip.MustParseAddrPort("10.99.0.1:8080")
	changed.Backends[3] = newBackend
	if err := byDelta.ApplyServices([]Service{changed}, nil); err != nil {
		t.Fatal(err)
	}
	services[4321] = changed
	if err := bySync.SyncServices(services); err != nil {
		t.Fatal(err)
	}
	after := serviceMaps(t, byDelta)
	if want := serviceMaps(t, bySync); !reflect.DeepEqual(after, want) {
		t.Fatalf("maps after ApplyServices differ from SyncServices's:\n%s", mapsDiff(after, want))
	}
	// Exactly the changed slot differs from before.
	came, gone := onlyIn(after, before), onlyIn(before, after)
	slot := fmt.Sprintf("%+v", lxcLbBackendKey{ServiceId: changed.ID, Slot: 3})
	if len(came) != 1 || len(gone) != 1 || !strings.HasPrefix(came[0], "lb_backends "+slot) || !strings.HasPrefix(gone[0], "lb_backends "+slot) {
		t.Fatalf("the change should rewrite service %d's slot 3 only: gone %v, came %v", changed.ID, gone, came)
	}
	var b lxcLbAddr
	if err := byDelta.objs.LbBackends.Lookup(lxcLbBackendKey{ServiceId: changed.ID, Slot: 3}, &b); err != nil {
		t.Fatal(err)
	}
	if got := netip.AddrPortFrom(wordsAddr(b.Addr.Addr, b.Family), b.Port); got != newBackend {
		t.Fatalf("slot 3 holds %v, want %v", got, newBackend)
	}
}

// onlyIn lists the entries of a that b lacks, as "map entry", sorted.
func onlyIn(a, b map[string]map[string]bool) []string {
	var out []string
	for name, entries := range a {
		for e := range entries {
			if !b[name][e] {
				out = append(out, name+" "+e)
			}
		}
	}
	slices.Sort(out)
	return out
}

func mapsDiff(a, b map[string]map[string]bool) string {
	var out []string
	for _, e := range onlyIn(a, b) {
		out = append(out, "only in the first: "+e)
	}
	for _, e := range onlyIn(b, a) {
		out = append(out, "only in the second: "+e)
	}
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("... %d more", len(out)-20))
	}
	return strings.Join(out, "\n")
}

// A random sequence of changes (backends, removals, frontends moving between
// ids, address sharing, Maglev, affinity, reject, source ranges) applied as
// differences leaves the maps as a sync of each resulting set does.
func TestApplyingChangesMatchesSyncingTheirResult(t *testing.T) {
	byDelta, bySync := loadForDelta(t, Config{}), loadForDelta(t, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	installed := map[uint32]Service{}
	random := func(id uint32) Service {
		s := deltaService(id, v4(10, 96, 0, byte(1+rng.IntN(6))), uint16(80+rng.IntN(3)))
		for range rng.IntN(4) {
			b := netip.AddrPortFrom(v4(10, 244, 0, byte(1+rng.IntN(8))), 8080)
			if !slices.Contains(s.Backends, b) {
				s.Backends = append(s.Backends, b)
			}
		}
		switch rng.IntN(5) {
		case 0:
			s.Algorithm = LBMaglev
		case 1:
			s.AffinityTimeout = time.Minute
		case 2:
			s.Reject = true
		case 3:
			s.External = true
			s.SourceRanges = []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/32", rng.IntN(4)))}
		}
		return s
	}
	for step := range 60 {
		// The next set: some services go, some change, some come; then
		// frontends are made unique, the later id keeping the frontend.
		next := map[uint32]Service{}
		for id, s := range installed {
			switch rng.IntN(4) {
			case 0: // removed
			case 1:
				next[id] = random(id)
			default:
				next[id] = s
			}
		}
		for range rng.IntN(4) {
			id := uint32(1 + rng.IntN(20))
			next[id] = random(id)
		}
		ids := slices.Sorted(func(yield func(uint32) bool) {
			for id := range next {
				if !yield(id) {
					return
				}
			}
		})
		seen := map[lbFront]bool{}
		for i := len(ids) - 1; i >= 0; i-- {
			f := next[ids[i]].front()
			if seen[f] {
				delete(next, ids[i])
				continue
			}
			seen[f] = true
		}
		var upsert []Service
		var remove []uint32
		var all []Service
		for id, s := range next {
			all = append(all, s)
			if old, ok := installed[id]; !ok || !old.equal(s) {
				upsert = append(upsert, s)
			}
		}
		for id := range installed {
			if _, ok := next[id]; !ok {
				remove = append(remove, id)
			}
		}
		if err := byDelta.ApplyServices(upsert, remove); err != nil {
			t.Fatalf("step %d: apply %v, remove %v: %v", step, upsert, remove, err)
		}
		if err := bySync.SyncServices(all); err != nil {
			t.Fatalf("step %d: sync: %v", step, err)
		}
		got, want := serviceMaps(t, byDelta), serviceMaps(t, bySync)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: maps differ (applied, synced):\n%s", step, mapsDiff(got, want))
		}
		if !reflect.DeepEqual(byDelta.Services(), bySync.Services()) {
			t.Fatalf("step %d: services differ:\n%v\n%v", step, byDelta.Services(), bySync.Services())
		}
		installed = next
	}
}

// A difference that would leave the set inconsistent, or overflow a map,
// is refused whole, naming why, and writes nothing.
func TestApplyServicesChecksBeforeWriting(t *testing.T) {
	d := loadForDelta(t, Config{LBServiceEntries: 6, LBBackendSlots: 3})
	vip := v4(10, 96, 0, 10)
	b := func(i byte) netip.AddrPort { return netip.AddrPortFrom(v4(10, 244, 0, i), 80) }
	if err := d.SyncServices([]Service{deltaService(1, vip, 80, b(1)), deltaService(2, vip, 81, b(2))}); err != nil {
		t.Fatal(err)
	}
	before := serviceMaps(t, d)
	for _, c := range []struct {
		name   string
		upsert []Service
		remove []uint32
		want   string
	}{
		{"a frontend an installed service keeps", []Service{deltaService(3, vip, 80)}, nil, "collides with installed service 1"},
		{"one frontend twice", []Service{deltaService(3, vip, 82), deltaService(4, vip, 82)}, nil, "collides with service 3"},
		{"one id twice", []Service{deltaService(3, vip, 82), deltaService(3, vip, 83)}, nil, "id also given"},
		{"an id written and removed", []Service{deltaService(2, vip, 81)}, []uint32{2}, "both written and removed"},
		{"a bad service", []Service{deltaService(0, vip, 82)}, nil, "id must be"},
		{"more backend slots than the map has", []Service{deltaService(2, vip, 81, b(2), b(3), b(4))}, nil, "limit of 3"},
		{"more entries than the map has", []Service{deltaService(3, v4(10, 96, 0, 11), 80), deltaService(4, v4(10, 96, 0, 12), 80)}, nil, "limit of 6"},
	} {
		err := d.ApplyServices(c.upsert, c.remove)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: want an error about %q, got %v", c.name, c.want, err)
		}
		if got := serviceMaps(t, d); !reflect.DeepEqual(got, before) {
			t.Fatalf("%s: a refused change wrote:\n%s", c.name, mapsDiff(got, before))
		}
	}
	// Taking over a frontend its holder gives up in the same change, and
	// fitting because another service goes, are accepted.
	if err := d.ApplyServices([]Service{deltaService(3, vip, 80, b(3)), deltaService(4, v4(10, 96, 0, 11), 80, b(4))}, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	if got := d.Services(); len(got) != 3 || got[0].ID != 2 || got[1].ID != 3 || got[2].ID != 4 {
		t.Fatalf("services after the takeover: %v", got)
	}
}
