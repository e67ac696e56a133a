// Package proxy connects the node's L7 proxies (agent/proxy/http) to the
// agent: which endpoint and policy entry a redirected connection belongs
// to, as the datapath decided it.
package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/kestrelnet/kestrel/agent/datapathstate"
	"github.com/kestrelnet/kestrel/agent/policy"
	httpproxy "github.com/kestrelnet/kestrel/agent/proxy/http"
	"github.com/kestrelnet/kestrel/datapath"
)

// Conntrack is the datapath's record of redirected connections
// (*datapath.Datapath).
type Conntrack interface {
	ProxiedFlow(dir datapath.Direction, client, orig netip.AddrPort) (datapath.ProxiedFlow, bool, error)
}

// Endpoint is a local endpoint as the proxies need it.
type Endpoint struct {
	ID       uint32
	Identity uint32
	Pod      string
	Policy   *policy.EndpointPolicy
}

// Table resolves redirected connections against the endpoints and policies
// last written to the datapath.
type Table struct {
	CT Conntrack
	// Dial opens upstream connections with a mark; nil means
	// datapath.ProxyDialer. The unit runner, which forwards nothing, and
	// tests that dial from another namespace set their own.
	Dial func(mark int) func(ctx context.Context, network, addr string) (net.Conn, error)

	mu     sync.RWMutex
	byAddr map[netip.Addr]Endpoint
	gen    atomic.Uint64 // moves on with every Set
}

// Generation implements httpproxy.Generational: it moves on whenever the
// endpoints and policies are replaced, so the proxies resolve the
// connections they hold again before their next request.
func (t *Table) Generation() uint64 { return t.gen.Load() }

// Set replaces the endpoints with those of a computed datapath state.
func (t *Table) Set(res *policy.Result, st *datapathstate.State, locals []datapathstate.Local) {
	m := map[netip.Addr]Endpoint{}
	for _, l := range locals {
		ep, ok := st.Endpoints[l.Key]
		rep := res.Endpoints[l.Pod]
		if !ok || rep == nil {
			continue
		}
		for _, a := range ep.IPs {
			m[a.Unmap()] = Endpoint{ID: ep.ID, Identity: ep.Identity, Pod: l.Pod, Policy: rep.Policy}
		}
	}
	t.mu.Lock()
	t.byAddr = m
	t.gen.Add(1)
	t.mu.Unlock()
}

// Resolve implements httpproxy.Resolver: the endpoint is the client on
// egress and the original destination on ingress; the remote identity is
// the one the datapath judged (its conntrack entry); the entry is the one
// the datapath's lookup picks for it (policy.EndpointPolicy.Lookup). A
// connection the datapath did not redirect is refused.
func (t *Table) Resolve(dir policy.Direction, client, orig netip.AddrPort) (*httpproxy.Connection, error) {
	r, err := t.ResolveEntry(dir, client, orig)
	if err != nil {
		return nil, err
	}
	m, err := httpproxy.Compile(r.Entry.HTTP, r.Entry.L7Wildcard)
	if err != nil {
		return nil, err
	}
	return &httpproxy.Connection{Matcher: m, EndpointID: r.EndpointID, Dial: r.Dial,
		SrcIdentity: r.SrcIdentity, DstIdentity: r.DstIdentity, Policies: r.Policies, Generation: r.Generation}, nil
}

// Resolved is what any proxy needs of a redirected connection: the policy
// entry that redirected it (its L7 rules), who is who, and how to dial
// upstream with the datapath's proxy mark.
type Resolved struct {
	Entry                    policy.Entry
	EndpointID               uint32
	SrcIdentity, DstIdentity uint32
	Policies                 []string
	Dial                     func(ctx context.Context, network, addr string) (net.Conn, error)
	// Generation is the table's generation it was resolved under.
	Generation uint64
}

// ResolveEntry finds a redirected connection's entry as Resolve does, for
// every parser.
func (t *Table) ResolveEntry(dir policy.Direction, client, orig netip.AddrPort) (*Resolved, error) {
	gen := t.Generation() // before the lookups: a Set during them resolves again
	r, err := t.resolve(dir, "tcp", client, orig, t.CT.ProxiedFlow)
	if err != nil {
		return nil, err
	}
	r.Generation = gen
	return r, nil
}

// resolve finds the local endpoint of a redirected flow of proto (the client
// on egress, the original destination on ingress), the remote identity the
// datapath judged (lookup: its conntrack entry), the entry the datapath's
// policy lookup picks for it, and how to dial upstream with the proxy's mark.
func (t *Table) resolve(dir policy.Direction, proto string, client, orig netip.AddrPort,
	lookup func(datapath.Direction, netip.AddrPort, netip.AddrPort) (datapath.ProxiedFlow, bool, error)) (*Resolved, error) {
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
	pf, ok, err := lookup(datapath.Direction(dir), client, orig)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s %s -> %s: not redirected by the datapath", proto, client, orig)
	}
	ipProto := policy.ProtoTCP
	if proto == "udp" {
		ipProto = policy.ProtoUDP
	}
	_, e, ok := ep.Policy.Lookup(dir, pf.RemoteIdentity, ipProto, orig.Port())
	if !ok || e.Deny || e.ProxyPort == 0 {
		return nil, fmt.Errorf("%s %s -> %s: endpoint %s has no redirect for identity %d on %d", proto, client, orig, ep.Pod, pf.RemoteIdentity, orig.Port())
	}
	c := &Resolved{Entry: e, EndpointID: ep.ID}
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
	switch {
	case t.Dial != nil:
		c.Dial = t.Dial(mark)
	case proto == "tcp":
		c.Dial = datapath.ProxyUpstreamDialer(mark, t.upstreamSource(dir, client, orig))
	default:
		// A UDP upstream from the client's port would share that port
		// with the client's other queries in flight (a resolver asks A
		// and AAAA at once from one socket): DNS leaves from the node.
		c.Dial = datapath.ProxyDialer(mark).DialContext
	}
	return c, nil
}

// upstreamSource is the address an upstream connection leaves from: the
// client's own (the flow's tuple), so the server and a remote node's policy
// see the client, except for an egress proxy's connection to this node
// itself or to one of its pods. The node's own replies to a foreign address
// would be routed to the client's device, not to the upstream's socket, and a
// local pod's ingress hook judges the identity the mark carries
// (datapath.ProxyMarkEgress), which the node's address serves as it always
// has. The zero AddrPort means the node's address.
func (t *Table) upstreamSource(dir policy.Direction, client, orig netip.AddrPort) netip.AddrPort {
	if dir == policy.Egress {
		t.mu.RLock()
		_, local := t.byAddr[orig.Addr().Unmap()]
		t.mu.RUnlock()
		if local || datapath.IsNodeAddress(orig.Addr()) {
			return netip.AddrPort{}
		}
	}
	return client
}
