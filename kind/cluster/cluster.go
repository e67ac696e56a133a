// Package cluster brings kind clusters up and down through kind's Go API, with the
// images kind/image builds offline, Kestrel installed as the CNI and kube-proxy
// replacement (kube-proxy absent), and waits until the cluster is usable.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindcluster "sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindlog "sigs.k8s.io/kind/pkg/log"

	"github.com/kestrelnet/kestrel/install"
	"github.com/kestrelnet/kestrel/kind/image"
	"github.com/kestrelnet/kestrel/kind/runtimefix"
)

// Options describe the cluster.
type Options struct {
	Name    string // kind cluster name (docker containers NAME-control-plane, NAME-worker...)
	Workers int
	Images  image.Options
	Version string        // Kubernetes version of the node image
	Wait    time.Duration // for nodes, agents and CoreDNS
	Log     io.Writer
	// CNI is the pod networking: CNIKestrel (default: Kestrel is the CNI
	// and kube-proxy replacement) or CNIPTP (kind's ptp networking, no
	// Kestrel, kube-proxy in iptables mode; IPv4 only).
	CNI string
	// NetworkPolicy, with CNIPTP, is the NetworkPolicy implementation
	// installed: PolicyNone or PolicyKNP.
	NetworkPolicy string
}

// Info is what Up made.
type Info struct {
	Name, Kubeconfig string
	Nodes            []string
	Images           image.Result
	Took             time.Duration
}

// KubeconfigPath is where Up writes the cluster's admin kubeconfig (not ~/.kube/config,
// which it leaves alone): /run/kestrel/kind/NAME/kubeconfig, or under $KESTREL_KIND_STATE.
func KubeconfigPath(name string) string {
	parent := os.Getenv("KESTREL_KIND_STATE")
	if parent == "" {
		parent = "/run/kestrel/kind"
	}
	return filepath.Join(parent, name, "kubeconfig")
}

// restrictOOM lets runc in the nodes skip lowering oom_score_adj, which needs
// CAP_SYS_RESOURCE: without it on such hosts every pod sandbox fails ("can't get
// final child's PID from pipe").
const restrictOOM = `[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
`

// ConfigFor is the configuration Up creates for o: Config, or with CNIPTP
// kube-proxy in iptables mode and IPv4 only (ptp.go writes one range a node).
func ConfigFor(o Options, needOOMPatch bool) *v1alpha4.Cluster {
	cfg := Config(o.Workers, needOOMPatch)
	if o.CNI == CNIPTP {
		cfg.Networking.KubeProxyMode = v1alpha4.IPTablesProxyMode
		cfg.Networking.IPFamily = v1alpha4.IPv4Family
		cfg.Networking.PodSubnet, cfg.Networking.ServiceSubnet = "", ""
		v1alpha4.SetDefaultsCluster(cfg)
	}
	return cfg
}

// Config is the kind cluster configuration Up creates.
func Config(workers int, needOOMPatch bool) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"}}
	cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.ControlPlaneRole})
	for i := 0; i < workers; i++ {
		cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.WorkerRole})
	}
	cfg.Networking.DisableDefaultCNI = true
	cfg.Networking.KubeProxyMode = "none"
	// Dual-stack, as sim: pod ranges 10.244.i.0/24 and fd00:10:244:i::/64 per
	// node, services 10.96.0.0/16 and fd00:10:96::/112 (kind's defaults).
	cfg.Networking.IPFamily = v1alpha4.DualStackFamily
	// The cluster DNS moves off 10.96.0.10 (kubeadm's choice), which scenarios'
	// services take (relocateDNS).
	cfg.KubeadmConfigPatches = []string{"kind: KubeletConfiguration\nclusterDNS: [\"" + DNSServiceIP + "\"]\n"}
	if needOOMPatch {
		cfg.ContainerdConfigPatches = []string{restrictOOM}
	}
	v1alpha4.SetDefaultsCluster(cfg)
	return cfg
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "kind up: "+format+"\n", args...)
	}
}

