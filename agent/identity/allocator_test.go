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

func TestCIDRIdentitiesAreLocalAndWorldIsSlashZeroPerFamily(t *testing.T) {
	a := NewAllocator()
	id := a.AllocateCIDR(netip.MustParsePrefix("10.0.1.5/8"))
	if !id.IsLocal() || id != LocalIdentityFlag|1 {
		t.Fatalf("id = %#x, want local identity 1", uint32(id))
	}
	if a.AllocateCIDR(netip.MustParsePrefix("10.0.0.0/8")) != id {
		t.Fatal("host bits changed the identity")
	}
	if got := a.AllocateCIDR(netip.MustParsePrefix("0.0.0.0/0")); got != WorldIPv4 {
		t.Fatalf("0.0.0.0/0 is %d, want world-ipv4 (9)", got)
	}
	if got := a.AllocateCIDR(netip.MustParsePrefix("::/0")); got != WorldIPv6 {
		t.Fatalf("::/0 is %d, want world-ipv6 (10)", got)
	}
	ls, _ := a.Labels(id)
	if ls.String() != "cidr:10.0.0.0/8,reserved:world-ipv4" {
		t.Fatalf("labels = %s", ls)
	}
	v6, _ := a.Labels(a.AllocateCIDR(netip.MustParsePrefix("2001:db8::/32")))
	if v6.String() != "cidr:2001:db8::/32,reserved:world-ipv6" {
		t.Fatalf("labels = %s", v6)
	}
}

func podSet(ns string) Labels { return PodLabels(PodInfo{Namespace: ns}) }

// A label set that sorts first must not renumber the others: an agent
// recomputes everything on each change, and shifting numbers under running
// traffic would mismatch ipcache and policy entries while they are written.
func TestSuccessorKeepsNumbersAndAppendsNewSets(t *testing.T) {
	first := NewAllocator()
	ids := first.AllocateAll([]Labels{podSet("m"), podSet("z")})
	first.AllocateCIDRs([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	cidr := first.AllocateCIDR(netip.MustParsePrefix("192.0.2.0/24"))

	second := first.Successor()
	got := second.AllocateAll([]Labels{podSet("a"), podSet("m"), podSet("z")})
	if got[1] != ids[0] || got[2] != ids[1] {
		t.Fatalf("kept sets renumbered: %v, before %v", got[1:], ids)
	}
	if got[0] != 258 {
		t.Fatalf("new set = %d, want 258 (after the previous allocator's last)", got[0])
	}
	second.AllocateCIDRs([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")})
	if id := second.AllocateCIDR(netip.MustParsePrefix("192.0.2.0/24")); id != cidr {
		t.Fatalf("kept prefix renumbered: %d, before %d", id, cidr)
	}
	if id := second.AllocateCIDR(netip.MustParsePrefix("10.0.0.0/8")); id != cidr+1 {
		t.Fatalf("new prefix = %d, want %d", id, cidr+1)
	}

	// "m" leaves: its number is not handed to the next new set.
	third := second.Successor()
	got = third.AllocateAll([]Labels{podSet("a"), podSet("b"), podSet("z")})
	if got[0] != 258 || got[2] != ids[1] || got[1] != 259 {
		t.Fatalf("after a set left: %v, want [258 259 %d]", got, ids[1])
	}
	if ls, ok := third.Labels(ids[0]); ok {
		t.Fatalf("the departed set's number %d still names %s", ids[0], ls)
	}
}

func TestSuccessorWrapsAroundSkippingNumbersInUse(t *testing.T) {
	a := NewAllocator()
	a.AllocateAll([]Labels{podSet("a"), podSet("b")}) // 256, 257
	a.nextPod = maxPodIdentity
	s := a.Successor()
	got := s.AllocateAll([]Labels{podSet("a"), podSet("b"), podSet("c"), podSet("d")})
	if got[0] != 256 || got[1] != 257 || got[2] != maxPodIdentity || got[3] != 258 {
		t.Fatalf("ids = %v, want [256 257 %d 258]", got, maxPodIdentity)
	}
}
