package cni

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types040 "github.com/containernetworking/cni/pkg/types/040"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/kestrelnet/kestrel/agent/api"
)

func TestPlugin(t *testing.T) {
	cases := []struct {
		name string
		cidr string // default 10.244.0.0/24
		run  func(t *testing.T, e *env)
	}{
		{name: "ADD creates the veth, address and routes and registers the endpoint", run: testAddWiresThePod},
		{name: "the pod reaches the node through the gateway answered by proxy ARP", run: testPodReachesNode},
		{name: "ADD honours KESTREL_IP and refuses it when taken or outside the CIDR", run: testRequestedIP},
		{name: "two ADDs get different addresses", run: testTwoAdds},
		{name: "a repeated ADD for one container keeps its address", run: testAddIsIdempotent},
		{name: "ADD when the agent refuses leaves no veth and no IPAM record", run: testAgentRefuses},
		{name: "DEL twice succeeds and frees everything", run: testDelTwice},
		{name: "DEL without an ADD succeeds", run: testDelWithoutAdd},
		{name: "DEL after the netns is gone succeeds", run: testDelAfterNetnsGone},
		{name: "DEL succeeds while the agent is down", run: testDelAgentDown},
		{name: "CHECK passes after ADD and names a deleted route", run: testCheck},
		{name: "STATUS fails with code 50 while the agent is down and passes when it is up", run: testStatus},
		{name: "a bad config is rejected naming the field", run: testBadConfig},
		{name: "address exhaustion in a /30 gives a clear error", cidr: "10.244.0.0/30", run: testExhaustion},
		{name: "a 0.4.0 runtime gets a 0.4.0 result", run: testOldVersion},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cidr := c.cidr
			if cidr == "" {
				cidr = "10.244.0.0/24"
			}
			c.run(t, newEnv(t, "10.244.0.1", cidr))
		})
	}
}

func testAddWiresThePod(t *testing.T, e *env) {
	p, r, host, eth0 := e.addPod(t)
	hostName := host.Attrs().Name

	// The result.
	if len(r.Interfaces) != 2 || r.Interfaces[0].Name != hostName || r.Interfaces[0].Mac != host.Attrs().HardwareAddr.String() ||
		r.Interfaces[1].Name != "eth0" || r.Interfaces[1].Mac != eth0.Attrs().HardwareAddr.String() || r.Interfaces[1].Sandbox != p.path {
		t.Errorf("result interfaces = %s", dump(r.Interfaces))
	}
	if len(r.IPs) != 1 || r.IPs[0].Address.String() != "10.244.0.2/32" || r.IPs[0].Gateway.String() != "10.244.0.1" ||
		r.IPs[0].Interface == nil || *r.IPs[0].Interface != 1 {
		t.Errorf("result ips = %s", dump(r.IPs))
	}
	if len(r.Routes) != 2 || r.Routes[0].Dst.String() != "10.244.0.1/32" || r.Routes[1].Dst.String() != "0.0.0.0/0" || r.Routes[1].GW.String() != "10.244.0.1" {
		t.Errorf("result routes = %s", dump(r.Routes))
	}

	// The pod side.
	if eth0.Attrs().Flags&net.FlagUp == 0 {
		t.Error("eth0 is down")
	}
	addrs, _ := p.nl.AddrList(eth0, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.244.0.2/32" {
		t.Errorf("eth0 addresses = %v, want 10.244.0.2/32", addrs)
	}
	if lo, _ := p.nl.LinkByName("lo"); lo == nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Error("lo is down in the pod")
	}
	routes, _ := p.nl.RouteList(eth0, netlink.FAMILY_V4)
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return r.Dst != nil && r.Dst.String() == "10.244.0.1/32" && r.Scope == netlink.SCOPE_LINK
	}) || !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return routeDst(&r) == "0.0.0.0/0" && r.Gw.String() == "10.244.0.1"
	}) {
		t.Errorf("pod routes = %v, want 10.244.0.1 scope link and default via 10.244.0.1", routes)
	}

	// The node side.
	if host.Attrs().Flags&net.FlagUp == 0 {
		t.Error("host veth is down")
	}
	for _, s := range []string{"net/ipv4/conf/" + hostName + "/proxy_arp", "net/ipv4/conf/" + hostName + "/forwarding"} {
		if v := e.sysctl(s); v != "1" {
			t.Errorf("%s = %s, want 1", s, v)
		}
	}
	hostRoutes, _ := e.nodeNL.RouteList(host, netlink.FAMILY_V4)
	if !slices.ContainsFunc(hostRoutes, func(r netlink.Route) bool { return r.Dst != nil && r.Dst.String() == "10.244.0.2/32" }) {
		t.Errorf("node routes on %s = %v, want 10.244.0.2/32", hostName, hostRoutes)
	}

	// IPAM and the agent.
	if got := e.ipamFiles(); len(got) != 1 || got["10.244.0.2"] != p.id+"\neth0" {
		t.Errorf("ipam records = %q", got)
	}
	puts, _ := e.agent.recorded()
	want := api.EndpointRequest{
		ContainerID: p.id, PodNamespace: "default", PodName: "web-" + p.id[:8], Netns: p.path,
		HostInterface: hostName, HostIfIndex: host.Attrs().Index, MAC: eth0.Attrs().HardwareAddr.String(), IPs: []string{"10.244.0.2"},
	}
	if len(puts) != 1 || dump(puts[0]) != dump(want) {
		t.Errorf("agent PUTs = %s, want [%s]", dump(puts), dump(want))
	}
}

