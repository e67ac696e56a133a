package service

import (
	"fmt"
	"math/rand"
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// cacheWorld is a set of services and slices that a test changes a step at
// a time, the way informer caches do: a changed object is a new pointer.
type cacheWorld struct {
	rnd      *rand.Rand
	services map[string]*corev1.Service
	slices   map[string]*discoveryv1.EndpointSlice
}

// randomService is one of a few shapes whose frontends, node ports and
// externalIPs collide now and then, so refusals are part of the sequence.
func (w *cacheWorld) randomService(name string) *corev1.Service {
	r := w.rnd
	return makeService("ns1", name, func(s *corev1.Service) {
		s.CreationTimestamp = at(int64(r.Intn(20)))
		s.Spec.ClusterIP = fmt.Sprintf("172.30.0.%d", 1+r.Intn(12))
		s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
		if r.Intn(3) == 0 {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
		}
		switch r.Intn(4) {
		case 1:
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = int32(30000 + r.Intn(6))
		case 2:
			s.Spec.ExternalIPs = []string{fmt.Sprintf("192.168.99.%d", 1+r.Intn(4))}
		case 3:
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = int32(30010 + r.Intn(6))
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = int32(32000 + r.Intn(6))
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: fmt.Sprintf("1.2.3.%d", 1+r.Intn(4))}}
		}
	})
}

func (w *cacheWorld) randomSlice(svc string) *discoveryv1.EndpointSlice {
	r := w.rnd
	var eps []discoveryv1.Endpoint
	for range r.Intn(5) {
		addr, node := fmt.Sprintf("10.0.%d.%d", r.Intn(2), 1+r.Intn(8)), []string{testNodeName, "other"}[r.Intn(2)]
		eps = append(eps, []func(string, string) discoveryv1.Endpoint{readyEP, termEP, deadEP}[r.Intn(3)](addr, node))
	}
	return makeSlice("ns1", svc, []discoveryv1.EndpointPort{
		slicePort("http", int32(8080+r.Intn(2)), corev1.ProtocolTCP), slicePort("dns", 5353, corev1.ProtocolUDP),
	}, eps...)
}

func (w *cacheWorld) input(cfg Config, c *Cache) Input {
	in := Input{Config: cfg, Cache: c}
	for i := range 16 { // a fixed order: Build sorts anyway
		name := fmt.Sprintf("svc%d", i)
		if s := w.services[name]; s != nil {
			in.Services = append(in.Services, s)
		}
		if s := w.slices[name]; s != nil {
			in.EndpointSlices = append(in.EndpointSlices, s)
		}
	}
	return in
}

// A Build with a Cache kept across a long sequence of changes (services and
// slices added, changed and removed, collisions, full maps, a node whose
// addresses change) gives at every step exactly the State a Build without
// one gives.
func TestACachedBuildIsTheBuildWithoutCache(t *testing.T) {
	w := &cacheWorld{rnd: rand.New(rand.NewSource(14)), services: map[string]*corev1.Service{}, slices: map[string]*discoveryv1.EndpointSlice{}}
	cache := NewCache()
	cfg := testConfig()
	refused, reused := 0, 0
	for step := range 3000 {
		name := fmt.Sprintf("svc%d", w.rnd.Intn(16))
		switch op := w.rnd.Intn(10); {
		case op < 4:
			w.slices[name] = w.randomSlice(name)
		case op < 6:
			w.services[name] = w.randomService(name)
		case op == 6:
			delete(w.services, name)
		case op == 7:
			delete(w.slices, name)
		case op == 8:
			cfg = testConfig()
			cfg.FrontendCapacity = []int{0, 12, 30}[w.rnd.Intn(3)]
			cfg.BackendCapacity = []int{0, 6, 20}[w.rnd.Intn(3)]
			if w.rnd.Intn(2) == 0 {
				cfg.NodeIPs = []netip.Addr{netip.MustParseAddr("192.168.0.3")}
			}
		}
		// The cache's previous state, to see it reused.
		var before State
		if w.rnd.Intn(4) == 0 {
			before = Build(w.input(cfg, cache))
		}
		want := Build(w.input(cfg, nil))
		got := Build(w.input(cfg, cache))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d: with the cache\n%+v\nwithout\n%+v", step, got, want)
		}
		refused += len(want.Status)
		if len(before.Frontends) > 0 && len(got.Frontends) > 0 && len(got.Frontends[0].Backends) > 0 &&
			len(before.Frontends[0].Backends) > 0 && &got.Frontends[0].Backends[0] == &before.Frontends[0].Backends[0] {
			reused++
		}
	}
	if refused == 0 || reused == 0 {
		t.Fatalf("the sequence refused %d services and reused %d built ones: it does not test what it is for", refused, reused)
	}
}

