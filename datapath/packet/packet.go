// Package packet crafts Ethernet frames with gopacket for running through the
// datapath: TCP with any flags, UDP, SCTP, ICMP/ICMPv6 echo and errors, over
// IPv4 or IPv6.
package packet

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Spec describes one frame.
type Spec struct {
	Src, Dst         netip.Addr
	Protocol         string // TCP | UDP | SCTP | ICMP | ICMPv6
	SrcPort, DstPort uint16
	Flags            []string // TCP: SYN, ACK, FIN, RST, PSH, URG
	ICMPType         uint8    // ICMP/ICMPv6 type (echo request when zero value and Echo)
	ICMPCode         uint8
	ICMPID           uint16 // echo identifier
	Inner            *Spec  // for ICMP errors: the offending packet, embedded
	Payload          []byte
	SrcMAC, DstMAC   net.HardwareAddr // zero: the defaults below
	HopLimit         uint8            // IPv6 hop limit / IPv4 TTL; zero: 64
}

var (
	srcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// Build serializes the frame with correct lengths and checksums.
func Build(s Spec) ([]byte, error) {
	ls, err := layersOf(s, true)
	if err != nil {
		return nil, err
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		return nil, fmt.Errorf("serialize %s frame: %w", s.Protocol, err)
	}
	return buf.Bytes(), nil
}

func layersOf(s Spec, withEthernet bool) ([]gopacket.SerializableLayer, error) {
	if !s.Src.IsValid() || !s.Dst.IsValid() || s.Src.Is4() != s.Dst.Is4() {
		return nil, fmt.Errorf("frame needs two addresses of one family, got %v and %v", s.Src, s.Dst)
	}
	var out []gopacket.SerializableLayer
	var netLayer gopacket.NetworkLayer
	proto := strings.ToUpper(s.Protocol)
	ipProto, err := ipProtocol(proto)
	if err != nil {
		return nil, err
	}
	smac, dmac, hops := srcMAC, dstMAC, uint8(64)
	if s.SrcMAC != nil {
		smac = s.SrcMAC
	}
	if s.DstMAC != nil {
		dmac = s.DstMAC
	}
	if s.HopLimit != 0 {
		hops = s.HopLimit
	}
	if s.Src.Is4() {
		if withEthernet {
			out = append(out, &layers.Ethernet{SrcMAC: smac, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv4})
		}
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: hops, Protocol: ipProto,
			SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice()}
		netLayer = ip
		out = append(out, ip)
	} else {
		if withEthernet {
			out = append(out, &layers.Ethernet{SrcMAC: smac, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv6})
		}
		ip := &layers.IPv6{Version: 6, HopLimit: hops, NextHeader: ipProto,
			SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice()}
		netLayer = ip
		out = append(out, ip)
	}
	l4, err := transport(s, proto, netLayer)
	if err != nil {
		return nil, err
	}
	out = append(out, l4...)
	if len(s.Payload) > 0 {
		out = append(out, gopacket.Payload(s.Payload))
	}
	return out, nil
}

func ipProtocol(proto string) (layers.IPProtocol, error) {
	switch proto {
	case "TCP":
		return layers.IPProtocolTCP, nil
	case "UDP":
		return layers.IPProtocolUDP, nil
	case "SCTP":
		return layers.IPProtocolSCTP, nil
	case "ICMP":
		return layers.IPProtocolICMPv4, nil
	case "ICMPV6":
		return layers.IPProtocolICMPv6, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want TCP, UDP, SCTP, ICMP or ICMPv6)", proto)
}

