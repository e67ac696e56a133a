package simbench

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/bench/metrics"
)

// endpointChanges measures, on each datapath in turn with n services
// present, the time from an EndpointSlice update in the API (the update
// call returned) to the new endpoint answering through the VIP: the middle
// service's slice is set to a single backend, alternating between two, and
// the client connects and asks who answers until the new one does. Each run
// is one change. The service gets its 10 endpoints back at the end.
func (r *runner) endpointChanges(ctx context.Context, n int) error {
	i := n / 2
	name := fmt.Sprintf("svc-%06d", i)
	slices := r.kube.DiscoveryV1().EndpointSlices(Namespace)
	vip := netip.AddrPortFrom(r.vips[i], 80)
	set := func(backends ...netip.Addr) error {
		s, err := slices.Get(ctx, name+"-bench", metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready := true
		node := fmt.Sprintf("node-%d", backendNode)
		s.Endpoints = nil
		for _, b := range backends {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{b.String()},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready}, NodeName: &node})
		}
		_, err = slices.Update(ctx, s, metav1.UpdateOptions{})
		return err
	}
	defer set(r.backends...)
	change := 0
	for _, d := range datapaths {
		r.progress(fmt.Sprintf("%d services: %s, endpoint change to reachable (%d changes)", n, d.Name, r.p.Runs))
		var took []float64
		for range r.p.Runs + 1 {
			target := change % 2
			change++
			want := fmt.Sprintf("echo-%d ", target)
			if err := set(r.backends[target]); err != nil {
				return err
			}
			written := time.Now()
			var last string
			err := inNetns(r.clients[d.Node], func() error {
				for time.Since(written) < time.Minute {
					got, err := whoAnswers(vip)
					if err == nil && strings.Contains(got+" ", want) {
						return nil
					}
					last = fmt.Sprint(got, err)
				}
				return fmt.Errorf("echo-%d did not answer through %s within a minute after the change (last: %s)", target, vip, last)
			})
			if err != nil {
				return fmt.Errorf("%s: %w", d.Name, err)
			}
			took = append(took, time.Since(written).Seconds()*1e3)
		}
		// The first change only brings the service to one endpoint from
		// ten, and may find the answer already right; it is not counted.
		took = took[1:]
		sort.Float64s(took)
		r.out = append(r.out, metrics.Summarize(fmt.Sprintf("endpoint-change/%s/services=%d/api-to-reachable", d.Name, n), "ms", metrics.Lower, took))
	}
	return nil
}
