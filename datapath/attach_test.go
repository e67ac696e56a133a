package datapath_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

// newPodNetwork is the node and pod namespaces these tests attach to.
func newPodNetwork(t *testing.T) *datapathtest.PodNetwork {
	return datapathtest.NewPodNetwork(t, "kestrel-test", netip.MustParseAddr("10.200.0.1"), netip.MustParseAddr("10.200.0.2"))
}

// attachedPodNetwork loads a datapath and attaches it to the host side of a
// fresh pod network; both go when the test ends.
func attachedPodNetwork(t *testing.T) (*datapath.Datapath, *datapathtest.PodNetwork) {
	d := datapathtest.Load(t)
	n := newPodNetwork(t)
	var links *datapath.PodDeviceLinks
	var err error
	n.In(t, n.Node, func() { links, err = d.AttachPodDevice(n.HostIfindex, "") })
	if err != nil {
		datapathtest.SkipOrFail(t, err)
	}
	t.Cleanup(func() { links.Close() })
	return d, n
}

// enforcePod makes the pod endpoint 1 (identity idA, both directions
// enforced) and the node the host identity.
func enforcePod(t *testing.T, d *datapath.Datapath, n *datapathtest.PodNetwork) {
	must(t, d.SyncIPCache([]datapath.IPCacheEntry{
		{Prefix: netip.PrefixFrom(n.NodeIP, 32), Identity: 1},
		{Prefix: netip.PrefixFrom(n.PodIP, 32), Identity: idA},
	}))
	must(t, d.UpsertEndpoint(n.Endpoint(1, idA, true)))
}

func TestTCXAttachedProgramsPoliceRealTraffic(t *testing.T) {
	d, n := attachedPodNetwork(t)
	var err error

	var ln net.Listener
	n.In(t, n.Node, func() { ln, err = net.Listen("tcp", net.JoinHostPort(n.NodeIP.String(), "8080")) })
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
		n.In(t, n.Pod, func() { c, err = net.DialTimeout("tcp", ln.Addr().String(), 700*time.Millisecond) })
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 2)
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(buf)
		return err
	}

	enforcePod(t, d, n)
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

// A UDP datagram larger than the link MTU leaves the pod as IP fragments;
// the attached programs must pass the fragments of an allowed datagram (and
// of its reply) and drop those of a denied one, by policy.
func TestFragmentedDatagramsCrossTheAttachedPrograms(t *testing.T) {
	d, n := attachedPodNetwork(t)
	var err error

	var srv *net.UDPConn
	n.In(t, n.Node, func() {
		srv, err = net.ListenUDP("udp", &net.UDPAddr{IP: n.NodeIP.AsSlice(), Port: 5353})
	})
	must(t, err)
	defer srv.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			k, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			srv.WriteToUDP(buf[:k], from)
		}
	}()
	// exchange sends 4000 bytes (three fragments at MTU 1500) and waits for the echo.
	exchange := func() error {
		var c net.Conn
		var err error
		n.In(t, n.Pod, func() { c, err = net.Dial("udp", srv.LocalAddr().String()) })
		if err != nil {
			return err
		}
		defer c.Close()
		msg := make([]byte, 4000)
		for i := range msg {
			msg[i] = byte(i)
		}
		if _, err := c.Write(msg); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		got := make([]byte, 8000)
		k, err := c.Read(got)
		if err != nil {
			return err
		}
		if k != len(msg) {
			return fmt.Errorf("echo of %d bytes, want %d", k, len(msg))
		}
		return nil
	}

	enforcePod(t, d, n)
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: 1, Direction: datapath.Egress, Protocol: 17, PortLo: 5353}}))
	if err := exchange(); err != nil {
		t.Fatalf("egress to the host on UDP 5353 is allowed, yet the fragmented exchange failed: %v", err)
	}
	counters, err := d.Counters()
	must(t, err)
	if fwd := counters[datapath.CounterKey{Direction: datapath.Egress}]; fwd.Packets < 3 {
		t.Fatalf("the datagram should have crossed as at least 3 fragments, counted %d packets", fwd.Packets)
	}

	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: 1, Direction: datapath.Egress, Protocol: 17, PortLo: 9999}}))
	must(t, d.FlushConntrack())
	if err := exchange(); err == nil {
		t.Fatal("the policy no longer allows 5353, yet the fragmented datagram got through")
	}
	counters, err = d.Counters()
	must(t, err)
	reasons, err := datapath.DropReasons()
	must(t, err)
	if denied := counters[datapath.CounterKey{Reason: reasons["POLICY_DENIED"], Direction: datapath.Egress}]; denied.Packets < 3 {
		t.Fatalf("every fragment of the denied datagram should be a policy drop, counted %d", denied.Packets)
	}
	if nf := counters[datapath.CounterKey{Reason: reasons["FRAG_NOT_FOUND"], Direction: datapath.Egress}]; nf.Packets != 0 {
		t.Fatalf("%d fragments lost their first fragment's ports", nf.Packets)
	}
}
