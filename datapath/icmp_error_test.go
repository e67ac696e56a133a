package datapath_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/kestrelnet/kestrel/datapath"
	"github.com/kestrelnet/kestrel/datapath/packet"
)

// ICMP errors about a flow to a service: the backend (or a router on the
// way) quotes the packet it got, addressed to the backend; the client must
// get it back about the packet it sent, to the frontend, or its socket never
// hears of the error.

// icmpErrorCase is one service flow and the error an address sends about it.
type icmpErrorCase struct {
	name        string
	front, back netip.AddrPort
	client      netip.Addr
	proto       string // of the flow
	num         uint8
	errFrom     netip.Addr // the error's sender: the backend, or a router
	icmp        string
	typ, code   uint8
}

func icmpErrorCases() []icmpErrorCase {
	router4, router6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	return []icmpErrorCase{
		{"UDP port unreachable from the backend, IPv4", ap(vip, 7000), ap(podB, 7070), podA, "UDP", datapath.ProtoUDP, podB, "ICMP", packet.ICMPv4DestUnreach, packet.ICMPv4PortUnreach},
		{"UDP port unreachable from the backend, IPv6", ap(vip6, 7000), ap(podB6, 7070), podA6, "UDP", datapath.ProtoUDP, podB6, "ICMPv6", packet.ICMPv6DestUnreach, packet.ICMPv6PortUnreach},
		{"TCP fragmentation needed from a router, IPv4", ap(vip, 80), ap(podB, 8080), podA, "TCP", datapath.ProtoTCP, router4, "ICMP", packet.ICMPv4DestUnreach, 4},
		{"TCP packet too big from a router, IPv6", ap(vip6, 80), ap(podB6, 8080), podA6, "TCP", datapath.ProtoTCP, router6, "ICMPv6", 2, 0},
		{"TCP port unreachable from the backend, IPv4", ap(vip, 80), ap(podB, 8080), podA, "TCP", datapath.ProtoTCP, podB, "ICMP", packet.ICMPv4DestUnreach, packet.ICMPv4PortUnreach},
		{"UDP time exceeded from a router, IPv6", ap(vip6, 7000), ap(podB6, 7070), podA6, "UDP", datapath.ProtoUDP, router6, "ICMPv6", 3, 0},
	}
}

func (c icmpErrorCase) flow(src, dst netip.AddrPort) packet.Spec {
	s := packet.Spec{Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(), Protocol: c.proto, Payload: []byte("hello")}
	if c.proto == "TCP" {
		s.Flags = []string{"SYN"}
	}
	return s
}

func (c icmpErrorCase) errorAbout(inner packet.Spec) packet.Spec {
	return packet.Spec{Src: c.errFrom, Dst: inner.Src, Protocol: c.icmp, ICMPType: c.typ, ICMPCode: c.code, Inner: &inner}
}

// icmpBody splits an IP packet carrying ICMP into its ICMP header and the
// quoted packet.
func icmpBody(t *testing.T, frame []byte) (hdr, quoted []byte) {
	t.Helper()
	off := 14 + 40
	if frame[14]>>4 == 4 {
		off = 14 + int(frame[14]&0xf)*4
	}
	if len(frame) < off+8 {
		t.Fatalf("frame too short for ICMP: %x", frame)
	}
	return frame[off : off+8], frame[off+8:]
}