// Up builds (or reuses) the images, creates the cluster, loads Kestrel's images
// into its nodes, installs Kestrel and waits until every node is Ready, every
// agent healthy and CoreDNS available. A cluster of that name that already runs
// is reused (its Kestrel re-applied).
func Up(ctx context.Context, o Options) (Info, error) {
	start := time.Now()
	info := Info{Name: o.Name, Kubeconfig: KubeconfigPath(o.Name)}
	res, err := image.Build(ctx, o.Images, o.Version)
	if err != nil {
		return info, err
	}
	info.Images = res
	o.logf("images ready in %s (node %s)", res.Took.Round(time.Second/10), res.Node)

	p := kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(kindlog.NoopLogger{}))
	existing, err := p.List()
	if err != nil {
		return info, err
	}
	if err := os.MkdirAll(filepath.Dir(info.Kubeconfig), 0o700); err != nil {
		return info, err
	}
	if contains(existing, o.Name) {
		o.logf("cluster %q exists: reusing it", o.Name)
		if err := p.ExportKubeConfig(o.Name, info.Kubeconfig, false); err != nil {
			return info, err
		}
	} else {
		needed, err := runtimefix.Needed()
		if err != nil {
			return info, err
		}
		t := time.Now()
		if err := p.Create(o.Name,
			kindcluster.CreateWithV1Alpha4Config(ConfigFor(o, needed)),
			kindcluster.CreateWithNodeImage(res.Node),
			kindcluster.CreateWithKubeconfigPath(info.Kubeconfig),
			kindcluster.CreateWithDisplayUsage(false),
			kindcluster.CreateWithDisplaySalutation(false),
		); err != nil {
			return info, fmt.Errorf("kind create cluster %s: %w", o.Name, err)
		}
		o.logf("kind created %d nodes in %s", o.Workers+1, time.Since(t).Round(time.Second/10))
	}
	cs, dyn, err := clients(info.Kubeconfig)
	if err != nil {
		return info, err
	}
	if err := relocateDNS(ctx, cs); err != nil {
		return info, err
	}
	ns, err := p.ListInternalNodes(o.Name)
	if err != nil {
		return info, err
	}
	for _, n := range ns {
		info.Nodes = append(info.Nodes, n.String())
	}
	if o.CNI == CNIPTP {
		if err := upPTP(ctx, o, cs, dyn, ns, &res); err != nil {
			return info, err
		}
		info.Images = res
		if err := writeImages(o.Name, res); err != nil {
			return info, err
		}
		if err := waitReady(ctx, cs, o.Wait); err != nil {
			return info, err
		}
		info.Took = time.Since(start)
		return info, nil
	}
	if o.NetworkPolicy != PolicyNone {
		return info, fmt.Errorf("--network-policy %s: only with --cni %s (Kestrel enforces NetworkPolicy itself)", o.NetworkPolicy, CNIPTP)
	}
	if err := loadImages(ctx, ns, res.Agent, res.Workload); err != nil {
		return info, err
	}
	if err := writeImages(o.Name, res); err != nil {
		return info, err
	}
	params := install.Defaults()
	params.ServiceCIDR = ServiceCIDRs
	params.Image = res.Agent
	params.ClusterName = o.Name
	params.APIServerHost = o.Name + "-control-plane"
	params.NodeRoutes = true
	params.ExtraArgs = append(params.ExtraArgs, AgentArgs...)
	if params.SocketLBCgroup, err = NodeCgroupRoot(info.Nodes[0]); err != nil {
		return info, err
	}
	if err := install.Install(ctx, cs, dyn, params, o.Wait); err != nil {
		return info, fmt.Errorf("install Kestrel: %w", err)
	}
	o.logf("agents ready")
	if err := waitReady(ctx, cs, o.Wait); err != nil {
		return info, err
	}
	info.Took = time.Since(start)
	return info, nil
}

// Down deletes the cluster's containers (kind keeps its docker network "kind" and
// the images) and the kubeconfig Up wrote. Deleting an absent cluster is no error.
func Down(name string) error {
	p := kindcluster.NewProvider(kindcluster.ProviderWithDocker(), kindcluster.ProviderWithLogger(kindlog.NoopLogger{}))
	path := KubeconfigPath(name)
	if err := p.Delete(name, path); err != nil {
		return fmt.Errorf("kind delete cluster %s: %w", name, err)
	}
	if err := removeOutside(name); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		return err
	}
	return nil
}

