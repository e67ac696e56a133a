package noderoutes

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name string, ips []string, cidrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: cidrs}}
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})
	return n
}

func TestWant(t *testing.T) {
	got := Want("a", []*corev1.Node{
		node("a", []string{"172.18.0.2"}, "10.244.0.0/24"),
		node("b", []string{"172.18.0.3", "fc00:f853:ccd:e793::3"}, "10.244.1.0/24", "fd00:10:244:1::/64"),
		node("c", []string{"172.18.0.4"}, "10.244.2.0/24", "fd00:10:244:2::/64"), // no IPv6 address: no v6 route
		node("d", nil, "10.244.3.0/24"),                                          // no address yet
	})
	want := map[netip.Prefix]netip.Addr{
		netip.MustParsePrefix("10.244.1.0/24"):      netip.MustParseAddr("172.18.0.3"),
		netip.MustParsePrefix("fd00:10:244:1::/64"): netip.MustParseAddr("fc00:f853:ccd:e793::3"),
		netip.MustParsePrefix("10.244.2.0/24"):      netip.MustParseAddr("172.18.0.4"),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Want = %v\nwant %v", got, want)
	}
}

// TestSync runs in a namespace of its own with a veth on 172.31.7.1/24: Sync adds
// the routes, replaces a moved one, deletes a stale one, and never touches a route
// of another protocol to the same kind of range.
func TestSync(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to make a network namespace: run the tests as root")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { netns.Set(orig); ns.Close() }()

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "kr0"}, PeerName: "kr1"}))
	l, err := netlink.LinkByName("kr0")
	must(err)
	p, err := netlink.LinkByName("kr1")
	must(err)
	must(netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(172, 31, 7, 1), Mask: net.CIDRMask(24, 32)}}))
	must(netlink.LinkSetUp(l))
	must(netlink.LinkSetUp(p))
	// Someone else's route, which Sync must leave.
	other := &netlink.Route{Dst: &net.IPNet{IP: net.IPv4(10, 99, 0, 0), Mask: net.CIDRMask(16, 32)}, Gw: net.IPv4(172, 31, 7, 9)}
	must(netlink.RouteAdd(other))

	gwOf := func() map[string]string {
		t.Helper()
		rs, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		must(err)
		m := map[string]string{}
		for _, r := range rs {
			if r.Dst != nil && r.Gw != nil {
				m[fmt.Sprintf("%s proto %d", r.Dst, r.Protocol)] = r.Gw.String()
			}
		}
		return m
	}
	must(Sync(map[netip.Prefix]netip.Addr{
		netip.MustParsePrefix("10.244.1.0/24"): netip.MustParseAddr("172.31.7.3"),
		netip.MustParsePrefix("10.244.2.0/24"): netip.MustParseAddr("172.31.7.4"),
	}))
	got := gwOf()
	want := map[string]string{"10.244.1.0/24 proto 75": "172.31.7.3", "10.244.2.0/24 proto 75": "172.31.7.4", "10.99.0.0/16 proto 3": "172.31.7.9"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after first Sync: %v\nwant %v", got, want)
	}
	// Node 2 went away, node 1 moved.
	must(Sync(map[netip.Prefix]netip.Addr{netip.MustParsePrefix("10.244.1.0/24"): netip.MustParseAddr("172.31.7.5")}))
	got = gwOf()
	want = map[string]string{"10.244.1.0/24 proto 75": "172.31.7.5", "10.99.0.0/16 proto 3": "172.31.7.9"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after second Sync: %v\nwant %v", got, want)
	}
	must(Remove())
	got = gwOf()
	want = map[string]string{"10.99.0.0/16 proto 3": "172.31.7.9"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after Remove: %v\nwant %v", got, want)
	}
}
