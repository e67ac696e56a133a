// Package network builds a sim cluster's underlay: one network namespace per
// node, joined by a bridge in an underlay namespace that the root namespace
// also reaches. Every name and address here is fixed by sim/README.md, so
// other parts (kubelet, CLI, scenarios) derive them from this package.
package network

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// MaxNodes bounds a cluster so node addresses (172.30.0.(10+i)) and pod CIDRs
// (10.244.(i-1).0/24) stay inside their ranges with room to spare.
//
// The cluster is dual-stack: each node also has an IPv6 underlay address
// (fd00:172:30::(10+i), the decimal digits written as IPv6 hex) and an IPv6
// pod CIDR (fd00:10:244:(i-1)::/64, i-1 in hex), the ranges the scenario
// engine gives its nodes in unit mode.
const MaxNodes = 100

// ifNameMax is IFNAMSIZ-1: the kernel refuses longer interface names.
const ifNameMax = 15

// UnderlayBridge is the bridge inside the underlay namespace.
const UnderlayBridge = "br0"

// NodeInterface is the node's underlay interface, inside its namespace.
const NodeInterface = "eth0"

var (
	gatewayIP     = netip.MustParseAddr("172.30.0.1")
	gatewayIP6    = netip.MustParseAddr("fd00:172:30::1")
	underlayBits  = 24
	underlayBits6 = 64
	podSupernet   = netip.MustParsePrefix("10.244.0.0/16")
	podSupernet6  = netip.MustParsePrefix("fd00:10:244::/48")
	underlayNet   = netip.MustParsePrefix("172.30.0.0/24")
	validName     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	nodeNameShape = regexp.MustCompile(`^node-([1-9][0-9]*)$`)
)

// ValidateName checks that a cluster name yields valid interface and
// namespace names: the root-side veth is "ksim-NAME", which must fit IFNAMSIZ.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("cluster name %q: use lower-case letters, digits and inner dashes", name)
	}
	if len(RootVeth(name)) > ifNameMax {
		return fmt.Errorf("cluster name %q is too long: interface %q would exceed %d characters (at most %d for the name)",
			name, RootVeth(name), ifNameMax, ifNameMax-len("ksim-"))
	}
	return nil
}

// Prefix is what every namespace and root-side link of cluster name starts with.
func Prefix(name string) string { return "ksim-" + name }

// RootVeth is the root namespace's interface into the underlay.
func RootVeth(name string) string { return Prefix(name) }

// UnderlayNetns is the namespace holding the bridge.
func UnderlayNetns(name string) string { return Prefix(name) + "-ul" }

// OutsideNetns is the outside host's namespace: on the underlay, not a node
// (outside.go).
func OutsideNetns(name string) string { return Prefix(name) + "-outside" }

// NodeNetns is the namespace of node-i.
func NodeNetns(name string, i int) string { return Prefix(name) + "-node-" + strconv.Itoa(i) }

// PodNetns is the namespace of the pod with this UID.
func PodNetns(name, uid string) string {
	if len(uid) > 12 {
		uid = uid[:12]
	}
	return Prefix(name) + "-pod-" + uid
}

// NetnsPath is where iproute2 (and netns.NewNamed) mount a named namespace.
func NetnsPath(netnsName string) string { return "/var/run/netns/" + netnsName }

// NodeName is the Node object's name for index i.
func NodeName(i int) string { return "node-" + strconv.Itoa(i) }

// NodeIndex parses "node-i".
func NodeIndex(node string) (int, error) {
	m := nodeNameShape.FindStringSubmatch(node)
	if m == nil {
		return 0, fmt.Errorf("node %q: want node-<i> with i from 1", node)
	}
	i, _ := strconv.Atoi(m[1])
	if i > MaxNodes {
		return 0, fmt.Errorf("node %q: at most %d nodes", node, MaxNodes)
	}
	return i, nil
}

// GatewayIP is the root namespace's underlay address, where kube-apiserver listens.
func GatewayIP() netip.Addr { return gatewayIP }

// NodeIP is node-i's underlay address.
func NodeIP(i int) netip.Addr {
	a := underlayNet.Addr().As4()
	a[3] = byte(10 + i)
	return netip.AddrFrom4(a)
}

// PodCIDR is node-i's pod range.
func PodCIDR(i int) netip.Prefix {
	a := podSupernet.Addr().As4()
	a[2] = byte(i - 1)
	return netip.PrefixFrom(netip.AddrFrom4(a), 24)
}

// GatewayIP6 is the root namespace's IPv6 underlay address.
func GatewayIP6() netip.Addr { return gatewayIP6 }

// NodeIP6 is node-i's IPv6 underlay address, fd00:172:30::(10+i): the
// decimal number is read as hex digits, so node-1 is fd00:172:30::11 as it
// is 172.30.0.11.
func NodeIP6(i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("fd00:172:30::%d", 10+i))
}

// NodeIPs are node-i's underlay addresses, IPv4 first.
func NodeIPs(i int) []netip.Addr { return []netip.Addr{NodeIP(i), NodeIP6(i)} }

// PodCIDR6 is node-i's IPv6 pod range.
func PodCIDR6(i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("fd00:10:244:%x::/64", i-1))
}

// PodCIDRs are node-i's pod ranges, IPv4 first, as its Node's spec.podCIDRs.
func PodCIDRs(i int) []netip.Prefix { return []netip.Prefix{PodCIDR(i), PodCIDR6(i)} }

// PodSupernets hold every node's pod ranges, one per family.
func PodSupernets() []netip.Prefix { return []netip.Prefix{podSupernet, podSupernet6} }

// UnderlayNets are the underlay's subnets, one per family.
func UnderlayNets() []netip.Prefix {
	return []netip.Prefix{underlayNet, netip.PrefixFrom(gatewayIP6, underlayBits6).Masked()}
}

// PodGateway is the first address of node-i's pod range, which pods route through.
func PodGateway(i int) netip.Addr { return PodCIDR(i).Addr().Next() }

// ownedNetns reports whether a namespace name belongs to cluster name. It
// matches the exact shapes this package makes, so cluster "a" never claims
// "ksim-a-b-ul" of cluster "a-b".
func ownedNetns(name, ns string) bool {
	rest, ok := strings.CutPrefix(ns, Prefix(name)+"-")
	if !ok {
		return false
	}
	if rest == "ul" || rest == "outside" {
		return true
	}
	if n, ok := strings.CutPrefix(rest, "node-"); ok {
		_, err := NodeIndex("node-" + n)
		return err == nil
	}
	if uid, ok := strings.CutPrefix(rest, "pod-"); ok {
		return len(uid) == 12
	}
	return false
}
