package k8s

import (
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// byServiceIndex indexes EndpointSlices by the namespace/name of the
// Service their kubernetes.io/service-name label names.
const byServiceIndex = "service"

// serviceChanges are the names of the Services whose object or
// EndpointSlices changed since the agent last took them, so that one
// change among 10k services costs its own objects, not a listing of all.
type serviceChanges struct {
	mu    sync.Mutex
	names map[types.NamespacedName]bool
}

func (c *serviceChanges) mark(names ...types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names == nil {
		c.names = map[types.NamespacedName]bool{}
	}
	for _, n := range names {
		if n.Name != "" {
			c.names[n] = true
		}
	}
}

func (c *serviceChanges) take() map[types.NamespacedName]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.names
	c.names = nil
	return out
}

// objectOf unwraps an informer's delete notification.
func objectOf(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

// serviceOf names the Service an object (a Service or an EndpointSlice)
// belongs to; the zero name for anything else.
func serviceOf(obj any) types.NamespacedName {
	switch o := objectOf(obj).(type) {
	case *corev1.Service:
		return types.NamespacedName{Namespace: o.Namespace, Name: o.Name}
	case *discoveryv1.EndpointSlice:
		return types.NamespacedName{Namespace: o.Namespace, Name: o.Labels[discoveryv1.LabelServiceName]}
	}
	return types.NamespacedName{}
}

// watchServiceChanges records, for the services and slices informers, the
// services each change touches (a slice relabelled touches both).
func (w *Watcher) watchServiceChanges() {
	// Each handler runs on its own goroutine: the kick of the streams'
	// handler may come before the name is marked, so marking kicks again.
	mark := func(objs ...any) {
		for _, o := range objs {
			w.svcChanges.mark(serviceOf(o))
		}
		w.onChange()
	}
	for _, inf := range []cache.SharedIndexInformer{w.services, w.endpointSlices} {
		inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { mark(obj) },
			UpdateFunc: func(old, obj any) { mark(old, obj) },
			DeleteFunc: func(obj any) { mark(obj) },
		})
	}
	// Before the informer starts: an index cannot be added later.
	_ = w.endpointSlices.AddIndexers(cache.Indexers{byServiceIndex: func(obj any) ([]string, error) {
		n := serviceOf(obj)
		if n.Name == "" {
			return nil, nil
		}
		return []string{n.String()}, nil
	}})
}

// ServiceChanges returns the Services whose object or EndpointSlices
// changed since the last call (or since the start), and forgets them. A
// change after the call is in the next one; the caches may already hold
// it, so a name is read from them after it is taken.
func (w *Watcher) ServiceChanges() map[types.NamespacedName]bool {
	if w.services == nil {
		return nil
	}
	return w.svcChanges.take()
}

// ServiceObjects returns a Service from the cache (nil when there is none)
// and the EndpointSlices labelled with its name, sorted by name as in a
// Snapshot.
func (w *Watcher) ServiceObjects(name types.NamespacedName) (*corev1.Service, []*discoveryv1.EndpointSlice) {
	if w.services == nil {
		return nil, nil
	}
	var svc *corev1.Service
	if obj, ok, err := w.services.GetStore().GetByKey(name.String()); err == nil && ok {
		svc, _ = obj.(*corev1.Service)
	}
	objs, _ := w.endpointSlices.GetIndexer().ByIndex(byServiceIndex, name.String())
	var out []*discoveryv1.EndpointSlice
	for _, o := range objs {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return svc, out
}

// ServiceLists returns every Service and EndpointSlice, sorted by key, as
// a Snapshot holds them.
func (w *Watcher) ServiceLists() ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	if w.services == nil {
		return nil, nil
	}
	return listTyped[*corev1.Service](w.services), listTyped[*discoveryv1.EndpointSlice](w.endpointSlices)
}
