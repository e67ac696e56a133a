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
// is one change, from one single endpoint to another, timed to the new
// one's first answer; the next change waits until 30 answers in a row come
// from it. The service gets its 10 endpoints back at the end.
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
	// untilOnly polls through the VIP until the pod named want answers
	// streak times in a row (another answer resets the count), and returns
	// how long after since the first answer of that streak came.
	untilOnly := func(d datapath, want string, streak int, since time.Time) (time.Duration, error) {
		var first time.Duration
		var last string
		err := inNetns(r.clients[d.Node], func() error {
			// kube-proxy's nftables mode took more than a minute to apply
			// one change at 10k services at a load of 30 (2026-11-30):
			// the profile's SyncTimeout bounds the wait instead.
			for n := 0; time.Since(since) < r.p.SyncTimeout; {
				got, err := whoAnswers(vip)
				if err == nil && strings.Contains(got+" ", want) {
					if n == 0 {
						first = time.Since(since)
					}
					if n++; n == streak {
						return nil
					}
					continue
				}
				n, last = 0, fmt.Sprint(got, err)
			}
			return fmt.Errorf("%s did not answer alone through %s within %s (last: %s)", strings.TrimSpace(want), vip, r.p.SyncTimeout, last)
		})
		return first, err
	}
	// A known start: the service has a single endpoint, echo-0, and every
	// datapath sends there. With ten endpoints a change to one of them
	// would be "reachable" by chance before any datapath applied it.
	if err := set(r.backends[0]); err != nil {
		return err
	}
	var ready []datapath
	for _, d := range datapaths {
		if !r.lagging[d.Name] {
			ready = append(ready, d)
		}
	}
	for _, d := range ready {
		if _, err := untilOnly(d, "echo-0 ", 30, time.Now()); err != nil {
			return fmt.Errorf("%s: %w", d.Name, err)
		}
	}
	current := 0
	for _, d := range ready {
		r.progress(fmt.Sprintf("%d services: %s, endpoint change to reachable (%d changes)", n, d.Name, r.p.Runs))
		var took []float64
		for range r.p.Runs {
			// The old endpoint is the only one before the change, so the
			// first answer from the new one means the change is applied.
			target := 1 - current
			if err := set(r.backends[target]); err != nil {
				return err
			}
			written := time.Now()
			first, err := untilOnly(d, fmt.Sprintf("echo-%d ", target), 30, written)
			if err != nil {
				return fmt.Errorf("%s: %w", d.Name, err)
			}
			current = target
			took = append(took, first.Seconds()*1e3)
		}
		// Every datapath has the last state before the next one is timed.
		for _, other := range ready {
			if _, err := untilOnly(other, fmt.Sprintf("echo-%d ", current), 30, time.Now()); err != nil {
				return fmt.Errorf("%s: %w", other.Name, err)
			}
		}
		sort.Float64s(took)
		r.out = append(r.out, metrics.Summarize(fmt.Sprintf("endpoint-change/%s/services=%d/api-to-reachable", d.Name, n), "ms", metrics.Lower, took))
	}
	return nil
}
