package datapath_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// Policy holds for every packet that is not a reply: an open connection does
// not outlive the policy that allowed it.

// openFlow opens A:40000 -> B:80 through both hooks and answers it, so both
// sides hold an entry, and checks that an established packet passes.
func openFlow(t *testing.T, d *datapath.Datapath) {
	t.Helper()
	for _, s := range []struct {
		h    datapath.Hook
		spec packet.Spec
	}{
		{datapath.FromContainer, tcp(podA, podB, 40000, 80, "SYN")},
		{datapath.ToContainer, tcp(podA, podB, 40000, 80, "SYN")},
		{datapath.FromContainer, tcp(podB, podA, 80, 40000, "SYN", "ACK")},
		{datapath.ToContainer, tcp(podB, podA, 80, 40000, "SYN", "ACK")},
		{datapath.FromContainer, tcp(podA, podB, 40000, 80, "ACK")},
		{datapath.ToContainer, tcp(podA, podB, 40000, 80, "ACK")},
	} {
		expectForwarded(t, run(t, d, s.h, s.spec))
	}
}

func TestAPolicyChangeReachesOpenConnections(t *testing.T) {
	allowAtoB80 := []datapath.PolicyEntry{{Identity: idA, Direction: datapath.Ingress, Protocol: 6, PortLo: 80}}
	cases := []struct {
		name   string
		change func(t *testing.T, d *datapath.Datapath)
		reason string
	}{
		{"the allow goes", func(t *testing.T, d *datapath.Datapath) {
			must(t, d.SetPolicy(2, nil))
		}, "POLICY_DENIED"},
		{"a deny joins the allow", func(t *testing.T, d *datapath.Datapath) {
			must(t, d.SetPolicy(2, append(allowAtoB80, datapath.PolicyEntry{Identity: idA, Direction: datapath.Ingress, Action: datapath.PolicyDeny})))
		}, "POLICY_DENYLIST"},
		{"the peer's address changes identity", func(t *testing.T, d *datapath.Datapath) {
			must(t, d.SyncIPCache([]datapath.IPCacheEntry{
				{Prefix: netip.PrefixFrom(podA, 32), Identity: idC},
				{Prefix: netip.PrefixFrom(podB, 32), Identity: idB},
			}))
		}, "POLICY_DENIED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := datapathtest.Load(t)
			setup(t, d, false, true)
			must(t, d.SetPolicy(2, allowAtoB80))
			openFlow(t, d)
			before, err := d.PolicyRevision(2)
			must(t, err)

			c.change(t, d)
			after, err := d.PolicyRevision(2)
			must(t, err)
			if after == before {
				t.Fatalf("B's policy revision stayed %d", before)
			}
			ev := run(t, d, datapath.ToContainer, tcp(podA, podB, 40000, 80, "ACK"))
			expectDropped(t, ev, c.reason)
			if ev.CT.String() != "established" {
				t.Fatalf("want the dropped packet seen as established, got %s", ev.CT)
			}
			// B's replies ride on the flow; they are not policed again.
			expectForwarded(t, run(t, d, datapath.FromContainer, tcp(podB, podA, 80, 40000, "ACK")))
		})
	}
}

func TestAnUnchangedRevisionKeepsTheStampedVerdict(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, true)
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{{Identity: idA, Direction: datapath.Ingress, Protocol: 6, PortLo: 80}}))
	openFlow(t, d)
	rev, err := d.PolicyRevision(2)
	must(t, err)
	// Rewriting the same policy and endpoint changes nothing.
	must(t, d.SetPolicy(2, []datapath.PolicyEntry{{Identity: idA, Direction: datapath.Ingress, Protocol: 6, PortLo: 80}}))
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 2, Identity: idB, IPs: []netip.Addr{podB}, IngressEnforced: true}))
	if now, _ := d.PolicyRevision(2); now != rev {
		t.Fatalf("revision moved from %d to %d with nothing changed", rev, now)
	}
	ev := run(t, d, datapath.ToContainer, tcp(podA, podB, 40000, 80, "ACK"))
	expectForwarded(t, ev)
	if ev.CT.String() != "established" || ev.SrcIdentity != idA || ev.MatchType.String() != "l3-l4" {
		t.Fatalf("the established packet should carry its flow's verdict, got %s", ev)
	}
}

func TestAnEndpointsFlowsGoWithItsIdentity(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, false)
	openFlow(t, d)
	n, err := d.ConntrackEntries()
	must(t, err)
	if n != 2 {
		t.Fatalf("want the egress and ingress entries, got %d", n)
	}
	// B becomes another identity: its entry (decided for idB) goes; A's stays.
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 2, Identity: idC, IPs: []netip.Addr{podB}}))
	if n, _ = d.ConntrackEntries(); n != 1 {
		t.Fatalf("after B's identity change want 1 entry, got %d", n)
	}
	// A is deleted: its entry goes too.
	must(t, d.DeleteEndpoint(datapath.Endpoint{ID: 1}))
	if n, _ = d.ConntrackEntries(); n != 0 {
		t.Fatalf("after A's deletion want no entries, got %d", n)
	}
}

func TestUDPFlowsCannotEvictTCPConnections(t *testing.T) {
	d := datapathtest.LoadConfig(t, datapath.Config{CTAnyEntries: 64})
	setup(t, d, false, false)
	openFlow(t, d)
	for port := uint16(1); port <= 500; port++ {
		expectForwarded(t, run(t, d, datapath.FromContainer, packet.Spec{Src: podA, Dst: podB, Protocol: "UDP", SrcPort: port, DstPort: 53}))
	}
	ev := run(t, d, datapath.ToContainer, tcp(podA, podB, 40000, 80, "ACK"))
	if ev.CT.String() != "established" {
		t.Fatalf("after a UDP flood the TCP connection is %s, want established", ev.CT)
	}
	tables := d.ConntrackTables()
	if len(tables) != 2 || tables[1].MaxEntries != 64 || tables[0].MemoryBytes == 0 {
		t.Fatalf("conntrack tables %+v", tables)
	}
}

func TestGCRemovesExpiredEntriesOnly(t *testing.T) {
	d := datapathtest.LoadConfig(t, datapath.Config{CTLifetimeSYN: 1})
	setup(t, d, false, false)
	expectForwarded(t, run(t, d, datapath.FromContainer, tcp(podA, podB, 40000, 80, "SYN")))
	expectForwarded(t, run(t, d, datapath.FromContainer, packet.Spec{Src: podA, Dst: podB, Protocol: "UDP", SrcPort: 1, DstPort: 53}))
	if n, err := d.GCConntrack(); err != nil || n != 0 {
		t.Fatalf("gc of live entries removed %d (%v)", n, err)
	}
	time.Sleep(1100 * time.Millisecond)
	// The SYN's entry has expired; the UDP entry lives 60 s.
	if n, err := d.GCConntrack(); err != nil || n != 1 {
		t.Fatalf("gc removed %d (%v), want the expired SYN entry", n, err)
	}
	if n, _ := d.ConntrackEntries(); n != 1 {
		t.Fatalf("%d entries left, want the UDP one", n)
	}
}
