package k8s

import (
	"context"
	"log/slog"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watcher holds the informers and their caches.
type Watcher struct {
	log      *slog.Logger
	onChange func()
	policies *policyCache
	streams  []stream

	typed                                         informers.SharedInformerFactory
	dynamic                                       dynamicinformer.DynamicSharedInformerFactory
	pods, namespaces, nodes, netpols, cnps, ccnps cache.SharedIndexInformer
	cidrGroups, services, endpointSlices          cache.SharedIndexInformer
	secrets                                       cache.SharedIndexInformer // what headerMatches read
	svcChanges                                    serviceChanges
}

// WatcherOption changes what a Watcher watches.
type WatcherOption func(*watcherOptions)

type watcherOptions struct{ noServices bool }

// WithoutServices leaves Services and EndpointSlices unwatched: on a node
// where kube-proxy serves them (--kube-proxy-replacement=false) the agent has
// no use for them, and at 10k services their caches and the regenerations
// their changes trigger would only cost CPU next to kube-proxy's.
func WithoutServices() WatcherOption { return func(o *watcherOptions) { o.noServices = true } }

// NewWatcher sets up the informers; onChange is called (from informer
// goroutines, so it must not block) whenever a watched object changes.
// reporter, if not nil, is told about policies that fail to parse.
func NewWatcher(cs kubernetes.Interface, dyn dynamic.Interface, log *slog.Logger, reporter Reporter, onChange func(), opts ...WatcherOption) *Watcher {
	var wo watcherOptions
	for _, o := range opts {
		o(&wo)
	}
	w := &Watcher{
		log:      log,
		onChange: onChange,
		policies: newPolicyCache(log, reporter),
		typed:    informers.NewSharedInformerFactory(cs, 0),
		dynamic:  dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0),
	}
	w.pods = w.typed.Core().V1().Pods().Informer()
	w.namespaces = w.typed.Core().V1().Namespaces().Informer()
	w.nodes = w.typed.Core().V1().Nodes().Informer()
	w.netpols = w.typed.Networking().V1().NetworkPolicies().Informer()
	w.cnps = w.dynamic.ForResource(CNPResource).Informer()
	w.ccnps = w.dynamic.ForResource(CCNPResource).Informer()
	w.cidrGroups = w.dynamic.ForResource(CIDRGroupResource).Informer()
	w.secrets = w.typed.Core().V1().Secrets().Informer()
	w.streams = []stream{
		{name: "pods", informer: w.pods, feedsPolicy: true},
		{name: "namespaces", informer: w.namespaces, feedsPolicy: true},
		{name: "nodes", informer: w.nodes},
		{name: "networkpolicies", informer: w.netpols, feedsPolicy: true},
		{name: CNPResource.Resource, informer: w.cnps, feedsPolicy: true},
		{name: CCNPResource.Resource, informer: w.ccnps, feedsPolicy: true},
		{name: CIDRGroupResource.Resource, informer: w.cidrGroups, feedsPolicy: true},
		{name: "secrets", informer: w.secrets, feedsPolicy: true},
	}
	if !wo.noServices {
		w.services = w.typed.Core().V1().Services().Informer()
		w.endpointSlices = w.typed.Discovery().V1().EndpointSlices().Informer()
		w.streams = append(w.streams, stream{name: "services", informer: w.services},
			stream{name: "endpointslices", informer: w.endpointSlices})
		w.watchServiceChanges()
	}
	for i := range w.streams {
		rev := &w.streams[i].rev
		changed := func(obj any) {
			rev.see(obj)
			w.onChange()
		}
		w.streams[i].informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    changed,
			UpdateFunc: func(_, obj any) { changed(obj) },
			DeleteFunc: changed,
		})
	}
	return w
}

// stream is one watched resource: its informer and the revision its handler
// has reached. Nodes are watched but do not feed policy: the runner and users
// do not write them and wait, and their heartbeats are the kubelet's.
type stream struct {
	name        string // the API resource, as in status "revisions"
	informer    cache.SharedIndexInformer
	feedsPolicy bool
	rev         revision
}