func transport(s Spec, proto string, nl gopacket.NetworkLayer) ([]gopacket.SerializableLayer, error) {
	switch proto {
	case "TCP":
		t := &layers.TCP{SrcPort: layers.TCPPort(s.SrcPort), DstPort: layers.TCPPort(s.DstPort), Window: 64240, Seq: 1000}
		for _, f := range s.Flags {
			switch strings.ToUpper(f) {
			case "SYN":
				t.SYN = true
			case "ACK":
				t.ACK = true
				t.Ack = 1
			case "FIN":
				t.FIN = true
			case "RST":
				t.RST = true
			case "PSH":
				t.PSH = true
			case "URG":
				t.URG = true
			default:
				return nil, fmt.Errorf("unknown TCP flag %q", f)
			}
		}
		if err := t.SetNetworkLayerForChecksum(nl); err != nil {
			return nil, err
		}
		return []gopacket.SerializableLayer{t}, nil
	case "UDP":
		u := &layers.UDP{SrcPort: layers.UDPPort(s.SrcPort), DstPort: layers.UDPPort(s.DstPort)}
		if err := u.SetNetworkLayerForChecksum(nl); err != nil {
			return nil, err
		}
		return []gopacket.SerializableLayer{u}, nil
	case "SCTP":
		return []gopacket.SerializableLayer{&layers.SCTP{SrcPort: layers.SCTPPort(s.SrcPort), DstPort: layers.SCTPPort(s.DstPort), VerificationTag: 1}}, nil
	case "ICMP":
		ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(s.ICMPType, s.ICMPCode), Id: s.ICMPID, Seq: 1}
		return withInner(s, ic)
	case "ICMPV6":
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(s.ICMPType, s.ICMPCode)}
		if err := ic.SetNetworkLayerForChecksum(nl); err != nil {
			return nil, err
		}
		// Echo and error messages carry 4 bytes (id+seq, or unused/MTU) before the body.
		rest := []byte{byte(s.ICMPID >> 8), byte(s.ICMPID), 0, 1}
		inner, err := innerBytes(s)
		if err != nil {
			return nil, err
		}
		return []gopacket.SerializableLayer{ic, gopacket.Payload(append(rest, inner...))}, nil
	}
	return nil, fmt.Errorf("unknown protocol %q", proto)
}

func withInner(s Spec, l gopacket.SerializableLayer) ([]gopacket.SerializableLayer, error) {
	inner, err := innerBytes(s)
	if err != nil || len(inner) == 0 {
		return []gopacket.SerializableLayer{l}, err
	}
	return []gopacket.SerializableLayer{l, gopacket.Payload(inner)}, nil
}

// innerBytes is the embedded packet of an ICMP error: IP header plus the first
// bytes of its transport header.
func innerBytes(s Spec) ([]byte, error) {
	if s.Inner == nil {
		return nil, nil
	}
	ls, err := layersOf(*s.Inner, false)
	if err != nil {
		return nil, fmt.Errorf("inner packet: %w", err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, fmt.Errorf("inner packet: %w", err)
	}
	return buf.Bytes(), nil
}

// ICMP type numbers used by callers.
const (
	ICMPv4EchoReply    = 0
	ICMPv4DestUnreach  = 3
	ICMPv4EchoRequest  = 8
	ICMPv6DestUnreach  = 1
	ICMPv6EchoRequest  = 128
	ICMPv6EchoReply    = 129
	ICMPv6NeighborSol  = 135
	ICMPv4PortUnreach  = 3 // code
	ICMPv6PortUnreach  = 4 // code
	ICMPv4TimeExceeded = 11
)

// ARP builds an Ethernet/IPv4 ARP frame (op 1 request, 2 reply) sent from
// frameMAC, claiming that senderIP is at senderMAC.
func ARP(op uint16, frameMAC, senderMAC net.HardwareAddr, senderIP, targetIP netip.Addr) ([]byte, error) {
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true},
		&layers.Ethernet{SrcMAC: frameMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: op, SourceHwAddress: senderMAC, SourceProtAddress: senderIP.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: targetIP.AsSlice()})
	if err != nil {
		return nil, fmt.Errorf("serialize ARP frame: %w", err)
	}
	return buf.Bytes(), nil
}
