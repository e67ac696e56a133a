package cni

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"

	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/agent/api"
)

// The sim's node-1 ranges (sim/README.md).
const (
	dsCIDR4 = "10.244.0.0/24"
	dsCIDR6 = "fd00:10:244::/64"
)

func TestPluginDualStack(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"ADD gives eth0 an address per family with routes, returns both and registers both with the MAC", testDualAdd},
		{"IPv6 works both ways over real neighbour discovery through fe80::1", testDualReachesNode},
		{"ADD honours a KESTREL_IP per family", testDualRequested},
		{"CHECK passes after ADD and names a missing IPv6 route and gateway address", testDualCheck},
		{"DEL frees both addresses", testDualDel},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newEnv(t, "10.244.0.1", dsCIDR4, dsCIDR6))
		})
	}
	t.Run("an IPv6-only config needs no gateway and wires the pod", func(t *testing.T) {
		e := newEnv(t, "", dsCIDR6)
		p := e.newPod()
		res, err := e.add(e.conflist("1.0.0", ""), e.runtimeConf(p))
		if err != nil {
			t.Fatalf("ADD: %v", err)
		}
		r, _ := types100.NewResultFromResult(res)
		if len(r.IPs) != 1 || r.IPs[0].Address.String() != "fd00:10:244::1/128" || r.IPs[0].Gateway.String() != "fe80::1" {
			t.Errorf("result ips = %s", dump(r.IPs))
		}
		if err := e.check(e.conflist("1.0.0", ""), e.runtimeConf(p)); err != nil {
			t.Errorf("CHECK: %v", err)
		}
	})
}

func testDualAdd(t *testing.T, e *env) {
	p, r, host, eth0 := e.addPod(t)
	hostName := host.Attrs().Name

	// The result: both addresses on the pod interface, each with its
	// family's gateway, and each family's routes.
	if len(r.IPs) != 2 ||
		r.IPs[0].Address.String() != "10.244.0.2/32" || r.IPs[0].Gateway.String() != "10.244.0.1" || *r.IPs[0].Interface != 1 ||
		r.IPs[1].Address.String() != "fd00:10:244::1/128" || r.IPs[1].Gateway.String() != "fe80::1" || *r.IPs[1].Interface != 1 {
		t.Errorf("result ips = %s", dump(r.IPs))
	}
	var routes []string
	for _, rt := range r.Routes {
		routes = append(routes, rt.Dst.String()+" via "+rt.GW.String())
	}
	if want := []string{"10.244.0.1/32 via <nil>", "0.0.0.0/0 via 10.244.0.1", "::/0 via fe80::1"}; !slices.Equal(routes, want) {
		t.Errorf("result routes = %q, want %q", routes, want)
	}

	// The pod side: the IPv6 address is usable at once (not tentative).
	addrs6, _ := p.nl.AddrList(eth0, netlink.FAMILY_V6)
	i := slices.IndexFunc(addrs6, func(a netlink.Addr) bool { return a.IPNet.String() == "fd00:10:244::1/128" })
	if i < 0 {
		t.Fatalf("eth0 IPv6 addresses = %v, want fd00:10:244::1/128", addrs6)
	}
	if addrs6[i].Flags&unix.IFA_F_TENTATIVE != 0 {
		t.Errorf("fd00:10:244::1 is tentative (flags %#x): DAD would hold it back", addrs6[i].Flags)
	}
	addrs4, _ := p.nl.AddrList(eth0, netlink.FAMILY_V4)
	if len(addrs4) != 1 || addrs4[0].IPNet.String() != "10.244.0.2/32" {
		t.Errorf("eth0 IPv4 addresses = %v", addrs4)
	}
	podRoutes6, _ := p.nl.RouteList(eth0, netlink.FAMILY_V6)
	if !slices.ContainsFunc(podRoutes6, func(r netlink.Route) bool { return routeDst(&r) == "::/0" && r.Gw.String() == "fe80::1" }) {
		t.Errorf("pod IPv6 routes = %v, want default via fe80::1", podRoutes6)
	}

	// The node side: fe80::1 on the host veth and a route to each address.
	hostAddrs, _ := e.nodeNL.AddrList(host, netlink.FAMILY_V6)
	if !slices.ContainsFunc(hostAddrs, func(a netlink.Addr) bool { return a.IPNet.String() == "fe80::1/64" }) {
		t.Errorf("host veth IPv6 addresses = %v, want fe80::1/64", hostAddrs)
	}
	for fam, want := range map[int]string{netlink.FAMILY_V4: "10.244.0.2/32", netlink.FAMILY_V6: "fd00:10:244::1/128"} {
		hr, _ := e.nodeNL.RouteList(host, fam)
		if !slices.ContainsFunc(hr, func(r netlink.Route) bool { return r.Dst != nil && r.Dst.String() == want }) {
			t.Errorf("node routes on %s = %v, want %s", hostName, hr, want)
		}
	}

	// IPAM and the agent.
	if got := e.ipamFiles(); len(got) != 2 || got["10.244.0.2"] != p.id+"\neth0" || got["fd00:10:244::1"] != p.id+"\neth0" {
		t.Errorf("ipam records = %q", got)
	}
	puts, _ := e.agent.recorded()
	want := api.EndpointRequest{
		ContainerID: p.id, PodNamespace: "default", PodName: "web-" + p.id[:8], Netns: p.path,
		HostInterface: hostName, HostIfIndex: host.Attrs().Index, MAC: eth0.Attrs().HardwareAddr.String(),
		IPs: []string{"10.244.0.2", "fd00:10:244::1"},
	}
	if len(puts) != 1 || dump(puts[0]) != dump(want) {
		t.Errorf("agent PUTs = %s, want [%s]", dump(puts), dump(want))
	}
	if len(want.MAC) != len("aa:bb:cc:dd:ee:ff") {
		t.Errorf("eth0 MAC %q is not an Ethernet address", want.MAC)
	}
}

