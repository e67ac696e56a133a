package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kestrelnet/kestrel/agent/datapathstate"
	"github.com/kestrelnet/kestrel/agent/service"
	"github.com/kestrelnet/kestrel/datapath"
)

// The agent rebuilds only the services a change touched; after a sequence
// of EndpointSlice and Service changes through the API, the state it
// reports and writes is the one a Build from scratch of the same caches
// gives.
func TestServicesAfterChangesAreTheFullRebuild(t *testing.T) {
	var objs []runtime.Object
	for i := range 20 {
		objs = append(objs, scaleService(i), scaleSlice(i, 0))
	}
	c := newCluster(t, objs...)
	ctx := context.Background()
	same := func() bool {
		c.d.mu.Lock() // no regeneration while the caches are read
		defer c.d.mu.Unlock()
		want := service.Build(c.d.serviceInput(c.d.watch.Snapshot()))
		c.d.svcMu.Lock()
		defer c.d.svcMu.Unlock()
		return len(want.Frontends) > 0 && reflect.DeepEqual(c.d.services, want)
	}
	c.eventually("the services are built", same)
	for step := range 30 {
		i := (step * 7) % 20
		var err error
		switch step % 5 {
		case 0, 1, 2:
			_, err = c.cs.DiscoveryV1().EndpointSlices("default").Update(ctx, scaleSlice(i, step+1), metav1.UpdateOptions{})
		case 3:
			err = c.cs.CoreV1().Services("default").Delete(ctx, fmt.Sprintf("s%d", i), metav1.DeleteOptions{})
			if err == nil {
				_, err = c.cs.CoreV1().Services("default").Create(ctx, scaleService(i), metav1.CreateOptions{})
			}
		case 4:
			err = c.cs.DiscoveryV1().EndpointSlices("default").Delete(ctx, fmt.Sprintf("s%d-1", i), metav1.DeleteOptions{})
			if err == nil {
				_, err = c.cs.DiscoveryV1().EndpointSlices("default").Create(ctx, scaleSlice(i, step+1), metav1.CreateOptions{})
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		c.eventually(fmt.Sprintf("step %d is in the state", step), func() bool {
			// Service i's own backend: another service's first backend
			// can be the same address (j+gen' == i+gen), which let a step
			// pass before its change was regenerated.
			want := scaleSlice(i, step+1).Endpoints[0].Addresses[0]
			for _, s := range c.d.Services().Services {
				if strings.HasPrefix(s.Service, fmt.Sprintf("default/s%d:", i)) && len(s.Backends) > 0 && s.Backends[0].Address == want+":8080" {
					return same()
				}
			}
			return step%5 == 3 && same()
		})
	}
	if written := len(c.dp.serviceList()); written != 20 {
		t.Fatalf("%d services written, want 20", written)
	}
	if err := writtenIsTheFullConversion(c); err != nil {
		t.Fatal(err)
	}
}

// writtenIsTheFullConversion checks that the datapath holds what converting
// a Build from scratch of the caches gives, ids included.
func writtenIsTheFullConversion(c *cluster) error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	want := datapathstate.Services(service.Build(c.d.serviceInput(c.d.watch.Snapshot())), &c.d.lbIDs)
	slices.SortFunc(want, func(a, b datapath.Service) int { return int(a.ID) - int(b.ID) })
	got := c.dp.serviceList()
	if len(got) != len(want) {
		return fmt.Errorf("%d services written, a full conversion gives %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			return fmt.Errorf("written %s with backends %v, a full conversion gives %s with %v", got[i], got[i].Backends, want[i], want[i].Backends)
		}
	}
	return nil
}

// One EndpointSlice change among 10k services reaches the datapath as a
// difference (ApplyServices), after which it holds exactly the services a
// full conversion of the caches gives.
func TestOneSliceChangeAmong10kServicesIsWrittenAsADifference(t *testing.T) {
	const n = 10_000
	var objs []runtime.Object
	for i := range n {
		objs = append(objs, scaleService(i), scaleSlice(i, 0))
	}
	c := newCluster(t, objs...)
	front := func(i int) netip.AddrPort { return netip.MustParseAddrPort(scaleService(i).Spec.ClusterIP + ":80") }
	firstBackend := func(i, gen int) netip.AddrPort {
		return netip.MustParseAddrPort(scaleSlice(i, gen).Endpoints[0].Addresses[0] + ":8080")
	}
	// Loading 20k objects into the fake API and the informers takes
	// seconds on a loaded machine.
	c.eventuallyWithin(2*time.Minute, "10k services are written", func() bool {
		s, ok := c.dp.serviceAt(front(n - 1))
		return ok && len(s.Backends) == 10 && len(c.dp.serviceList()) == n
	})
	c.dp.mu.Lock()
	applied := c.dp.applied
	c.dp.mu.Unlock()
	if _, err := c.cs.DiscoveryV1().EndpointSlices("default").Update(context.Background(), scaleSlice(4321, 1), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.eventuallyWithin(time.Minute, "the change is written", func() bool {
		s, ok := c.dp.serviceAt(front(4321))
		return ok && len(s.Backends) == 10 && s.Backends[0] == firstBackend(4321, 1)
	})
	c.dp.mu.Lock()
	applied = c.dp.applied - applied
	c.dp.mu.Unlock()
	if applied == 0 {
		t.Fatal("the change was written as the whole set, not as a difference")
	}
	if err := writtenIsTheFullConversion(c); err != nil {
		t.Fatal(err)
	}
}