func testPodReachesNode(t *testing.T, e *env) {
	p := e.newPod()
	if _, err := e.add(e.conflist("1.0.0", ""), e.runtimeConf(p)); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	var ln net.Listener
	e.inNode(func() {
		var err error
		ln, err = net.Listen("tcp", nodeAddr+":0")
		must(t, err)
	})
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()

	var conn net.Conn
	inNetns(t, p.ns, func() {
		var err error
		conn, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatalf("pod cannot connect to %s in the node netns: %v", ln.Addr(), err)
		}
	})
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the gateway: %q, %v", buf, err)
	}
	if got := conn.LocalAddr().(*net.TCPAddr).IP.String(); got != "10.244.0.2" {
		t.Errorf("pod connected from %s, want 10.244.0.2", got)
	}

	// The gateway's MAC the pod learnt is the host veth's: proxy ARP answered.
	host, _ := e.hostLink(p)
	eth0, _ := p.nl.LinkByName("eth0")
	neighs, _ := p.nl.NeighList(eth0.Attrs().Index, netlink.FAMILY_V4)
	if !slices.ContainsFunc(neighs, func(n netlink.Neigh) bool {
		return n.IP.String() == "10.244.0.1" && n.HardwareAddr.String() == host.Attrs().HardwareAddr.String()
	}) {
		t.Errorf("pod neighbours = %v, want 10.244.0.1 at %s", neighs, host.Attrs().HardwareAddr)
	}
}

func testRequestedIP(t *testing.T, e *env) {
	l := e.conflist("1.0.0", "")
	p1, p2, p3 := e.newPod(), e.newPod(), e.newPod()
	res, err := e.add(l, e.runtimeConf(p1, [2]string{"KESTREL_IP", "10.244.0.77"}))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if r, _ := types100.NewResultFromResult(res); r.IPs[0].Address.IP.String() != "10.244.0.77" {
		t.Errorf("got %s, want the requested 10.244.0.77", r.IPs[0].Address.IP)
	}
	_, err = e.add(l, e.runtimeConf(p2, [2]string{"KESTREL_IP", "10.244.0.77"}))
	wantErr(t, err, "10.244.0.77 is taken by container "+p1.id)
	_, err = e.add(l, e.runtimeConf(p3, [2]string{"KESTREL_IP", "10.9.9.9"}))
	wantErr(t, err, "10.9.9.9: it is outside podCIDRs 10.244.0.0/24")
	if _, ok := e.hostLink(p2); ok {
		t.Error("a refused ADD left its host veth")
	}
}

