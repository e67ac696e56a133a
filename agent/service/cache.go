package service

import (
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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
type Cache struct {
	cfg     Config
	entries map[*corev1.Service]cacheEntry
	sizes   [2]int // the last Build's frontend keys and backends
}

type cacheEntry struct {
	slices []*discoveryv1.EndpointSlice
	ss     *serviceState // nil for a skipped service; never modified once built
	err    error
}

// NewCache returns an empty Cache.
func NewCache() *Cache { return &Cache{entries: map[*corev1.Service]cacheEntry{}} }

// start readies the cache for a Build with cfg and returns the entries of
// the last Build; the ones this Build uses are put back by keep.
func (c *Cache) start(cfg Config) map[*corev1.Service]cacheEntry {
	old := c.entries
	if !reflect.DeepEqual(c.cfg, cfg) {
		old = nil
	}
	c.cfg = cfg
	c.entries = make(map[*corev1.Service]cacheEntry, len(old))
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
