package service

import (
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Cache keeps each Service's own part of the state (its frontends and
// backends, before frontends are claimed against the other services) from
// one Build to the next, so that a change to one EndpointSlice rebuilds one
// service and not all of them. Informer caches replace an object on every
// change and never modify it, so a Service and its slices that are the same
// pointers as last time give the same part; a change of Config forgets
// everything. The claims between services, the capacity checks and the
// sorting are redone by every Build, so the State is exactly the one Build
// computes without a Cache. A Cache is for one caller at a time.
//
// When the last Build refused nothing and no pod has hostPorts, the next one
// is built from the difference (buildDelta): only the services whose objects
// changed are released from the claims and taken again, and the last State's
// sorted lists are patched, so one EndpointSlice change costs what that
// service holds plus a copy of the lists, whatever the number of services.
// Delta then says which frontends went and came.
type Cache struct {
	cfg     Config
	entries map[*corev1.Service]cacheEntry
	sizes   [2]int // the last Build's frontend keys and backends
	// state and cl are the last Build's State and claims, when the next
	// Build may start from them; nil otherwise.
	state  *State
	cl     *claims
	byName map[types.NamespacedName]*corev1.Service // the entries' services by name
	delta  Delta
	// Deltas counts the Builds made from the difference (for tests).
	Deltas int
}

// Delta is what the last Build with a Cache changed in the frontends.
type Delta struct {
	// Full: the last Build was made from scratch, and what changed is not
	// known; Removed and Added are empty.
	Full bool
	// Removed are the frontends of the last State that changed or went;
	// Added those of the new State that changed or came. A frontend that
	// changed is in both, by its key.
	Removed, Added []Frontend
}

// Delta returns what the last Build changed.
func (c *Cache) Delta() Delta { return c.delta }

type cacheEntry struct {
	slices []*discoveryv1.EndpointSlice
	ss     *serviceState // nil for a skipped service; never modified once built
	err    error
	// taken are the frontends the claims gave the service in the last
	// Build (none when it was refused).
	taken []Frontend
}

// full records a Build made from scratch: its State and claims are the
// start of the next Build unless it refused something (who wins a collision
// depends on every claimant) or pods have hostPorts.
func (c *Cache) full(st State, cl *claims, refused, hostPorts bool) {
	c.delta = Delta{Full: true}
	c.state, c.cl = nil, nil
	if !refused && !hostPorts {
		c.state, c.cl = &st, cl
	}
}

// NewCache returns an empty Cache.
func NewCache() *Cache {
	return &Cache{entries: map[*corev1.Service]cacheEntry{}, byName: map[types.NamespacedName]*corev1.Service{}}
}

// start readies the cache for a Build with cfg and returns the entries of
// the last Build; the ones this Build uses are put back by keep.
func (c *Cache) start(cfg Config) map[*corev1.Service]cacheEntry {
	old := c.entries
	if !reflect.DeepEqual(c.cfg, cfg) {
		old = nil
	}
	c.cfg = cfg
	c.entries = make(map[*corev1.Service]cacheEntry, len(old))
	c.byName = make(map[types.NamespacedName]*corev1.Service, len(old))
	return old
}

// built returns svc's part from the last Build, if svc and its slices are
// unchanged since.
func built(old map[*corev1.Service]cacheEntry, svc *corev1.Service, ss []*discoveryv1.EndpointSlice) (cacheEntry, bool) {
	e, ok := old[svc]
	if !ok || !slices.Equal(e.slices, ss) {
		return cacheEntry{}, false
	}
	return e, true
}