func testTwoAdds(t *testing.T, e *env) {
	l := e.conflist("1.0.0", "")
	var ips []string
	for range 2 {
		res, err := e.add(l, e.runtimeConf(e.newPod()))
		if err != nil {
			t.Fatalf("ADD: %v", err)
		}
		r, _ := types100.NewResultFromResult(res)
		ips = append(ips, r.IPs[0].Address.IP.String())
	}
	if ips[0] == ips[1] {
		t.Errorf("both pods got %s", ips[0])
	}
	if len(e.ipamFiles()) != 2 {
		t.Errorf("ipam records = %v, want 2", e.ipamFiles())
	}
}

func testAddIsIdempotent(t *testing.T, e *env) {
	l := e.conflist("1.0.0", "")
	p := e.newPod()
	var first string
	for i := range 2 {
		res, err := e.add(l, e.runtimeConf(p))
		if err != nil {
			t.Fatalf("ADD %d: %v", i+1, err)
		}
		r, _ := types100.NewResultFromResult(res)
		if i == 0 {
			first = r.IPs[0].Address.String()
		} else if got := r.IPs[0].Address.String(); got != first {
			t.Errorf("second ADD got %s, first %s", got, first)
		}
	}
	if len(e.ipamFiles()) != 1 {
		t.Errorf("ipam records = %v, want 1", e.ipamFiles())
	}
	if err := e.check(l, e.runtimeConf(p)); err != nil {
		t.Errorf("CHECK after a repeated ADD: %v", err)
	}
}

func testAgentRefuses(t *testing.T, e *env) {
	msg := "pod default/web has no identity yet"
	e.agent.failPut.Store(&msg)
	p := e.newPod()
	_, err := e.add(e.conflist("1.0.0", ""), e.runtimeConf(p))
	wantErr(t, err, msg)
	if _, ok := e.hostLink(p); ok {
		t.Error("host veth left behind")
	}
	if _, err := p.nl.LinkByName("eth0"); err == nil {
		t.Error("eth0 left behind in the pod netns")
	}
	if got := e.ipamFiles(); len(got) != 0 {
		t.Errorf("ipam records left behind: %v", got)
	}
}

func testDelTwice(t *testing.T, e *env) {
	l := e.conflist("1.0.0", "")
	p := e.newPod()
	rt := e.runtimeConf(p)
	if _, err := e.add(l, rt); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	for i := range 2 {
		if err := e.del(l, rt); err != nil {
			t.Fatalf("DEL %d: %v", i+1, err)
		}
	}
	if _, ok := e.hostLink(p); ok {
		t.Error("host veth still there")
	}
	if got := e.ipamFiles(); len(got) != 0 {
		t.Errorf("ipam records left: %v", got)
	}
	if _, dels := e.agent.recorded(); len(dels) != 2 || dels[0] != p.id {
		t.Errorf("agent DELETEs = %v, want %s twice", dels, p.id)
	}
}

func testDelWithoutAdd(t *testing.T, e *env) {
	p := e.newPod()
	if err := e.del(e.conflist("1.0.0", ""), e.runtimeConf(p)); err != nil {
		t.Fatalf("DEL: %v", err)
	}
}

