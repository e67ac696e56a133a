/* IP fragments. Only a datagram's first fragment carries its L4 header, so
 * the ports (and ICMP type) it had are remembered under the datagram's
 * {addresses, protocol, identification}; later fragments take them from
 * there and go through conntrack and policy like any packet of the flow.
 * Nothing is reassembled. A later fragment that arrives before its first, or
 * whose first was never seen, has no ports and is dropped (FRAG_NOT_FOUND);
 * on a veth, fragments of one datagram keep their order. */
#ifndef KESTREL_FRAGMENTS_H
#define KESTREL_FRAGMENTS_H

#include "common.h"
#include "parse.h"

#define FRAG_MAP_SIZE 8192

struct frag_key {
	struct ip_addr saddr;
	struct ip_addr daddr;
	__u32 id;
	__u8 proto; /* as the fragment's own header names it */
	__u8 family;
	__u16 pad;
};

struct frag_l4 {
	__u16 sport;
	__u16 dport;
	__u16 policy_port;
	__u8 proto; /* the upper-layer protocol the first fragment carried */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct frag_key);
	__type(value, struct frag_l4);
	__uint(max_entries, FRAG_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fragments SEC(".maps");

static __always_inline void frag_key_of(struct frag_key *k, const struct flow *f)
{
	k->saddr = f->saddr;
	k->daddr = f->daddr;
	k->id = f->frag_id;
	k->proto = f->frag_proto;
	k->family = f->family;
}

/* Remembers a parsed first fragment's L4 fields. An ICMP error's embedded
 * tuple is not kept, so the rest of a fragmented ICMP error is dropped. */
static __always_inline void frag_remember(const struct flow *f)
{
	struct frag_key k = {};
	struct frag_l4 v = {
		.sport = f->sport,
		.dport = f->dport,
		.policy_port = f->policy_port,
		.proto = f->proto,
		.icmp_type = f->icmp_type,
		.icmp_code = f->icmp_code,
	};

	if (f->is_icmp_error)
		return;
	frag_key_of(&k, f);
	bpf_map_update_elem(&fragments, &k, &v, BPF_ANY);
}

/* Gives a later fragment the L4 fields of its datagram's first fragment. */
static __always_inline int frag_recall(struct flow *f)
{
	struct frag_key k = {};
	struct frag_l4 *v;

	frag_key_of(&k, f);
	v = bpf_map_lookup_elem(&fragments, &k);
	if (!v)
		return -DROP_FRAG_NOT_FOUND;
	f->sport = v->sport;
	f->dport = v->dport;
	f->policy_port = v->policy_port;
	f->proto = v->proto;
	f->icmp_type = v->icmp_type;
	f->icmp_code = v->icmp_code;
	return 0;
}

#endif
