package datapath

import (
	"fmt"
	"net/netip"
)

// Endpoint is a local pod as the datapath sees it.
type Endpoint struct {
	ID              uint32 // key of its policy map; non-zero
	Identity        uint32 // its own security identity
	IPs             []netip.Addr
	IngressEnforced bool // default deny for traffic to the pod
	EgressEnforced  bool // default deny for traffic from the pod
	IfIndex         uint32
}

func endpointKey(ip netip.Addr) lxcEndpointKey {
	var k lxcEndpointKey
	w, fam := addrWords(ip)
	k.Ip.Addr = w
	k.Family = uint32(fam)
	return k
}

// UpsertEndpoint installs or updates an endpoint under each of its IPs.
func (d *Datapath) UpsertEndpoint(ep Endpoint) error {
	if ep.ID == 0 {
		return fmt.Errorf("endpoint id must be non-zero")
	}
	if len(ep.IPs) == 0 {
		return fmt.Errorf("endpoint %d has no IP", ep.ID)
	}
	info := lxcEndpointInfo{Id: ep.ID, Identity: ep.Identity, Ifindex: ep.IfIndex}
	if ep.IngressEnforced {
		info.Flags |= uint32(lxcEndpointFlagsEP_F_INGRESS_ENFORCED)
	}
	if ep.EgressEnforced {
		info.Flags |= uint32(lxcEndpointFlagsEP_F_EGRESS_ENFORCED)
	}
	for _, ip := range ep.IPs {
		k := endpointKey(ip)
		if err := d.objs.Endpoints.Put(&k, &info); err != nil {
			return fmt.Errorf("endpoint %d ip %s: %w", ep.ID, ip, err)
		}
	}
	return nil
}

// DeleteEndpoint removes an endpoint's addresses and its policy map.
func (d *Datapath) DeleteEndpoint(ep Endpoint) error {
	for _, ip := range ep.IPs {
		k := endpointKey(ip)
		if err := d.objs.Endpoints.Delete(&k); err != nil {
			return fmt.Errorf("endpoint %d ip %s: %w", ep.ID, ip, err)
		}
	}
	return d.DeletePolicy(ep.ID)
}
