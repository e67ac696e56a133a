package identity

import (
	"net/netip"
	"testing"
)

func TestSameLabelsGetSameIdentity(t *testing.T) {
	a := NewAllocator()
	l1 := PodLabels(PodInfo{Namespace: "x", Labels: map[string]string{"app": "a"}})
	l2 := PodLabels(PodInfo{Namespace: "x", Labels: map[string]string{"app": "a"}, ServiceAccount: "default", Cluster: "default"})
	if a.Allocate(l1) != a.Allocate(l2) {
		t.Fatal("equal label sets got different identities")
	}
	if got := a.Allocate(l1); got != MinClusterIdentity {
		t.Fatalf("first identity = %d, want %d", got, MinClusterIdentity)
	}
}

func TestAllocateAllFollowsSortedLabelOrder(t *testing.T) {
	a := NewAllocator()
	b := PodLabels(PodInfo{Namespace: "b"})
	c := PodLabels(PodInfo{Namespace: "a"})
	ids := a.AllocateAll([]Labels{b, c})
	if ids[1] != 256 || ids[0] != 257 {
		t.Fatalf("ids = %v, want [257 256]", ids)
	}
}

func TestPodLabelsIncludeDerivedLabels(t *testing.T) {
	ls := PodLabels(PodInfo{Namespace: "x", Labels: map[string]string{"app": "a"},
		NamespaceLabels: map[string]string{"team": "t"}, ServiceAccount: "sa", Cluster: "c1"})
	want := "k8s:app=a,k8s:io.cilium.k8s.namespace.labels.team=t,k8s:io.cilium.k8s.policy.cluster=c1," +
		"k8s:io.cilium.k8s.policy.serviceaccount=sa,k8s:io.kubernetes.pod.namespace=x"
	if ls.String() != want {
		t.Fatalf("labels = %s\nwant     %s", ls, want)
	}
}

func TestCIDRIdentitiesAreLocalAndWorldIsSlashZero(t *testing.T) {
	a := NewAllocator()
	id := a.AllocateCIDR(netip.MustParsePrefix("10.0.1.5/8"))
	if !id.IsLocal() || id != LocalIdentityFlag|1 {
		t.Fatalf("id = %#x, want local identity 1", uint32(id))
	}
	if a.AllocateCIDR(netip.MustParsePrefix("10.0.0.0/8")) != id {
		t.Fatal("host bits changed the identity")
	}
	if a.AllocateCIDR(netip.MustParsePrefix("0.0.0.0/0")) != World {
		t.Fatal("/0 is not world")
	}
	ls, _ := a.Labels(id)
	if ls.String() != "cidr:10.0.0.0/8,reserved:world" {
		t.Fatalf("labels = %s", ls)
	}
}
