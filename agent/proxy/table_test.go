package proxy

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/agent/datapathstate"
	"github.com/kestrelnet/kestrel/agent/identity"
	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// The proxies serve only what the datapath redirected: a connection made
// straight to a proxy port (allowed as plain traffic, so its conntrack
// entry names no proxy) or to an address that is no local endpoint is
// refused; a redirected one gets the rules of the entry that redirected it
// and the identities the datapath judged.
func TestResolveServesOnlyRedirectedConnections(t *testing.T) {
	d := datapathtest.Load(t)
	pod, node, world := netip.MustParseAddr("10.244.0.10"), netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.0.2.10")
	const podID, hostID = 300, 1
	if err := d.SyncIPCache([]datapath.IPCacheEntry{{Prefix: netip.PrefixFrom(pod, 32), Identity: podID}, {Prefix: netip.PrefixFrom(node, 32), Identity: hostID}}); err != nil {
		t.Fatal(err)
	}
	ep := datapath.Endpoint{ID: 1, Identity: podID, IPs: []netip.Addr{pod}, EgressEnforced: true}
	if err := d.UpsertEndpoint(ep); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPolicy(1, []datapath.PolicyEntry{
		{Direction: datapath.Egress, Protocol: 6, PortLo: 80, Action: datapath.PolicyRedirect, ProxyPort: policy.ProxyPortHTTPEgress},
		{Identity: hostID, Direction: datapath.Egress, Protocol: 6, PortLo: policy.ProxyPortHTTPEgress},
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.InTestNamespace(func() {
		ln, err := datapath.ListenProxy(t.Context(), policy.ProxyPortHTTPEgress)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { ln.Close() })
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []packet.Spec{
		{Src: pod, Dst: world, Protocol: "TCP", SrcPort: 40000, DstPort: 80, Flags: []string{"SYN"}},
		{Src: pod, Dst: node, Protocol: "TCP", SrcPort: 40001, DstPort: policy.ProxyPortHTTPEgress, Flags: []string{"SYN"}},
	} {
		frame, err := packet.Build(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Run(datapath.FromContainer, frame); err != nil {
			t.Fatal(err)
		}
	}
	pol := &policy.EndpointPolicy{EgressEnforced: true, Entries: map[policy.Key]policy.Entry{
		{Direction: policy.Egress, Protocol: policy.ProtoTCP, PortLo: 80, PortHi: 80}: {ProxyPort: policy.ProxyPortHTTPEgress,
			HTTP: []policy.HTTPRule{{Method: "GET"}}, Origins: []policy.Origin{{Kind: "CiliumNetworkPolicy", Namespace: "x", Name: "web"}}},
		{Identity: hostID, Direction: policy.Egress, Protocol: policy.ProtoTCP, PortLo: policy.ProxyPortHTTPEgress, PortHi: policy.ProxyPortHTTPEgress}: {},
	}}
	tab := &Table{CT: d}
	tab.Set(&policy.Result{Endpoints: map[string]*policy.Endpoint{"x/a": {Key: "x/a", Identity: identity.NumericIdentity(podID), Policy: pol}}},
		&datapathstate.State{Endpoints: map[string]datapath.Endpoint{"x/a": ep}}, []datapathstate.Local{{Key: "x/a", Pod: "x/a"}})

	c, err := tab.Resolve(policy.Egress, netip.AddrPortFrom(pod, 40000), netip.AddrPortFrom(world, 80))
	if err != nil {
		t.Fatalf("a redirected connection was refused: %v", err)
	}
	get, _ := http.NewRequest("GET", "http://192.0.2.10/", nil)
	post, _ := http.NewRequest("POST", "http://192.0.2.10/", nil)
	if c.SrcIdentity != podID || c.DstIdentity != 2 || c.EndpointID != 1 || len(c.Policies) != 1 || !c.Matcher.Allows(get) || c.Matcher.Allows(post) {
		t.Fatalf("resolved %+v", c)
	}
	if _, err := tab.Resolve(policy.Egress, netip.AddrPortFrom(pod, 40001), netip.AddrPortFrom(node, policy.ProxyPortHTTPEgress)); err == nil ||
		!strings.Contains(err.Error(), "not redirected") {
		t.Fatalf("a connection straight to the proxy port: %v, want refused as not redirected", err)
	}
	if _, err := tab.Resolve(policy.Ingress, netip.AddrPortFrom(world, 5555), netip.AddrPortFrom(node, policy.ProxyPortHTTPIngress)); err == nil ||
		!strings.Contains(err.Error(), "no local endpoint") {
		t.Fatalf("a connection from outside to the node's ingress proxy port: %v, want refused", err)
	}
}
