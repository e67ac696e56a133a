/* Service load balancing for traffic a pod sends (kube-proxy's ClusterIP
 * part). A frontend is {address, port, protocol}; each has a service id and
 * its backends in slots 0..count-1. A new flow to a frontend gets a backend
 * (session affinity, else Maglev or random, as the service says); the choice
 * is kept under the flow's original tuple (lb_flows, as Cilium's service
 * conntrack entries) so every later packet of the flow goes to the same
 * backend, and the service id is stamped into the flow's conntrack entry so
 * its replies get the frontend back as their source (lb_revnat).
 *
 * The control plane (datapath/service.go) writes a service's backends, its
 * Maglev table and its reverse-NAT entry before the frontend entry that makes
 * them reachable, and removes them in the reverse order: the programs never
 * see half a service. */
#ifndef KESTREL_LB_H
#define KESTREL_LB_H

#include "common.h"
#include "parse.h"
#include "conntrack.h"
#include "nat.h"

/* Sizes at load time. 100k services with two ports each are 200k frontends
 * plus one address entry per frontend address (100k): 512k entries. Backends
 * and tables are written only by the agent, so they are not preallocated:
 * they cost what they hold. */
#define LB_SERVICES_MAP_SIZE 524288
#define LB_BACKENDS_MAP_SIZE 2097152
#define LB_REVNAT_MAP_SIZE 524288
#define LB_MAGLEV_MAP_SIZE 524288
#define LB_FLOWS_MAP_SIZE 262144
#define LB_AFFINITY_MAP_SIZE 131072

enum lb_flags {
	LB_F_MAGLEV = 1 << 0,   /* backends by the service's Maglev table, else at random */
	LB_F_AFFINITY = 1 << 1, /* a client keeps its backend for affinity_timeout_s (ClientIP) */
	LB_F_REJECT = 1 << 2,   /* no backend (or, on an address entry, no such port): ICMP port unreachable */
	LB_F_ADDRESS = 1 << 3,  /* the address entry (port 0, protocol 0): the address is a frontend's */
	LB_F_EXTERNAL = 1 << 4, /* served on the node's device too: NodePort, LoadBalancer, externalIP, hostPort */
	LB_F_OPEN = 1 << 5,     /* on an address entry: other ports there are no service's (a node's address) */
	LB_F_SPLIT = 1 << 6,    /* traffic from outside the node has its own entry (LB_SCOPE_EXTERNAL) */
	LB_F_SOURCE_RANGES = 1 << 7, /* only clients in the service's lb_source_ranges (loadBalancerSourceRanges) */
};

/* Whose traffic an entry serves. A frontend under externalTrafficPolicy
 * Local has two: the external one (local backends only) for traffic that
 * enters by the node's device, the internal one (every backend) for the
 * node's own pods, as kube-proxy short-circuits them. */
enum lb_scope {
	LB_SCOPE_INTERNAL = 0,
	LB_SCOPE_EXTERNAL = 1,
};

/* A frontend. Port in host byte order; port 0 and protocol 0 is the entry
 * that says the address belongs to some frontend. */
struct lb_key {
	struct ip_addr addr;
	__u16 port;
	__u8 proto;
	__u8 family;
	__u8 scope; /* enum lb_scope */
	__u8 pad[3];
};

struct lb_service {
	__u32 id;                 /* non-zero; keys backends, the Maglev table, reverse NAT */
	__u32 backend_count;      /* slots 0..count-1 hold backends */
	__u32 affinity_timeout_s; /* LB_F_AFFINITY */
	__u32 maglev_size;        /* entries of the service's Maglev table (LB_F_MAGLEV) */
	__u8 flags;               /* LB_F_* */
	__u8 pad[3];
};

struct lb_backend_key {
	__u32 service_id;
	__u32 slot;
};

/* An address and port: a backend, or the frontend replies are given back. */
struct lb_addr {
	struct ip_addr addr;
	__u16 port; /* host byte order */
	__u8 family;
	__u8 pad;
};

