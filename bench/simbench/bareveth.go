package simbench

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/kestrelnet/kestrel/sim/network"
)

// The bare veth: two namespaces of the bench's own joined by a veth pair
// with nothing attached, the ceiling a pod's path is measured against.
// Named by this process, so that two runs (tests of two worktrees) never
// share them.
var (
	bareClientNetns = fmt.Sprintf("kestrel-bench-%d-veth-client", os.Getpid())
	bareServerNetns = fmt.Sprintf("kestrel-bench-%d-veth-server", os.Getpid())
)

var (
	bareClientIP = netip.MustParseAddr("169.254.201.1")
	bareServerIP = netip.MustParseAddr("169.254.201.2")
)

type bareVethPair struct{}

// bareVeth makes the two namespaces and the veth pair (addresses in a /30,
// both ends and loopback up), and returns a function that removes them.
func bareVeth() (*bareVethPair, func(), error) {
	cleanup := func() {
		network.DeleteNetns(bareClientNetns)
		network.DeleteNetns(bareServerNetns)
	}
	for _, n := range []string{bareClientNetns, bareServerNetns} {
		if err := network.EnsureNetns(n); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	server, err := netns.GetFromName(bareServerNetns)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	defer server.Close()
	up := func(name string, addr netip.Addr) error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(30, 32)}}); err != nil {
			return err
		}
		if lo, err := h.LinkByName("lo"); err == nil {
			h.LinkSetUp(lo)
		}
		return h.LinkSetUp(l)
	}
	err = network.Do(bareClientNetns, func() error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "bench0"}, PeerName: "bench1", PeerNamespace: netlink.NsFd(int(server))}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("veth pair: %w", err)
		}
		return up("bench0", bareClientIP)
	})
	if err == nil {
		err = network.Do(bareServerNetns, func() error { return up("bench1", bareServerIP) })
	}
	if err != nil {
		cleanup()
		return nil, nil, errors.Join(errors.New("bare veth"), err)
	}
	return &bareVethPair{}, cleanup, nil
}

// listen opens the steady-state server's socket on the server's end.
func (*bareVethPair) listen() (net.Listener, error) {
	var l net.Listener
	err := network.Do(bareServerNetns, func() (err error) {
		l, err = net.Listen("tcp", net.JoinHostPort(bareServerIP.String(), strconv.Itoa(steadyPort)))
		return err
	})
	return l, err
}
