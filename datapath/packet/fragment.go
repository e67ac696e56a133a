package packet

import (
	"encoding/binary"
	"fmt"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Fragment splits a frame Build made into IP fragments, the way a sender's
// stack does: every fragment but the last carries a multiple of 8 bytes of
// the datagram's payload (the L4 header and data), at the sizes given; the
// last carries the rest. IPv4 fragments set MF and the offset and keep one
// identification; IPv6 fragments get a Fragment extension header with id.
func Fragment(frame []byte, id uint32, sizes ...int) ([][]byte, error) {
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil {
		return nil, fmt.Errorf("fragment: not an Ethernet frame")
	}
	var payload []byte
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		payload = ip.Payload
	case *layers.IPv6:
		payload = ip.Payload
	default:
		return nil, fmt.Errorf("fragment: not an IP packet")
	}
	var chunks [][]byte
	rest := payload
	for _, n := range sizes {
		if n <= 0 || n%8 != 0 || n >= len(rest) {
			return nil, fmt.Errorf("fragment: size %d must be a positive multiple of 8 below the %d bytes left", n, len(rest))
		}
		chunks = append(chunks, rest[:n])
		rest = rest[n:]
	}
	chunks = append(chunks, rest)

	var out [][]byte
	offset := 0
	for i, chunk := range chunks {
		more := i < len(chunks)-1
		var l3 gopacket.SerializableLayer
		switch ip := p.NetworkLayer().(type) {
		case *layers.IPv4:
			h := *ip
			h.Options, h.Padding = nil, nil
			h.IHL = 5
			h.Id = uint16(id)
			h.Flags &^= layers.IPv4MoreFragments | layers.IPv4DontFragment
			if more {
				h.Flags |= layers.IPv4MoreFragments
			}
			h.FragOffset = uint16(offset / 8)
			l3 = &h
		case *layers.IPv6:
			h := *ip
			h.HopByHop = nil
			fh := make([]byte, 8)
			fh[0] = uint8(ip.NextHeader)
			offM := uint16(offset/8) << 3
			if more {
				offM |= 1
			}
			binary.BigEndian.PutUint16(fh[2:], offM)
			binary.BigEndian.PutUint32(fh[4:], id)
			h.NextHeader = layers.IPProtocolIPv6Fragment
			chunk = append(fh, chunk...)
			l3 = &h
		}
		buf := gopacket.NewSerializeBuffer()
		opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
		if err := gopacket.SerializeLayers(buf, opts, eth, l3, gopacket.Payload(chunk)); err != nil {
			return nil, fmt.Errorf("fragment %d: %w", i, err)
		}
		out = append(out, buf.Bytes())
		offset += len(chunks[i])
	}
	return out, nil
}
