package proxy

import (
	"fmt"
	"net/netip"

	"github.com/kestrelnet/kestrel/agent/policy"
	dnsproxy "github.com/kestrelnet/kestrel/agent/proxy/dns"
	"github.com/kestrelnet/kestrel/datapath"
)

// UDPConntrack is the datapath's record of redirected UDP flows
// (*datapath.Datapath), for the DNS proxy's queries over UDP.
type UDPConntrack interface {
	ProxiedUDPFlow(dir datapath.Direction, client, orig netip.AddrPort) (datapath.ProxiedFlow, bool, error)
}

// ResolveDNS implements dnsproxy.Resolver the way Resolve does for HTTP:
// the endpoint from the flow's addresses, the remote identity from the
// conntrack entry of the flow the datapath redirected (UDP or TCP), and the
// DNS rules of the entry the datapath's lookup picks.
func (t *Table) ResolveDNS(dir policy.Direction, proto string, client, orig netip.AddrPort) (*dnsproxy.Connection, error) {
	var lookup func(datapath.Direction, netip.AddrPort, netip.AddrPort) (datapath.ProxiedFlow, bool, error)
	switch proto {
	case "tcp":
		lookup = t.CT.ProxiedFlow
	case "udp":
		u, isUDP := t.CT.(UDPConntrack)
		if !isUDP {
			return nil, fmt.Errorf("udp %s -> %s: the datapath keeps no UDP redirects", client, orig)
		}
		lookup = u.ProxiedUDPFlow
	default:
		return nil, fmt.Errorf("protocol %q", proto)
	}
	r, err := t.resolve(dir, proto, client, orig, lookup)
	if err != nil {
		return nil, err
	}
	rules, err := dnsproxy.Compile(r.Entry.DNS, r.Entry.L7Wildcard)
	if err != nil {
		return nil, err
	}
	return &dnsproxy.Connection{Rules: rules, EndpointID: r.EndpointID, Dial: r.Dial,
		SrcIdentity: r.SrcIdentity, DstIdentity: r.DstIdentity, Policies: r.Policies}, nil
}
