package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kestrelnet/kestrel/sim/cgroups"
	"github.com/kestrelnet/kestrel/sim/network"
)

// notReadyRecheck is how soon a pod whose ports do not answer yet is probed again.
const notReadyRecheck = 500 * time.Millisecond

// sync brings one pod (by namespace/name) to its desired state. It returns a
// delay after which to look again, or an error to retry with backoff.
func (k *Kubelet) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := k.lister.Pods(ns).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	if apierrors.IsNotFound(err) {
		pod = nil
	}
	// Pods that are gone, or replaced by a new pod of the same name, are torn down.
	for _, st := range k.statesFor(key) {
		if pod == nil || st.rec.UID != pod.UID {
			if err := k.teardown(ctx, st); err != nil {
				return 0, err
			}
		}
	}
	if pod == nil || pod.Spec.NodeName != k.opts.Node {
		return 0, nil
	}
	if pod.DeletionTimestamp != nil {
		return 0, k.finishDeletion(ctx, pod)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// As a real kubelet destroys a finished pod's sandbox: its processes,
		// network (so the agent drops its endpoint) and namespace go; the
		// status stays for people to read.
		k.mu.Lock()
		st := k.pods[pod.UID]
		k.mu.Unlock()
		if st != nil {
			return 0, k.teardown(ctx, st)
		}
		return 0, nil
	}

	st, err := k.stateOf(pod)
	if err != nil {
		return 0, err
	}
	if err := k.ensureSandbox(ctx, pod, st); err != nil {
		k.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "%v", err)
		k.writeStatus(ctx, pod, podView{HostIPs: k.hostIPs(), Containers: map[string]containerView{},
			FailReason: "FailedCreatePodSandBox", FailMessage: err.Error()})
		return 0, err
	}
	wait := k.ensureContainers(pod, st)
	if next := k.runProbes(ctx, pod, st); next > 0 && (wait == 0 || next < wait) {
		wait = next
	}
	view := k.view(pod, st)
	if err := k.writeStatus(ctx, pod, view); err != nil {
		return 0, err
	}
	for _, cv := range view.Containers {
		if cv.Running && !cv.Ready && (wait == 0 || wait > notReadyRecheck) {
			wait = notReadyRecheck
		}
	}
	return wait, nil
}

// stateOf returns the pod's state, creating and saving a fresh record for a new pod.
func (k *Kubelet) stateOf(pod *corev1.Pod) (*podState, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if st, ok := k.pods[pod.UID]; ok {
		return st, nil
	}
	r := &podRecord{
		UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name,
		Netns:       network.PodNetns(k.opts.Name, string(pod.UID)),
		ContainerID: string(pod.UID),
		PIDs:        map[string]int{},
	}
	if err := k.recs.save(r); err != nil {
		return nil, fmt.Errorf("save pod record: %w", err)
	}
	st := &podState{rec: r, procs: map[string]*proc{}, restarts: map[string]int32{}}
	k.pods[pod.UID] = st
	return st, nil
}

func (k *Kubelet) statesFor(key string) []*podState {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*podState
	for _, st := range k.pods {
		if st.rec.key() == key {
			out = append(out, st)
		}
	}
	return out
}

// ensureSandbox makes the pod's namespace and its network. A pod attached
// before (an adopted one) is CHECKed rather than added again; if CHECK fails
// it is detached and attached anew.
func (k *Kubelet) ensureSandbox(ctx context.Context, pod *corev1.Pod, st *podState) error {
	r := st.rec
	_, statErr := os.Stat(network.NetnsPath(r.Netns))
	netnsExists := statErr == nil
	if r.Added && netnsExists {
		err := k.net.Check(ctx, r)
		if err == nil {
			return nil
		}
		k.recorder.Eventf(pod, corev1.EventTypeWarning, "SandboxChanged", "pod network failed its check, re-adding: %v", err)
	}
	if r.Added {
		// Release the old attachment (address, agent endpoint) before a new one.
		if err := k.net.Del(ctx, r); err != nil {
			return err
		}
		r.Added, r.IPs = false, nil
		if err := k.recs.save(r); err != nil {
			return err
		}
	}
	if err := network.EnsureNetns(r.Netns); err != nil {
		return err
	}
	if dir := k.podCgroup(pod.UID); dir != "" {
		if err := cgroups.Ensure(dir); err != nil {
			return err
		}
	}
	ips, err := k.net.Add(ctx, r, pod.Annotations[IPAnnotation])
	if err != nil {
		return err
	}
	r.Added, r.IPs = true, ips
	if err := k.recs.save(r); err != nil {
		return err
	}
	k.recorder.Eventf(pod, corev1.EventTypeNormal, "SandboxReady", "netns %s, address %v", r.Netns, ips)
	return nil
}

// finishDeletion tears the pod down, then removes it from the API, which
// waits for the kubelet exactly as it does for a real node.
func (k *Kubelet) finishDeletion(ctx context.Context, pod *corev1.Pod) error {
	k.mu.Lock()
	st := k.pods[pod.UID]
	k.mu.Unlock()
	if st != nil {
		if err := k.teardown(ctx, st); err != nil {
			k.recorder.Eventf(pod, corev1.EventTypeWarning, "FailedKillPod", "%v", err)
			return err
		}
	}
	err := k.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      metav1.NewUIDPreconditions(string(pod.UID)),
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// teardown stops the pod's processes, detaches its network and removes its
// namespace and record. Each step tolerates what an earlier attempt did.
func (k *Kubelet) teardown(ctx context.Context, st *podState) error {
	r := st.rec
	for name, pid := range r.PIDs {
		p := st.procs[name]
		if p == nil {
			p, _ = adoptProcess(pid, r.Netns)
		}
		if p != nil {
			p.stop(stopGrace)
		}
	}
	if err := k.net.Del(ctx, r); err != nil && r.Added {
		return fmt.Errorf("pod %s: %w", r.key(), err)
	}
	if err := network.DeleteNetns(r.Netns); err != nil {
		return err
	}
	if dir := k.podCgroup(r.UID); dir != "" {
		if err := cgroups.Remove(dir); err != nil {
			return err
		}
	}
	if err := k.recs.remove(r.UID); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	k.mu.Lock()
	delete(k.pods, r.UID)
	k.mu.Unlock()
	k.log.Info("pod torn down", "pod", r.key(), "uid", r.UID)
	return nil
}

// writeStatus updates the pod's status when it differs from the API's.
func (k *Kubelet) writeStatus(ctx context.Context, pod *corev1.Pod, v podView) error {
	st := podStatus(pod, v)
	if apiequality.Semantic.DeepEqual(st, pod.Status) {
		return nil
	}
	updated := pod.DeepCopy()
	updated.Status = st
	_, err := k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

// hostIPs are the node's underlay addresses, IPv4 first, as a real kubelet
// reports a dual-stack node's.
func (k *Kubelet) hostIPs() []string {
	var out []string
	for _, ip := range network.NodeIPs(k.index) {
		out = append(out, ip.String())
	}
	return out
}
