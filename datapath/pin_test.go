package datapath_test

import (
	"bufio"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

func TestPinnedStateOutlivesTheProcessAndIsAdopted(t *testing.T) {
	fs := datapathtest.BPFFS(t)
	cfg := datapath.Config{PinPath: filepath.Join(fs, "maps")}
	pin := filepath.Join(fs, "pod-a")
	n := newPodNetwork(t)
	allowed := n.EchoServer(t, "8080")
	n.EchoServer(t, "9090")

	dial := func(addr string) (net.Conn, error) {
		var c net.Conn
		var err error
		n.In(t, n.Pod, func() { c, err = net.DialTimeout("tcp", addr, 700*time.Millisecond) })
		return c, err
	}
	roundTrip := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		_, err := bufio.NewReader(c).ReadString('\n')
		return err
	}

	first := datapathtest.LoadConfig(t, cfg)
	must(t, first.SyncIPCache([]datapath.IPCacheEntry{{Prefix: netip.PrefixFrom(n.NodeIP, 32), Identity: 1}}))
	ep := n.Endpoint(1, idA, false)
	ep.EgressEnforced = true
	must(t, first.UpsertEndpoint(ep))
	must(t, first.SetPolicy(1, []datapath.PolicyEntry{{Identity: 1, Direction: datapath.Egress, Protocol: 6, PortLo: 8080}}))
	var links *datapath.PodDeviceLinks
	var err error
	n.In(t, n.Node, func() { links, err = first.AttachPodDevice(n.HostIfindex, pin) })
	if err != nil {
		datapathtest.SkipOrFail(t, err)
	}
	conn, err := dial(allowed.Addr().String())
	must(t, err)
	defer conn.Close()
	must(t, roundTrip(conn))

	// The agent goes away: every file descriptor of this datapath is closed.
	links.Close()
	first.Close()

	if err := roundTrip(conn); err != nil {
		t.Fatalf("an established connection broke while no agent held the datapath: %v", err)
	}
	if c, err := dial(net.JoinHostPort(n.NodeIP.String(), "9090")); err == nil {
		c.Close()
		t.Fatal("policy stopped being enforced while no agent held the datapath")
	}

	// A new agent adopts the pinned maps and links, flushing nothing.
	second := datapathtest.LoadConfig(t, cfg)
	if n, err := second.ConntrackEntries(); err != nil || n == 0 {
		t.Fatalf("the adopted conntrack is empty (%d, %v)", n, err)
	}
	n.In(t, n.Node, func() { links, err = second.AttachPodDevice(n.HostIfindex, pin) })
	must(t, err)
	defer links.Detach()
	if err := roundTrip(conn); err != nil {
		t.Fatalf("the connection broke when the new agent adopted the links: %v", err)
	}
	c, err := dial(allowed.Addr().String())
	must(t, err)
	c.Close()
}
