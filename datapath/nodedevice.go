package datapath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// NodeDevice configures the programs on the node's own device (bpf/host.c):
// external service frontends, SNAT or DSR to remote backends, and masquerade
// of pods' traffic to the world.
type NodeDevice struct {
	// IPv4 and IPv6 are the node's addresses on its device: NodePort
	// frontends, and the source of SNATed and masqueraded flows. A family
	// without one is neither SNATed nor masqueraded (SNAT_NO_PORT).
	IPv4, IPv6 netip.Addr
	// Masquerade rewrites the source of pods' packets to destinations
	// outside NonMasqueradeCIDRs to the node's address (Cilium's
	// enable-bpf-masquerade).
	Masquerade bool
	// NonMasqueradeCIDRs are reached with the pod's own address: the
	// native-routing CIDRs and the nodes' network (ip-masq-agent's
	// nonMasqueradeCIDRs).
	NonMasqueradeCIDRs []netip.Prefix
	// DSR sends IPv4 traffic to a remote NodePort backend with the client's
	// address and the frontend in an IP option, so the backend answers the
	// client directly (Cilium's bpf-lb-mode dsr); otherwise it is SNATed to
	// the node. IPv6 is SNATed either way.
	DSR bool
}

// NonMasqueradeMax bounds NodeDevice.NonMasqueradeCIDRs (bpf/lib/snat.h).
const NonMasqueradeMax = 1024

// Node device hooks, for Run, Program and benchmarks.
const (
	FromNetdev Hook = iota + 2 // the node device's ingress: traffic from outside the node
	ToNetdev                   // the node device's egress: traffic leaving the node
)

func (n NodeDevice) validate() error {
	if a := n.IPv4; a.IsValid() && !a.Is4() {
		return fmt.Errorf("node device: IPv4 address %v is not IPv4", a)
	}
	if a := n.IPv6; a.IsValid() && (!a.Is6() || a.Is4In6()) {
		return fmt.Errorf("node device: IPv6 address %v is not IPv6", a)
	}
	if len(n.NonMasqueradeCIDRs) > NonMasqueradeMax {
		return fmt.Errorf("node device: %d non-masquerade CIDRs, at most %d", len(n.NonMasqueradeCIDRs), NonMasqueradeMax)
	}
	for i, p := range n.NonMasqueradeCIDRs {
		if !p.IsValid() || p.Addr().Is4In6() {
			return fmt.Errorf("node device: non-masquerade CIDR [%d] %v is not an IPv4 or IPv6 prefix", i, p)
		}
	}
	return nil
}

// apply sets the node device's load-time settings in spec.
func (n NodeDevice) apply(spec *ebpf.CollectionSpec) error {
	if err := n.validate(); err != nil {
		return err
	}
	vars := map[string]any{"masquerade": boolByte(n.Masquerade), "nodeport_dsr": boolByte(n.DSR)}
	if n.IPv4.IsValid() {
		w, _ := addrWords(n.IPv4)
		vars["node_ipv4"] = w[0]
	}
	if n.IPv6.IsValid() {
		w, _ := addrWords(n.IPv6)
		vars["node_ipv6"] = w
	}
	for name, v := range vars {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// writeNonMasquerade replaces the non-masquerade CIDRs (pinned maps may hold
// an earlier run's).
func (d *Datapath) writeNonMasquerade(cidrs []netip.Prefix) error {
	want := map[lxcIpcacheKey]bool{}
	for _, p := range cidrs {
		want[ipcacheKey(p)] = true
	}
	if err := deleteWhere(d.objs.Nonmasq, func(k lxcIpcacheKey, _ uint32) bool { return !want[k] }); err != nil {
		return fmt.Errorf("node device: clear non-masquerade CIDRs: %w", err)
	}
	for k := range want {
		if err := d.objs.Nonmasq.Put(k, uint32(1)); err != nil {
			return fmt.Errorf("node device: write non-masquerade CIDR: %w", err)
		}
	}
	return nil
}

// NodeDeviceLinks are the two TCX attachments on the node's device.
type NodeDeviceLinks = PodDeviceLinks

// AttachNodeDevice attaches from_netdev to TCX ingress and to_netdev to TCX
// egress of the node's device (ifindex in the calling thread's network
// namespace), pinned under pin as AttachPodDevice does.
func (d *Datapath) AttachNodeDevice(ifindex int, pin string) (*NodeDeviceLinks, error) {
	in, err := d.attachOne(ifindex, pin, "ingress", d.objs.FromNetdev, ebpf.AttachTCXIngress)
	if err != nil {
		return nil, err
	}
	out, err := d.attachOne(ifindex, pin, "egress", d.objs.ToNetdev, ebpf.AttachTCXEgress)
	if err != nil {
		return nil, errors.Join(err, in.Close())
	}
	return &NodeDeviceLinks{Ingress: in, Egress: out, pin: pin}, nil
}

// NATFlow is one entry of the node device's translation table.
type NATFlow struct {
	Direction string // "out" (as first met), "in" (reply to the node's address), "reply" (a local backend's)
	Protocol  uint8
	From, To  netip.AddrPort // the tuple a packet arrives with
	NewFrom   netip.AddrPort // what it becomes
	NewTo     netip.AddrPort
	Forward   bool // leaves again by the node's device
	DSR       bool
}

// NATFlows lists the node device's translated flows.
func (d *Datapath) NATFlows() ([]NATFlow, error) {
	var out []NATFlow
	var k lxcNatKey
	var v lxcNatEntry
	it := d.objs.NatFlows.Iterate()
	for it.Next(&k, &v) {
		dir := map[uint8]string{uint8(lxcNatDirNAT_DIR_OUT): "out", uint8(lxcNatDirNAT_DIR_IN): "in", uint8(lxcNatDirNAT_DIR_REPLY): "reply"}[k.Dir]
		out = append(out, NATFlow{
			Direction: dir, Protocol: k.Proto,
			From:    netip.AddrPortFrom(wordsAddr(k.Saddr.Addr, k.Family), k.Sport),
			To:      netip.AddrPortFrom(wordsAddr(k.Daddr.Addr, k.Family), k.Dport),
			NewFrom: netip.AddrPortFrom(wordsAddr(v.Saddr.Addr, k.Family), v.Sport),
			NewTo:   netip.AddrPortFrom(wordsAddr(v.Daddr.Addr, k.Family), v.Dport),
			Forward: v.Flags&uint8(lxcNatFlagsNAT_F_FORWARD) != 0,
			DSR:     v.Flags&uint8(lxcNatFlagsNAT_F_DSR) != 0,
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("node device: read translations: %w", err)
	}
	return out, nil
}
