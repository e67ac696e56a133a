package service

import (
	"net/netip"
	"reflect"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Changed is a Service whose objects may have changed since the last
// Build: its Service object (nil when it is gone) and its EndpointSlices,
// sorted by name.
type Changed struct {
	Name    types.NamespacedName
	Service *corev1.Service
	Slices  []*discoveryv1.EndpointSlice
}

// BuildChanged builds the State from the Cache's last one and the services
// that changed since, when it can (see Cache): the caller names them (the
// informers' change handlers know), so nothing else is read. It returns
// false when the last Build cannot be a start, or a changed service is
// refused; then the caller runs Build with every object.
func BuildChanged(cfg Config, pods []*corev1.Pod, c *Cache, changed []Changed) (State, bool) {
	if cfg.FrontendCapacity == 0 {
		cfg.FrontendCapacity = DefaultFrontendCapacity
	}
	if cfg.BackendCapacity == 0 {
		cfg.BackendCapacity = DefaultBackendCapacity
	}
	return applyChanges(c, cfg, pods, changed)
}

// buildDelta is Build from the difference when the caller passes every
// object: the changed services are found by comparing them with the
// Cache's entries.
func buildDelta(in Input, cfg Config) (State, bool) {
	c := in.Cache
	if c == nil || c.state == nil || !reflect.DeepEqual(c.cfg, cfg) {
		return State{}, false
	}
	bySlices := indexSlices(in.EndpointSlices)
	var changed []Changed
	kept := 0
	for _, svc := range in.Services {
		if svc == nil {
			continue
		}
		name := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
		e, ok := c.entries[svc]
		if ok {
			kept++
		}
		if !ok || !slices.Equal(e.slices, bySlices[name]) {
			changed = append(changed, Changed{Name: name, Service: svc, Slices: bySlices[name]})
		}
	}
	if kept < len(c.entries) {
		live := make(map[*corev1.Service]bool, len(in.Services))
		for _, svc := range in.Services {
			live[svc] = true
		}
		listed := map[types.NamespacedName]bool{}
		for _, ch := range changed {
			listed[ch.Name] = true
		}
		for svc := range c.entries {
			if name := (types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}); !live[svc] && !listed[name] {
				changed = append(changed, Changed{Name: name})
			}
		}
	}
	return applyChanges(c, cfg, in.Pods, changed)
}

