package simbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/bench/metrics"
	"github.com/kestrelnet/kestrel/sim/cluster"
	"github.com/kestrelnet/kestrel/sim/controlplane"
	"github.com/kestrelnet/kestrel/sim/network"
)

// ClusterName is the sim cluster a run brings up and removes.
const ClusterName = "kestrel"

// Namespace holds everything a run creates.
const Namespace = "bench"

// The node layout: one client node per datapath, and the echo backends on
// a node of their own, so every connect crosses the underlay once each way
// whatever the datapath, and only the client node's translation differs.
const backendNode = 5

// datapath is one client node and what translates services on it.
type datapath struct {
	Name string
	Node int
	Mode cluster.KubeProxyMode // "" for Kestrel
}

var datapaths = []datapath{
	{Name: "kestrel", Node: 1},
	{Name: "kube-proxy-iptables-legacy", Node: 2, Mode: cluster.KubeProxyIPTablesLegacy},
	{Name: "kube-proxy-iptables-nft", Node: 3, Mode: cluster.KubeProxyIPTablesNFT},
	{Name: "kube-proxy-nftables", Node: 4, Mode: cluster.KubeProxyNFTables},
}

// Datapaths names the datapaths in report order.
func Datapaths() []string {
	var out []string
	for _, d := range datapaths {
		out = append(out, d.Name)
	}
	return out
}

// Layout describes how the run places the datapaths, for results.json.
func Layout() string {
	var parts []string
	for _, d := range datapaths {
		parts = append(parts, fmt.Sprintf("%s on node-%d", d.Name, d.Node))
	}
	return fmt.Sprintf("one sim cluster, separate nodes measured one after the other: %s; %d echo backends on node-%d (Kestrel agent); clients connect from a pod on their node, as a process in the pod's cgroup (kestrel-socket-lb, the kube-proxies) or outside it (kestrel-per-packet: the socket programs do not apply); every datapath follows the API writes as they come and is polled at once after the last one",
		strings.Join(parts, ", "), 10, backendNode)
}

// Run brings up a sim cluster with a node per datapath, creates the services
// size by size and measures each datapath in turn; it always takes the
// cluster down, after copying the cluster's logs to logDir when it failed.
// The metrics measured before an error are returned with it.
func Run(ctx context.Context, p Profile, binDir, logDir string, progress func(string)) (out []metrics.Metric, layout string, err error) {
	kp := map[int]cluster.KubeProxyMode{}
	for _, d := range datapaths {
		if d.Mode != "" {
			kp[d.Node] = d.Mode
		}
	}
	progress(fmt.Sprintf("sim up: %d nodes (%s)", backendNode, Layout()))
	defer func() {
		if err != nil {
			logs := filepath.Join(controlplane.DefaultStateDir(ClusterName), "logs")
			os.MkdirAll(logDir, 0o755)
			if cpErr := exec.Command("cp", "-rT", logs, filepath.Join(logDir, "logs")).Run(); cpErr == nil {
				progress("the cluster's logs are in " + logDir)
			}
		}
		progress("sim down")
		cluster.Down(ClusterName)
	}()
	info, err := cluster.Up(ctx, cluster.Options{Name: ClusterName, Nodes: backendNode, BinDir: binDir, KubeProxy: kp})
	if err != nil {
		return nil, Layout(), err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return nil, Layout(), err
	}
	rc.QPS, rc.Burst = 2000, 4000
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, Layout(), err
	}
	r := &runner{p: p, kube: kube, progress: progress, state: info.StateDir, logDir: logDir, binDir: binDir}
	err = r.run(ctx)
	return r.out, Layout(), err
}

type runner struct {
	p        Profile
	kube     kubernetes.Interface
	progress func(string)
	state    string
	logDir   string
	binDir   string // kestrel's, for the pods' client processes

	backends   []netip.Addr
	clients    map[int]string // node -> client pod's netns path
	clientUIDs map[int]string // node -> client pod's UID
	vips       []netip.Addr   // services in creation order
	out        []metrics.Metric
	// lagging names the datapaths that had not programmed the current
	// size within SyncTimeout: left out of its measurements.
	lagging map[string]bool
}

