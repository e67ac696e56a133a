/* Local endpoints: the pods on this node, by IP. One program serves every pod
 * veth; it finds its endpoint from the pod-side address of the packet. */
#ifndef KESTREL_ENDPOINT_H
#define KESTREL_ENDPOINT_H

#include "common.h"

#define ENDPOINTS_MAP_SIZE 65535

enum endpoint_flags {
	EP_F_INGRESS_ENFORCED = 1 << 0, /* default deny for traffic to the pod */
	EP_F_EGRESS_ENFORCED = 1 << 1,  /* default deny for traffic from the pod */
};

struct endpoint_key {
	struct ip_addr ip;
	__u32 family;
};

struct endpoint_info {
	__u32 id;       /* endpoint id: key of its policy map */
	__u32 identity; /* the endpoint's own security identity */
	__u32 flags;    /* EP_F_* */
	__u32 ifindex;  /* host-side veth, 0 when unknown */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, ENDPOINTS_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} endpoints SEC(".maps");

static __always_inline struct endpoint_info *endpoint_lookup(const struct ip_addr *ip, __u8 family)
{
	struct endpoint_key key = { .ip = *ip, .family = family };

	return bpf_map_lookup_elem(&endpoints, &key);
}

static __always_inline bool endpoint_enforced(const struct endpoint_info *ep, __u8 dir)
{
	return ep->flags & (dir == DIR_EGRESS ? EP_F_EGRESS_ENFORCED : EP_F_INGRESS_ENFORCED);
}

#endif