func TestICMPErrorsAboutServiceFlowsAreTranslatedBack(t *testing.T) {
	for _, c := range icmpErrorCases() {
		t.Run(c.name, func(t *testing.T) {
			d := svcSetup(t)
			must(t, d.UpsertService(datapath.Service{ID: 7, Frontend: c.front, Protocol: c.num, Backends: []netip.AddrPort{c.back}}))
			client := ap(c.client, 40000)
			sent := build(t, c.flow(client, c.front))
			res, ev := runSvc(t, d, datapath.FromContainer, sent)
			expectForwarded(t, ev)
			expectSeg(t, "client's packet leaving", decode(t, res.Out), client, c.back)

			errFrame := build(t, c.errorAbout(c.flow(client, c.back)))
			res, ev = runSvc(t, d, datapath.ToContainer, errFrame)
			expectForwarded(t, ev)
			if ev.CT.String() != "related" || res.Code != datapath.TCActOK {
				t.Fatalf("want a related pass, got %s (code %d)", ev, res.Code)
			}
			// decode checks the outer IP and ICMP checksums.
			got := decode(t, res.Out)
			wantSrc := c.errFrom
			if c.errFrom == c.back.Addr() {
				wantSrc = c.front.Addr() // the backend's own error comes from the frontend
			}
			if got.src.Addr() != wantSrc || got.dst.Addr() != c.client {
				t.Fatalf("outer %s -> %s, want %s -> %s", got.src.Addr(), got.dst.Addr(), wantSrc, c.client)
			}
			if want := fmt.Sprintf("%s %d/%d", c.icmp, c.typ, c.code); got.proto != want {
				t.Fatalf("ICMP type changed: %s, want %s", got.proto, want)
			}
			hdr, quoted := icmpBody(t, res.Out)
			origHdr, _ := icmpBody(t, errFrame)
			if !bytes.Equal(hdr[4:], origHdr[4:]) {
				t.Fatalf("the ICMP header's second word changed: %x", hdr)
			}
			// The quoted packet is the client's own again, byte for byte:
			// frontend address and port, IPv4 header checksum and the
			// TCP/UDP checksum as the client computed them.
			ipPacket := sent[14:] // without the Ethernet padding a short IPv4 frame gets
			if c.client.Is4() {
				ipPacket = ipPacket[:int(ipPacket[2])<<8|int(ipPacket[3])]
			}
			if !bytes.Equal(quoted, ipPacket) {
				q := gopacket.NewPacket(quoted, map[bool]gopacket.LayerType{true: layers.LayerTypeIPv4, false: layers.LayerTypeIPv6}[c.client.Is4()], gopacket.Default)
				t.Fatalf("quoted packet not the client's:\n got  %x\n want %x\n%v", quoted, ipPacket, q)
			}
		})
	}
}

// An error the client's flows do not explain is dropped, whatever policy
// says (the endpoints here enforce none): naming the backend on a port the
// client never used, naming the frontend itself (what the client sent, but
// never what a backend saw), or a service flow's tuple from the wrong side.
func TestForgedICMPErrorsAreDroppedUntranslated(t *testing.T) {
	for _, c := range icmpErrorCases()[:2] {
		t.Run(c.name, func(t *testing.T) {
			d := svcSetup(t)
			must(t, d.UpsertService(datapath.Service{ID: 7, Frontend: c.front, Protocol: c.num, Backends: []netip.AddrPort{c.back}}))
			client := ap(c.client, 40000)
			_, ev := runSvc(t, d, datapath.FromContainer, build(t, c.flow(client, c.front)))
			expectForwarded(t, ev)
			for _, forged := range []struct {
				what  string
				inner packet.Spec
			}{
				{"another client port", c.flow(ap(c.client, 40001), c.back)},
				{"another backend port", c.flow(client, ap(c.back.Addr(), c.back.Port()+1))},
				{"the frontend tuple", c.flow(client, c.front)},
			} {
				frame := build(t, c.errorAbout(forged.inner))
				res, ev := runSvc(t, d, datapath.ToContainer, frame)
				expectDropped(t, ev, "ICMP_ERROR_UNRELATED")
				if res.Code != datapath.TCActShot {
					t.Fatalf("%s: code %d, want the frame shot", forged.what, res.Code)
				}
				if !bytes.Equal(res.Out, frame) {
					t.Fatalf("%s: the dropped frame was rewritten:\n got  %x\n want %x", forged.what, res.Out, frame)
				}
			}
		})
	}
}
