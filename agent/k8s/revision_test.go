package k8s

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func withVersion(rv string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: rv}}
}

func TestRevisionKeepsHighestVersion(t *testing.T) {
	var r revision
	for _, rv := range []string{"7", "12", "9", "not-a-number", ""} {
		r.see(withVersion(rv))
	}
	r.see(cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: withVersion("40")})
	if got := r.load(); got != 12 {
		t.Fatalf("revision = %d, want 12 (tombstones and non-numeric versions ignored)", got)
	}
}

// A stream that has delivered less holds the combined revision back: a
// namespace event at 900 says nothing about a policy deletion at 890.
func TestMinRevisionIsTheSlowestStream(t *testing.T) {
	var namespaces, policies, pods revision
	namespaces.see(withVersion("900"))
	policies.see(withVersion("850"))
	pods.see(withVersion("870"))
	if got := minRevision(&namespaces, &policies, &pods); got != 850 {
		t.Fatalf("minRevision = %d, want 850", got)
	}
	policies.see(withVersion("890"))
	if got := minRevision(&namespaces, &policies, &pods); got != 870 {
		t.Fatalf("minRevision = %d, want 870", got)
	}
	var quiet revision
	if got := minRevision(&namespaces, &quiet); got != 0 {
		t.Fatalf("minRevision with a stream that delivered nothing = %d, want 0", got)
	}
}
