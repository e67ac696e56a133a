package scheduler

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

// Name is the schedulerName this scheduler serves, as well as the empty one.
const Name = corev1.DefaultSchedulerName

// Run schedules pods of the cluster behind kubeconfig until ctx ends.
func Run(ctx context.Context, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return New(client, slog.Default()).Run(ctx)
}

// Scheduler binds unscheduled pods.
type Scheduler struct {
	client kubernetes.Interface
	log    *slog.Logger
	picker picker
}

// New returns a scheduler using client.
func New(client kubernetes.Interface, log *slog.Logger) *Scheduler {
	return &Scheduler{client: client, log: log}
}

// Run watches unscheduled pods and Nodes and binds until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(s.client, 0)
	pending := informers.NewSharedInformerFactoryWithOptions(s.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", "").String()
		}))
	nodes := factory.Core().V1().Nodes()
	pods := pending.Core().V1().Pods()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()

	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	// A node turning Ready may make waiting pods schedulable.
	nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { requeueAll(pods.Lister(), queue) },
		UpdateFunc: func(any, any) { requeueAll(pods.Lister(), queue) },
	})
	factory.Start(ctx.Done())
	pending.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	pending.WaitForCacheSync(ctx.Done())

	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	for {
		key, quit := queue.Get()
		if quit {
			return nil
		}
		err := s.scheduleKey(ctx, key, pods.Lister(), nodes.Lister())
		if err != nil {
			s.log.Info("cannot schedule yet", "pod", key, "reason", err)
			queue.AddRateLimited(key)
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}
