package datapath_test

import (
	"net/netip"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
)

// The agent installs 0.0.0.0/0 -> world-ipv4 (9) and ::/0 -> world-ipv6 (10),
// as Cilium does in dual-stack mode: an address nothing more specific names
// then gets its family's world, and a policy for one family's world leaves
// the other closed.
func TestSlashZeroEntriesGiveEachFamilyItsWorld(t *testing.T) {
	d := datapathtest.Load(t)
	podA6 := netip.MustParseAddr("fd00::a")
	must(t, d.SyncIPCache([]datapath.IPCacheEntry{
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Identity: 9},
		{Prefix: netip.MustParsePrefix("::/0"), Identity: 10},
		{Prefix: netip.PrefixFrom(podA, 32), Identity: idA},
		{Prefix: netip.PrefixFrom(podA6, 128), Identity: idA},
	}))
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA, podA6}, EgressEnforced: true}))
	must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: 9, Direction: datapath.Egress}}))

	ev := run(t, d, datapath.FromContainer, tcp(podA, world, 40020, 443, "SYN"))
	expectForwarded(t, ev)
	if ev.DstIdentity != 9 {
		t.Fatalf("IPv4 world address has identity %d, want world-ipv4 (9)", ev.DstIdentity)
	}
	ev = run(t, d, datapath.FromContainer, tcp(podA6, netip.MustParseAddr("2001:db8::10"), 40021, 443, "SYN"))
	expectDropped(t, ev, "POLICY_DENIED")
	if ev.DstIdentity != 10 {
		t.Fatalf("IPv6 world address has identity %d, want world-ipv6 (10)", ev.DstIdentity)
	}
}
