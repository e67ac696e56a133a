package sim

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Objects the runner made carry this annotation; only they are ever changed
// or deleted by it.
const managedAnnotation = "kestrel.dev/scenario-managed"

// liveState remembers what exists in the cluster on the runner's behalf, so a
// Sync changes only what differs (the upstream e2e scenarios share one set of
// pods; recreating them every time would cost seconds per scenario).
type liveState struct {
	namespaces map[string]map[string]string // name -> labels
	pods       map[string]livePod           // ns/name
	manifests  map[manifestKey]string       // -> JSON as last applied
}

type livePod struct {
	fingerprint string // node, address, ports: what forces a new pod when changed
	labels      map[string]string
	uid         string
	ips         []string
}

type manifestKey struct {
	gvr       schema.GroupVersionResource
	namespace string
	name      string
}

func newLiveState() *liveState {
	return &liveState{
		namespaces: map[string]map[string]string{},
		pods:       map[string]livePod{},
		manifests:  map[manifestKey]string{},
	}
}
