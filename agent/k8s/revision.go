package k8s

import (
	"strconv"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/api/meta"
)

// revision is the highest resourceVersion any handler has seen. Handlers run
// after the informer's cache holds the object, so every change up to this
// revision is readable from the caches once it is recorded.
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
