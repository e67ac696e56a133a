package kubelet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func newTestKubelet(t *testing.T, client *fake.Clientset, net podNetwork) *Kubelet {
	t.Helper()
	k, err := New(client, Options{Name: "kt", Node: "node-2", StateDir: t.TempDir(), KestrelBin: "/bin/false"}, net)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTheNodeIsRegisteredWithItsPodCIDRAndAddresses(t *testing.T) {
	client := fake.NewSimpleClientset()
	k := newTestKubelet(t, client, nil)
	ctx := context.Background()
	if err := k.registerNode(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.registerNode(ctx); err != nil {
		t.Fatalf("second registration: %v", err)
	}
	if err := k.updateNodeStatus(ctx, nil); err != nil {
		t.Fatal(err)
	}
	n, err := client.CoreV1().Nodes().Get(ctx, "node-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Dual-stack: an IPv6 pod CIDR and underlay address next to the IPv4 ones.
	if n.Spec.PodCIDR != "10.244.1.0/24" || !slices.Equal(n.Spec.PodCIDRs, []string{"10.244.1.0/24", "fd00:10:244:1::/64"}) {
		t.Errorf("podCIDR = %q %v", n.Spec.PodCIDR, n.Spec.PodCIDRs)
	}
	want := []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "172.30.0.12"},
		{Type: corev1.NodeInternalIP, Address: "fd00:172:30::12"},
		{Type: corev1.NodeHostName, Address: "node-2"},
	}
	if !slices.Equal(n.Status.Addresses, want) {
		t.Errorf("addresses = %v, want %v", n.Status.Addresses, want)
	}
	if q := n.Status.Capacity[corev1.ResourcePods]; q.String() != "110" {
		t.Errorf("pods capacity = %s", q.String())
	}
	if c := readyOf(n); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("Ready = %+v", c)
	}
}

func TestTheNodeIsNotReadyWhileThePodNetworkIsDown(t *testing.T) {
	client := fake.NewSimpleClientset()
	k := newTestKubelet(t, client, nil)
	ctx := context.Background()
	k.registerNode(ctx)
	if err := k.updateNodeStatus(ctx, errors.New("kestrel-agent is not available")); err != nil {
		t.Fatal(err)
	}
	n, _ := client.CoreV1().Nodes().Get(ctx, "node-2", metav1.GetOptions{})
	c := readyOf(n)
	if c == nil || c.Status != corev1.ConditionFalse || c.Message != "container runtime network not ready: kestrel-agent is not available" {
		t.Errorf("Ready = %+v", c)
	}
}

func TestAForeignPodCIDRIsReportedNotOverwritten(t *testing.T) {
	client := fake.NewSimpleClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-2"},
		Spec: corev1.NodeSpec{PodCIDR: "10.9.0.0/24"}})
	k := newTestKubelet(t, client, nil)
	err := k.registerNode(context.Background())
	if err == nil || !strings.Contains(err.Error(), "node node-2 has podCIDRs [10.9.0.0/24], the sim contract says [10.244.1.0/24 fd00:10:244:1::/64]") {
		t.Fatalf("registration of a node with another pod CIDR: %v", err)
	}
}

func readyOf(n *corev1.Node) *corev1.NodeCondition {
	for i, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func TestTheNodeLeaseIsCreatedOwnedByTheNodeAndRenewed(t *testing.T) {
	client := fake.NewSimpleClientset()
	k := newTestKubelet(t, client, nil)
	ctx := context.Background()
	if err := k.registerNode(ctx); err != nil {
		t.Fatal(err)
	}
	if err := k.renewLease(ctx); err != nil {
		t.Fatal(err)
	}
	leases := client.CoordinationV1().Leases("kube-node-lease")
	l, err := leases.Get(ctx, "node-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "node-2" || l.Spec.LeaseDurationSeconds == nil ||
		*l.Spec.LeaseDurationSeconds != 40 || l.Spec.RenewTime == nil {
		t.Fatalf("lease spec %+v", l.Spec)
	}
	if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" || l.OwnerReferences[0].Name != "node-2" {
		t.Fatalf("lease owners %+v: the Node must own it", l.OwnerReferences)
	}
	first := l.Spec.RenewTime.Time
	time.Sleep(2 * time.Millisecond)
	if err := k.renewLease(ctx); err != nil {
		t.Fatal(err)
	}
	l, _ = leases.Get(ctx, "node-2", metav1.GetOptions{})
	if !l.Spec.RenewTime.After(first) {
		t.Fatalf("renewTime did not move: %s then %s", first, l.Spec.RenewTime)
	}
}
