/* Connection tracking. One entry per (tuple, direction) in an LRU hash: the
 * egress entry belongs to the pod that opened the flow, the ingress entry to the
 * pod that accepted it, so both sides of a same-node flow keep their own state.
 * A packet is established when its own tuple has an entry in its direction, a
 * reply when its reversed tuple has one in the other direction, related when it
 * is an ICMP error about a tracked flow. Only new flows see policy. */
#ifndef KESTREL_CONNTRACK_H
#define KESTREL_CONNTRACK_H

#include "common.h"
#include "parse.h"

#define CT_MAP_SIZE 262144

/* Lifetimes in seconds; set by the loader before load. */
const volatile __u32 ct_lifetime_syn = 60;
const volatile __u32 ct_lifetime_tcp = 21600;
const volatile __u32 ct_lifetime_nontcp = 60;
const volatile __u32 ct_lifetime_close = 10;

struct ct_key {
	struct ip_addr saddr;
	struct ip_addr daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 direction;
	__u8 family;
	__u8 pad;
};

#define CT_F_SEEN_REPLY (1 << 0)
#define CT_F_FWD_FIN (1 << 1)
#define CT_F_REV_FIN (1 << 2)

struct ct_entry {
	__u64 expires_ns;
	__u64 packets_fwd;
	__u64 packets_rev;
	__u32 flags; /* CT_F_* */
	__u32 remote_identity;
	__u32 cookie;
	__u16 proxy_port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(max_entries, CT_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} conntrack SEC(".maps");

static __always_inline void ct_key_of(struct ct_key *k, const struct flow *f, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->saddr = f->saddr;
	k->daddr = f->daddr;
	k->sport = f->sport;
	k->dport = f->dport;
	k->proto = f->proto;
	k->family = f->family;
	k->direction = dir;
}

static __always_inline void ct_key_reverse(struct ct_key *k)
{
	struct ip_addr a = k->saddr;
	__u16 p = k->sport;

	k->saddr = k->daddr;
	k->daddr = a;
	k->sport = k->dport;
	k->dport = p;
	k->direction ^= 1;
}

static __always_inline __u64 ct_lifetime_ns(const struct ct_entry *e, __u8 proto)
{
	__u32 s = ct_lifetime_nontcp;

	if (proto == IPPROTO_TCP) {
		if ((e->flags & (CT_F_FWD_FIN | CT_F_REV_FIN)) == (CT_F_FWD_FIN | CT_F_REV_FIN))
			s = ct_lifetime_close;
		else if (e->flags & CT_F_SEEN_REPLY)
			s = ct_lifetime_tcp;
		else
			s = ct_lifetime_syn;
	}
	return (__u64)s * NSEC_PER_SEC;
}

/* Returns the live entry for key, removing it if it has expired. */
static __always_inline struct ct_entry *ct_get(struct ct_key *k, __u64 now)
{
	struct ct_entry *e = bpf_map_lookup_elem(&conntrack, k);

	if (e && e->expires_ns <= now) {
		bpf_map_delete_elem(&conntrack, k);
		return NULL;
	}
	return e;
}

/* Advances the TCP state of a tracked flow: RST closes the entry at once; a FIN
 * from each side shortens its life to the close timeout. */
static __always_inline void ct_update(struct ct_key *k, struct ct_entry *e, const struct flow *f,
				      bool reply, __u64 now)
{
	if (reply) {
		e->packets_rev++;
		e->flags |= CT_F_SEEN_REPLY;
	} else {
		e->packets_fwd++;
	}
	if (f->proto == IPPROTO_TCP) {
		if (f->tcp_flags & TCP_FLAG_RST) {
			bpf_map_delete_elem(&conntrack, k);
			return;
		}
		if (f->tcp_flags & TCP_FLAG_FIN)
			e->flags |= reply ? CT_F_REV_FIN : CT_F_FWD_FIN;
		else if ((f->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN)
			e->flags &= ~(CT_F_FWD_FIN | CT_F_REV_FIN); /* reopened */
	}
	e->expires_ns = now + ct_lifetime_ns(e, f->proto);
}

/* Classifies the packet; on ESTABLISHED or REPLY, *hit holds the entry. */
static __always_inline __u8 ct_lookup(const struct flow *f, __u8 dir, __u64 now, struct ct_entry *hit)
{
	struct ct_key k;
	struct ct_entry *e;

	if (f->is_icmp_error) {
		__builtin_memset(&k, 0, sizeof(k));
		k.saddr = f->inner_saddr;
		k.daddr = f->inner_daddr;
		k.sport = f->inner_sport;
		k.dport = f->inner_dport;
		k.proto = f->inner_proto;
		k.family = f->family;
		k.direction = dir ^ 1;
		return ct_get(&k, now) ? CT_RELATED : CT_NEW;
	}

	ct_key_of(&k, f, dir);
	e = ct_get(&k, now);
	if (e) {
		*hit = *e;
		ct_update(&k, e, f, false, now);
		return CT_ESTABLISHED;
	}
	ct_key_reverse(&k);
	e = ct_get(&k, now);
	if (e) {
		*hit = *e;
		ct_update(&k, e, f, true, now);
		return CT_REPLY;
	}
	return CT_NEW;
}

static __always_inline int ct_create(const struct flow *f, __u8 dir, __u64 now, __u32 remote_id,
				     __u32 cookie, __u16 proxy_port)
{
	struct ct_key k;
	struct ct_entry e = {
		.packets_fwd = 1,
		.remote_identity = remote_id,
		.cookie = cookie,
		.proxy_port = proxy_port,
	};

	if (f->proto == IPPROTO_TCP && (f->tcp_flags & TCP_FLAG_RST))
		return 0; /* nothing to track */
	ct_key_of(&k, f, dir);
	e.expires_ns = now + ct_lifetime_ns(&e, f->proto);
	return bpf_map_update_elem(&conntrack, &k, &e, BPF_ANY);
}

#endif
