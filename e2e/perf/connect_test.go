//go:build e2e

// Package perf measures Kestrel on a live sim cluster. BenchmarkConnect is
// the connect() latency a pod sees: to a pod directly, through a ClusterIP
// with socket-level load balancing, and through the same ClusterIP with
// per-packet translation only (socket LB off for the client). Run it with
// `make bench-sim` (bench/README.md has the method and figures).
package perf

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/e2e/framework"
	"github.com/kestrelnet/kestrel/sim/network"
	"github.com/kestrelnet/kestrel/sim/workload"
)

// setup is the cluster and objects every run measures against.
type setup struct {
	cluster        framework.Cluster
	client         *corev1.Pod
	backend        string // pod IP:8080
	clusterIP      string // ClusterIP:80
	clientNode     string
	connectsPerRun int
	warmupsPerCase int
}

var env *setup

// TestMain brings a 2-node sim cluster up for the benchmark and down after.
func TestMain(m *testing.M) {
	if os.Getenv("KESTREL_BENCH_SIM") == "" {
		fmt.Println("perf: set KESTREL_BENCH_SIM=1 (make bench-sim does) to bring up a sim cluster and measure")
		os.Exit(0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	var err error
	env, err = bringUp(ctx)
	cancel()
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "perf:", err)
	} else {
		code = m.Run()
	}
	if env != nil && os.Getenv("KESTREL_E2E_KEEP") == "" {
		if err := env.cluster.Down(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "perf: down:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func bringUp(ctx context.Context) (*setup, error) {
	c, err := framework.NewSim("bench")
	if err != nil {
		return nil, err
	}
	if err := c.Down(ctx); err != nil {
		return nil, err
	}
	s := &setup{cluster: c, connectsPerRun: envInt("KESTREL_BENCH_CONNECTS", 2000), warmupsPerCase: 200}
	if err := c.Up(ctx, 2); err != nil {
		return s, err
	}
	kube, err := c.Client()
	if err != nil {
		return s, err
	}
	nodes := c.Nodes()
	s.clientNode = nodes[0]
	// The backend runs on the other node (the usual case); the path is the
	// same for all three figures.
	ns := "perf"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return s, err
	}
	web := framework.WorkloadPod(ns, "web", nodes[1], corev1.RestartPolicyAlways, nil, 8080)
	web.Labels = map[string]string{"app": "web"}
	client := framework.WorkloadPod(ns, "client", nodes[0], corev1.RestartPolicyAlways, nil)
	for _, p := range []*corev1.Pod{web, client} {
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return s, err
		}
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
	}}
	if svc, err = kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return s, err
	}
	s.clusterIP = net.JoinHostPort(svc.Spec.ClusterIP, "80")
	if err := waitReady(ctx, kube, c, s, ns); err != nil {
		return s, err
	}
	return s, nil
}

// waitReady waits for both pods and for the client node's agent to
// translate the service to the web pod.
func waitReady(ctx context.Context, kube kubernetes.Interface, c framework.Cluster, s *setup, ns string) error {
	for {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		ready := err == nil && len(pods.Items) == 2
		if ready {
			for i := range pods.Items {
				p := &pods.Items[i]
				ready = ready && framework.PodReady(p)
				switch p.Name {
				case "client":
					s.client = p
				case "web":
					s.backend = net.JoinHostPort(p.Status.PodIP, "8080")
				}
			}
		}
		if ready {
			svcs, err := c.AgentServices(ctx, s.clientNode)
			ready = false
			for _, sv := range svcs.Services {
				if err == nil && sv.Frontend == s.clusterIP+"/TCP" && len(sv.Backends) == 1 {
					ready = true
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pods and service not ready: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkConnect runs each case KESTREL_BENCH_REPEATS times (default 6;
// use -benchtime 1x, and benchstat for the median and spread): a process of the client pod makes connectsPerRun TCP connections, each
// timed around connect() alone, and the run reports their p50 and p99.
func BenchmarkConnect(b *testing.B) {
	// Each case has source ports of its own. The pod-side conntrack entry
	// of a tuple keeps the service it was created with (bpf/lib/conntrack.h:
	// rev_nat_id is set on creation only), so a per-packet connection from a
	// port an earlier direct (or socket LB) connection to the backend used
	// would get no reverse NAT for its replies, and the reverse.
	cases := []struct {
		name, target string
		inCgroup     bool // the process runs in the pod's cgroup, where socket LB applies
		translations bool // socket LB must have translated every connect
		ports        [2]int
	}{
		{"direct-pod", env.backend, true, false, [2]int{10000, 14999}},
		{"clusterip-socket-lb", env.clusterIP, true, true, [2]int{15000, 19999}},
		{"clusterip-per-packet", env.clusterIP, false, false, [2]int{20000, 24999}},
	}
	// The repeats interleave the cases (go test's -count would run each
	// case's repeats back to back), so a slow moment of this shared
	// machine falls on every case alike.
	for range envInt("KESTREL_BENCH_REPEATS", 6) {
		for _, tc := range cases {
			b.Run(tc.name, func(b *testing.B) {
				for range b.N {
					p50, p99 := measure(b, tc.target, tc.ports, tc.inCgroup, tc.translations)
					b.ReportMetric(p50, "p50-µs")
					b.ReportMetric(p99, "p99-µs")
				}
			})
		}
	}
}

// measure runs the warm-up and the measured connects and checks that the
// socket programs did (or did not) translate them.
func measure(b *testing.B, target string, ports [2]int, inCgroup, wantTranslated bool) (p50, p99 float64) {
	b.Helper()
	ctx := context.Background()
	run := func(count int) workload.ConnectResult {
		req := workload.ConnectRequest{Protocol: "tcp", Target: target, Count: count, Timeout: 2 * time.Second, SrcPorts: ports}
		var res workload.ConnectResult
		var err error
		if inCgroup {
			res, err = env.cluster.ConnectFromPod(env.client, req)
		} else {
			res, err = outsideCgroup(req)
		}
		if err != nil || res.Err != "" {
			b.Fatalf("connects to %s: %v %s", target, err, res.Err)
		}
		return res
	}
	run(env.warmupsPerCase)
	before := translations(b, ctx)
	b.ResetTimer()
	res := run(env.connectsPerRun)
	b.StopTimer()
	got := translations(b, ctx) - before
	switch {
	case wantTranslated && got < env.connectsPerRun:
		b.Fatalf("socket LB translated %d of %d connects to %s", got, env.connectsPerRun, target)
	case !wantTranslated && got != 0:
		b.Fatalf("socket LB translated %d connects to %s, want none", got, target)
	}
	ns := slices.Clone(res.ConnectNs)
	slices.Sort(ns)
	return percentile(ns, 50), percentile(ns, 99)
}

// outsideCgroup runs the client process in the pod's namespace but in this
// process's own cgroup, where no socket program is attached: socket LB off
// for it, so the per-packet path translates.
func outsideCgroup(req workload.ConnectRequest) (workload.ConnectResult, error) {
	req.Netns = network.PodNetns(env.cluster.Name(), string(env.client.UID))
	return workload.RunInPod(framework.RepoPath("bin/kestrel"), "", req)
}

func translations(b *testing.B, ctx context.Context) int {
	st, err := env.cluster.AgentStatus(ctx, env.clientNode)
	if err != nil || st.Datapath == nil {
		b.Fatalf("agent status: %v", err)
	}
	return st.Datapath.SocketLBTranslations
}

// percentile of sorted nanoseconds, in microseconds (nearest rank).
func percentile(sorted []int64, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return float64(sorted[max(i-1, 0)]) / 1e3
}
