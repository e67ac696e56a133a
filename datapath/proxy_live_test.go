package datapath_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/vishvananda/netlink"
)

const testProxyPort = 15001

// proxyPodNetwork is an attached, enforced pod network whose node has the
// proxy routing and whose pod reaches 192.0.2.0/24 through the node.
func proxyPodNetwork(t *testing.T) (*datapath.Datapath, *datapathtest.PodNetwork) {
	// Loaded as an agent loads it: a datapath for test frames only
	// pretends to assign sockets (proxy_test_run).
	d, err := datapath.Load(datapath.Config{MonitorAggregation: datapath.MonitorAggregationNone})
	if err != nil {
		datapathtest.SkipOrFail(t, err)
	}
	t.Cleanup(func() { d.Close() })
	n := newPodNetwork(t)
	var links *datapath.PodDeviceLinks
	n.In(t, n.Node, func() { links, err = d.AttachPodDevice(n.HostIfindex, "") })
	must(t, err)
	t.Cleanup(func() { links.Close() })
	enforcePod(t, d, n)
	hn, err := netlink.NewHandleAt(n.Node)
	must(t, err)
	defer hn.Close()
	must(t, datapath.InstallProxyRouting(hn))
	n.In(t, n.Node, func() { must(t, datapath.ProxySysctls()) })
	hp, err := netlink.NewHandleAt(n.Pod)
	must(t, err)
	defer hp.Close()
	pod, err := hp.LinkByName("eth0")
	must(t, err)
	must(t, hp.RouteAdd(&netlink.Route{LinkIndex: pod.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(192, 0, 2, 0), Mask: net.CIDRMask(24, 32)},
		Gw: n.NodeIP.AsSlice()}))
	return d, n
}

// startProxy runs a transparent listener on the proxy port in the node's
// namespace. Each connection is answered with "<original destination>
// <client>"; one to port 8080 is instead relayed to the pod, as an ingress
// proxy does, over an upstream connection with the ingress proxy's mark.
func startProxy(t *testing.T, n *datapathtest.PodNetwork) net.Listener {
	return serveProxy(t, n, func(c net.Conn) {
		defer c.Close()
		orig := c.LocalAddr().(*net.TCPAddr)
		// The client speaks first: its data, not only its
		// handshake, must reach the proxy.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			fmt.Fprintf(c, "no request: %v\n", err)
			return
		}
		if orig.Port != 8080 {
			fmt.Fprintf(c, "%s %s\n", c.LocalAddr(), c.RemoteAddr())
			return
		}
		// Dialled from the node's namespace, on a thread of
		// this goroutine's own while it is switched there.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var up net.Conn
		var derr error
		n.In(t, n.Node, func() {
			up, derr = datapath.ProxyDialer(datapath.ProxyMarkIngress()).Dial("tcp", orig.String())
		})
		if derr != nil {
			fmt.Fprintf(c, "upstream: %v\n", derr)
			return
		}
		defer up.Close()
		line, _ := bufio.NewReader(up).ReadString('\n')
		fmt.Fprintf(c, "proxied %s", line)
	})
}

// serveProxy runs a transparent listener on the proxy port in the node's
// namespace until the test ends, serving each connection with serve in a
// goroutine of its own.
func serveProxy(t *testing.T, n *datapathtest.PodNetwork, serve func(net.Conn)) net.Listener {
	var ln net.Listener
	var err error
	n.In(t, n.Node, func() { ln, err = datapath.ListenProxy(context.Background(), testProxyPort) })
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln
}

func readLine(t *testing.T, n *datapathtest.PodNetwork, ns string, addr string) (string, error) {
	var c net.Conn
	var err error
	h := n.Pod
	if ns == "node" {
		h = n.Node
	}
	n.In(t, h, func() { c, err = net.DialTimeout("tcp", addr, 2*time.Second) }) // loaded CI machines are slow
	if err != nil {
		return "", err
	}
	defer c.Close()
	return roundTrip(c)
}

