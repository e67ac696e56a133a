/* Shared definitions: every type Go sees is defined here (or in the feature
 * header that owns it) and reaches Go through bpf2go -type, never by hand. */
#ifndef KESTREL_COMMON_H
#define KESTREL_COMMON_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#ifndef __noinline
#define __noinline __attribute__((noinline))
#endif

#define NSEC_PER_SEC 1000000000ULL

/* Direction of a packet relative to the endpoint whose hook sees it. */
enum traffic_direction {
	DIR_INGRESS = 0, /* towards the pod: host veth egress hook */
	DIR_EGRESS = 1,  /* from the pod: host veth ingress hook */
};

/* Why a packet was dropped. Names are the API: Go reads them from BTF and
 * strips the DROP_ prefix (POLICY_DENIED, TRUNCATED, ...). Append only. */
enum drop_reason {
	DROP_NONE = 0,
	DROP_POLICY_DENIED = 1,      /* no allow entry; endpoint is default-deny */
	DROP_POLICY_DENYLIST = 2,    /* an explicit deny entry matched */
	DROP_TRUNCATED = 3,          /* frame shorter than its headers claim */
	DROP_INVALID_IPV4 = 4,       /* bad version, IHL or total length */
	DROP_INVALID_IPV6 = 5,       /* bad version or payload length */
	DROP_UNSUPPORTED_L3 = 6,     /* ethertype that is neither IP nor ARP */
	DROP_FRAG_NOT_SUPPORTED = 7, /* no longer used: fragments are tracked (fragments.h) */
	DROP_IPV6_EXT_HEADERS = 8,   /* extension header chain too long */
	DROP_INVALID_L4 = 9,         /* TCP data offset below 5, and similar */
	DROP_INVALID_SOURCE = 10,    /* from a pod, source IP is not its device's endpoint's */
	DROP_UNROUTABLE = 11,        /* to a pod, destination is not its device's endpoint */
	DROP_CT_CREATE_FAILED = 12,  /* conntrack entry could not be created */
	DROP_INVALID_SOURCE_MAC = 13, /* from a pod, source MAC (frame or ARP) is not its own */
	DROP_FRAG_NOT_FOUND = 14,    /* a later fragment whose first fragment was not seen */
	DROP_FRAG_TOO_SHORT = 15,    /* a first fragment that cuts its L4 header */
	DROP_INVALID_ARP = 16,       /* ARP that is not Ethernet/IPv4, or a reply claiming 0.0.0.0 */
	DROP_PROXY_UNAVAILABLE = 17, /* policy redirects to an L7 proxy this datapath cannot reach */
	DROP_SERVICE_NO_BACKEND = 18, /* to a service frontend with no backends (rejected with ICMP when the service says so) */
	DROP_SERVICE_WRONG_PORT = 19, /* to a frontend address, on a port or protocol no service there has */
	DROP_SERVICE_UNALLOCATED = 20, /* to an address in the service range that no service holds */
	DROP_SERVICE_SCTP = 21,      /* SCTP to a frontend: its CRC32c cannot be updated in place */
	DROP_NAT_FAILED = 22,        /* a service translation could not rewrite the packet */
	DROP_SNAT_NO_PORT = 23,      /* no free port on the node's address for a masqueraded or SNATed flow */
	DROP_DSR_INVALID = 24,       /* a DSR option naming no frontend, or arriving from no node */
	DROP_SERVICE_SOURCE_RANGE = 25, /* to a LoadBalancer frontend from outside its loadBalancerSourceRanges */
	DROP_NAT_UNSUPPORTED_PROTO = 26, /* a pod's packet to the world of a protocol masquerade cannot translate */
	DROP_ICMP_ERROR_UNRELATED = 27, /* an ICMP error about no tracked flow (conntrack's INVALID) */
	DROP_TTL_EXCEEDED = 28,      /* routed on by the node device with a TTL or hop limit of 1 or 0 */
	__DROP_REASON_MAX,
};

/* What the datapath did with the packet. */
enum verdict {
	VERDICT_FORWARDED = 1,
	VERDICT_DROPPED = 2,
	VERDICT_REDIRECTED = 3, /* to the L7 proxy */
};

/* Which kind of policy entry decided, as Hubble reports it. */
enum match_type {
	MATCH_NONE = 0,    /* no entry: default deny, or direction not enforced */
	MATCH_L3_ONLY = 1, /* identity, any port */
	MATCH_L3_L4 = 2,   /* identity and port */
	MATCH_L4_ONLY = 3, /* any identity, port */
	MATCH_ALL = 4,     /* any identity, any port */
};

/* Conntrack outcome of the lookup for this packet. */
enum ct_status {
	CT_NEW = 0,
	CT_ESTABLISHED = 1,
	CT_REPLY = 2,
	CT_RELATED = 3,
	CT_UNTRACKED = 4, /* not subject to tracking (ARP, neighbour discovery, MLD) */
};

/* An IPv4 address is stored in addr[0], the rest zero. */
struct ip_addr {
	__u32 addr[4];
};

static __always_inline bool ip_addr_eq(const struct ip_addr *a, const struct ip_addr *b)
{
	return a->addr[0] == b->addr[0] && a->addr[1] == b->addr[1] && a->addr[2] == b->addr[2] &&
	       a->addr[3] == b->addr[3];
}

#endif
