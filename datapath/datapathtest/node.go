package datapathtest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/datapath"
)

// Node is a node namespace with several pods, each wired as the CNI plugin
// wires one: a veth whose host side (lxcN) stays on the node, the pod's
// addresses as /32 and /128 behind it, the node routing between them, IPv4
// through a gateway address the node holds and IPv6 through the host
// side's link-local fe80::1. All of it goes when the test ends.
type Node struct {
	t          *testing.T
	tag        string
	Orig, NS   netns.NsHandle
	nl         *netlink.Handle
	GatewayIP4 netip.Addr
	pods       int
}

// Pod is one pod of a Node.
type Pod struct {
	Name        string
	NS          netns.NsHandle
	HostIfindex int
	Ifindex     int // eth0 inside the pod
	MAC         net.HardwareAddr
	IPs         []netip.Addr
}

// Endpoint is the pod as a datapath endpoint bound to its veth.
func (p *Pod) Endpoint(id, identity uint32, ingress, egress bool) datapath.Endpoint {
	return datapath.Endpoint{ID: id, Identity: identity, IPs: p.IPs, IfIndex: uint32(p.HostIfindex), MAC: p.MAC,
		IngressEnforced: ingress, EgressEnforced: egress}
}

// NewNode makes the node namespace. It locks the test's goroutine to its
// thread for the rest of the test, since In switches that thread.
func NewNode(t *testing.T, tag string) *Node {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	orig, err := netns.Get()
	check(t, err)
	n := &Node{t: t, tag: fmt.Sprintf("%s-%d", tag, os.Getpid()), Orig: orig, GatewayIP4: netip.MustParseAddr("169.254.1.1")}
	name := n.tag + "-node"
	if n.NS, err = netns.NewNamed(name); err != nil {
		t.Fatalf("create netns: %v", err)
	}
	check(t, netns.Set(orig))
	t.Cleanup(func() { netns.Set(orig); n.NS.Close(); netns.DeleteNamed(name) })
	n.nl, err = netlink.NewHandleAt(n.NS)
	check(t, err)
	t.Cleanup(n.nl.Close)
	n.In(n.NS, func() {
		for _, s := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
			check(t, os.WriteFile("/proc/sys/"+s, []byte("1"), 0o644))
		}
	})
	lo, err := n.nl.LinkByName("lo")
	check(t, err)
	check(t, n.nl.LinkSetUp(lo))
	// The node owns the gateway address, so it answers the pods' ARP for it.
	check(t, n.nl.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: n.GatewayIP4.AsSlice(), Mask: net.CIDRMask(32, 32)}}))
	return n
}

// AddPod makes a pod namespace with these addresses (one per family at most).
func (n *Node) AddPod(ips ...string) *Pod {
	t := n.t
	t.Helper()
	n.pods++
	p := &Pod{Name: fmt.Sprintf("%s-pod%d", n.tag, n.pods)}
	var err error
	if p.NS, err = netns.NewNamed(p.Name); err != nil {
		t.Fatalf("create netns: %v", err)
	}
	check(t, netns.Set(n.Orig))
	t.Cleanup(func() { p.NS.Close(); netns.DeleteNamed(p.Name) })
	pl, err := netlink.NewHandleAt(p.NS)
	check(t, err)
	defer pl.Close()

	hostName := fmt.Sprintf("lxc%d", n.pods)
	check(t, n.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostName}, PeerName: "eth0", PeerNamespace: netlink.NsFd(p.NS)}))
	host, err := n.nl.LinkByName(hostName)
	check(t, err)
	eth0, err := pl.LinkByName("eth0")
	check(t, err)
	p.HostIfindex, p.Ifindex, p.MAC = host.Attrs().Index, eth0.Attrs().Index, eth0.Attrs().HardwareAddr
	// Without DAD, as the CNI plugin adds it: a tentative fe80::1 would not
	// answer the pod's neighbour solicitations for a second or more.
	check(t, n.nl.AddrAdd(host, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("fe80::1"), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}))
	check(t, n.nl.LinkSetUp(host))
	lo, err := pl.LinkByName("lo")
	check(t, err)
	check(t, pl.LinkSetUp(lo))
	check(t, pl.LinkSetUp(eth0))
	// The kernel turns a veth's carrier on asynchronously (linkwatch, later
	// under load); until then a frame sent on it fails with ENETDOWN.
	waitOperUp(t, pl, "eth0")
	waitOperUp(t, n.nl, hostName)
	for _, s := range ips {
		ip := netip.MustParseAddr(s)
		p.IPs = append(p.IPs, ip)
		bits := 32
		gw := net.IP(n.GatewayIP4.AsSlice())
		if ip.Is6() {
			bits, gw = 128, net.ParseIP("fe80::1")
		}
		check(t, pl.AddrAdd(eth0, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, bits)}, Flags: unix.IFA_F_NODAD}))
		if ip.Is4() {
			check(t, pl.RouteAdd(&netlink.Route{LinkIndex: p.Ifindex, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK}))
		}
		check(t, pl.RouteAdd(&netlink.Route{LinkIndex: p.Ifindex, Gw: gw}))
		check(t, n.nl.RouteAdd(&netlink.Route{LinkIndex: p.HostIfindex, Dst: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, bits)}, Scope: netlink.SCOPE_LINK}))
	}
	return p
}

// In runs f with the calling thread inside ns. It locks the goroutine to
// its thread for the duration itself: a subtest runs on a goroutine of its
// own, which NewNode's lock does not cover, and an unlocked goroutine may
// move to another thread (another netns) between two system calls.
func (n *Node) In(ns netns.NsHandle, f func()) {
	n.t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	check(n.t, netns.Set(ns))
	defer netns.Set(n.Orig)
	f()
}

// SendFrame writes a raw Ethernet frame out of a pod's eth0, as a pod with
// CAP_NET_RAW can: nothing in the pod checks what the frame claims.
func (n *Node) SendFrame(p *Pod, frame []byte) {
	n.t.Helper()
	n.In(p.NS, func() {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		check(n.t, err)
		defer unix.Close(fd)
		check(n.t, unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: p.Ifindex}))
	})
}

// waitOperUp waits until the named link's operational state is up.
func waitOperUp(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := h.LinkByName(name)
		check(t, err)
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %s: operational state %s after 5 s, want up", name, l.Attrs().OperState)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