// testDualReachesNode sends TCP over IPv6 from the pod to the node and from
// the node to the pod. Neither side has a static neighbour entry: the pod
// resolves fe80::1 and the node resolves the pod's address by neighbour
// discovery across the veth.
func testDualReachesNode(t *testing.T, e *env) {
	p := e.newPod()
	if _, err := e.add(e.conflist("1.0.0", ""), e.runtimeConf(p)); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	var nodeLn net.Listener
	e.inNode(func() {
		var err error
		nodeLn, err = net.Listen("tcp", net.JoinHostPort(nodeAddr6, "0"))
		must(t, err)
	})
	defer nodeLn.Close()
	go echo(nodeLn)
	var conn net.Conn
	inNetns(t, p.ns, func() {
		var err error
		conn, err = net.DialTimeout("tcp", nodeLn.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatalf("pod cannot connect to %s in the node netns: %v", nodeLn.Addr(), err)
		}
	})
	roundTrip(t, conn, "pod -> node")
	if got := conn.LocalAddr().(*net.TCPAddr).IP.String(); got != "fd00:10:244::1" {
		t.Errorf("pod connected from %s, want fd00:10:244::1", got)
	}
	conn.Close()

	host, _ := e.hostLink(p)
	eth0, _ := p.nl.LinkByName("eth0")
	neighs, _ := p.nl.NeighList(eth0.Attrs().Index, netlink.FAMILY_V6)
	if !slices.ContainsFunc(neighs, func(n netlink.Neigh) bool {
		return n.IP.String() == "fe80::1" && n.HardwareAddr.String() == host.Attrs().HardwareAddr.String()
	}) {
		t.Errorf("pod IPv6 neighbours = %v, want fe80::1 at %s", neighs, host.Attrs().HardwareAddr)
	}

	var podLn net.Listener
	inNetns(t, p.ns, func() {
		var err error
		podLn, err = net.Listen("tcp", "[fd00:10:244::1]:0")
		must(t, err)
	})
	defer podLn.Close()
	go echo(podLn)
	e.inNode(func() {
		var err error
		conn, err = net.DialTimeout("tcp", podLn.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatalf("node cannot connect to the pod at %s: %v", podLn.Addr(), err)
		}
	})
	roundTrip(t, conn, "node -> pod")
	conn.Close()
}

func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

func roundTrip(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("%s: echo %q, %v", what, buf, err)
	}
}

func testDualRequested(t *testing.T, e *env) {
	l := e.conflist("1.0.0", "")
	p1, p2 := e.newPod(), e.newPod()
	res, err := e.add(l, e.runtimeConf(p1, [2]string{"KESTREL_IP", "10.244.0.10,fd00:10:244::a"}))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	r, _ := types100.NewResultFromResult(res)
	if len(r.IPs) != 2 || r.IPs[0].Address.IP.String() != "10.244.0.10" || r.IPs[1].Address.IP.String() != "fd00:10:244::a" {
		t.Errorf("result ips = %s, want the requested 10.244.0.10 and fd00:10:244::a", dump(r.IPs))
	}
	_, err = e.add(l, e.runtimeConf(p2, [2]string{"KESTREL_IP", "10.244.0.11,fd00:10:244::a"}))
	wantErr(t, err, "fd00:10:244::a is taken by container "+p1.id)
	if got := e.ipamFiles(); len(got) != 2 {
		t.Errorf("a refused ADD left ipam records: %q", got)
	}
	if _, ok := e.hostLink(p2); ok {
		t.Error("a refused ADD left its host veth")
	}
}

func testDualCheck(t *testing.T, e *env) {
	l := e.conflist("1.0.0", "")
	p := e.newPod()
	rt := e.runtimeConf(p)
	if _, err := e.add(l, rt); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if err := e.check(l, rt); err != nil {
		t.Fatalf("CHECK after ADD: %v", err)
	}
	eth0, _ := p.nl.LinkByName("eth0")
	_, all6, _ := net.ParseCIDR("::/0")
	must(t, p.nl.RouteDel(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: all6, Gw: net.ParseIP("fe80::1")}))
	wantErr(t, e.check(l, rt), "pod netns: route default via fe80::1 dev eth0 missing")

	host, _ := e.hostLink(p)
	must(t, e.nodeNL.AddrDel(host, hostGatewayV6()))
	wantErr(t, e.check(l, rt), "node netns: address fe80::1/64 on "+HostIfName(p.id)+" missing")
}

func testDualDel(t *testing.T, e *env) {
	l := e.conflist("1.0.0", "")
	p := e.newPod()
	rt := e.runtimeConf(p)
	if _, err := e.add(l, rt); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if got := e.ipamFiles(); len(got) != 2 {
		t.Fatalf("ipam records after ADD = %q", got)
	}
	if err := e.del(l, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if got := e.ipamFiles(); len(got) != 0 {
		t.Errorf("ipam records left: %q", got)
	}
	if _, ok := e.hostLink(p); ok {
		t.Error("host veth still there")
	}
	// Both addresses are free again: the next pod may ask for them.
	if _, err := e.add(l, e.runtimeConf(e.newPod(), [2]string{"KESTREL_IP", "10.244.0.2,fd00:10:244::1"})); err != nil {
		t.Errorf("ADD of the freed addresses: %v", err)
	}
}
