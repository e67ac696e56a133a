package k8s

import (
	"strconv"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/api/meta"
)

// revision is the highest resourceVersion one watch stream's handler has
// seen. Handlers run after the informer's cache holds the object, and one
// stream delivers its events in resourceVersion order, so every change of
// that stream up to this revision is readable from its cache.
//
// Different streams are not ordered with respect to each other: a namespace
// event with version 900 can arrive before a policy deletion with version
// 890. What is known of several streams is therefore the lowest of their
// revisions (see minRevision).
type revision struct{ v atomic.Uint64 }

// see records an object's resourceVersion. Deletion events carry the
// version of the deletion, so removals advance the revision too.
func (r *revision) see(obj any) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return // a tombstone: the final state was missed, its version unknown
	}
	v, err := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
	if err != nil {
		return // resourceVersions are opaque; etcd's are integers, others are ignored
	}
	for {
		cur := r.v.Load()
		if v <= cur || r.v.CompareAndSwap(cur, v) {
			return
		}
	}
}

func (r *revision) load() uint64 { return r.v.Load() }

// minRevision is the revision up to which every one of the streams has
// delivered all its changes.
func minRevision(streams ...*revision) uint64 {
	var low uint64
	for i, r := range streams {
		if v := r.load(); i == 0 || v < low {
			low = v
		}
	}
	return low
}
