package datapath

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"
)

// Endpoint is a local pod as the datapath sees it. The programs find it by
// the device a packet crosses, so IfIndex and MAC bind the pod's packets to
// it: from the pod, a source address or MAC that is not its own is dropped.
type Endpoint struct {
	ID              uint32           // key of its policy map; non-zero
	Identity        uint32           // its own security identity
	IPs             []netip.Addr     // at most one per family
	IngressEnforced bool             // default deny for traffic to the pod
	EgressEnforced  bool             // default deny for traffic from the pod
	IfIndex         uint32           // host-side veth; a test datapath assigns one when zero
	MAC             net.HardwareAddr // pod-side interface; a test datapath assigns one when empty
}

func (ep Endpoint) info() (lxcEndpointInfo, error) {
	info := lxcEndpointInfo{Id: ep.ID, Identity: ep.Identity}
	if ep.ID == 0 {
		return info, fmt.Errorf("endpoint id must be non-zero")
	}
	if len(ep.IPs) == 0 {
		return info, fmt.Errorf("endpoint %d has no IP", ep.ID)
	}
	if ep.IfIndex == 0 {
		return info, fmt.Errorf("endpoint %d has no device (ifindex)", ep.ID)
	}
	if len(ep.MAC) != 6 {
		return info, fmt.Errorf("endpoint %d: MAC %q is not a 6-byte Ethernet address", ep.ID, ep.MAC)
	}
	copy(info.Mac[:], ep.MAC)
	for _, ip := range ep.IPs {
		w, fam := addrWords(ip)
		switch {
		case fam == 4 && info.Ipv4 == 0:
			info.Ipv4 = w[0]
		case fam == 6 && info.Ipv6 == [4]uint32{}:
			info.Ipv6 = w
		default:
			return info, fmt.Errorf("endpoint %d has more than one IPv%d address (%v)", ep.ID, fam, ep.IPs)
		}
	}
	if ep.IngressEnforced {
		info.Flags |= uint32(lxcEndpointFlagsEP_F_INGRESS_ENFORCED)
	}
	if ep.EgressEnforced {
		info.Flags |= uint32(lxcEndpointFlagsEP_F_EGRESS_ENFORCED)
	}
	return info, nil
}

// endpointAddrs are the addresses an endpoint entry binds.
func endpointAddrs(info lxcEndpointInfo) []netip.Addr {
	var out []netip.Addr
	if info.Ipv4 != 0 {
		out = append(out, wordsAddr([4]uint32{info.Ipv4}, 4))
	}
	if info.Ipv6 != [4]uint32{} {
		out = append(out, wordsAddr(info.Ipv6, 6))
	}
	return out
}

// UpsertEndpoint installs or updates an endpoint on its device. A change to
// anything but the addresses the endpoint already had gives it a new policy
// revision, so its established flows are judged again; a change of identity
// or addresses also forgets its tracked flows, which were decided for another
// identity. If the endpoint id sat on another device, that entry goes.
func (d *Datapath) UpsertEndpoint(ep Endpoint) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sandbox != nil {
		if err := d.sandbox.bind(&ep); err != nil {
			return err
		}
	}
	info, err := ep.info()
	if err != nil {
		return err
	}
	old, err := d.endpointEntries()
	if err != nil {
		return err
	}
	var forget []netip.Addr
	for ifindex, o := range old {
		if o.Id != ep.ID {
			continue
		}
		if ifindex != ep.IfIndex || o.Identity != info.Identity || o.Ipv4 != info.Ipv4 || o.Ipv6 != info.Ipv6 {
			forget = append(forget, endpointAddrs(o)...)
		}
		if ifindex != ep.IfIndex {
			if err := d.objs.Endpoints.Delete(ifindex); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("endpoint %d: remove from ifindex %d: %w", ep.ID, ifindex, err)
			}
		}
	}
	if o, ok := old[ep.IfIndex]; ok && o.Id != ep.ID {
		forget = append(forget, endpointAddrs(o)...)
	}
	if o, ok := old[ep.IfIndex]; ok && len(forget) == 0 {
		o.PolicyRevision = 0
		if o == info {
			return nil
		}
	}
	info.PolicyRevision = d.nextRevision()
	if err := d.objs.Endpoints.Put(ep.IfIndex, &info); err != nil {
		return fmt.Errorf("endpoint %d on ifindex %d: %w", ep.ID, ep.IfIndex, err)
	}
	if err := d.forgetEndpointAddrs(forget, endpointAddrs(info)); err != nil {
		return err
	}
	if err := d.writeEndpointAddrs(endpointAddrs(info), ep.IfIndex); err != nil {
		return fmt.Errorf("endpoint %d: %w", ep.ID, err)
	}
	return d.forgetFlowsOf(forget)
}

