package simbench

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// endpointChanges measures, on each datapath in turn with n services
// present, the time from an EndpointSlice update in the API (the update
// call returned) to the new endpoint answering through the VIP: the middle
// service's slice is set to a single backend, alternating between two, and
// the client connects and asks who answers until the new one does. The
// series and its limit are changeSeries'; this gives it the cluster. The
// service gets its 10 endpoints back at the end.
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
	var ready []datapath
	for _, d := range datapaths {
		if !r.lagging[d.Name] {
			ready = append(ready, d)
		}
	}
	c := &sliceChanges{r: r, vip: vip, set: set}
	out, err := changeSeries(c, ready, n, r.p.Runs, r.p.ChangeTimeout, r.progress)
	r.out = append(r.out, out...)
	return err
}

// sliceChanges is the cluster side of changeSeries: the middle service's
// EndpointSlice, its VIP, and the datapaths' processes.
type sliceChanges struct {
	r   *runner
	vip netip.AddrPort
	set func(backends ...netip.Addr) error
}

func (c *sliceChanges) setOnly(b int) (time.Time, error) {
	if err := c.set(c.r.backends[b]); err != nil {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// until polls through the VIP from d's client until echo-b answers streak
// times in a row (another answer resets the count) and returns how long
// after since the first answer of that streak came. A streak must start
// before deadline (one under way may finish after it); otherwise it
// returns an errNotReachable.
func (c *sliceChanges) until(d datapath, b int, since, deadline time.Time) (time.Duration, error) {
	want := fmt.Sprintf("echo-%d ", b)
	var first time.Duration
	var last string
	err := inNetns(c.r.clients[d.Node], func() error {
		for n := 0; n > 0 || time.Now().Before(deadline); {
			got, err := whoAnswers(c.vip)
			if err == nil && strings.Contains(got+" ", want) {
				if n == 0 {
					first = time.Since(since)
				}
				if n++; n == changeStreak {
					return nil
				}
				continue
			}
			n, last = 0, fmt.Sprint(got, err)
		}
		return errNotReachable{fmt.Sprintf("%s did not answer alone through %s within %s of the update (last: %s)",
			strings.TrimSpace(want), c.vip, deadline.Sub(since).Round(time.Millisecond), last)}
	})
	return first, err
}

// leaveOut stops d's process group until the next size, as for a datapath
// that had not programmed the size in time: its catching up does not take
// the CPU of the datapaths still measured.
func (c *sliceChanges) leaveOut(d datapath) error {
	if c.r.lagging == nil {
		c.r.lagging = map[string]bool{}
	}
	c.r.lagging[d.Name] = true
	return d.signalGroup(c.r.state, syscall.SIGSTOP)
}
