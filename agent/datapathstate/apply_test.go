package datapathstate

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/kestrelnet/kestrel/agent/identity"
	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/datapath"
)

// recorder logs the calls Apply makes, in order.
type recorder struct{ calls []string }

func (r *recorder) SyncIPCache(es []datapath.IPCacheEntry) error {
	r.calls = append(r.calls, fmt.Sprintf("ipcache %d", len(es)))
	return nil
}

func (r *recorder) SetPolicies(ps map[uint32][]datapath.PolicyEntry) error {
	r.calls = append(r.calls, fmt.Sprintf("policies %d", len(ps)))
	return nil
}

func (r *recorder) UpsertEndpoint(ep datapath.Endpoint) error {
	r.calls = append(r.calls, fmt.Sprintf("upsert %d %v", ep.ID, ep.IPs))
	return nil
}

func (r *recorder) DeleteEndpoint(ep datapath.Endpoint) error {
	r.calls = append(r.calls, fmt.Sprintf("delete %d %v", ep.ID, ep.IPs))
	return nil
}

func TestApplyRemovesChangedAddressesBeforeInstallingPolicies(t *testing.T) {
	ip := netip.MustParseAddr
	prev := map[string]datapath.Endpoint{
		"a": {ID: 1, IPs: []netip.Addr{ip("10.0.0.1")}},
		"b": {ID: 2, IPs: []netip.Addr{ip("10.0.0.2")}},
		"c": {ID: 3, IPs: []netip.Addr{ip("10.0.0.3")}},
	}
	st := &State{
		Endpoints: map[string]datapath.Endpoint{
			"a": {ID: 1, IPs: []netip.Addr{ip("10.0.0.1")}},
			"b": {ID: 2, IPs: []netip.Addr{ip("10.0.0.22")}},
		},
		Policies: map[uint32][]datapath.PolicyEntry{1: nil, 2: nil},
	}
	var r recorder
	got, err := Apply(&r, prev, st)
	if err != nil {
		t.Fatal(err)
	}
	want := "ipcache 0; delete 2 [10.0.0.2]; policies 2; upsert 1 [10.0.0.1]; upsert 2 [10.0.0.22]; delete 3 [10.0.0.3]"
	if s := strings.Join(r.calls, "; "); s != want {
		t.Fatalf("calls:\n got %s\nwant %s", s, want)
	}
	if len(got) != 2 || got["b"].IPs[0] != ip("10.0.0.22") {
		t.Fatalf("installed %v", got)
	}
}

func TestNodeAddressesOverrideResolverEntries(t *testing.T) {
	res := &policy.Result{IPCache: []policy.IPCacheEntry{
		{Prefix: netip.MustParsePrefix("172.30.0.12/32"), Identity: identity.LocalIdentityFlag | 1},
		{Prefix: netip.MustParsePrefix("10.244.0.5/32"), Identity: 300},
	}}
	got := map[netip.Prefix]uint32{}
	for _, e := range IPCache(res, "node-1", map[string][]netip.Addr{
		"node-1": {netip.MustParseAddr("172.30.0.11")},
		"node-2": {netip.MustParseAddr("172.30.0.12")},
	}) {
		if _, dup := got[e.Prefix]; dup {
			t.Fatalf("prefix %s given twice", e.Prefix)
		}
		got[e.Prefix] = e.Identity
	}
	want := map[netip.Prefix]uint32{
		netip.MustParsePrefix("172.30.0.11/32"): uint32(identity.Host),
		netip.MustParsePrefix("172.30.0.12/32"): uint32(identity.RemoteNode),
		netip.MustParsePrefix("10.244.0.5/32"):  300,
		netip.MustParsePrefix("0.0.0.0/0"):      uint32(identity.WorldIPv4),
		netip.MustParsePrefix("::/0"):           uint32(identity.WorldIPv6),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ipcache %v, want %v", got, want)
	}
}
