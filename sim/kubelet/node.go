package kubelet

import (
	"context"
	"fmt"
	"runtime"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/kestrelnet/kestrel/sim/network"
)

// maxPods is what a real kubelet advertises by default.
const maxPods = "110"

// desiredNode is the Node object this kubelet stands for.
func (k *Kubelet) desiredNode() *corev1.Node {
	var cidrs []string
	for _, c := range network.PodCIDRs(k.index) {
		cidrs = append(cidrs, c.String())
	}
	capacity := corev1.ResourceList{
		corev1.ResourcePods:   resource.MustParse(maxPods),
		corev1.ResourceCPU:    resource.MustParse("2"),
		corev1.ResourceMemory: resource.MustParse("4Gi"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: k.opts.Node,
			Labels: map[string]string{
				corev1.LabelHostname:      k.opts.Node,
				corev1.LabelOSStable:      "linux",
				corev1.LabelArchStable:    runtime.GOARCH,
				"kestrel.dev/sim-cluster": k.opts.Name,
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: cidrs[0], PodCIDRs: cidrs},
		Status: corev1.NodeStatus{
			Capacity:        capacity,
			Allocatable:     capacity,
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: Port}},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: network.NodeIP(k.index).String()},
				{Type: corev1.NodeInternalIP, Address: network.NodeIP6(k.index).String()},
				{Type: corev1.NodeHostName, Address: k.opts.Node},
			},
			NodeInfo: corev1.NodeSystemInfo{
				OperatingSystem:         "linux",
				Architecture:            runtime.GOARCH,
				KubeletVersion:          "v1.31.4-kestrel-sim",
				ContainerRuntimeVersion: "kestrel-sim://0",
			},
		},
	}
}

// registerNode creates the Node or brings an existing one in line. A pod CIDR
// set to something else cannot be changed (the field is immutable), so that
// is an error naming both values.
func (k *Kubelet) registerNode(ctx context.Context) error {
	want := k.desiredNode()
	nodes := k.client.CoreV1().Nodes()
	_, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", want.Name, err)
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := nodes.Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if have := podCIDRsOf(cur); len(have) > 0 && !slices.Equal(have, want.Spec.PodCIDRs) {
			return fmt.Errorf("node %s has podCIDRs %v, the sim contract says %v: delete the Node object to fix it",
				want.Name, have, want.Spec.PodCIDRs)
		}
		changed := cur.Spec.PodCIDR == ""
		cur.Spec.PodCIDR, cur.Spec.PodCIDRs = want.Spec.PodCIDR, want.Spec.PodCIDRs
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		for key, v := range want.Labels {
			if cur.Labels[key] != v {
				cur.Labels[key], changed = v, true
			}
		}
		if changed {
			if _, err := nodes.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// podCIDRsOf reads a Node's pod CIDRs; an object written with only the
// singular field still says which range it holds.
func podCIDRsOf(n *corev1.Node) []string {
	if len(n.Spec.PodCIDRs) == 0 && n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return n.Spec.PodCIDRs
}

// updateNodeStatus writes addresses, capacity and the Ready condition. The
// heartbeat time changes on every call: the node lifecycle controller marks a
// node Unknown when it stops moving.
func (k *Kubelet) updateNodeStatus(ctx context.Context, networkErr error) error {
	want := k.desiredNode()
	now := metav1.Now()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := k.client.CoreV1().Nodes().Get(ctx, k.opts.Node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Capacity = want.Status.Capacity
		cur.Status.Allocatable = want.Status.Allocatable
		cur.Status.Addresses = want.Status.Addresses
		cur.Status.DaemonEndpoints = want.Status.DaemonEndpoints
		cur.Status.NodeInfo = want.Status.NodeInfo
		cur.Status.Conditions = setNodeCondition(cur.Status.Conditions, readyCondition(networkErr, now))
		_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// readyCondition is Ready when the pod network (the CNI plugin, hence the
// agent) answers, as a real kubelet gates Ready on its runtime's network.
func readyCondition(networkErr error, now metav1.Time) corev1.NodeCondition {
	c := corev1.NodeCondition{Type: corev1.NodeReady, LastHeartbeatTime: now, LastTransitionTime: now}
	if networkErr == nil {
		c.Status, c.Reason, c.Message = corev1.ConditionTrue, "KubeletReady", "kestrel sim kubelet is posting ready status"
	} else {
		c.Status, c.Reason = corev1.ConditionFalse, "KubeletNotReady"
		c.Message = "container runtime network not ready: " + networkErr.Error()
	}
	return c
}

// setNodeCondition replaces the condition of c's type, keeping the previous
// transition time when the status did not change.
func setNodeCondition(conds []corev1.NodeCondition, c corev1.NodeCondition) []corev1.NodeCondition {
	for i := range conds {
		if conds[i].Type == c.Type {
			if conds[i].Status == c.Status {
				c.LastTransitionTime = conds[i].LastTransitionTime
			}
			conds[i] = c
			return conds
		}
	}
	return append(conds, c)
}
