package datapath_test

import (
	"net/netip"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// fragments builds a UDP datagram with a 64-byte payload and splits it into
// a first fragment of 16 bytes (the 8-byte UDP header and 8 of data) and a
// later one with the rest.
func fragments(t *testing.T, src, dst netip.Addr, sport, dport uint16, id uint32) (first, later []byte) {
	t.Helper()
	frame, err := packet.Build(packet.Spec{Src: src, Dst: dst, Protocol: "UDP", SrcPort: sport, DstPort: dport, Payload: make([]byte, 64)})
	must(t, err)
	fs, err := packet.Fragment(frame, id, 16)
	must(t, err)
	if len(fs) != 2 {
		t.Fatalf("want 2 fragments, got %d", len(fs))
	}
	return fs[0], fs[1]
}

func expectPorts(t *testing.T, ev datapath.Event, sport, dport uint16) {
	t.Helper()
	if ev.SrcPort != sport || ev.DstPort != dport || ev.Protocol != 17 {
		t.Fatalf("want UDP %d -> %d, got %s", sport, dport, ev)
	}
}

func TestLaterFragmentsFollowTheirFirstFragmentsVerdict(t *testing.T) {
	for _, fam := range []struct {
		name     string
		src, dst netip.Addr
	}{{"IPv4", podA, podB}, {"IPv6", v6A, v6B}} {
		t.Run(fam.name, func(t *testing.T) {
			d := datapathtest.Load(t)
			setup(t, d, true, false)
			must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA, v6A}, EgressEnforced: true}))
			must(t, d.SyncIPCache([]datapath.IPCacheEntry{
				{Prefix: netip.PrefixFrom(podB, 32), Identity: idB}, {Prefix: netip.PrefixFrom(v6B, 128), Identity: idB},
			}))
			must(t, d.SetPolicy(1, []datapath.PolicyEntry{{Identity: idB, Direction: datapath.Egress, Protocol: 17, PortLo: 53, Cookie: 9}}))

			first, later := fragments(t, fam.src, fam.dst, 40000, 53, 7)
			ev := runFrame(t, d, datapath.FromContainer, first)
			expectForwarded(t, ev)
			expectPorts(t, ev, 40000, 53)
			ev = runFrame(t, d, datapath.FromContainer, later)
			expectForwarded(t, ev)
			expectPorts(t, ev, 40000, 53)
			if ev.CT.String() != "established" {
				t.Fatalf("the later fragment should find the flow the first one opened: %s", ev)
			}

			// The first fragment of a denied datagram is denied by policy, and so is the rest.
			first, later = fragments(t, fam.src, fam.dst, 40001, 54, 8)
			expectDropped(t, runFrame(t, d, datapath.FromContainer, first), "POLICY_DENIED")
			ev = runFrame(t, d, datapath.FromContainer, later)
			expectDropped(t, ev, "POLICY_DENIED")
			expectPorts(t, ev, 40001, 54)

			// A later fragment of a datagram whose first fragment never came has no ports.
			_, orphan := fragments(t, fam.src, fam.dst, 40002, 53, 9)
			expectDropped(t, runFrame(t, d, datapath.FromContainer, orphan), "FRAG_NOT_FOUND")
			// Nor does one from another sender that reuses an identification.
			_, spoofed := fragments(t, fam.src, fam.dst, 40000, 53, 7)
			if fam.name == "IPv4" {
				spoofed[26+3] = 99 // another source address (10.244.0.99), same id
				must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 3, Identity: idA, IPs: []netip.Addr{netip.MustParseAddr("10.244.0.99")}}))
				expectDropped(t, runFrame(t, d, datapath.FromContainer, spoofed), "FRAG_NOT_FOUND")
			}
		})
	}
}

// A first fragment too short to hold its whole L4 header is the tiny-fragment
// attack of RFC 1858: a later, overlapping fragment could rewrite what
// policy saw.
func TestTinyFirstFragmentsAreDropped(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, false)
	for _, src := range []struct {
		name     string
		src, dst netip.Addr
	}{{"IPv4", podA, podB}, {"IPv6", v6A, v6B}} {
		must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{podA, v6A}}))
		frame, err := packet.Build(tcp(src.src, src.dst, 1, 80, "SYN"))
		must(t, err)
		fs, err := packet.Fragment(frame, 5, 8) // 8 of the 20 bytes of TCP header
		must(t, err)
		expectDropped(t, runFrame(t, d, datapath.FromContainer, fs[0]), "FRAG_TOO_SHORT")
	}
}