// applyChanges is the Build from the difference (see Cache). Without
// refusals the order of the claims does not matter (every claim succeeds in
// any order), so the State is the full Build's; a refused changed service
// gives up, as who holds a contested frontend depends on every service's
// age, which only the full Build orders.
func applyChanges(c *Cache, cfg Config, pods []*corev1.Pod, changed []Changed) (State, bool) {
	if c == nil || c.state == nil || !reflect.DeepEqual(c.cfg, cfg) {
		return State{}, false
	}
	for _, pod := range pods {
		if pod == nil {
			continue
		}
		if fs, err := hostPorts(pod, &cfg); err != nil || len(fs) > 0 {
			return State{}, false
		}
	}
	// From here on the claims and entries change: a failure leaves them to
	// the full Build, which starts its claims anew and keeps the entries'
	// built parts (each valid for its objects).
	prev, cl := c.state, c.cl
	c.state, c.cl = nil, nil

	// What goes: the last parts of the services that changed.
	objects := map[string]bool{}
	var removed []Frontend
	var removedIPs []netip.Addr
	var todo []Changed
	for _, ch := range changed {
		old := c.byName[ch.Name]
		e, had := c.entries[old]
		if had && old == ch.Service && slices.Equal(e.slices, ch.Slices) {
			continue // told, but the same objects
		}
		todo = append(todo, ch)
		objects["Service "+ch.Name.String()] = true
		if !had {
			continue
		}
		delete(c.entries, old)
		delete(c.byName, ch.Name)
		// Without refusals every built service was claimed.
		if e.ss == nil || e.err != nil {
			continue
		}
		cl.release(e.taken, e.ss.nodePorts)
		removed = append(removed, e.taken...)
		removedIPs = append(removedIPs, e.ss.clusterIPs...)
	}
	if len(todo) == 0 {
		c.state, c.cl = prev, cl
		c.delta = Delta{}
		c.Deltas++
		return *prev, true
	}
	// What comes: the changed services built and claimed.
	var added []Frontend
	var addedIPs []netip.Addr
	var health []HealthCheck
	var status []Status
	for _, ch := range todo {
		if ch.Service == nil {
			continue
		}
		var eps [2]endpointsByPort
		eps[0] = collectEndpoints(ch.Slices, false, cfg.NodeName)
		eps[1] = collectEndpoints(ch.Slices, true, cfg.NodeName)
		e := cacheEntry{slices: ch.Slices}
		e.ss, e.err = buildService(ch.Service, eps, &cfg)
		if e.err == nil && e.ss != nil {
			taken, err := cl.take("Service "+ch.Name.String(), e.ss.frontends, e.ss.nodePorts, &cfg)
			if err != nil {
				return State{}, false
			}
			e.taken = taken
			added = append(added, taken...)
			addedIPs = append(addedIPs, e.ss.clusterIPs...)
			if e.ss.health != nil {
				health = append(health, *e.ss.health)
			}
		}
		if e.err != nil {
			status = append(status, Status{Object: "Service " + ch.Name.String(), Error: e.err.Error()})
		}
		c.entries[ch.Service] = e
		c.byName[ch.Name] = ch.Service
	}

	st := State{ServiceCIDRs: prev.ServiceCIDRs, Backends: len(cl.backends)}
	st.Frontends = patchSorted(prev.Frontends, removed, added, func(a, b *Frontend) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		if a.Port != b.Port {
			return int(a.Port) - int(b.Port)
		}
		if a.Protocol != b.Protocol {
			if a.Protocol < b.Protocol {
				return -1
			}
			return 1
		}
		return 0
	}, func(a, b *Frontend) bool { return frontendLess(a, b) })
	st.ClusterIPs = patchSorted(prev.ClusterIPs, removedIPs, addedIPs, func(a, b *netip.Addr) int { return a.Compare(*b) },
		func(a, b *netip.Addr) bool { return a.Less(*b) })
	st.HealthChecks = slices.DeleteFunc(slices.Clone(prev.HealthChecks), func(h HealthCheck) bool {
		return objects["Service "+h.Service.String()]
	})
	st.HealthChecks = append(st.HealthChecks, health...)
	sort.Slice(st.HealthChecks, func(i, j int) bool { return st.HealthChecks[i].Port < st.HealthChecks[j].Port })
	st.Status = slices.DeleteFunc(slices.Clone(prev.Status), func(s Status) bool { return objects[s.Object] })
	st.Status = append(st.Status, status...)
	sort.Slice(st.Status, func(i, j int) bool { return st.Status[i].Object < st.Status[j].Object })
	// Empty lists are nil, as the full Build leaves them.
	if len(st.Frontends) == 0 {
		st.Frontends = nil
	}
	if len(st.ClusterIPs) == 0 {
		st.ClusterIPs = nil
	}
	if len(st.HealthChecks) == 0 {
		st.HealthChecks = nil
	}
	if len(st.Status) == 0 {
		st.Status = nil
	}
	c.sizes = [2]int{len(cl.keys), len(cl.backends)}
	c.state, c.cl = &st, cl
	c.delta = Delta{Removed: removed, Added: added}
	c.Deltas++
	return st, true
}

// patchSorted returns a new sorted list: prev (sorted by less) without one
// element equal (by cmp) to each of drop, with add merged in. The work is a
// binary search per changed element and the copy of prev.
func patchSorted[T any](prev, drop, add []T, cmp func(a, b *T) int, less func(a, b *T) bool) []T {
	gone := make([]int, 0, len(drop))
	for i := range drop {
		j := sort.Search(len(prev), func(k int) bool { return cmp(&prev[k], &drop[i]) >= 0 })
		// Equal elements (a ClusterIP two services list) are dropped one
		// at a time.
		for j < len(prev) && cmp(&prev[j], &drop[i]) == 0 && slices.Contains(gone, j) {
			j++
		}
		if j < len(prev) && cmp(&prev[j], &drop[i]) == 0 {
			gone = append(gone, j)
		}
	}
	slices.Sort(gone)
	add = slices.Clone(add)
	sort.SliceStable(add, func(i, j int) bool { return less(&add[i], &add[j]) })
	out := make([]T, 0, len(prev)-len(gone)+len(add))
	// Walk prev in runs between dropped indexes; before each element
	// copied, the adds that sort before it.
	next := 0
	flush := func(upTo int) { // copy prev[next:upTo], merging adds
		for next < upTo {
			for len(add) > 0 && less(&add[0], &prev[next]) {
				out = append(out, add[0])
				add = add[1:]
			}
			if len(add) == 0 {
				out = append(out, prev[next:upTo]...)
				next = upTo
				return
			}
			// Copy the run of prev that sorts before the next add.
			end := next + sort.Search(upTo-next, func(k int) bool { return less(&add[0], &prev[next+k]) })
			if end == next {
				continue
			}
			out = append(out, prev[next:end]...)
			next = end
		}
	}
	for _, g := range gone {
		flush(g)
		next = g + 1
	}
	flush(len(prev))
	return append(out, add...)
}