func (w *Watcher) informers() []cache.SharedIndexInformer {
	out := make([]cache.SharedIndexInformer, len(w.streams))
	for i := range w.streams {
		out[i] = w.streams[i].informer
	}
	return out
}

// revisions reads every stream's revision, and the revision up to which
// every stream that feeds policy has delivered all its changes.
func (w *Watcher) revisions() (byStream map[string]uint64, policy uint64) {
	byStream = map[string]uint64{}
	var feeds []*revision
	for i := range w.streams {
		s := &w.streams[i]
		byStream[s.name] = s.rev.load()
		if s.feedsPolicy {
			feeds = append(feeds, &s.rev)
		}
	}
	return byStream, minRevision(feeds...)
}

// Start runs the informers until ctx ends.
func (w *Watcher) Start(ctx context.Context) {
	w.typed.Start(ctx.Done())
	w.dynamic.Start(ctx.Done())
}

// WaitForSync blocks until every cache holds a full list, or ctx ends.
func (w *Watcher) WaitForSync(ctx context.Context) bool {
	var synced []cache.InformerSynced
	for _, inf := range w.informers() {
		synced = append(synced, inf.HasSynced)
	}
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

// Synced reports whether every cache holds a full list.
func (w *Watcher) Synced() bool {
	for _, inf := range w.informers() {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

// Snapshot is the caches' content at one moment.
type Snapshot struct {
	Namespaces []*corev1.Namespace
	Pods       []*corev1.Pod // every pod, with or without an address
	Nodes      []*corev1.Node
	Policies   []PolicyObject // parsed and rejected alike
	// Secrets are every Secret's data by namespace/name (headerMatches).
	Secrets map[string]map[string][]byte
	// Services and EndpointSlices feed load balancing, not policy.
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	// Revision is a resourceVersion such that every change to pods,
	// namespaces and policies at or below it is in the snapshot; Revisions
	// is each stream's own. Both are read before the caches, so they never
	// claim more.
	Revision  uint64
	Revisions map[string]uint64
}

// Snapshot reads every cache. The objects are shared with the caches and
// must not be modified.
func (w *Watcher) Snapshot() Snapshot {
	s := w.SnapshotWithoutServices()
	s.Services, s.EndpointSlices = w.ServiceLists()
	return s
}

// SnapshotWithoutServices is Snapshot without Services and EndpointSlices,
// which the agent reads by ServiceChanges and ServiceObjects instead (at
// 10k services listing them was most of a regeneration after one change).
func (w *Watcher) SnapshotWithoutServices() Snapshot {
	var s Snapshot
	s.Revisions, s.Revision = w.revisions()
	s.Namespaces = listTyped[*corev1.Namespace](w.namespaces)
	s.Pods = listTyped[*corev1.Pod](w.pods)
	s.Nodes = listTyped[*corev1.Node](w.nodes)
	var raw []any
	for _, np := range listTyped[*networkingv1.NetworkPolicy](w.netpols) {
		raw = append(raw, np)
	}
	for _, inf := range []cache.SharedIndexInformer{w.cnps, w.ccnps, w.cidrGroups} {
		for _, u := range listTyped[*unstructured.Unstructured](inf) {
			raw = append(raw, u)
		}
	}
	s.Policies = w.policies.parseAll(raw)
	s.Secrets = map[string]map[string][]byte{}
	for _, sec := range listTyped[*corev1.Secret](w.secrets) {
		s.Secrets[sec.Namespace+"/"+sec.Name] = sec.Data
	}
	return s
}

// Pod returns a pod from the cache.
func (w *Watcher) Pod(namespace, name string) (*corev1.Pod, bool) {
	obj, ok, err := w.pods.GetStore().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	p, ok := obj.(*corev1.Pod)
	return p, ok
}

// listTyped returns a cache's objects of type T, sorted by key so that two
// snapshots of the same state are equal.
func listTyped[T any](inf cache.SharedIndexInformer) []T {
	keys := inf.GetStore().ListKeys()
	sort.Strings(keys)
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		obj, ok, _ := inf.GetStore().GetByKey(k)
		if t, isT := obj.(T); ok && isT {
			out = append(out, t)
		}
	}
	return out
}