// DeleteEndpoint removes an endpoint (found by its id), its tracked flows and
// its policy map.
func (d *Datapath) DeleteEndpoint(ep Endpoint) error {
	d.mu.Lock()
	entries, err := d.endpointEntries()
	var forget []netip.Addr
	for ifindex, o := range entries {
		if err != nil || o.Id != ep.ID {
			continue
		}
		if derr := d.objs.Endpoints.Delete(ifindex); derr != nil && !errors.Is(derr, ebpf.ErrKeyNotExist) {
			err = fmt.Errorf("endpoint %d: remove from ifindex %d: %w", ep.ID, ifindex, derr)
		}
		forget = append(forget, endpointAddrs(o)...)
	}
	if err == nil {
		err = d.forgetEndpointAddrs(forget, nil)
	}
	if err == nil {
		err = d.forgetFlowsOf(forget)
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	return d.DeletePolicy(ep.ID)
}

// endpointEntries reads the endpoints map. Callers hold d.mu.
func (d *Datapath) endpointEntries() (map[uint32]lxcEndpointInfo, error) {
	out := map[uint32]lxcEndpointInfo{}
	var k uint32
	var v lxcEndpointInfo
	it := d.objs.Endpoints.Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read endpoints: %w", err)
	}
	return out, nil
}

// nextRevision returns a policy revision no endpoint has had. Revisions
// continue from the highest in the (possibly adopted) map, so a restarted
// agent never reuses one. Callers hold d.mu.
func (d *Datapath) nextRevision() uint32 {
	d.revision++
	if d.revision == 0 {
		d.revision = 1
	}
	return d.revision
}

// bumpRevisions gives the endpoints with these ids (all, when ids is nil) a
// new policy revision: their established flows meet policy again at their
// next packet. Callers hold d.mu.
func (d *Datapath) bumpRevisions(ids map[uint32]bool) error {
	entries, err := d.endpointEntries()
	if err != nil {
		return err
	}
	for ifindex, info := range entries {
		if ids != nil && !ids[info.Id] {
			continue
		}
		info.PolicyRevision = d.nextRevision()
		if err := d.objs.Endpoints.Update(ifindex, &info, ebpf.UpdateExist); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("endpoint %d: new policy revision: %w", info.Id, err)
		}
	}
	return nil
}

// PolicyRevision returns the datapath's revision of an endpoint, 0 when it is
// not installed.
func (d *Datapath) PolicyRevision(endpointID uint32) (uint32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	entries, err := d.endpointEntries()
	if err != nil {
		return 0, err
	}
	for _, info := range entries {
		if info.Id == endpointID {
			return info.PolicyRevision, nil
		}
	}
	return 0, nil
}

// highestRevision finds the highest revision in an adopted endpoints map.
func (d *Datapath) highestRevision() error {
	entries, err := d.endpointEntries()
	if err != nil {
		return err
	}
	for _, info := range entries {
		d.revision = max(d.revision, info.PolicyRevision)
	}
	return nil
}

func endpointAddrKey(a netip.Addr) lxcEndpointAddrKey {
	var k lxcEndpointAddrKey
	k.Addr.Addr, k.Family = addrWords(a)
	return k
}

// writeEndpointAddrs records which device holds each address, for the node
// device's programs (NodePort backends here, masquerade of pods' traffic).
// Callers hold d.mu.
func (d *Datapath) writeEndpointAddrs(addrs []netip.Addr, ifindex uint32) error {
	for _, a := range addrs {
		if err := d.objs.EndpointAddrs.Put(endpointAddrKey(a), ifindex); err != nil {
			return fmt.Errorf("record address %s: %w", a, err)
		}
	}
	return nil
}

// forgetEndpointAddrs removes the addresses an endpoint no longer holds,
// except those in keep. Callers hold d.mu.
func (d *Datapath) forgetEndpointAddrs(addrs, keep []netip.Addr) error {
	for _, a := range addrs {
		if slices.Contains(keep, a) {
			continue
		}
		if err := d.objs.EndpointAddrs.Delete(endpointAddrKey(a)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("forget address %s: %w", a, err)
		}
	}
	return nil
}
