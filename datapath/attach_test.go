package datapath_test

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

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

// podNetwork is a node namespace and a pod namespace joined by a veth pair, the
// host side (lxc0) in the node namespace, as the CNI plugin will wire pods.
type podNetwork struct {
	orig, node, pod netns.NsHandle
	hostIfindex     int
	nodeIP, podIP   netip.Addr
}

func newPodNetwork(t *testing.T) *podNetwork {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	orig, err := netns.Get()
	must(t, err)
	n := &podNetwork{orig: orig, nodeIP: netip.MustParseAddr("10.200.0.1"), podIP: netip.MustParseAddr("10.200.0.2")}
	nodeName := fmt.Sprintf("kestrel-test-node-%d", os.Getpid())
	podName := fmt.Sprintf("kestrel-test-pod-%d", os.Getpid())
	if n.node, err = netns.NewNamed(nodeName); err != nil {
		t.Fatalf("create netns: %v", err)
	}
	if n.pod, err = netns.NewNamed(podName); err != nil {
		t.Fatalf("create netns: %v", err)
	}
	must(t, netns.Set(orig))
	t.Cleanup(func() {
		netns.Set(orig)
		n.node.Close()
		n.pod.Close()
		netns.DeleteNamed(nodeName)
		netns.DeleteNamed(podName)
	})

	hn, err := netlink.NewHandleAt(n.node)
	must(t, err)
	defer hn.Close()
	hp, err := netlink.NewHandleAt(n.pod)
	must(t, err)
	defer hp.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lxc0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(n.pod)}
	must(t, hn.LinkAdd(veth))
	host, err := hn.LinkByName("lxc0")
	must(t, err)
	peer, err := hp.LinkByName("eth0")
	must(t, err)
	n.hostIfindex = host.Attrs().Index
	must(t, hn.AddrAdd(host, &netlink.Addr{IPNet: &net.IPNet{IP: n.nodeIP.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
	must(t, hp.AddrAdd(peer, &netlink.Addr{IPNet: &net.IPNet{IP: n.podIP.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
	for _, l := range []struct {
		h *netlink.Handle
		l netlink.Link
	}{{hn, host}, {hp, peer}} {
		must(t, l.h.LinkSetUp(l.l))
	}
	return n
}

// in runs f with the calling (locked) thread inside ns.
func (n *podNetwork) in(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	must(t, netns.Set(ns))
	defer netns.Set(n.orig)
	f()
}

func TestTCXAttachedProgramsPoliceRealTraffic(t *testing.T) {
	d := datapathtest.Load(t)
	n := newPodNetwork(t)
	var links *datapath.PodDeviceLinks
	var err error
	n.in(t, n.node, func() { links, err = d.AttachPodDevice(n.hostIfindex, "") })
	if err != nil {
		datapathtest.SkipOrFail(t, err)
	}
	defer links.Close()

	var ln net.Listener
	n.in(t, n.node, func() { ln, err = net.Listen("tcp", net.JoinHostPort(n.nodeIP.String(), "8080")) })
	must(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	connect := func() error {
		var c net.Conn
		var err error
		n.in(t, n.pod, func() { c, err = net.DialTimeout("tcp", ln.Addr().String(), 700*time.Millisecond) })
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 2)
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(buf)
		return err
	}

	must(t, d.SyncIPCache([]datapath.IPCacheEntry{
		{Prefix: netip.PrefixFrom(n.nodeIP, 32), Identity: 1},
		{Prefix: netip.PrefixFrom(n.podIP, 32), Identity: idA},
	}))
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{n.podIP}, EgressEnforced: true, IngressEnforced: true}))
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: 1, Direction: datapath.Egress, Protocol: 6, PortLo: 8080}}))
	if err := connect(); err != nil {
		t.Fatalf("egress to the host on 8080 is allowed, yet connecting failed: %v", err)
	}

	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: 1, Direction: datapath.Egress, Protocol: 6, PortLo: 9090}}))
	if err := connect(); err == nil {
		t.Fatal("the policy no longer allows 8080, yet the connection succeeded")
	}

	counters, err := d.Counters()
	must(t, err)
	reasons, err := datapath.DropReasons()
	must(t, err)
	fwdEgress := counters[datapath.CounterKey{Direction: datapath.Egress}]
	fwdIngress := counters[datapath.CounterKey{Direction: datapath.Ingress}]
	denied := counters[datapath.CounterKey{Reason: reasons["POLICY_DENIED"], Direction: datapath.Egress}]
	if fwdEgress.Packets < 3 || fwdIngress.Packets < 2 || denied.Packets < 1 {
		t.Fatalf("counters do not show the allowed exchange and the denied SYN: %+v", counters)
	}
}