const echoPort = 8080

func (r *runner) run(ctx context.Context) error {
	if _, err := r.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := r.startPods(ctx); err != nil {
		return err
	}
	// The 0-services point: direct connects before any service exists.
	if err := r.measure(ctx, 0); err != nil {
		return err
	}
	// Steady state through one service of its own (so every later size
	// has one service more than it says, on every datapath alike).
	if err := r.steadyState(ctx); err != nil {
		return err
	}
	for _, n := range r.p.Sizes {
		r.continueLagging()
		cpu, err := r.cpuNow()
		if err != nil {
			return err
		}
		if err := r.createServices(ctx, n); err != nil {
			return err
		}
		if err := r.waitSynced(ctx, n, cpu); err != nil {
			return err
		}
		r.recordRules(n)
		if err := r.measure(ctx, n); err != nil {
			return err
		}
		if err := r.endpointChanges(ctx, n); err != nil {
			return err
		}
	}
	// Policy scaling last, with the largest size's services present (a
	// lagging datapath stays stopped meanwhile).
	err := r.policyScaling(ctx)
	// Continued, so that the cluster's stop finds them answering SIGTERM.
	r.continueLagging()
	return err
}

// continueLagging continues the datapaths stopped for lagging behind the
// last size: they go on programming it.
func (r *runner) continueLagging() {
	for _, d := range datapaths {
		if r.lagging[d.Name] {
			d.signalGroup(r.state, syscall.SIGCONT)
		}
	}
	r.lagging = nil
}

