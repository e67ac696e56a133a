package network

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// requirePrivileges fails without root: lacking privileges is not a missing
// kernel feature, so it is no reason to skip.
func requirePrivileges(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces: run the tests as root")
	}
}

// skipIfMissing skips when the kernel lacks a feature Up relies on.
func skipIfMissing(t *testing.T, err error, feature string) {
	t.Helper()
	if errors.Is(err, syscall.EOPNOTSUPP) && os.Getenv("KESTREL_REQUIRE_PRIVILEGED") != "1" {
		t.Skipf("kernel lacks %s: %v", feature, err)
	}
}

func TestUpConnectsNodesAndTheRootNamespaceAndDownRemovesEverything(t *testing.T) {
	requirePrivileges(t)
	name := fmt.Sprintf("t%x", os.Getpid()%0xfffff)
	t.Cleanup(func() { Down(name) })

	err := Up(Options{Name: name, Nodes: 2})
	if errors.Is(err, ErrUnderlayTaken) && os.Getenv("KESTREL_REQUIRE_PRIVILEGED") != "1" {
		t.Skipf("a sim cluster is up on this host and owns the one underlay (kestrel sim down first): %v", err)
	}
	skipIfMissing(t, err, "veth or bridge links")
	if err != nil {
		t.Fatal(err)
	}
	// A second run repairs rather than fails.
	if err := Up(Options{Name: name, Nodes: 2}); err != nil {
		t.Fatalf("second Up: %v", err)
	}

	serveEcho(t, NodeNetns(name, 2), "172.30.0.12:7000")
	serveEcho(t, NodeNetns(name, 1), "172.30.0.11:7000")
	err = Do(NodeNetns(name, 1), func() error { return roundTrip("172.30.0.12:7000") })
	if err != nil {
		t.Errorf("node-1 -> node-2 over the underlay: %v", err)
	}
	if err := roundTrip("172.30.0.11:7000"); err != nil {
		t.Errorf("root -> node-1: %v", err)
	}
	// The same over IPv6: the underlay is dual-stack.
	serveEcho(t, NodeNetns(name, 2), "[fd00:172:30::12]:7000")
	serveEcho(t, NodeNetns(name, 1), "[fd00:172:30::11]:7000")
	err = Do(NodeNetns(name, 1), func() error { return roundTrip("[fd00:172:30::12]:7000") })
	if err != nil {
		t.Errorf("node-1 -> node-2 over the IPv6 underlay: %v", err)
	}
	if err := roundTrip("[fd00:172:30::11]:7000"); err != nil {
		t.Errorf("root -> node-1 over IPv6: %v", err)
	}
	// Each node routes the other's pod ranges, both families, to it; so
	// does the root namespace.
	for _, c := range []struct {
		ns   string
		dst  string
		want string
	}{
		{NodeNetns(name, 1), "10.244.1.7", "172.30.0.12"},
		{NodeNetns(name, 1), "fd00:10:244:1::7", "fd00:172:30::12"},
		{NodeNetns(name, 2), "fd00:10:244::7", "fd00:172:30::11"},
		{"", "fd00:10:244:1::7", "fd00:172:30::12"},
	} {
		var routes []netlink.Route
		get := func() error {
			var err error
			routes, err = netlink.RouteGet(net.ParseIP(c.dst))
			return err
		}
		if c.ns == "" {
			err = get()
		} else {
			err = Do(c.ns, get)
		}
		if err != nil || len(routes) == 0 || routes[0].Gw.String() != c.want {
			t.Errorf("netns %q: route to %s = %v, %v; want via %s", c.ns, c.dst, routes, err, c.want)
		}
	}
	err = Do(NodeNetns(name, 2), func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		if err == nil && strings.TrimSpace(string(b)) != "1" {
			err = fmt.Errorf("ip_forward = %s", b)
		}
		if err != nil {
			return err
		}
		b, err = os.ReadFile("/proc/sys/net/ipv6/conf/default/forwarding")
		if err == nil && strings.TrimSpace(string(b)) != "1" {
			err = fmt.Errorf("IPv6 forwarding for new interfaces = %s", b)
		}
		return err
	})
	if err != nil {
		t.Errorf("node-2: %v", err)
	}

	if err := Down(name); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if err := Down(name); err != nil {
		t.Fatalf("second Down: %v", err)
	}
	names, _ := ListNetns()
	for _, ns := range names {
		if strings.HasPrefix(ns, Prefix(name)) {
			t.Errorf("netns %s is left after Down", ns)
		}
	}
	links, _ := netlink.LinkList()
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, Prefix(name)) {
			t.Errorf("link %s is left after Down", l.Attrs().Name)
		}
	}
}

// serveEcho listens on addr inside a namespace and echoes one line per connection.
func serveEcho(t *testing.T, netnsName, addr string) {
	t.Helper()
	var ln net.Listener
	err := Do(netnsName, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, netnsName, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte(line))
			c.Close()
		}
	}()
}

func roundTrip(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("hello\n")); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != "hello\n" {
		return fmt.Errorf("echo = %q", got)
	}
	return nil
}