/* The original tuple of a flow to a frontend, as the client sent it. */
struct lb_flow_key {
	struct ip_addr saddr;
	struct ip_addr daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

struct lb_flow {
	__u64 expires_ns;
	struct lb_addr backend;
	__u32 service_id;
};

struct lb_affinity_key {
	struct ip_addr client;
	__u32 service_id;
	__u8 family;
	__u8 pad[3];
};

struct lb_affinity_entry {
	__u64 last_used_ns;
	struct lb_addr backend;
	__u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb_key);
	__type(value, struct lb_service);
	__uint(max_entries, LB_SERVICES_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb_backend_key);
	__type(value, struct lb_addr);
	__uint(max_entries, LB_BACKENDS_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_backends SEC(".maps");

/* loadBalancerSourceRanges: {service id, client prefix}. A frontend with
 * LB_F_SOURCE_RANGES takes new flows only from clients its entries hold. */
#define LB_SOURCE_RANGES_MAP_SIZE 65536

struct lb_source_range_key {
	__u32 prefixlen; /* bits after this field: 64 for service id and family, then the address */
	__u32 service_id;
	__u32 family;
	struct ip_addr addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lb_source_range_key);
	__type(value, __u32);
	__uint(max_entries, LB_SOURCE_RANGES_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_source_ranges SEC(".maps");

static __always_inline bool lb_source_allowed(const struct lb_service *svc, const struct flow *f)
{
	struct lb_source_range_key k = {
		.prefixlen = 64 + (f->family == 4 ? 32 : 128),
		.service_id = svc->id,
		.family = f->family,
		.addr = f->saddr,
	};

	return bpf_map_lookup_elem(&lb_source_ranges, &k) != NULL;
}

/* Service id -> the frontend its replies come from. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb_addr);
	__uint(max_entries, LB_REVNAT_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_revnat SEC(".maps");

/* Maglev tables: service id -> an array of backend slots. An array per
 * service in a hash of maps, with BPF_F_INNER_MAP so each service's table has
 * its own size (a prime at least 100 times its backends: a table for 2
 * backends need not cost what one for 1000 does). The verifier takes it as
 * it is: an array lookup is bounds-checked at run time. A changed table is
 * built aside and swapped in with one update, so a packet sees the old table
 * or the new, never a mix. */
struct lb_maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 251);
	__uint(map_flags, BPF_F_INNER_MAP);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, LB_MAGLEV_MAP_SIZE);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct lb_maglev_table);
} lb_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb_flow_key);
	__type(value, struct lb_flow);
	__uint(max_entries, LB_FLOWS_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb_affinity_key);
	__type(value, struct lb_affinity_entry);
	__uint(max_entries, LB_AFFINITY_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_affinity SEC(".maps");

/* A filter in front of lb_services: one bit per hash of an address, set for
 * every frontend address (datapath/service.go computes the same hash). The
 * services map's bucket array is megabytes, so looking up a destination
 * there misses the cache for most packets; this 64 KiB bitmap stays in it,
 * and only a packet whose bit is set (a frontend's, or about one in six at
 * 100k frontend addresses) pays the lookup. The agent sets a bit after the
 * frontend's entries are written and clears it after they are removed. */
#define LB_FILTER_BITS (1 << 19)

struct lb_filter {
	__u64 bits[LB_FILTER_BITS / 64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lb_filter);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_frontend_filter SEC(".maps");

/* The filter's hash of an address; datapath.lbFilterBit is the same. */
static __always_inline __u32 lb_filter_bit(const struct ip_addr *a)
{
	__u32 h = 0x2545f491;

	h = (h ^ a->addr[0]) * 0x9e3779b1;
	h = (h ^ a->addr[1]) * 0x9e3779b1;
	h = (h ^ a->addr[2]) * 0x9e3779b1;
	h = (h ^ a->addr[3]) * 0x9e3779b1;
	return (h ^ (h >> 16)) & (LB_FILTER_BITS - 1);
}

static __always_inline bool lb_maybe_frontend(const struct ip_addr *a)
{
	__u32 zero = 0, bit = lb_filter_bit(a);
	struct lb_filter *f = bpf_map_lookup_elem(&lb_frontend_filter, &zero);

	return f && (f->bits[bit >> 6] & (1ULL << (bit & 63)));
}

/* The service range (kube-apiserver's --service-cluster-ip-range), one
 * prefix per family, set at load; prefix length 0 means none. An address in
 * it that no frontend holds is dropped (SERVICE_UNALLOCATED), as kube-proxy's
 * nftables mode does. */
const volatile __u32 lb_service_range4 = 0; /* network byte order */
const volatile __u8 lb_service_range4_len = 0;
const volatile __u32 lb_service_range6[4] = {};
const volatile __u8 lb_service_range6_len = 0;

/* A pod that reaches itself through a service gets its packet back from this
 * address, so that its reply leaves the pod instead of looping inside it.
 * Never a pod's address. Network byte order. */
const volatile __u32 lb_hairpin4 = 0x012afea9; /* 169.254.42.1 */
const volatile __u32 lb_hairpin6[4] = { 0x0000fefd, 0, 0, 0x012a0000 }; /* fdfe::2a01 */

static __always_inline bool lb_prefix_has(const volatile __u32 *prefix, __u8 len, const struct ip_addr *a, int words)
{
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		__u32 bits, mask;

		if (i >= words || len <= i * 32)
			break;
		bits = len - i * 32;
		mask = bits >= 32 ? 0xffffffff : bpf_htonl(~(0xffffffffu >> bits));
		if ((a->addr[i] & mask) != (prefix[i] & mask))
			return false;
	}
	return true;
}

static __always_inline bool lb_in_service_range(const struct ip_addr *a, __u8 family)
{
	if (family == 4)
		return lb_service_range4_len && lb_prefix_has(&lb_service_range4, lb_service_range4_len, a, 1);
	return lb_service_range6_len && lb_prefix_has(lb_service_range6, lb_service_range6_len, a, 4);
}

static __always_inline void lb_hairpin_addr(struct ip_addr *a, __u8 family)
{
	if (family == 4) {
		a->addr[0] = lb_hairpin4;
		a->addr[1] = a->addr[2] = a->addr[3] = 0;
		return;
	}
	a->addr[0] = lb_hairpin6[0];
	a->addr[1] = lb_hairpin6[1];
	a->addr[2] = lb_hairpin6[2];
	a->addr[3] = lb_hairpin6[3];
}

static __always_inline bool lb_is_hairpin_addr(const struct ip_addr *a, __u8 family)
{
	struct ip_addr h;

	lb_hairpin_addr(&h, family);
	return ip_addr_eq(a, &h);
}

/* The Maglev hash of a flow: its addresses, ports and protocol, so a flow
 * keeps its table entry while the table does. */
static __always_inline __u32 lb_mix(__u32 h, __u32 v)
{
	h ^= v;
	h *= 0x9e3779b1;
	return h ^ (h >> 15);
}

static __always_inline __u32 lb_flow_hash(const struct flow *f)
{
	__u32 h = 0x2545f491;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		h = lb_mix(h, f->saddr.addr[i]);
		h = lb_mix(h, f->daddr.addr[i]);
	}
	h = lb_mix(h, ((__u32)f->sport << 16) | f->dport);
	h = lb_mix(h, f->proto);
	h ^= h >> 16;
	h *= 0x85ebca6b;
	return h ^ (h >> 13);
}

