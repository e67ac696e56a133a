package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kestrelnet/kestrel/agent/k8s"
)

// scaleObjects is a cluster of n ClusterIP services with ten ready endpoints
// each (one slice per service), a hundred pods and a policy selecting them,
// the shape the bench's control-plane measurement loads.
func scaleObjects(n int) []runtime.Object {
	objs := []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", ResourceVersion: "1"}},
		node("node-1", "172.30.0.11"), node("node-2", "172.30.0.12"),
		&networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", ResourceVersion: "3"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}}}},
			},
		},
	}
	for i := range 100 {
		nodeName, app := "node-1", "web"
		if i%2 == 1 {
			nodeName, app = "node-2", "client"
		}
		objs = append(objs, pod(fmt.Sprintf("p%d", i), nodeName, fmt.Sprintf("10.244.%d.%d", i%2, i/2+2), app))
	}
	for i := range n {
		objs = append(objs, scaleService(i), scaleSlice(i, 0))
	}
	return objs
}

func scaleService(i int) *corev1.Service {
	ip := fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("s%d", i), ResourceVersion: "10"},
		Spec: corev1.ServiceSpec{
			ClusterIP: ip, ClusterIPs: []string{ip}, Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
}

// scaleSlice is service i's slice; gen shifts its endpoints' addresses, so
// each generation is a different set of backends.
func scaleSlice(i, gen int) *discoveryv1.EndpointSlice {
	ready := true
	port, name, proto := int32(8080), "http", corev1.ProtocolTCP
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("s%d-1", i), ResourceVersion: "11", Labels: map[string]string{discoveryv1.LabelServiceName: fmt.Sprintf("s%d", i)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	for e := range 10 {
		addr := fmt.Sprintf("10.%d.%d.%d", 100+e, (i+gen)/250%250, (i+gen)%250+1)
		nodeName := "node-2"
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}, NodeName: &nodeName})
	}
	return s
}

// BenchmarkEndpointSliceChangeAt10kServices times one EndpointSlice update,
// from the API write to the services written to the datapath, with 10k
// services present: the watch, the debounce (1 ms here), and the
// regeneration it triggers.
func BenchmarkEndpointSliceChangeAt10kServices(b *testing.B) {
	const n = 10000
	dp := newFakeDatapath()
	cs := fake.NewSimpleClientset(scaleObjects(n)...)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), k8s.ListKinds)
	dir := b.TempDir()
	cfg := Config{
		Node: "node-1", NodeIP: netip.MustParseAddr("172.30.0.11"),
		LinkPinDir: filepath.Join(dir, "links"), RegistryPath: filepath.Join(dir, "endpoints.json"),
		Debounce: time.Millisecond, EndpointTimeout: 5 * time.Second,
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
	}
	d, err := New(cfg, dp, cs, dyn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	// backend reports whether service i's first backend is written as gen's.
	backend := func(i, gen int) bool {
		want := netip.MustParseAddrPort(scaleSlice(i, gen).Endpoints[0].Addresses[0] + ":8080")
		s, ok := dp.serviceAt(netip.MustParseAddrPort(scaleService(i).Spec.ClusterIP + ":80"))
		return ok && len(s.Backends) > 0 && s.Backends[0] == want
	}
	waitFor := func(cond func() bool) {
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatal("timed out waiting for the datapath")
			}
			d.mu.Lock()
			ch := d.changed
			d.mu.Unlock()
			if cond() {
				return
			}
			select {
			case <-ch:
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	waitFor(func() bool { return backend(n-1, 0) })
	// CPU time as well as wall time: on the shared machine the wall time
	// of a change is mostly waiting for the scheduler, while the CPU the
	// process spends (the agent, and the fake API server and informers it
	// runs beside) is what a change costs.
	cpuStart := processCPU(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		svc := (i * 7919) % n
		gen := i + 1
		if _, err := cs.DiscoveryV1().EndpointSlices("default").Update(context.Background(), scaleSlice(svc, gen), metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitFor(func() bool { return backend(svc, gen) })
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpuStart)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// processCPU is the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