// startPods makes the echo backends on their node and a client pod on each
// datapath's node, and waits until they run.
func (r *runner) startPods(ctx context.Context) error {
	pod := func(name string, node int) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace, Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{NodeName: network.NodeName(node), Containers: []corev1.Container{{
				Name: "echo", Image: "kestrel.dev/sim-workload",
				Ports: []corev1.ContainerPort{{ContainerPort: echoPort, Protocol: corev1.ProtocolTCP}},
			}}},
		}
	}
	var want []string
	for i := range r.p.Backends {
		want = append(want, fmt.Sprintf("echo-%d", i))
	}
	for _, d := range datapaths {
		want = append(want, fmt.Sprintf("client-node-%d", d.Node))
	}
	for _, name := range want {
		node := backendNode
		if strings.HasPrefix(name, "client-node-") {
			fmt.Sscanf(name, "client-node-%d", &node)
		}
		if _, err := r.kube.CoreV1().Pods(Namespace).Create(ctx, pod(name, node), metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	r.progress(fmt.Sprintf("waiting for %d pods", len(want)))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pods, err := r.kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := map[string]*corev1.Pod{}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.Status.PodIP != "" && podReady(p) {
				ready[p.Name] = p
			}
		}
		if len(ready) == len(want) {
			r.backends, r.clients, r.clientUIDs = nil, map[int]string{}, map[int]string{}
			for i := range r.p.Backends {
				r.backends = append(r.backends, netip.MustParseAddr(ready[fmt.Sprintf("echo-%d", i)].Status.PodIP))
			}
			for _, d := range datapaths {
				p := ready[fmt.Sprintf("client-node-%d", d.Node)]
				r.clients[d.Node] = network.NetnsPath(network.PodNetns(ClusterName, string(p.UID)))
				r.clientUIDs[d.Node] = string(p.UID)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d pods ready after 2m; logs in %s", len(ready), len(want), filepath.Join(r.state, "logs"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// probes are the services connected to at n: the first, a middle and the
// last created (creation order; iptables mode orders its service rules
// otherwise, see bench/README.md).
func probes(n int) map[string]int {
	return map[string]int{"first": 0, "middle": n / 2, "last": n - 1}
}

// measure connects from each client, one after the other: to each probe
// service and directly to a backend.
func (r *runner) measure(ctx context.Context, n int) error {
	for _, c := range clients {
		if r.lagging[c.dp.Name] {
			continue
		}
		targets := map[string]netip.AddrPort{"direct": netip.AddrPortFrom(r.backends[0], echoPort)}
		if n > 0 {
			for name, i := range probes(n) {
				targets[name] = netip.AddrPortFrom(r.vips[i], 80)
			}
		}
		names := make([]string, 0, len(targets))
		for k := range targets {
			names = append(names, k)
		}
		sort.Strings(names)
		r.progress(fmt.Sprintf("%d services: %s connects (%s)", n, c.Name, strings.Join(names, ", ")))
		p50s := map[string][]float64{}
		for _, target := range names {
			dst := targets[target]
			// Warm-up: neighbour entries, caches; not counted.
			if _, failed, err := r.connects(c, dst, 5); failed > 0 {
				r.progress(fmt.Sprintf("%s, %d services, %s (%s): %d of 5 warm-up connects failed: %v", c.Name, n, target, dst, failed, err))
				r.saveFlows(ctx, c.dp, fmt.Sprintf("%s-services-%d-%s-warmup", c.Name, n, target))
			}
			var p50, p99 []float64
			failures, made := 0, 0
			before, err := r.socketTranslations(ctx, c)
			if err != nil {
				return err
			}
			for range r.p.Runs {
				times, failed, err := r.connects(c, dst, r.p.Connects)
				if failed > 0 {
					failures += failed
					r.progress(fmt.Sprintf("%s, %d services, %s (%s): %d connects failed: %v", c.Name, n, target, dst, failed, err))
					r.saveFlows(ctx, c.dp, fmt.Sprintf("%s-services-%d-%s", c.Name, n, target))
				}
				if len(times) == 0 {
					return fmt.Errorf("%s, %d services, %s (%s): every connect failed: %w", c.Name, n, target, dst, err)
				}
				made += len(times)
				us := make([]float64, len(times))
				for i, t := range times {
					us[i] = float64(t.Nanoseconds()) / 1e3
				}
				sort.Float64s(us)
				p50 = append(p50, metrics.Percentile(us, 50))
				p99 = append(p99, metrics.Percentile(us, 99))
			}
			if target != "direct" {
				after, err := r.socketTranslations(ctx, c)
				if err != nil {
					return err
				}
				if err := checkSocketLB(c, dst.String(), after-before, made); err != nil {
					return err
				}
			}
			if failures > 0 {
				r.out = append(r.out, metrics.Summarize(fmt.Sprintf("latency/%s/services=%d/%s/connect-failures", c.Name, n, target), "connects", metrics.Lower, []float64{float64(failures)}))
			}
			p50s[target] = p50
			name := fmt.Sprintf("latency/%s/services=%d/%s", c.Name, n, target)
			r.out = append(r.out, metrics.Summarize(name+"/connect-p50", "us", metrics.Lower, p50),
				metrics.Summarize(name+"/connect-p99", "us", metrics.Lower, p99))
		}
		for _, target := range names {
			if target == "direct" {
				continue
			}
			ratios := make([]float64, len(p50s[target]))
			for i := range ratios {
				ratios[i] = p50s[target][i] / p50s["direct"][i]
			}
			r.out = append(r.out, metrics.Summarize(fmt.Sprintf("latency/%s/services=%d/%s/over-direct-p50", c.Name, n, target),
				metrics.UnitRatio, metrics.Lower, ratios))
		}
	}
	return nil
}

// saveFlows writes the flows d's agent saw (its drops among them) to the
// log dir, once per tag, for a failed connect to be explained.
func (r *runner) saveFlows(ctx context.Context, d datapath, tag string) {
	flows, err := api.NewClient(cluster.AgentSocket(ClusterName, network.NodeName(d.Node))).Flows(ctx, 0)
	if err != nil {
		r.progress(fmt.Sprintf("flows of %s: %v", d.Name, err))
		return
	}
	b, _ := json.MarshalIndent(flows, "", " ")
	path := filepath.Join(r.logDir, fmt.Sprintf("flows-%s-%s.json", d.Name, tag))
	if err := os.MkdirAll(r.logDir, 0o755); err == nil && os.WriteFile(path, b, 0o644) == nil {
		r.progress("the agent's flows are in " + path)
	}
}