/* The slot a new flow takes, by the service's algorithm: hash picks the
 * Maglev table entry (the caller computes it only for a Maglev service). */
static __always_inline __u32 lb_pick_slot(const struct lb_service *svc, __u32 hash)
{
	if ((svc->flags & LB_F_MAGLEV) && svc->maglev_size) {
		__u32 id = svc->id, idx = hash % svc->maglev_size;
		void *table = bpf_map_lookup_elem(&lb_maglev, &id);
		__u32 *slot = table ? bpf_map_lookup_elem(table, &idx) : NULL;

		if (slot)
			return *slot;
	}
	return bpf_get_prandom_u32() % svc->backend_count;
}

/* What lb_select decided for a packet to a frontend. */
struct lb_nat {
	struct lb_addr backend;
	__u32 service_id;
	__u8 reject; /* a drop here is answered with ICMP port unreachable */
	__u8 pad[3];
};

/* Remembers a new flow's backend under its original tuple. */
static __always_inline void lb_remember(const struct lb_flow_key *fk, const struct lb_addr *be, __u32 id,
					__u8 proto, __u64 now)
{
	struct lb_flow nf = { .backend = *be, .service_id = id };

	nf.expires_ns = now + (__u64)(proto == IPPROTO_TCP ? ct_lifetime_syn : ct_lifetime_nontcp) * NSEC_PER_SEC;
	bpf_map_update_elem(&lb_flows, fk, &nf, BPF_ANY);
}

