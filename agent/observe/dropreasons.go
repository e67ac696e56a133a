// Package observe turns the agent's flows into Hubble's flow model
// (Cilium's api/v1/flow) and serves them with Hubble's Observer API.
package observe

import "github.com/kestrelnet/kestrel/datapath"

// CiliumDropReason is a reason in Cilium's flow.DropReason enum.
type CiliumDropReason struct {
	Name   string // flow.DropReason's name: hubble_drop_total's reason label
	Number int32
	// Text is what Cilium's agent prints for the number (pkg/monitor/api's
	// DropReason): cilium_drop_count_total's reason label.
	Text string
}

// ciliumDropReasons maps our drop reasons (the C enum's names without DROP_)
// to Cilium's, where Cilium drops the same packets for the same cause, so
// `hubble observe --drop-reason-desc` and dashboards over Cilium's reasons
// read ours. The numbers are checked against the generated enum in tests.
var ciliumDropReasons = map[string]CiliumDropReason{
	"POLICY_DENIED":   {"POLICY_DENIED", 133, "Policy denied"},
	"POLICY_DENYLIST": {"POLICY_DENY", 181, "Policy denied by denylist"},
	// Cilium reports a frame shorter than its headers, and a bad IPv4 or
	// IPv6 header, as DROP_INVALID ("Invalid packet").
	"TRUNCATED":             {"INVALID_PACKET_DROPPED", 134, "Invalid packet"},
	"INVALID_IPV4":          {"INVALID_PACKET_DROPPED", 134, "Invalid packet"},
	"INVALID_IPV6":          {"INVALID_PACKET_DROPPED", 134, "Invalid packet"},
	"UNSUPPORTED_L3":        {"UNSUPPORTED_L3_PROTOCOL", 139, "Unsupported L3 protocol"},
	"FRAG_NOT_SUPPORTED":    {"IP_FRAGMENTATION_NOT_SUPPORTED", 157, "IP fragmentation not supported"},
	"IPV6_EXT_HEADERS":      {"INVALID_IPV6_EXTENSION_HEADER", 156, "Invalid IPv6 extension header"},
	"INVALID_L4":            {"CT_TRUNCATED_OR_INVALID_HEADER", 135, "CT: Truncated or invalid header"},
	"INVALID_SOURCE":        {"INVALID_SOURCE_IP", 132, "Invalid source ip"},
	"UNROUTABLE":            {"STALE_OR_UNROUTABLE_IP", 151, "Stale or unroutable IP"},
	"CT_CREATE_FAILED":      {"CT_MAP_INSERTION_FAILED", 155, "CT: Map insertion failed"},
	"INVALID_SOURCE_MAC":    {"INVALID_SOURCE_MAC", 130, "Invalid source mac"},
	"FRAG_NOT_FOUND":        {"FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND", 175, "First logical datagram fragment not found"},
	"SERVICE_NO_BACKEND":    {"SERVICE_BACKEND_NOT_FOUND", 158, "Service backend not found"},
	"SERVICE_WRONG_PORT":    {"IS_A_CLUSTERIP", 174, "Is a ClusterIP"},
	"NAT_FAILED":            {"ERROR_WRITING_TO_PACKET", 141, "Error writing to packet"},
	"SNAT_NO_PORT":          {"NO_MAPPING_FOR_NAT_MASQUERADE", 167, "No mapping for NAT masquerade"},
	"SERVICE_SOURCE_RANGE":  {"DENIED_BY_LB_SRC_RANGE_CHECK", 177, "Denied by LB src range check"},
	"NAT_UNSUPPORTED_PROTO": {"UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE", 168, "Unsupported protocol for NAT masquerade"},
	"TTL_EXCEEDED":          {"TTL_EXCEEDED", 196, "TTL exceeded"},
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

// DropReasonText is the reason label of cilium_drop_count_total: Cilium's
// agent's text for the reason ("Policy denied"), else our own name.
func DropReasonText(name string) string {
	if c, ok := ciliumDropReasons[name]; ok {
		return c.Text
	}
	return name
}

// CiliumDropReasonOf returns Cilium's reason for one of ours, and whether
// Cilium has one.
func CiliumDropReasonOf(r datapath.DropReason) (CiliumDropReason, bool) {
	c, ok := ciliumDropReasons[r.String()]
	return c, ok
}