// With services that rarely collide, most Builds with a Cache are made from
// the difference; each still gives the State a Build without a Cache gives,
// and its Delta takes the last State's frontends to the new one's.
func TestABuildFromTheDifferenceIsTheFullBuild(t *testing.T) {
	w := &cacheWorld{rnd: rand.New(rand.NewSource(15)), services: map[string]*corev1.Service{}, slices: map[string]*discoveryv1.EndpointSlice{}}
	cache := NewCache()
	cfg := testConfig()
	// Every service its own ClusterIP and node ports; a few collide
	// through their externalIPs and LoadBalancer IPs.
	unique := func(name string) *corev1.Service {
		s := w.randomService(name)
		var i int
		fmt.Sscanf(name, "svc%d", &i)
		s.Spec.ClusterIP = fmt.Sprintf("172.30.1.%d", i+1)
		s.Spec.ClusterIPs = nil
		for p := range s.Spec.Ports {
			if s.Spec.Ports[p].NodePort != 0 {
				s.Spec.Ports[p].NodePort = int32(30100 + 10*i + p)
			}
		}
		if s.Spec.HealthCheckNodePort != 0 {
			s.Spec.HealthCheckNodePort = int32(32100 + i)
		}
		if w.rnd.Intn(3) == 0 {
			s.Spec.ClusterIP = "not an address" // a Status entry of its own
		}
		return s
	}
	var last State
	byName, toldDeltas := NewCache(), 0
	for step := range 2000 {
		name := fmt.Sprintf("svc%d", w.rnd.Intn(16))
		switch op := w.rnd.Intn(10); {
		case op < 6:
			w.slices[name] = w.randomSlice(name)
		case op < 8:
			w.services[name] = unique(name)
		case op == 8:
			delete(w.services, name)
		case op == 9:
			delete(w.slices, name)
		}
		want := Build(w.input(cfg, nil))
		deltas := cache.Deltas
		got := Build(w.input(cfg, cache))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d (from the difference: %v): with the cache\n%+v\nwithout\n%+v", step, cache.Deltas > deltas, got, want)
		}
		// The same step told by name, as the agent's informers do.
		var slices []*discoveryv1.EndpointSlice
		if s := w.slices[name]; s != nil {
			slices = []*discoveryv1.EndpointSlice{s}
		}
		told, ok := BuildChanged(cfg, nil, byName, []Changed{{Name: types.NamespacedName{Namespace: "ns1", Name: name}, Service: w.services[name], Slices: slices}})
		if ok {
			toldDeltas++
		} else {
			told = Build(w.input(cfg, byName))
		}
		if !reflect.DeepEqual(told, want) {
			t.Fatalf("step %d (told, from the difference: %v): \n%+v\nwithout cache\n%+v", step, ok, told, want)
		}
		if d := cache.Delta(); !d.Full {
			byKey := map[FrontendKey]Frontend{}
			for _, f := range last.Frontends {
				byKey[f.Key()] = f
			}
			for _, f := range d.Removed {
				delete(byKey, f.Key())
			}
			for _, f := range d.Added {
				byKey[f.Key()] = f
			}
			if len(byKey) != len(got.Frontends) {
				t.Fatalf("step %d: the delta gives %d frontends, the State has %d", step, len(byKey), len(got.Frontends))
			}
			for _, f := range got.Frontends {
				if !reflect.DeepEqual(byKey[f.Key()], f) {
					t.Fatalf("step %d: the delta gives %+v for %s, the State %+v", step, byKey[f.Key()], f.Key(), f)
				}
			}
		}
		last = got
	}
	if cache.Deltas < 500 {
		t.Fatalf("only %d of 2000 Builds were made from the difference", cache.Deltas)
	}
	if toldDeltas < 500 {
		t.Fatalf("only %d of 2000 Builds told the change were made from the difference", toldDeltas)
	}
	t.Logf("%d of 2000 Builds made from the difference, %d told the change", cache.Deltas, toldDeltas)
}