// ImagesPath records which images Up loaded into the cluster (the scenario runner
// starts pods from the workload image named there).
func ImagesPath(name string) string {
	return filepath.Join(filepath.Dir(KubeconfigPath(name)), "images.json")
}

func writeImages(name string, res image.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(ImagesPath(name), b, 0o644)
}

// LoadedImages reads what Up recorded.
func LoadedImages(name string) (image.Result, error) {
	var res image.Result
	b, err := os.ReadFile(ImagesPath(name))
	if err != nil {
		return res, fmt.Errorf("kind cluster %q: %w (was it brought up by `kestrel kind up`?)", name, err)
	}
	return res, json.Unmarshal(b, &res)
}

// loadImages puts docker images into every node's containerd (kind load docker-image).
func loadImages(ctx context.Context, ns []nodes.Node, refs ...string) error {
	for _, ref := range refs {
		var buf bytes.Buffer
		cmd := exec.CommandContext(ctx, "docker", "save", ref)
		cmd.Stdout = &buf
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("docker save %s: %w: %s", ref, err, strings.TrimSpace(stderr.String()))
		}
		for _, n := range ns {
			if err := nodeutils.LoadImageArchive(n, bytes.NewReader(buf.Bytes())); err != nil {
				return fmt.Errorf("load %s into %s: %w", ref, n, err)
			}
		}
	}
	return nil
}

func clients(kubeconfig string) (kubernetes.Interface, dynamic.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	return cs, dyn, err
}

// waitReady waits for every node Ready, CoreDNS available (its readiness means it
// reached the API through the kubernetes Service, which Kestrel serves) and
// answering a query sent to the cluster DNS Service.
func waitReady(ctx context.Context, cs kubernetes.Interface, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		last = readiness(ctx, cs)
		if last == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ready after %s: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// readiness says what is not ready yet, or "".
func readiness(ctx context.Context, cs kubernetes.Interface) string {
	nl, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, n := range nl.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return "node " + n.Name + " not Ready"
		}
	}
	d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	if d.Spec.Replicas == nil || d.Status.AvailableReplicas < *d.Spec.Replicas {
		return fmt.Sprintf("coredns %d/%d available", d.Status.AvailableReplicas, ptrOr(d.Spec.Replicas))
	}
	if err := checkDNS(ctx, cs); err != nil {
		return err.Error()
	}
	return ""
}

func ptrOr(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// upPTP makes a cluster without Kestrel usable: its images loaded (the workload,
// kube-proxy, and the NetworkPolicy implementation), each node's ptp
// configuration and routes (ptp.go), kube-proxy restarted now that its image is
// there, and kube-network-policies installed when asked.
func upPTP(ctx context.Context, o Options, cs kubernetes.Interface, dyn dynamic.Interface, ns []nodes.Node, res *image.Result) error {
	t := time.Now()
	imgs, err := image.BuildPTP(ctx, o.Images, o.Version)
	if err != nil {
		return err
	}
	refs := []string{res.Workload, imgs.KubeProxy}
	switch o.NetworkPolicy {
	case PolicyNone:
	case PolicyKNP:
		refs = append(refs, imgs.KNP)
	default:
		return fmt.Errorf("--network-policy %q: unknown (%q or none)", o.NetworkPolicy, PolicyKNP)
	}
	o.logf("kube-proxy and kube-network-policies images ready in %s", time.Since(t).Round(time.Second/10))
	res.Agent = "" // Kestrel does not run
	if err := loadImages(ctx, ns, refs...); err != nil {
		return err
	}
	if err := restartPods(ctx, cs, "k8s-app=kube-proxy", len(ns), o.Wait); err != nil {
		return fmt.Errorf("restart kube-proxy: %w", err)
	}
	if err := setupPTP(ctx, cs, ns, o.Wait); err != nil {
		return err
	}
	o.logf("ptp networking on %d nodes, kube-proxy ready", len(ns))
	if o.NetworkPolicy == PolicyKNP {
		if err := installKNP(ctx, cs, dyn, imgs.KNP, o.Wait); err != nil {
			return err
		}
		o.logf("kube-network-policies ready (%s)", imgs.KNP)
	}
	return nil
}
