package clustermode

import (
	"context"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The scenario's i-th node is the cluster's node with the i-th IPv4 pod CIDR,
// whatever the API lists first; probes may go to pod and node ranges and the
// service ranges given, nowhere else.
func TestNodesFollowTheirPodCIDRs(t *testing.T) {
	node := func(name, ip, cidr string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:   corev1.NodeSpec{PodCIDRs: []string{cidr}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
	}
	cs := fake.NewSimpleClientset(node("worker", "172.18.0.2", "10.244.1.0/24"), node("control-plane", "172.18.0.3", "10.244.0.0/24"))
	n, err := ReadNodes(context.Background(), cs, "kestrel/workload:x", netip.MustParsePrefix("10.96.0.0/12"))
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := n.Node(1); first != "control-plane" {
		t.Errorf("node 1 = %s, want the one with 10.244.0.0/24", first)
	}
	if n.PodCIDR(2, false) != netip.MustParsePrefix("10.244.1.0/24") || n.NodeIP(2, false) != netip.MustParseAddr("172.18.0.2") {
		t.Errorf("node 2: %s %s", n.PodCIDR(2, false), n.NodeIP(2, false))
	}
	if _, ok := n.Node(3); ok {
		t.Error("a third node exists")
	}
	for a, want := range map[string]bool{"10.244.1.9": true, "172.18.0.7": true, "10.96.0.10": true, "8.8.8.8": false, "10.245.0.1": false} {
		if got := n.Routed(netip.MustParseAddr(a)); got != want {
			t.Errorf("Routed(%s) = %v, want %v", a, got, want)
		}
	}
	c := n.Containers(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "a"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx", Command: []string{"nginx"},
			Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}}}}})
	if len(c) != 1 || c[0].Image != "kestrel/workload:x" || len(c[0].Command) != 0 || c[0].Args[0] != "sim" {
		t.Errorf("containers = %+v, want the workload image serving the ports", c)
	}
}
