package datapath_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// A client pod on the same node: its packets are forwarded by the node to
// the server pod's device, where to_container turns them back to the proxy,
// data included. Without datapath.ProxySysctls the handshake's ACK never
// arrives: early demux attaches the proxy's socket to the forwarded packet,
// and ip_forward drops a packet that has a socket.
func TestProxyRedirectIngressFromAnotherPodLive(t *testing.T) {
	d, n := proxyPodNetwork(t)
	clientIP := netip.MustParseAddr("10.202.0.2")
	name := fmt.Sprintf("kestrel-test-client-%d", os.Getpid())
	cns, err := netns.NewNamed(name)
	must(t, err)
	must(t, netns.Set(n.Orig))
	t.Cleanup(func() { cns.Close(); netns.DeleteNamed(name) })
	hn, err := netlink.NewHandleAt(n.Node)
	must(t, err)
	defer hn.Close()
	hc, err := netlink.NewHandleAt(cns)
	must(t, err)
	defer hc.Close()
	must(t, hn.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lxc1"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(cns)}))
	host, err := hn.LinkByName("lxc1")
	must(t, err)
	peer, err := hc.LinkByName("eth0")
	must(t, err)
	must(t, hn.AddrAdd(host, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 202, 0, 1), Mask: net.CIDRMask(24, 32)}}))
	must(t, hc.AddrAdd(peer, &netlink.Addr{IPNet: &net.IPNet{IP: clientIP.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
	must(t, hn.LinkSetUp(host))
	must(t, hc.LinkSetUp(peer))
	must(t, hc.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(10, 200, 0, 0), Mask: net.CIDRMask(24, 32)}, Gw: net.IPv4(10, 202, 0, 1)}))
	n.In(t, n.Node, func() { must(t, os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)) })
	must(t, d.SyncIPCache([]datapath.IPCacheEntry{
		{Prefix: netip.PrefixFrom(n.NodeIP, 32), Identity: 1},
		{Prefix: netip.PrefixFrom(n.PodIP, 32), Identity: idA},
		{Prefix: netip.PrefixFrom(clientIP, 32), Identity: idB},
	}))
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{
		{Identity: idB, Direction: datapath.Ingress, Protocol: 6, PortLo: 8080, Action: datapath.PolicyRedirect, ProxyPort: testProxyPort},
	}))
	var srv net.Listener
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
	startProxy(t, n)

	var c net.Conn
	n.In(t, cns, func() { c, err = net.Dial("tcp", netip.AddrPortFrom(n.PodIP, 8080).String()) })
	must(t, err)
	defer c.Close()
	line, err := roundTrip(c)
	if err != nil || !strings.HasPrefix(line, "proxied pod saw ") {
		t.Fatalf("client pod to server pod through the ingress proxy: %q, %v", line, err)
	}
}
