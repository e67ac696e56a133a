package daemon

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kestrelnet/kestrel/agent/service"
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
			want := scaleSlice(i, step+1).Endpoints[0].Addresses[0]
			for _, s := range c.d.Services().Services {
				if len(s.Backends) > 0 && s.Backends[0].Address == want+":8080" {
					return same()
				}
			}
			return step%5 == 3 && same()
		})
	}
	written := len(c.dp.serviceList())
	if written != 20 {
		t.Fatalf("%d services written, want 20", written)
	}
}