/* The backend a client's affinity holds for a service, if it holds one that
 * still sits in its slot (the backends may have changed under the client). */
static __always_inline struct lb_addr *lb_affine(const struct lb_affinity_key *ak, const struct lb_service *svc,
						 struct lb_backend_key *bk, __u64 now)
{
	struct lb_affinity_entry *af = bpf_map_lookup_elem(&lb_affinity, ak);
	struct lb_addr *be;

	if (!af || now - af->last_used_ns > (__u64)svc->affinity_timeout_s * NSEC_PER_SEC ||
	    af->slot >= svc->backend_count)
		return NULL;
	bk->slot = af->slot;
	be = bpf_map_lookup_elem(&lb_backends, bk);
	if (be && ip_addr_eq(&be->addr, &af->backend.addr) && be->port == af->backend.port)
		return be;
	return NULL;
}

/* The backend a new flow (or socket, bpf/sock.c) to svc gets: the one the
 * client's affinity (ak) holds if the service has affinity and it still
 * holds one, else by the service's algorithm (hash: lb_pick_slot). Records
 * the affinity. NULL when the slot is empty. */
static __always_inline struct lb_addr *lb_choose(const struct lb_service *svc, const struct lb_affinity_key *ak,
						 __u32 hash, __u64 now)
{
	struct lb_backend_key bk = { .service_id = svc->id };
	struct lb_addr *be = NULL;

	if (svc->flags & LB_F_AFFINITY)
		be = lb_affine(ak, svc, &bk, now);
	if (!be) {
		bk.slot = lb_pick_slot(svc, hash);
		be = bpf_map_lookup_elem(&lb_backends, &bk);
		if (!be)
			return NULL;
	}
	if (svc->flags & LB_F_AFFINITY) {
		struct lb_affinity_entry na = { .last_used_ns = now, .backend = *be, .slot = bk.slot };

		bpf_map_update_elem(&lb_affinity, ak, &na, BPF_ANY);
	}
	return be;
}

/* Finds the backend of a packet a pod sends. Returns 1 and fills nat when
 * the packet is to a frontend, 0 when its destination is no frontend's
 * address, or a negative drop reason (nat->reject says whether to answer). */
