package main

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/kestrelnet/kestrel/datapath"
)

// nodeDevice reads --devices and the flags that configure them (Cilium's
// names): the devices, and the node device settings with the node's
// addresses on them. --node-ip is the IPv4 address; the IPv6 one is the
// first global IPv6 address of the first device.
func nodeDevice(o options, nodeIP netip.Addr) (datapath.NodeDevice, []netlink.Link, error) {
	var nd datapath.NodeDevice
	switch o.lbMode {
	case "snat":
	case "dsr":
		nd.DSR = true
	default:
		return nd, nil, fmt.Errorf("--bpf-lb-mode %q: want snat or dsr", o.lbMode)
	}
	nd.Masquerade = o.masquerade
	for flagName, v := range map[string]string{"ipv4-native-routing-cidr": o.nativeCIDR4, "ipv6-native-routing-cidr": o.nativeCIDR6} {
		if v == "" {
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil || p.Addr().Is4() != (flagName == "ipv4-native-routing-cidr") {
			return nd, nil, fmt.Errorf("--%s %q: want a CIDR of that family", flagName, v)
		}
		nd.NonMasqueradeCIDRs = append(nd.NonMasqueradeCIDRs, p.Masked())
	}
	if nodeIP.Is4() {
		nd.IPv4 = nodeIP
	}
	var links []netlink.Link
	for _, name := range strings.Split(o.devices, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		l, err := netlink.LinkByName(name)
		if err != nil {
			return nd, nil, fmt.Errorf("--devices %s: %w", name, err)
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nd, nil, fmt.Errorf("--devices %s: addresses: %w", name, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || !ip.IsGlobalUnicast() {
				continue
			}
			ip = ip.Unmap()
			// The device's own networks (the nodes' network) are reached
			// with the pod's address, as the native-routing CIDRs are.
			ones, _ := a.Mask.Size()
			nd.NonMasqueradeCIDRs = append(nd.NonMasqueradeCIDRs, netip.PrefixFrom(ip, ones).Masked())
			if ip.Is6() && !nd.IPv6.IsValid() && len(links) == 0 {
				nd.IPv6 = ip
			}
		}
		links = append(links, l)
	}
	if nd.Masquerade && len(links) == 0 {
		return nd, nil, fmt.Errorf("--enable-bpf-masquerade needs --devices")
	}
	return nd, links, nil
}

// detachNodeDevices removes the node device links an earlier agent pinned
// under dir (netdev-<device>-{ingress,egress}), detaching their programs.
func detachNodeDevices(dir string) error {
	pins, err := filepath.Glob(filepath.Join(dir, "netdev-*"))
	if err != nil {
		return err
	}
	for _, pin := range pins {
		l, err := link.LoadPinnedLink(pin, nil)
		if err != nil {
			return fmt.Errorf("node device link %s: %w", pin, err)
		}
		err = errors.Join(l.Unpin(), l.Close())
		if err != nil {
			return fmt.Errorf("detach node device link %s: %w", pin, err)
		}
	}
	return nil
}
