// Package kubelet is sim's kubelet. It runs inside a node's network
// namespace, keeps the Node object and its Ready condition, and turns the
// Pods bound to the node into network namespaces wired by the real CNI
// plugin, with a workload process in each. It never runs containers.
package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/kestrelnet/kestrel/sim/network"
)

// Options configure one node's kubelet. The CLI derives them from
// sim/README.md's layout.
type Options struct {
	Name       string // cluster name
	Node       string // node-i
	Kubeconfig string
	CNIConfDir string // holds 10-kestrel.conflist
	CNIBinDir  string // holds kestrel-cni
	StateDir   string // this node's kubelet state: pod records, logs, CNI cache
	KestrelBin string // the kestrel binary, for `kestrel sim workload`
	// CgroupDir is the node's cgroup v2 directory (sim/cgroups.NodeDir):
	// each pod gets pod-<uid> below it, and its processes run there, where
	// the node agent's socket programs apply. Empty: pods get no cgroups.
	CgroupDir string
	Log       *slog.Logger
}

// Heartbeat periods: a Ready node reports every 10 s (the node lifecycle
// controller allows 40 s); a node that is not Ready rechecks often so it turns
// Ready soon after its agent starts.
const (
	heartbeatReady    = 10 * time.Second
	heartbeatNotReady = 2 * time.Second
	workers           = 4
)

// Run runs the kubelet until ctx ends. Workloads keep running when it ends,
// so a restarted kubelet adopts them instead of disturbing traffic.
func Run(ctx context.Context, opts Options) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", opts.Kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cni := newCNINetwork(opts.CNIConfDir, opts.CNIBinDir, filepath.Join(opts.StateDir, "cni-cache"))
	k, err := New(client, opts, cni)
	if err != nil {
		return err
	}
	return k.Run(ctx)
}

// Kubelet is one node's kubelet.
type Kubelet struct {
	opts     Options
	index    int
	client   kubernetes.Interface
	net      podNetwork
	recs     podRecords
	log      *slog.Logger
	recorder record.EventRecorder
	queue    workqueue.TypedRateLimitingInterface[string]
	lister   corelisters.PodLister

	mu   sync.Mutex
	pods map[types.UID]*podState
}

// podState is the kubelet's live knowledge of one pod it runs.
type podState struct {
	rec      *podRecord
	procs    map[string]*proc // by container name; kept after exit for status
	restarts map[string]int32
}

// New checks opts and returns a kubelet using client and net.
func New(client kubernetes.Interface, opts Options, net podNetwork) (*Kubelet, error) {
	if err := network.ValidateName(opts.Name); err != nil {
		return nil, err
	}
	idx, err := network.NodeIndex(opts.Node)
	if err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Kubelet{
		opts:   opts,
		index:  idx,
		client: client,
		net:    net,
		recs:   podRecords{dir: filepath.Join(opts.StateDir, "pods")},
		log:    opts.Log.With("node", opts.Node),
		queue:  workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		pods:   map[types.UID]*podState{},
	}, nil
}

// Run registers the node, adopts pods from an earlier run and serves pods
// until ctx ends.
func (k *Kubelet) Run(ctx context.Context) error {
	defer k.queue.ShutDown()
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	k.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kestrel-sim-kubelet", Host: k.opts.Node})

	if err := k.registerNode(ctx); err != nil {
		return err
	}
	if err := k.serve(ctx); err != nil {
		return err
	}
	go k.heartbeat(ctx)

	factory := informers.NewSharedInformerFactoryWithOptions(k.client, 30*time.Second,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", k.opts.Node).String()
		}))
	podInformer := factory.Core().V1().Pods()
	k.lister = podInformer.Lister()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			k.queue.Add(key)
		}
	}
	podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced) {
		return ctx.Err()
	}
	// Pods from an earlier run: each is synced, which adopts it if it is
	// still bound here and tears it down if it is gone.
	recs, err := k.recs.all()
	if err != nil {
		k.log.Warn("some pod records are unreadable", "err", err)
	}
	for _, r := range recs {
		k.mu.Lock()
		k.pods[r.UID] = &podState{rec: r, procs: map[string]*proc{}, restarts: map[string]int32{}}
		k.mu.Unlock()
		k.queue.Add(r.key())
	}

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	k.queue.ShutDown()
	wg.Wait()
	return nil
}

func (k *Kubelet) processNext(ctx context.Context) bool {
	key, quit := k.queue.Get()
	if quit {
		return false
	}
	defer k.queue.Done(key)
	after, err := k.sync(ctx, key)
	switch {
	case err != nil:
		k.log.Warn("pod sync failed; will retry", "pod", key, "err", err)
		k.queue.AddRateLimited(key)
	case after > 0:
		k.queue.Forget(key)
		k.queue.AddAfter(key, after)
	default:
		k.queue.Forget(key)
	}
	return true
}

// heartbeat keeps the Node's Ready condition and its Lease current.
func (k *Kubelet) heartbeat(ctx context.Context) {
	wasReady := false
	for {
		statusCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		netErr := k.net.Status(statusCtx)
		cancel()
		if err := k.updateNodeStatus(ctx, netErr); err != nil && ctx.Err() == nil {
			k.log.Warn("cannot update node status", "err", err)
		}
		if err := k.renewLease(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("cannot renew the node lease", "err", err)
		}
		if (netErr == nil) != wasReady {
			k.log.Info("node readiness changed", "ready", netErr == nil, "reason", netErr)
			wasReady = netErr == nil
		}
		period := heartbeatReady
		if netErr != nil {
			period = heartbeatNotReady
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
	}
}