static __always_inline int lb_select(const struct flow *f, __u64 now, struct lb_nat *nat, bool external)
{
	struct lb_service *svc;
	struct lb_flow_key fk = {};
	struct lb_flow *fl;
	struct lb_addr *be;
	struct lb_affinity_key ak = {};
	bool open = false;

	/* The filter, then the address entry: for a packet to no frontend
	 * (most packets) the filter is usually all the service code costs. */
	{
		struct lb_key k = { .addr = f->daddr, .family = f->family };

		svc = lb_maybe_frontend(&f->daddr) ? bpf_map_lookup_elem(&lb_services, &k) : NULL;
		if (!svc)
			return lb_in_service_range(&f->daddr, f->family) ? -DROP_SERVICE_UNALLOCATED : 0;
		nat->reject = !!(svc->flags & LB_F_REJECT);
		/* An open address (a node's, an external IP) has other ports
		 * that are no service's: they pass untranslated. */
		open = svc->flags & LB_F_OPEN;
		/* Services have ports: ICMP and other protocols to a frontend
		 * address, ICMP errors included, are to no service. */
		if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP && f->proto != IPPROTO_SCTP)
			return open ? 0 : -DROP_SERVICE_WRONG_PORT;
		k.port = f->dport;
		k.proto = f->proto;
		svc = bpf_map_lookup_elem(&lb_services, &k);
		/* From outside the node only external frontends are served, by
		 * their external entry where the service has one. */
		if (external && svc) {
			if (!(svc->flags & LB_F_EXTERNAL))
				return 0;
			if (svc->flags & LB_F_SPLIT) {
				k.scope = LB_SCOPE_EXTERNAL;
				svc = bpf_map_lookup_elem(&lb_services, &k);
			}
		}
	}
	if (!svc)
		return open ? 0 : -DROP_SERVICE_WRONG_PORT;
	nat->reject = !!(svc->flags & LB_F_REJECT);
	if (f->proto == IPPROTO_SCTP)
		return -DROP_SERVICE_SCTP;
	/* kube-proxy filters before it looks at endpoints, and never answers. */
	if ((svc->flags & LB_F_SOURCE_RANGES) && !lb_source_allowed(svc, f)) {
		nat->reject = 0;
		return -DROP_SERVICE_SOURCE_RANGE;
	}
	if (!svc->backend_count)
		return -DROP_SERVICE_NO_BACKEND;
	nat->service_id = svc->id;

	fk.saddr = f->saddr;
	fk.daddr = f->daddr;
	fk.sport = f->sport;
	fk.dport = f->dport;
	fk.proto = f->proto;
	fk.family = f->family;
	fl = bpf_map_lookup_elem(&lb_flows, &fk);
	if (fl && fl->service_id == svc->id && fl->expires_ns > now) {
		nat->backend = fl->backend;
		fl->expires_ns = now + (__u64)(f->proto == IPPROTO_TCP ? ct_lifetime_tcp : ct_lifetime_nontcp) * NSEC_PER_SEC;
		return 1;
	}

	ak.client = f->saddr;
	ak.service_id = svc->id;
	ak.family = f->family;
	be = lb_choose(svc, &ak, (svc->flags & LB_F_MAGLEV) ? lb_flow_hash(f) : 0, now);
	if (!be)
		return -DROP_SERVICE_NO_BACKEND;
	nat->backend = *be;
	lb_remember(&fk, be, svc->id, f->proto, now);
	return 1;
}

/* lb_translate's result: the service id, LB_HAIRPIN when the backend is the
 * client itself; negative: minus a drop reason, with LB_REJECT when the drop
 * is to be answered. Service ids stay below LB_HAIRPIN (datapath/service.go). */
#define LB_HAIRPIN (1 << 30)
#define LB_REJECT 0x100

/* Service translation of a packet a pod sends: finds its backend and
 * rewrites its destination to it, in the packet and in f. Returns 0 when the
 * packet is to no frontend (untouched). */
static __noinline int lb_translate(struct __sk_buff *skb, struct flow *f, __u64 now)
{
	struct lb_nat nat = {};
	int ret = lb_select(f, now, &nat, false);

	if (ret < 0)
		return nat.reject ? -(-ret | LB_REJECT) : ret;
	if (ret == 0)
		return 0;
	if (nat_rewrite(skb, f, NAT_DST, &nat.backend.addr, nat.backend.port) < 0)
		return -DROP_NAT_FAILED;
	f->daddr = nat.backend.addr;
	f->dport = nat.backend.port;
	f->policy_port = nat.backend.port;
	ret = nat.service_id;
	if (ip_addr_eq(&nat.backend.addr, &f->saddr))
		ret |= LB_HAIRPIN;
	return ret;
}

#endif
