/* Connection tracking. One entry per (tuple, direction): the egress entry
 * belongs to the pod that opened the flow, the ingress entry to the pod that
 * accepted it, so both sides of a same-node flow keep their own state. TCP and
 * everything else live in separate LRU maps (as Cilium's ct4_global and
 * ct_any4_global), so a flood of UDP flows cannot evict TCP connections.
 *
 * A packet is established when its own tuple has an entry in its direction, a
 * reply when its reversed tuple has one in the other direction, related when it
 * is an ICMP error about a tracked flow. Each entry carries the verdict it was
 * given and the endpoint's policy revision it was given under: an established
 * packet keeps that verdict only while the revision is unchanged (lxc.c). */
#ifndef KESTREL_CONNTRACK_H
#define KESTREL_CONNTRACK_H

#include "common.h"
#include "parse.h"

/* Sizes at load time; the loader overrides max_entries from its settings. */
#define CT_TCP_MAP_SIZE 262144
#define CT_ANY_MAP_SIZE 131072

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
#define CT_F_RST (1 << 3)

struct ct_entry {
	__u64 expires_ns;
	__u64 packets_fwd;
	__u64 packets_rev;
	__u64 last_report_ns;   /* last event for this flow (monitor aggregation) */
	__u32 flags;            /* CT_F_* */
	__u32 remote_identity;  /* as the verdict saw it */
	__u32 cookie;           /* the policies behind the verdict */
	__u32 policy_revision;  /* the endpoint's revision the verdict was given under */
	__u32 rev_nat_id;       /* service id of a flow to a frontend: its replies get the frontend back */
	__u16 proxy_port;
	__u8 match_type;        /* enum match_type of the verdict */
	__u8 tcp_flags_fwd;     /* every TCP flag seen, per direction */
	__u8 tcp_flags_rev;
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(max_entries, CT_TCP_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_tcp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(max_entries, CT_ANY_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct_any SEC(".maps");

static __always_inline void *ct_map_for(__u8 proto)
{
	return proto == IPPROTO_TCP ? (void *)&ct_tcp : (void *)&ct_any;
}

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
		if ((e->flags & CT_F_RST) ||
		    (e->flags & (CT_F_FWD_FIN | CT_F_REV_FIN)) == (CT_F_FWD_FIN | CT_F_REV_FIN))
			s = ct_lifetime_close;
		else if (e->flags & CT_F_SEEN_REPLY)
			s = ct_lifetime_tcp;
		else
			s = ct_lifetime_syn;
	}
	return (__u64)s * NSEC_PER_SEC;
}

/* Returns the live entry for key, removing it if it has expired. */
static __always_inline struct ct_entry *ct_get(void *map, struct ct_key *k, __u64 now)
{
	struct ct_entry *e = bpf_map_lookup_elem(map, k);

	if (e && e->expires_ns <= now) {
		bpf_map_delete_elem(map, k);
		return NULL;
	}
	return e;
}

/* Advances the state of a tracked flow. An RST moves the entry to the close
 * timeout (late segments of the connection still match it); a FIN from each
 * side does the same; a fresh SYN on the tuple reopens it. Returns the TCP
 * flags this packet shows for the first time in its direction. */
static __always_inline __u8 ct_update(struct ct_entry *e, const struct flow *f, bool reply, __u64 now)
{
	__u8 seen, fresh = 0;

	if (reply) {
		__sync_fetch_and_add(&e->packets_rev, 1);
		if (!(e->flags & CT_F_SEEN_REPLY))
			e->flags |= CT_F_SEEN_REPLY;
	} else {
		__sync_fetch_and_add(&e->packets_fwd, 1);
	}
	if (f->proto == IPPROTO_TCP) {
		seen = reply ? e->tcp_flags_rev : e->tcp_flags_fwd;
		fresh = f->tcp_flags & ~seen;
		if (fresh) {
			if (reply)
				e->tcp_flags_rev = seen | f->tcp_flags;
			else
				e->tcp_flags_fwd = seen | f->tcp_flags;
		}
		if (f->tcp_flags & TCP_FLAG_RST)
			e->flags |= CT_F_RST;
		else if (f->tcp_flags & TCP_FLAG_FIN)
			e->flags |= reply ? CT_F_REV_FIN : CT_F_FWD_FIN;
		else if ((f->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
			e->flags &= ~(CT_F_FWD_FIN | CT_F_REV_FIN | CT_F_RST); /* reopened */
			fresh |= TCP_FLAG_SYN;
		}
	}
	e->expires_ns = now + ct_lifetime_ns(e, f->proto);
	return fresh;
}

/* The result of a conntrack lookup: the live entry for established and reply
 * packets (NULL otherwise), and the TCP flags the packet showed first. */
struct ct_result {
	struct ct_entry *entry;
	__u8 status; /* enum ct_status */
	__u8 fresh_flags;
};

static __always_inline void ct_lookup(const struct flow *f, __u8 dir, __u64 now, struct ct_result *res)
{
	struct ct_key k;
	struct ct_entry *e;
	void *map;

	res->entry = NULL;
	res->fresh_flags = 0;
	if (f->is_icmp_error) {
		__builtin_memset(&k, 0, sizeof(k));
		k.saddr = f->inner_saddr;
		k.daddr = f->inner_daddr;
		k.sport = f->inner_sport;
		k.dport = f->inner_dport;
		k.proto = f->inner_proto;
		k.family = f->family;
		k.direction = dir ^ 1;
		/* The entry comes along: a related error about a translated
		 * flow is translated back with its rev_nat_id. */
		res->entry = ct_get(ct_map_for(k.proto), &k, now);
		res->status = res->entry ? CT_RELATED : CT_NEW;
		return;
	}

	map = ct_map_for(f->proto);
	ct_key_of(&k, f, dir);
	e = ct_get(map, &k, now);
	if (e) {
		res->fresh_flags = ct_update(e, f, false, now);
		res->entry = e;
		res->status = CT_ESTABLISHED;
		return;
	}
	ct_key_reverse(&k);
	e = ct_get(map, &k, now);
	if (e) {
		res->fresh_flags = ct_update(e, f, true, now);
		res->entry = e;
		res->status = CT_REPLY;
		return;
	}
	res->status = CT_NEW;
}

/* The verdict a new flow was given, stamped into its entry. */
struct ct_verdict {
	__u32 remote_identity;
	__u32 cookie;
	__u32 policy_revision;
	__u32 rev_nat_id; /* set on creation; an egress packet of the tuple re-stamps it (lxc.c) */
	__u16 proxy_port;
	__u8 match_type;
};

static __always_inline int ct_create(const struct flow *f, __u8 dir, __u64 now, const struct ct_verdict *v)
{
	struct ct_key k;
	struct ct_entry e = {
		.packets_fwd = 1,
		.last_report_ns = now,
		.remote_identity = v->remote_identity,
		.cookie = v->cookie,
		.policy_revision = v->policy_revision,
		.rev_nat_id = v->rev_nat_id,
		.proxy_port = v->proxy_port,
		.match_type = v->match_type,
		.tcp_flags_fwd = f->tcp_flags,
	};

	if (f->proto == IPPROTO_TCP && (f->tcp_flags & TCP_FLAG_RST))
		return 0; /* nothing to track */
	ct_key_of(&k, f, dir);
	e.expires_ns = now + ct_lifetime_ns(&e, f->proto);
	return bpf_map_update_elem(ct_map_for(f->proto), &k, &e, BPF_ANY);
}

/* Stamps a re-checked verdict into an established flow's entry. */
static __always_inline void ct_restamp(struct ct_entry *e, const struct ct_verdict *v)
{
	e->remote_identity = v->remote_identity;
	e->cookie = v->cookie;
	e->proxy_port = v->proxy_port;
	e->match_type = v->match_type;
	e->policy_revision = v->policy_revision;
}

#endif