// roundTrip sends a line and reads the answer.
func roundTrip(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("request\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// A pod's connection on a port with an L7 rule reaches the node's proxy
// (bpf_sk_assign at from_container), which sees the original destination
// and the pod's own address; with no proxy listening the connection is
// dropped as PROXY_UNAVAILABLE, never passed.
func TestProxyRedirectEgressLive(t *testing.T) {
	d, n := proxyPodNetwork(t)
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{
		{Identity: 0, Direction: datapath.Egress, Protocol: 6, PortLo: 80, Action: datapath.PolicyRedirect, ProxyPort: testProxyPort},
	}))
	ln := startProxy(t, n)

	for i := 0; i < 2; i++ { // the second connection finds the flow's entry
		line, err := readLine(t, n, "pod", "192.0.2.10:80")
		if err != nil {
			t.Fatalf("connection %d through the proxy: %v", i, err)
		}
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != "192.0.2.10:80" || !strings.HasPrefix(f[1], n.PodIP.String()+":") {
			t.Fatalf("the proxy saw %q, want the original destination 192.0.2.10:80 and the pod %s as client", line, n.PodIP)
		}
		// The proxy learns from conntrack what the datapath judged.
		pf, ok, err := d.ProxiedFlow(datapath.Egress, netip.MustParseAddrPort(f[1]), netip.MustParseAddrPort(f[0]))
		if err != nil || !ok || pf.ProxyPort != testProxyPort || pf.RemoteIdentity != 2 {
			t.Fatalf("ProxiedFlow = %+v, %v, %v; want port %d and the world identity", pf, ok, err, testProxyPort)
		}
	}

	// A pod cannot claim the datapath's proxy mark for a port its policy
	// does not open: crossing into the node's namespace scrubs the mark,
	// so from_container judges the packet as any other.
	n.EchoServer(t, "9999")
	var c net.Conn
	var err error
	forged := datapath.ProxyDialer(int(datapath.ProxyMarkToProxy(testProxyPort)))
	forged.Timeout = 700 * time.Millisecond
	n.In(t, n.Pod, func() { c, err = forged.Dial("tcp", netip.AddrPortFrom(n.NodeIP, 9999).String()) })
	if err == nil {
		line, rerr := roundTrip(c)
		c.Close()
		t.Fatalf("a pod's connection with a forged proxy mark got through: %q, %v", line, rerr)
	}
	expectDrops(t, d, "POLICY_DENIED", datapath.Egress)

	ln.Close()
	if _, err := readLine(t, n, "pod", "192.0.2.10:80"); err == nil {
		t.Fatal("with no proxy listening, the redirected connection still got an answer")
	}
	expectDrops(t, d, "PROXY_UNAVAILABLE", datapath.Egress)
}

// A connection to a pod on a port with an L7 rule is turned back from
// to_container into the device's ingress and assigned to the proxy there;
// the proxy's marked upstream connection reaches the pod without being
// redirected again.
func TestProxyRedirectIngressLive(t *testing.T) {
	d, n := proxyPodNetwork(t)
	// The node is the client here: a packet from one of the node's own
	// addresses arriving on a device is a martian unless accept_local,
	// which the agent sets on every pod device it attaches.
	n.In(t, n.Node, func() { must(t, datapath.ProxyDeviceSysctls(n.HostIfindex)) })
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{
		{Identity: 1, Direction: datapath.Ingress, Protocol: 6, PortLo: 8080, Action: datapath.PolicyRedirect, ProxyPort: testProxyPort},
	}))
	var srv net.Listener
	var err error
	n.In(t, n.Pod, func() { srv, err = net.Listen("tcp", net.JoinHostPort(n.PodIP.String(), "8080")) })
	must(t, err)
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "pod saw %s\n", c.RemoteAddr())
			c.Close()
		}
	}()
	ln := startProxy(t, n)

	podAddr := netip.AddrPortFrom(n.PodIP, 8080).String()
	line, err := readLine(t, n, "node", podAddr)
	if err != nil {
		t.Fatalf("connection to the pod through the ingress proxy: %v", err)
	}
	if !strings.HasPrefix(line, "proxied pod saw "+n.NodeIP.String()+":") {
		t.Fatalf("got %q, want the pod's answer relayed by the proxy", line)
	}

	ln.Close()
	if line, err := readLine(t, n, "node", podAddr); err == nil {
		t.Fatalf("with no proxy listening, the connection to the pod got %q", line)
	}
	expectDrops(t, d, "PROXY_UNAVAILABLE", datapath.Ingress)
}

func expectDrops(t *testing.T, d *datapath.Datapath, reason string, dir datapath.Direction) {
	t.Helper()
	if dropCount(t, d, reason, dir) == 0 {
		t.Fatalf("no %s drop counted in direction %v", reason, dir)
	}
}
