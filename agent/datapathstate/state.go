package datapathstate

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/datapath"
)

// Local is an endpoint this node's datapath serves.
type Local struct {
	Key     string // the caller's name for it: a pod key, or a container id
	Pod     string // namespace/name, as in policy.Result.Endpoints
	ID      uint32 // endpoint id, non-zero and stable for the endpoint's life
	IPs     []netip.Addr
	IfIndex uint32           // host-side device, 0 if none (test datapaths give one)
	MAC     net.HardwareAddr // pod-side interface, nil if none (test datapaths give one)
}

// State is everything one node's datapath must hold.
type State struct {
	IPCache   []datapath.IPCacheEntry
	Endpoints map[string]datapath.Endpoint      // by Local.Key
	Policies  map[uint32][]datapath.PolicyEntry // by endpoint id
	Identity  map[string]uint32                 // by Local.Key
	// Pending are the keys of locals whose pod the resolver did not know;
	// they are left out of Endpoints and Policies.
	Pending []string
}

// Compute derives a node's datapath state from a resolution. Every policy is
// validated (datapath.CheckPolicy) here, so an error means nothing should be
// written, and a State without error can be applied whole.
func Compute(res *policy.Result, thisNode string, nodeIPs map[string][]netip.Addr, locals []Local, cookies *Cookies) (*State, error) {
	st := &State{
		IPCache:   IPCache(res, thisNode, nodeIPs),
		Endpoints: map[string]datapath.Endpoint{},
		Policies:  map[uint32][]datapath.PolicyEntry{},
		Identity:  map[string]uint32{},
	}
	for _, l := range locals {
		ep := res.Endpoints[l.Pod]
		if ep == nil {
			st.Pending = append(st.Pending, l.Key)
			continue
		}
		if l.ID == 0 {
			return nil, fmt.Errorf("endpoint %s (pod %s): id 0 is not a valid endpoint id", l.Key, l.Pod)
		}
		if len(l.IPs) == 0 {
			return nil, fmt.Errorf("endpoint %s (pod %s): no IP", l.Key, l.Pod)
		}
		entries := PolicyEntries(ep.Policy, cookies)
		if err := datapath.CheckPolicy(entries); err != nil {
			return nil, fmt.Errorf("pod %s: %w", l.Pod, err)
		}
		st.Endpoints[l.Key] = datapath.Endpoint{
			ID: l.ID, Identity: uint32(ep.Identity), IPs: l.IPs, IfIndex: l.IfIndex, MAC: l.MAC,
			IngressEnforced: ep.Policy.IngressEnforced, EgressEnforced: ep.Policy.EgressEnforced,
		}
		st.Policies[l.ID] = entries
		st.Identity[l.Key] = uint32(ep.Identity)
	}
	return st, nil
}
