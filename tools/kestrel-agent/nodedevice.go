package main

import (
	"fmt"
	"net/netip"
	"strings"

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
