package datapathtest

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// PodNetwork is a node namespace and a pod namespace joined by a veth pair,
// wired as the CNI plugin wires a pod: the host side (lxc0, HostIfindex)
// stays in the node namespace. Both are removed when the test ends.
type PodNetwork struct {
	Orig, Node, Pod netns.NsHandle
	HostIfindex     int
	PodMAC          net.HardwareAddr // the pod-side interface's address
	NodeIP, PodIP   netip.Addr
}

// NewPodNetwork makes the namespaces, named after tag and the test process,
// with nodeIP and podIP in one /24. It locks the test's goroutine to its
// thread for the rest of the test, since In switches that thread.
func NewPodNetwork(t *testing.T, tag string, nodeIP, podIP netip.Addr) *PodNetwork {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	orig, err := netns.Get()
	check(t, err)
	n := &PodNetwork{Orig: orig, NodeIP: nodeIP, PodIP: podIP}
	nodeName := fmt.Sprintf("%s-node-%d", tag, os.Getpid())
	podName := fmt.Sprintf("%s-pod-%d", tag, os.Getpid())
	if n.Node, err = netns.NewNamed(nodeName); err != nil {
		t.Fatalf("create netns: %v", err)
	}
	if n.Pod, err = netns.NewNamed(podName); err != nil {
		t.Fatalf("create netns: %v", err)
	}
	check(t, netns.Set(orig))
	t.Cleanup(func() {
		netns.Set(orig)
		n.Node.Close()
		n.Pod.Close()
		netns.DeleteNamed(nodeName)
		netns.DeleteNamed(podName)
	})
	hn, err := netlink.NewHandleAt(n.Node)
	check(t, err)
	defer hn.Close()
	hp, err := netlink.NewHandleAt(n.Pod)
	check(t, err)
	defer hp.Close()
	check(t, hn.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lxc0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(n.Pod)}))
	host, err := hn.LinkByName("lxc0")
	check(t, err)
	peer, err := hp.LinkByName("eth0")
	check(t, err)
	n.HostIfindex = host.Attrs().Index
	n.PodMAC = peer.Attrs().HardwareAddr
	check(t, hn.AddrAdd(host, &netlink.Addr{IPNet: &net.IPNet{IP: nodeIP.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
	check(t, hp.AddrAdd(peer, &netlink.Addr{IPNet: &net.IPNet{IP: podIP.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
	check(t, hn.LinkSetUp(host))
	check(t, hp.LinkSetUp(peer))
	return n
}

// Endpoint is the pod as an endpoint bound to its veth (identity and
// enforcement from the caller).
func (n *PodNetwork) Endpoint(id, identity uint32, enforced bool) datapath.Endpoint {
	return datapath.Endpoint{ID: id, Identity: identity, IPs: []netip.Addr{n.PodIP}, IfIndex: uint32(n.HostIfindex),
		MAC: n.PodMAC, IngressEnforced: enforced, EgressEnforced: enforced}
}

// In runs f with the calling (locked) thread inside ns.
func (n *PodNetwork) In(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	check(t, netns.Set(ns))
	defer netns.Set(n.Orig)
	f()
}

// EchoServer answers each line with the same line, on the node's address in
// the node namespace, until the test ends.
func (n *PodNetwork) EchoServer(t *testing.T, port string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	n.In(t, n.Node, func() { ln, err = net.Listen("tcp", net.JoinHostPort(n.NodeIP.String(), port)) })
	check(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln
}

// BPFFS mounts a private bpf filesystem for a test's pins.
func BPFFS(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
