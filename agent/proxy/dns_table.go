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
	local := orig.Addr()
	if dir == policy.Egress {
		local = client.Addr()
	}
	t.mu.RLock()
	ep, ok := t.byAddr[local.Unmap()]
	t.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%s %s -> %s: %s is no local endpoint", proto, client, orig, local)
	}
	var pf datapath.ProxiedFlow
	var err error
	ipProto := policy.ProtoTCP
	switch proto {
	case "tcp":
		pf, ok, err = t.CT.ProxiedFlow(datapath.Direction(dir), client, orig)
	case "udp":
		ipProto = policy.ProtoUDP
		u, isUDP := t.CT.(UDPConntrack)
		if !isUDP {
			return nil, fmt.Errorf("udp %s -> %s: the datapath keeps no UDP redirects", client, orig)
		}
		pf, ok, err = u.ProxiedUDPFlow(datapath.Direction(dir), client, orig)
	default:
		return nil, fmt.Errorf("protocol %q", proto)
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s %s -> %s: not redirected by the datapath", proto, client, orig)
	}
	_, e, ok := ep.Policy.Lookup(dir, pf.RemoteIdentity, ipProto, orig.Port())
	if !ok || e.Deny || e.ProxyPort == 0 {
		return nil, fmt.Errorf("%s %s -> %s: endpoint %s has no redirect for identity %d on %d", proto, client, orig, ep.Pod, pf.RemoteIdentity, orig.Port())
	}
	rules, err := dnsproxy.Compile(e.DNS, e.L7Wildcard)
	if err != nil {
		return nil, err
	}
	c := &dnsproxy.Connection{Rules: rules, EndpointID: ep.ID}
	for _, o := range e.Origins {
		c.Policies = append(c.Policies, o.String())
	}
	mark := datapath.ProxyMarkIngress()
	if dir == policy.Egress {
		c.SrcIdentity, c.DstIdentity = ep.Identity, pf.RemoteIdentity
		if mark, err = datapath.ProxyMarkEgress(ep.Identity); err != nil {
			return nil, err
		}
	} else {
		c.SrcIdentity, c.DstIdentity = pf.RemoteIdentity, ep.Identity
	}
	if t.Dial != nil {
		c.Dial = t.Dial(mark)
	} else {
		c.Dial = datapath.ProxyDialer(mark).DialContext
	}
	return c, nil
}
