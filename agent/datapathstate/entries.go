package datapathstate

import (
	"net/netip"

	"github.com/kestrelnet/kestrel/agent/identity"
	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/datapath"
)

// PolicyEntries translates resolved map state into datapath entries.
func PolicyEntries(p *policy.EndpointPolicy, cookies *Cookies) []datapath.PolicyEntry {
	out := make([]datapath.PolicyEntry, 0, len(p.Entries))
	for _, k := range p.SortedKeys() {
		e := p.Entries[k]
		pe := datapath.PolicyEntry{
			Identity:  uint32(k.Identity),
			Direction: datapath.Ingress,
			Protocol:  k.Protocol,
			AnyPort:   k.AnyPort,
			PortLo:    k.PortLo,
			PortHi:    k.PortHi,
			Action:    datapath.PolicyAllow,
			ProxyPort: e.ProxyPort,
			Cookie:    cookies.Cookie(e.Origins),
		}
		if k.Direction == policy.Egress {
			pe.Direction = datapath.Egress
		}
		switch {
		case e.Deny:
			pe.Action = datapath.PolicyDeny
		case e.ProxyPort != 0:
			pe.Action = datapath.PolicyRedirect
		}
		out = append(out, pe)
	}
	return out
}

// worldPrefixes give every address nothing more specific names its family's
// world identity, as Cilium's agent installs 0.0.0.0/0 -> world-ipv4 and
// ::/0 -> world-ipv6 in dual-stack mode. Without them the datapath's miss
// value (world, 2) would stand for both families, so a rule for one family's
// world (0.0.0.0/0, world-ipv4) could not leave the other's closed.
var worldPrefixes = []datapath.IPCacheEntry{
	{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Identity: uint32(identity.WorldIPv4)},
	{Prefix: netip.MustParsePrefix("::/0"), Identity: uint32(identity.WorldIPv6)},
}

// IPCache is the resolver's ipcache plus the nodes' addresses and the two
// world prefixes: this node is the host, every other node a remote node. A
// node address replaces any resolver entry for the same prefix (a /32 policy
// CIDR naming a node), as a node's identity is what Cilium gives its
// addresses; the datapath refuses one prefix with two identities.
func IPCache(res *policy.Result, thisNode string, nodeIPs map[string][]netip.Addr) []datapath.IPCacheEntry {
	nodes := map[netip.Prefix]identity.NumericIdentity{}
	for name, ips := range nodeIPs {
		id := identity.RemoteNode
		if name == thisNode {
			id = identity.Host
		}
		for _, ip := range ips {
			p := netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
			if old, ok := nodes[p]; ok && old == identity.Host {
				continue // this node's own address stays host, whoever else claims it
			}
			nodes[p] = id
		}
	}
	out := append([]datapath.IPCacheEntry(nil), worldPrefixes...)
	for _, e := range res.IPCache {
		if _, ok := nodes[e.Prefix]; ok {
			continue
		}
		out = append(out, datapath.IPCacheEntry{Prefix: e.Prefix, Identity: uint32(e.Identity)})
	}
	for p, id := range nodes {
		out = append(out, datapath.IPCacheEntry{Prefix: p, Identity: uint32(id)})
	}
	return out
}
