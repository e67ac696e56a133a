// Package observe turns the agent's flows into Hubble's flow model
// (Cilium's api/v1/flow) and serves them with Hubble's Observer API.
package observe

import "github.com/kestrelnet/kestrel/datapath"

// CiliumDropReason is a reason in Cilium's flow.DropReason enum.
type CiliumDropReason struct {
	Name   string
	Number int32
}

// ciliumDropReasons maps our drop reasons (the C enum's names without DROP_)
// to Cilium's, where Cilium drops the same packets for the same cause, so
// `hubble observe --drop-reason-desc` and dashboards over Cilium's reasons
// read ours. The numbers are checked against the generated enum in tests.
var ciliumDropReasons = map[string]CiliumDropReason{
	"POLICY_DENIED":   {"POLICY_DENIED", 133},
	"POLICY_DENYLIST": {"POLICY_DENY", 181},
	// Cilium reports a frame shorter than its headers, and a bad IPv4 or
	// IPv6 header, as DROP_INVALID ("Invalid packet").
	"TRUNCATED":             {"INVALID_PACKET_DROPPED", 134},
	"INVALID_IPV4":          {"INVALID_PACKET_DROPPED", 134},
	"INVALID_IPV6":          {"INVALID_PACKET_DROPPED", 134},
	"UNSUPPORTED_L3":        {"UNSUPPORTED_L3_PROTOCOL", 139},
	"FRAG_NOT_SUPPORTED":    {"IP_FRAGMENTATION_NOT_SUPPORTED", 157},
	"IPV6_EXT_HEADERS":      {"INVALID_IPV6_EXTENSION_HEADER", 156},
	"INVALID_L4":            {"CT_TRUNCATED_OR_INVALID_HEADER", 135},
	"INVALID_SOURCE":        {"INVALID_SOURCE_IP", 132},
	"UNROUTABLE":            {"STALE_OR_UNROUTABLE_IP", 151},
	"CT_CREATE_FAILED":      {"CT_MAP_INSERTION_FAILED", 155},
	"INVALID_SOURCE_MAC":    {"INVALID_SOURCE_MAC", 130},
	"FRAG_NOT_FOUND":        {"FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND", 175},
	"SERVICE_NO_BACKEND":    {"SERVICE_BACKEND_NOT_FOUND", 158},
	"SERVICE_WRONG_PORT":    {"IS_A_CLUSTERIP", 174},
	"NAT_FAILED":            {"ERROR_WRITING_TO_PACKET", 141},
	"SNAT_NO_PORT":          {"NO_MAPPING_FOR_NAT_MASQUERADE", 167},
	"SERVICE_SOURCE_RANGE":  {"DENIED_BY_LB_SRC_RANGE_CHECK", 177},
	"NAT_UNSUPPORTED_PROTO": {"UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE", 168},
	"TTL_EXCEEDED":          {"TTL_EXCEEDED", 196},
}

// kestrelOnlyDropReasons have no Cilium counterpart: Cilium either lets
// such packets through or never meets them. Their flows carry
// DROP_REASON_UNKNOWN (0) in Cilium's field and our name beside it.
var kestrelOnlyDropReasons = map[string]string{
	"FRAG_TOO_SHORT":       "Cilium has no check that a first fragment holds the whole L4 header",
	"INVALID_ARP":          "Cilium answers ARP itself and does not judge the pod's requests",
	"PROXY_UNAVAILABLE":    "Cilium always has a proxy to redirect to; Kestrel has none yet",
	"SERVICE_UNALLOCATED":  "Cilium forwards traffic to unallocated service-range addresses",
	"SERVICE_SCTP":         "Cilium translates SCTP to services",
	"DSR_INVALID":          "Cilium does not check that a DSR option names a frontend and comes from a node",
	"ICMP_ERROR_UNRELATED": "Cilium judges an ICMP error about no tracked flow by policy, as a new flow",
}

// CiliumDropReasonOf returns Cilium's reason for one of ours, and whether
// Cilium has one.
func CiliumDropReasonOf(r datapath.DropReason) (CiliumDropReason, bool) {
	c, ok := ciliumDropReasons[r.String()]
	return c, ok
}