func testDelAfterNetnsGone(t *testing.T, e *env) {
	l := e.conflist("1.0.0", "")
	p := e.newPod()
	rt := e.runtimeConf(p)
	if _, err := e.add(l, rt); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	// Drop every reference so the kernel destroys the netns, and with it
	// the veth pair.
	p.nl.Delete()
	p.ns.Close()
	must(t, netns.DeleteNamed(filepath.Base(p.path)))
	if err := e.del(l, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if got := e.ipamFiles(); len(got) != 0 {
		t.Errorf("ipam records left: %v", got)
	}
	if _, dels := e.agent.recorded(); len(dels) != 1 || dels[0] != p.id {
		t.Errorf("agent DELETEs = %v, want [%s]", dels, p.id)
	}
	if _, ok := e.hostLink(p); ok {
		t.Error("host veth still there after DEL")
	}
}

func testDelAgentDown(t *testing.T, e *env) {
	l := e.conflist("1.0.0", "")
	p := e.newPod()
	rt := e.runtimeConf(p)
	if _, err := e.add(l, rt); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	e.agent.stop()
	if err := e.del(l, rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if _, ok := e.hostLink(p); ok {
		t.Error("host veth still there")
	}
	if got := e.ipamFiles(); len(got) != 0 {
		t.Errorf("ipam records left: %v", got)
	}
}

func testCheck(t *testing.T, e *env) {
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
	_, all, _ := net.ParseCIDR("0.0.0.0/0")
	must(t, p.nl.RouteDel(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: all, Gw: net.ParseIP("10.244.0.1")}))
	wantErr(t, e.check(l, rt), "pod netns: route default via 10.244.0.1 dev eth0 missing")

	host, _ := e.hostLink(p)
	must(t, e.nodeNL.LinkSetDown(host))
	wantErr(t, e.check(l, rt), "node netns: "+HostIfName(p.id)+" is down")
}

func testStatus(t *testing.T, e *env) {
	l := e.conflist("1.1.0", "")
	if err := e.status(l); err != nil {
		t.Fatalf("STATUS with the agent up: %v", err)
	}
	e.agent.stop()
	err := e.status(l)
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != 50 {
		t.Fatalf("STATUS with the agent down = %v, want CNI error code 50", err)
	}
	wantErr(t, err, "kestrel-agent is not available")
	e.agent.start(t)
	if err := e.status(l); err != nil {
		t.Fatalf("STATUS with the agent back: %v", err)
	}
}

func testBadConfig(t *testing.T, e *env) {
	cases := []struct {
		name, extra, want string
	}{
		{"an unknown field", `, "agentSockett": "x"`, `"agentSockett": unknown field`},
		{"an mtu below IPv4's minimum", `, "mtu": 10`, "mtu: 10 is out of range"},
		{"a gateway outside the pod CIDR", `, "gateway": "10.9.0.1"`, "gateway: 10.9.0.1 is not inside podCIDRs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := e.newPod()
			_, err := e.add(e.conflist("1.0.0", c.extra), e.runtimeConf(p))
			wantErr(t, err, c.want)
			if _, ok := e.hostLink(p); ok {
				t.Error("host veth made despite the bad config")
			}
		})
	}
	t.Run("a bad CIDR", func(t *testing.T) {
		bad := *e
		bad.cidrs = []string{"10.244.0.0/33"}
		p := e.newPod()
		_, err := bad.add(bad.conflist("1.0.0", ""), bad.runtimeConf(p))
		wantErr(t, err, `podCIDRs[0]: "10.244.0.0/33" is not a CIDR`)
	})
}

func testExhaustion(t *testing.T, e *env) {
	l := e.conflist("1.0.0", "")
	res, err := e.add(l, e.runtimeConf(e.newPod()))
	if err != nil {
		t.Fatalf("first ADD: %v", err)
	}
	if r, _ := types100.NewResultFromResult(res); r.IPs[0].Address.IP.String() != "10.244.0.2" {
		t.Errorf("got %s, want 10.244.0.2, the only usable address", r.IPs[0].Address.IP)
	}
	p := e.newPod()
	_, err = e.add(l, e.runtimeConf(p))
	wantErr(t, err, "no free IPv4 address left in podCIDRs 10.244.0.0/30")
	if _, ok := e.hostLink(p); ok {
		t.Error("host veth made without an address")
	}
}

func testOldVersion(t *testing.T, e *env) {
	l := e.conflist("0.4.0", "")
	p := e.newPod()
	res, err := e.add(l, e.runtimeConf(p))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if _, ok := res.(*types040.Result); !ok || res.Version() != "0.4.0" {
		t.Errorf("result is %T version %s, want 0.4.0", res, res.Version())
	}
	if err := e.check(l, e.runtimeConf(p)); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := e.del(l, e.runtimeConf(p)); err != nil {
		t.Errorf("DEL: %v", err)
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}
