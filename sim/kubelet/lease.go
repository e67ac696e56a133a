package kubelet

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The node's Lease in kube-node-lease is its cheap heartbeat, as with a real
// kubelet: the node lifecycle controller reads its renewTime, and `kubectl
// get leases -n kube-node-lease` shows which nodes are alive.
const (
	leaseNamespace       = corev1.NamespaceNodeLease
	leaseDurationSeconds = 40 // the kubelet's default nodeLeaseDurationSeconds
)

// renewLease creates the node's Lease, owned by its Node so that deleting
// the Node deletes it, or moves its renewTime to now.
func (k *Kubelet) renewLease(ctx context.Context) error {
	leases := k.client.CoordinationV1().Leases(leaseNamespace)
	now := metav1.NowMicro()
	lease, err := leases.Get(ctx, k.opts.Node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err := k.client.CoreV1().Nodes().Get(ctx, k.opts.Node, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("lease owner: %w", err)
		}
		holder, duration := k.opts.Node, int32(leaseDurationSeconds)
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.opts.Node, Namespace: leaseNamespace,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &duration, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}
