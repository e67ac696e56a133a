package datapath_test

import (
	"net/netip"
	"testing"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/datapathtest"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

var (
	v6A = netip.MustParseAddr("fd00::a")
	v6B = netip.MustParseAddr("fd00::b")
)

// withExtHeaders splices IPv6 extension headers (each 8 bytes: next header,
// length 0, PadN) between the IPv6 header and the payload of frame.
func withExtHeaders(frame []byte, types ...byte) []byte {
	const ipv6End = 14 + 40
	out := append([]byte(nil), frame[:ipv6End]...)
	next := out[14+6]
	out[14+6] = types[0]
	for i := range types {
		nh := next
		if i+1 < len(types) {
			nh = types[i+1]
		}
		out = append(out, nh, 0, 1, 4, 0, 0, 0, 0)
	}
	out = append(out, frame[ipv6End:]...)
	plen := int(out[14+4])<<8 | int(out[14+5]) + 8*len(types)
	out[14+4], out[14+5] = byte(plen>>8), byte(plen)
	return out
}

func TestIPv6ExtensionHeaders(t *testing.T) {
	d := datapathtest.Load(t)
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{v6A}}))
	frame, err := packet.Build(packet.Spec{Src: v6A, Dst: v6B, Protocol: "TCP", SrcPort: 1000, DstPort: 443, Flags: []string{"SYN"}})
	must(t, err)
	const hopByHop, destOpts, fragment = 0, 60, 44
	cases := []struct {
		name  string
		frame []byte
		want  string // drop reason, or "" for forwarded to port 443
	}{
		{"a hop-by-hop header before TCP is walked over", withExtHeaders(frame, hopByHop), ""},
		{"four chained headers are walked over", withExtHeaders(frame, hopByHop, destOpts, destOpts, destOpts), ""},
		{"a fifth header is too many", withExtHeaders(frame, hopByHop, destOpts, destOpts, destOpts, destOpts), "IPV6_EXT_HEADERS"},
		{"a later fragment whose first was not seen", withExtHeaders(frame, fragment), "FRAG_NOT_FOUND"},
		{"an extension header cut short", withExtHeaders(frame, hopByHop)[:14+40+4], "TRUNCATED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := runFrame(t, d, datapath.FromContainer, c.frame)
			if c.want == "" {
				expectForwarded(t, ev)
				if ev.DstPort != 443 || ev.Protocol != 6 || ev.Src != v6A || ev.Dst != v6B {
					t.Fatalf("the TCP header behind the extension headers was misread: %s", ev)
				}
				return
			}
			expectDropped(t, ev, c.want)
		})
	}
}

func TestICMPv6ErrorsAboutTrackedFlowsAreRelated(t *testing.T) {
	d := datapathtest.Load(t)
	must(t, d.UpsertEndpoint(datapath.Endpoint{ID: 1, Identity: idA, IPs: []netip.Addr{v6A}, IngressEnforced: true}))
	udp := packet.Spec{Src: v6A, Dst: v6B, Protocol: "UDP", SrcPort: 5353, DstPort: 53}
	unreach := packet.Spec{Src: v6B, Dst: v6A, Protocol: "ICMPv6", ICMPType: packet.ICMPv6DestUnreach, ICMPCode: packet.ICMPv6PortUnreach, Inner: &udp}

	expectDropped(t, run(t, d, datapath.ToContainer, unreach), "ICMP_ERROR_UNRELATED")
	expectForwarded(t, run(t, d, datapath.FromContainer, udp))
	if ev := run(t, d, datapath.ToContainer, unreach); ev.Verdict != datapath.VerdictForwarded || ev.CT.String() != "related" {
		t.Fatalf("want a related pass, got %s", ev)
	}
}

// withIPv4Options inserts n 4-byte words of NOP options after the IPv4 header.
func withIPv4Options(frame []byte, words int) []byte {
	out := append([]byte(nil), frame[:34]...)
	for i := 0; i < 4*words; i++ {
		out = append(out, 1)
	}
	out = append(out, frame[34:]...)
	out[14] = 0x40 | byte(5+words)
	tot := int(out[16])<<8 | int(out[17]) + 4*words
	out[16], out[17] = byte(tot>>8), byte(tot)
	return out
}

func TestIPv4OptionsAreWalkedOver(t *testing.T) {
	d := datapathtest.Load(t)
	setup(t, d, false, false)
	frame, err := packet.Build(tcp(podA, podB, 1000, 8443, "SYN"))
	must(t, err)
	for _, words := range []int{1, 10} {
		ev := runFrame(t, d, datapath.FromContainer, withIPv4Options(frame, words))
		expectForwarded(t, ev)
		if ev.DstPort != 8443 || ev.SrcPort != 1000 {
			t.Fatalf("%d option words: ports misread: %s", words, ev)
		}
	}
}
