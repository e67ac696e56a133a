package scheduler

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// scheduleKey binds the pod named by key, if it still waits for a node.
func (s *Scheduler) scheduleKey(ctx context.Context, key string, pods corelisters.PodLister, nodes corelisters.NodeLister) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !ours(pod) {
		return nil
	}
	all, err := nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	node, err := s.picker.pick(pod, all)
	if err != nil {
		s.markUnschedulable(ctx, pod, err.Error())
		return err
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}
	err = s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	// Gone, or bound by someone else meanwhile: nothing left to do.
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bind to %s: %w", node, err)
	}
	s.log.Info("bound", "pod", key, "node", node)
	return nil
}

// ours reports whether pod waits for this scheduler.
func ours(pod *corev1.Pod) bool {
	return pod.Spec.NodeName == "" && pod.DeletionTimestamp == nil &&
		(pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == Name)
}

// markUnschedulable tells the user why the pod waits, as kube-scheduler does.
func (s *Scheduler) markUnschedulable(ctx context.Context, pod *corev1.Pod, msg string) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message == msg {
			return
		}
	}
	pod = pod.DeepCopy()
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: msg, LastTransitionTime: metav1.Now()}
	replaced := false
	for i, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			pod.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		pod.Status.Conditions = append(pod.Status.Conditions, cond)
	}
	if _, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		s.log.Info("cannot record unschedulable condition", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

func requeueAll(pods corelisters.PodLister, queue workqueue.TypedRateLimitingInterface[string]) {
	all, _ := pods.List(labels.Everything())
	for _, p := range all {
		if key, err := cache.MetaNamespaceKeyFunc(p); err == nil {
			queue.Add(key)
		}
	}
}
