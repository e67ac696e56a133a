package policy

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
)

var icmpv4Types = map[string]int{
	"EchoReply": 0, "DestinationUnreachable": 3, "Redirect": 5, "Echo": 8, "EchoRequest": 8,
	"RouterAdvertisement": 9, "RouterSelection": 10, "TimeExceeded": 11, "ParameterProblem": 12,
	"Timestamp": 13, "TimestampReply": 14, "Photuris": 40, "ExtendedEchoRequest": 42,
	"ExtendedEchoReply": 43,
}

var icmpv6Types = map[string]int{
	"DestinationUnreachable": 1, "PacketTooBig": 2, "TimeExceeded": 3, "ParameterProblem": 4,
	"EchoRequest": 128, "EchoReply": 129, "MulticastListenerQuery": 130,
	"MulticastListenerReport": 131, "MulticastListenerDone": 132, "RouterSolicitation": 133,
	"RouterAdvertisement": 134, "NeighborSolicitation": 135, "NeighborAdvertisement": 136,
	"RedirectMessage": 137, "RouterRenumbering": 138, "ICMPNodeInformationQuery": 139,
	"ICMPNodeInformationResponse": 140, "InverseNeighborDiscoverySolicitation": 141,
	"InverseNeighborDiscoveryAdvertisement": 142, "HomeAgentAddressDiscoveryRequest": 144,
	"HomeAgentAddressDiscoveryReply": 145, "MobilePrefixSolicitation": 146,
	"MobilePrefixAdvertisement": 147, "DuplicateAddressRequestCodeSuffix": 157,
	"DuplicateAddressConfirmationCodeSuffix": 158, "ExtendedEchoRequest": 160,
	"ExtendedEchoReply": 161,
}

// icmpKey returns the protocol (ICMP or ICMPv6) and type of an icmps field.
func icmpKey(f ICMPField) (proto uint8, typ uint16, err error) {
	var names map[string]int
	switch strings.ToLower(f.Family) {
	case "", "ipv4":
		proto, names = ProtoICMP, icmpv4Types
	case "ipv6":
		proto, names = ProtoICMPv6, icmpv6Types
	default:
		return 0, 0, errAt("family", "invalid family %q (want IPv4 or IPv6)", f.Family)
	}
	if f.Type.Type == intstr.Int {
		if f.Type.IntVal < 0 || f.Type.IntVal > 255 {
			return 0, 0, errAt("type", "%d is out of range 0-255", f.Type.IntVal)
		}
		return proto, uint16(f.Type.IntVal), nil
	}
	if n, ok := PortValue(f.Type.StrVal).Number(); ok && n >= 0 && n <= 255 {
		return proto, uint16(n), nil
	}
	n, ok := names[f.Type.StrVal]
	if !ok {
		return 0, 0, errAt("type", "unknown %s ICMP type %q", f.Family, f.Type.StrVal)
	}
	return proto, uint16(n), nil
}
