package sim

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/scenarios/engine"
	"github.com/kestrelnet/kestrel/sim/network"
)

// A spec.world server on the outside host answers live probes: from a
// world source on the outside host (bound to its own address), and from a
// node, whose default route leads to the outside host. Each answer names
// the client address the server saw. Only the sim's network is built (no
// control plane); run it under flock /tmp/kestrel-sim.lock.
func TestAWorldServerOnTheOutsideHostAnswersLiveProbes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to build the sim network: run the tests as root")
	}
	name := fmt.Sprintf("w%x", os.Getpid()%0xfffff)
	t.Cleanup(func() { network.Down(name) })
	err := network.Up(network.Options{Name: name, Nodes: 2})
	if errors.Is(err, network.ErrUnderlayTaken) && os.Getenv("KESTREL_REQUIRE_PRIVILEGED") != "1" {
		t.Skipf("a sim cluster is up on this host and owns the one underlay: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	server := netip.MustParseAddr("203.0.113.11")
	server6 := netip.MustParseAddr("2001:db8::11")
	c := &engine.Cluster{World: []engine.WorldServer{
		{IP: server, Ports: []engine.WorldPort{{Port: 80, Protocol: "TCP"}, {Port: 443, Protocol: "TCP"}, {Port: 53, Protocol: "UDP"}}},
		{IP: server6, Ports: []engine.WorldPort{{Port: 80, Protocol: "TCP"}}},
	}}
	w := newWorld(simOutside{name})
	t.Cleanup(func() { w.close() })
	if err := w.sync(c.World); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddr("203.0.113.2")
	if err := w.addAddr(client); err != nil {
		t.Fatal(err)
	}
	outside := origin{netns: network.OutsideNetns(name), src: client}
	node := origin{netns: network.NodeNetns(name, 1)}

	for _, c := range []struct {
		name   string
		run    func() (string, string, string)
		answer string
	}{
		{"TCP 80 from a world source", func() (string, string, string) { return tcpProbe(outside, "203.0.113.11:80") }, "world:203.0.113.11 80 203.0.113.2"},
		{"TCP 443 from a world source", func() (string, string, string) { return tcpProbe(outside, "203.0.113.11:443") }, "world:203.0.113.11 443 203.0.113.2"},
		{"UDP 53 from a world source", func() (string, string, string) { return udpProbe(outside, "203.0.113.11:53") }, "world:203.0.113.11 53 203.0.113.2"},
		{"TCP 80 from node-1", func() (string, string, string) { return tcpProbe(node, "203.0.113.11:80") }, "world:203.0.113.11 80 172.30.0.11"},
		{"TCP 80 over IPv6 from node-1", func() (string, string, string) { return tcpProbe(node, "[2001:db8::11]:80") }, "world:2001:db8::11 80 fd00:172:30::11"},
	} {
		verdict, evidence, answer := c.run()
		if verdict != "allowed" || answer != c.answer {
			t.Errorf("%s: %s (%s), answer %q; want allowed, %q", c.name, verdict, evidence, answer, c.answer)
		}
	}
	if v, ev := pingProbe(node, server); v != "allowed" {
		t.Errorf("ping from node-1 to the world server: %s (%s)", v, ev)
	}
	// No world server holds this port: the outside host refuses it.
	if v, ev, _ := tcpProbe(outside, "203.0.113.11:8080"); v != "rejected" {
		t.Errorf("a port no world server has: %s (%s), want rejected", v, ev)
	}
	// A world address no spec.world server holds gets a stand-in server
	// for the probe's port (or only the address, for a ping).
	for _, si := range []struct {
		addr   string
		port   uint16
		proto  string
		run    func() (string, string, string)
		answer string
	}{
		{"8.8.8.8", 443, "TCP", func() (string, string, string) { return tcpProbe(node, "8.8.8.8:443") }, "world:8.8.8.8 443 172.30.0.11"},
		{"8.8.8.8", 53, "UDP", func() (string, string, string) { return udpProbe(node, "8.8.8.8:53") }, "world:8.8.8.8 53 172.30.0.11"},
		{"2001:db8::99", 80, "TCP", func() (string, string, string) { return tcpProbe(node, "[2001:db8::99]:80") }, "world:2001:db8::99 80 fd00:172:30::11"},
	} {
		if err := w.standIn(netip.MustParseAddr(si.addr), si.port, si.proto); err != nil {
			t.Fatal(err)
		}
		if verdict, evidence, answer := si.run(); verdict != "allowed" || answer != si.answer {
			t.Errorf("stand-in %s %d/%s: %s (%s), answer %q; want allowed, %q", si.addr, si.port, si.proto, verdict, evidence, answer, si.answer)
		}
	}
	if err := w.standIn(netip.MustParseAddr("1.1.1.1"), 0, "ICMP"); err != nil {
		t.Fatal(err)
	}
	if v, ev := pingProbe(node, netip.MustParseAddr("1.1.1.1")); v != "allowed" {
		t.Errorf("ping from node-1 to a stand-in address: %s (%s)", v, ev)
	}
	// A spec.world server on a stand-in's address takes it over.
	taken := engine.WorldServer{IP: netip.MustParseAddr("8.8.8.8"), Ports: []engine.WorldPort{{Port: 443, Protocol: "TCP"}}}
	if err := w.sync(append(c.World[:2:2], taken)); err != nil {
		t.Fatalf("a spec.world server on a stand-in's address: %v", err)
	}
	if v, ev, _ := udpProbe(node, "8.8.8.8:53"); v == "allowed" {
		t.Errorf("the stand-in outlived the scenario's own server on its address: %s", ev)
	}

	// A changed spec.world replaces the server; a closed session takes its
	// servers and addresses away.
	if err := w.sync(c.World[1:]); err != nil {
		t.Fatal(err)
	}
	if v, ev, _ := tcpProbe(node, "203.0.113.11:80"); v == "allowed" {
		t.Errorf("a server the scenario no longer has still answers: %s", ev)
	}
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	err = network.Do(network.OutsideNetns(name), func() error {
		out, err := os.ReadFile("/proc/net/if_inet6")
		if err == nil && strings.Contains(string(out), "20010db8000000000000000000000011") {
			return fmt.Errorf("2001:db8::11 is still on the outside host")
		}
		if err == nil && strings.Contains(string(out), "20010db8000000000000000000000099") {
			return fmt.Errorf("the stand-in's 2001:db8::99 is still on the outside host")
		}
		return err
	})
	if err != nil {
		t.Error(err)
	}
}
