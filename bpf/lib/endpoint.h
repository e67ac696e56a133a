/* Local endpoints, keyed by the ifindex of their host-side veth. One program
 * serves every pod veth, and the device a packet crosses says whose packet it
 * is: from a pod, the source address and MAC must be that endpoint's own; to a
 * pod, the destination must be. A packet is never judged as another endpoint's
 * because of the addresses it carries. */
#ifndef KESTREL_ENDPOINT_H
#define KESTREL_ENDPOINT_H

#include "common.h"

#define ENDPOINTS_MAP_SIZE 65535

enum endpoint_flags {
	EP_F_INGRESS_ENFORCED = 1 << 0, /* default deny for traffic to the pod */
	EP_F_EGRESS_ENFORCED = 1 << 1,  /* default deny for traffic from the pod */
};

struct endpoint_info {
	__u32 id;              /* endpoint id: key of its policy map */
	__u32 identity;        /* the endpoint's own security identity */
	__u32 flags;           /* EP_F_* */
	__u32 policy_revision; /* bumped whenever the endpoint's verdicts may change */
	__be32 ipv4;           /* 0: the pod has no IPv4 address */
	__u32 ipv6[4];         /* all zero: no IPv6 address */
	__u8 mac[6];           /* the pod-side interface's address */
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32); /* ifindex of the host-side veth */
	__type(value, struct endpoint_info);
	__uint(max_entries, ENDPOINTS_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} endpoints SEC(".maps");

/* The same endpoints by address: the node's device asks whether a
 * translated destination is a pod of this node, and whether a packet it
 * sends out came from one. The value is the host veth's ifindex. */
struct endpoint_addr_key {
	struct ip_addr addr;
	__u8 family;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_addr_key);
	__type(value, __u32);
	__uint(max_entries, ENDPOINTS_MAP_SIZE * 2);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} endpoint_addrs SEC(".maps");

static __always_inline bool endpoint_is_local(const struct ip_addr *a, __u8 family)
{
	struct endpoint_addr_key k = { .addr = *a, .family = family };

	return bpf_map_lookup_elem(&endpoint_addrs, &k) != NULL;
}

static __always_inline struct endpoint_info *endpoint_of_device(__u32 ifindex)
{
	return bpf_map_lookup_elem(&endpoints, &ifindex);
}

static __always_inline bool endpoint_has_ip(const struct endpoint_info *ep, const struct ip_addr *ip,
					    __u8 family)
{
	if (family == 4)
		return ep->ipv4 && ip->addr[0] == ep->ipv4;
	if (!(ep->ipv6[0] | ep->ipv6[1] | ep->ipv6[2] | ep->ipv6[3]))
		return false;
	return ip->addr[0] == ep->ipv6[0] && ip->addr[1] == ep->ipv6[1] && ip->addr[2] == ep->ipv6[2] &&
	       ip->addr[3] == ep->ipv6[3];
}

static __always_inline bool endpoint_has_mac(const struct endpoint_info *ep, const __u8 *mac)
{
	return *(__u32 *)mac == *(__u32 *)ep->mac && *(__u16 *)(mac + 4) == *(__u16 *)(ep->mac + 4);
}

static __always_inline bool endpoint_enforced(const struct endpoint_info *ep, __u8 dir)
{
	return ep->flags & (dir == DIR_EGRESS ? EP_F_EGRESS_ENFORCED : EP_F_INGRESS_ENFORCED);
}

#endif
