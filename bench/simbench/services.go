package simbench

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/bench/metrics"
	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/network"
)

// managedBy marks the EndpointSlices the bench writes itself: the Services
// have no selector, so the EndpointSlice controller leaves them alone (at
// 10k services it would take minutes to catch up), and kube-proxy and the
// agents read them as any other.
const managedBy = "bench.kestrel.dev"

const writers = 16

// createServices adds Services (ClusterIP, port 80 to the backends' 8080)
// and one EndpointSlice each, with every echo backend as an endpoint, until
// there are n. Every service has Backends real endpoints, so kube-proxy has
// its full rule count and any service can be probed.
func (r *runner) createServices(ctx context.Context, n int) error {
	from := len(r.vips)
	if n <= from {
		return nil
	}
	r.progress(fmt.Sprintf("creating services %d..%d (and their EndpointSlices) through the API", from, n-1))
	start := time.Now()
	vips := make([]netip.Addr, n-from)
	jobs := make(chan int)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				vip, err := r.createService(ctx, i)
				if err != nil {
					errs <- err
					for range jobs {
					}
					return
				}
				vips[i-from] = vip
			}
		}()
	}
	for i := from; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	r.vips = append(r.vips, vips...)
	r.progress(fmt.Sprintf("%d services written in %s", n-from, time.Since(start).Round(time.Millisecond)))
	return nil
}

func (r *runner) createService(ctx context.Context, i int) (netip.Addr, error) {
	name := fmt.Sprintf("svc-%06d", i)
	svc, err := r.kube.CoreV1().Services(Namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(echoPort), Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("create service %s: %w", name, err)
	}
	vip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("service %s: ClusterIP %q: %w", name, svc.Spec.ClusterIP, err)
	}
	port, proto, portName, ready := int32(echoPort), corev1.ProtocolTCP, "", true
	node := fmt.Sprintf("node-%d", backendNode)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-bench", Labels: map[string]string{
			discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: managedBy}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}
	for _, b := range r.backends {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{b.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}, NodeName: &node})
	}
	if _, err := r.kube.DiscoveryV1().EndpointSlices(Namespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return netip.Addr{}, fmt.Errorf("create EndpointSlice of %s: %w", name, err)
	}
	return vip, nil
}

// cpuNow reads the CPU time of each datapath's process (with the
// children it waited for: kube-proxy's iptables-restore and nft runs).
func (r *runner) cpuNow() (map[string]float64, error) {
	out := map[string]float64{}
	for _, d := range datapaths {
		pid, err := d.pid(r.state)
		if err != nil {
			return nil, err
		}
		if out[d.Name], err = cpuSeconds(pid); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// waitSynced waits until every datapath has programmed the n services,
// polling them all at once, and records for each how long after the last
// API write it got there and the CPU time its process spent from the
// first write of this size until then (cpuBefore, read before the
// writes): what following the writes and programming them cost it. Done
// is: the Kestrel agent reports the n services (`kestrel service list`),
// kube-proxy's metrics show no pending change and a sync after the last
// write; then a connect to the last service created succeeds. A datapath
// not there within the profile's SyncTimeout is marked lagging.
func (r *runner) waitSynced(ctx context.Context, n int, cpuBefore map[string]float64) error {
	written := time.Now()
	// iptables-nft took 132-300 s at 10k services here, by load, and more
	// than 10 min at a load average of 20.
	deadline := written.Add(r.p.SyncTimeout)
	r.lagging = map[string]bool{}
	defer func() {
		if len(r.lagging) > 0 {
			r.progress(fmt.Sprintf("%d services: stopped the lagging datapaths (SIGSTOP) while the others are measured", n))
		}
	}()
	r.progress(fmt.Sprintf("%d services: waiting for every datapath to program them", n))
	pending := map[string]bool{}
	for _, d := range datapaths {
		pending[d.Name] = true
	}
	for len(pending) > 0 {
		for _, d := range datapaths {
			if !pending[d.Name] {
				continue
			}
			done, err := r.programmed(ctx, d, n, written)
			if err != nil {
				return err
			}
			if !done {
				continue
			}
			took := time.Since(written).Seconds()
			pid, err := d.pid(r.state)
			if err != nil {
				return err
			}
			cpu, err := cpuSeconds(pid)
			if err != nil {
				return err
			}
			delete(pending, d.Name)
			r.progress(fmt.Sprintf("%d services: %s programmed them %.1f s after the last write (%.1f s CPU since the first)", n, d.Name, took, cpu-cpuBefore[d.Name]))
			r.out = append(r.out,
				metrics.Summarize(fmt.Sprintf("sync/%s/services=%d/programmed-after-last-write", d.Name, n), "s", metrics.Lower, []float64{took}),
				metrics.Summarize(fmt.Sprintf("sync/%s/services=%d/program-cpu", d.Name, n), "s", metrics.Lower, []float64{cpu - cpuBefore[d.Name]}))
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			// A missed sync is a figure too: recorded as the time waited,
			// and that datapath is left out of this size's measurements
			// (it goes on programming meanwhile, on the same cores).
			var names []string
			for name := range pending {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, d := range datapaths {
				if !pending[d.Name] {
					continue
				}
				// Stopped (with the restore it runs) while the others are
				// measured at this size, so that its programming does not
				// take their CPU; continued before the next size.
				if err := d.signalGroup(r.state, syscall.SIGSTOP); err != nil {
					return err
				}
			}
			for _, name := range names {
				r.lagging[name] = true
				r.out = append(r.out, metrics.Summarize(fmt.Sprintf("sync/%s/services=%d/not-programmed-after", name, n), "s", metrics.Lower, []float64{r.p.SyncTimeout.Seconds()}))
			}
			r.progress(fmt.Sprintf("%d services: %s had not programmed them %s after the last write: left out at this size", n, strings.Join(names, ", "), r.p.SyncTimeout))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// programmed says whether d has programmed n services, by its own account
// and by a connect through the last one.
func (r *runner) programmed(ctx context.Context, d datapath, n int, since time.Time) (bool, error) {
	var done bool
	if d.Mode == "" {
		svcs, err := api.NewClient(cluster.AgentSocket(ClusterName, network.NodeName(d.Node))).Services(ctx)
		if err == nil {
			count := 0
			for _, s := range svcs.Services {
				if strings.HasPrefix(s.Service, Namespace+"/") && s.Service != Namespace+"/"+steadyService {
					count++
				}
			}
			done = count >= n
		}
	} else {
		st, err := cluster.ReadKubeProxyState(ctx, d.Node)
		done = err == nil && st.Pending == 0 && st.LastSync > float64(since.UnixNano())/1e9
	}
	if done && n > 0 {
		// The metrics say so; a connect to the last service created says
		// its rules are really there.
		_, err := connectTimes(r.clients[d.Node], netip.AddrPortFrom(r.vips[n-1], 80), 1)
		done = err == nil
	}
	return done, nil
}
