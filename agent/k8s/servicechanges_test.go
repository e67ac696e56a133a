package k8s

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
)

// The watcher names the Services whose object or slices changed, once, and
// reads a service's objects by name: its slices sorted by name, a relabelled
// slice touching both services, a deleted Service nil.
func TestTheWatcherNamesTheServicesThatChanged(t *testing.T) {
	cs := fake.NewSimpleClientset()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), ListKinds)
	w := NewWatcher(cs, dyn, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, func() {})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	if !w.WaitForSync(ctx) {
		t.Fatal("caches did not sync")
	}
	web, db := types.NamespacedName{Namespace: "ns", Name: "web"}, types.NamespacedName{Namespace: "ns", Name: "db"}
	slice := func(name, svc string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}}, AddressType: discoveryv1.AddressTypeIPv4}
	}
	// changes collects the names marked until ready holds and no name has
	// come for 100 ms (every handler has run).
	changes := func(ready func() bool) map[types.NamespacedName]bool {
		t.Helper()
		got := map[types.NamespacedName]bool{}
		quiet := time.Now()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			for n := range w.ServiceChanges() {
				got[n], quiet = true, time.Now()
			}
			if ready() && time.Since(quiet) > 100*time.Millisecond {
				return got
			}
		}
		t.Fatalf("changed services %v, and the caches never got ready", got)
		return nil
	}
	slicesOf := func(name types.NamespacedName, want ...string) func() bool {
		return func() bool {
			_, s := w.ServiceObjects(name)
			var names []string
			for _, sl := range s {
				names = append(names, sl.Name)
			}
			return reflect.DeepEqual(names, want)
		}
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cs.CoreV1().Services("ns").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}, metav1.CreateOptions{}))
	must(cs.DiscoveryV1().EndpointSlices("ns").Create(ctx, slice("web-b", "web"), metav1.CreateOptions{}))
	must(cs.DiscoveryV1().EndpointSlices("ns").Create(ctx, slice("web-a", "web"), metav1.CreateOptions{}))
	if got := changes(slicesOf(web, "web-a", "web-b")); !reflect.DeepEqual(got, map[types.NamespacedName]bool{web: true}) {
		t.Fatalf("changed %v, want web alone", got)
	}
	svc, slices := w.ServiceObjects(web)
	if svc == nil || svc.Name != "web" || len(slices) != 2 || slices[0].Name != "web-a" || slices[1].Name != "web-b" {
		t.Fatalf("web's objects: %v, %v", svc, slices)
	}
	if again := w.ServiceChanges(); len(again) != 0 {
		t.Fatalf("names given twice: %v", again)
	}
	// A slice moving from web to db changes both.
	must(cs.DiscoveryV1().EndpointSlices("ns").Update(ctx, slice("web-b", "db"), metav1.UpdateOptions{}))
	if got := changes(slicesOf(db, "web-b")); !reflect.DeepEqual(got, map[types.NamespacedName]bool{web: true, db: true}) {
		t.Fatalf("changed %v, want web and db", got)
	}
	if _, s := w.ServiceObjects(web); len(s) != 1 || s[0].Name != "web-a" {
		t.Fatalf("web's slices after the move: %v", s)
	}
	if svc, s := w.ServiceObjects(db); svc != nil || len(s) != 1 || s[0].Name != "web-b" {
		t.Fatalf("db (no Service) after the move: %v, %v", svc, s)
	}
	must(nil, cs.CoreV1().Services("ns").Delete(ctx, "web", metav1.DeleteOptions{}))
	gone := func() bool { svc, _ := w.ServiceObjects(web); return svc == nil }
	if got := changes(gone); !reflect.DeepEqual(got, map[types.NamespacedName]bool{web: true}) {
		t.Fatalf("changed %v, want web", got)
	}
	if svc, _ := w.ServiceObjects(web); svc != nil {
		t.Fatalf("a deleted Service is still read: %v", svc)
	}
	if s := w.SnapshotWithoutServices(); s.Services != nil || s.EndpointSlices != nil {
		t.Fatal("SnapshotWithoutServices lists services")
	}
	if s := w.Snapshot(); len(s.EndpointSlices) != 2 {
		t.Fatalf("Snapshot lists %d slices, want 2", len(s.EndpointSlices))
	}
}