// Another tool's `ip netns add` while the cluster is up (a test of another
// package, an operator) must not strand the cluster's namespaces: their names
// still open and still delete.
func TestNamespacesSurviveAnIPNetnsAddByAnotherTool(t *testing.T) {
	requirePrivileges(t)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skipf("iproute2 is not installed: %v", err)
	}
	ours := fmt.Sprintf("ksim-t%x-node-1", os.Getpid()%0xfffff)
	theirs := fmt.Sprintf("other-%d", os.Getpid())
	t.Cleanup(func() {
		exec.Command(ip, "netns", "delete", theirs).Run()
		DeleteNetns(ours)
	})
	if err := EnsureNetns(ours); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ip, "netns", "add", theirs).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	if err := Do(ours, func() error { return nil }); err != nil {
		t.Fatalf("enter %s after `ip netns add`: %v", ours, err)
	}
	if err := DeleteNetns(ours); err != nil {
		t.Fatalf("delete %s after `ip netns add`: %v", ours, err)
	}
	if _, err := os.Stat(NetnsPath(ours)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is left after delete: %v", NetnsPath(ours), err)
	}
}

// The outside host is on the underlay but is no node: nodes send it their
// default traffic, it has no route to pods, and a client on it enters the
// cluster at the node its socket's mark names.
func TestTheOutsideHostIsTheNodesGatewayAndEntersAtTheMarkedNode(t *testing.T) {
	requirePrivileges(t)
	name := fmt.Sprintf("o%x", os.Getpid()%0xfffff)
	t.Cleanup(func() { Down(name) })
	err := Up(Options{Name: name, Nodes: 2})
	if errors.Is(err, ErrUnderlayTaken) && os.Getenv("KESTREL_REQUIRE_PRIVILEGED") != "1" {
		t.Skipf("a sim cluster is up on this host and owns the one underlay (kestrel sim down first): %v", err)
	}
	skipIfMissing(t, err, "veth or bridge links")
	if err != nil {
		t.Fatal(err)
	}
	outside := OutsideNetns(name)
	client := netip.MustParseAddr("203.0.113.2")
	client6 := netip.MustParseAddr("2001:db8::2")
	for _, a := range []netip.Addr{client, client6} {
		if err := AddWorldAddr(name, a); err != nil {
			t.Fatal(err)
		}
	}
	// Nodes: default routes via the outside host; the apiserver's address
	// stays on-link.
	for _, c := range []struct{ dst, want string }{
		{"203.0.113.11", "172.30.0.254"},
		{"2001:db8::11", "fd00:172:30::fe"},
		{"172.30.0.1", "<nil>"},
	} {
		var routes []netlink.Route
		err := Do(NodeNetns(name, 1), func() error {
			var err error
			routes, err = netlink.RouteGet(net.ParseIP(c.dst))
			return err
		})
		if err != nil || len(routes) == 0 || routes[0].Gw.String() != c.want {
			t.Errorf("node-1: route to %s = %v, %v; want via %s", c.dst, routes, err, c.want)
		}
	}
	// The outside host: no route to pods, marked traffic to node-i.
	err = Do(outside, func() error {
		if r, err := netlink.RouteGet(net.ParseIP("10.244.0.10")); err == nil {
			return fmt.Errorf("route to a pod address: %v", r)
		}
		for i, want := range map[int]string{1: "172.30.0.11", 2: "172.30.0.12"} {
			r, err := netlink.RouteGetWithOptions(net.ParseIP("198.51.100.10"), &netlink.RouteGetOptions{Mark: ViaMark(i)})
			if err != nil || len(r) == 0 || r[0].Gw.String() != want {
				return fmt.Errorf("with mark %d: route to 198.51.100.10 = %v, %v; want via %s", ViaMark(i), r, err, want)
			}
		}
		r, err := netlink.RouteGetWithOptions(net.ParseIP("2001:db8:1::10"), &netlink.RouteGetOptions{Mark: ViaMark(2)})
		if err != nil || len(r) == 0 || r[0].Gw.String() != "fd00:172:30::12" {
			return fmt.Errorf("with mark %d: route to 2001:db8:1::10 = %v, %v; want via fd00:172:30::12", ViaMark(2), r, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	// A client at a world address reaches node-2 and gets its answer back
	// through node-2's default route, in both families.
	serveEcho(t, NodeNetns(name, 2), "172.30.0.12:7000")
	serveEcho(t, NodeNetns(name, 2), "[fd00:172:30::12]:7000")
	for _, c := range []struct {
		src    netip.Addr
		target string
	}{{client, "172.30.0.12:7000"}, {client6, "[fd00:172:30::12]:7000"}} {
		err := Do(outside, func() error {
			d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: c.src.AsSlice()}}
			conn, err := d.Dial("tcp", c.target)
			if err != nil {
				return err
			}
			defer conn.Close()
			if got := conn.LocalAddr().(*net.TCPAddr).IP.String(); got != c.src.String() {
				return fmt.Errorf("connected from %s", got)
			}
			return nil
		})
		if err != nil {
			t.Errorf("outside %s -> %s: %v", c.src, c.target, err)
		}
	}
	if err := DelWorldAddr(name, client); err != nil {
		t.Error(err)
	}
	if err := DelWorldAddr(name, client); err != nil {
		t.Errorf("deleting an address twice: %v", err)
	}
	if err := Down(name); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if _, err := os.Stat(NetnsPath(outside)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns %s is left after Down: %v", outside, err)
	}
}
