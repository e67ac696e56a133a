/* Per-endpoint policy: a hash of maps from endpoint id to that endpoint's LPM
 * policy map, so the agent can build a whole new state and swap it in at once.
 *
 * Key bits after prefixlen: identity (32), direction (8), protocol (8), port
 * (16, network order). Identity and direction are always matched in full, so
 * prefixlen 40 = any protocol, 48 = any port, 49..64 = a port range written as
 * prefixes. Identity 0 is "any identity": a second lookup. The agent removes
 * allow entries covered by a broader deny of the same identity, so that the
 * longest match within one identity never hides a deny. */
#ifndef KESTREL_POLICY_H
#define KESTREL_POLICY_H

#include "common.h"

#define POLICY_MAP_SIZE 65536
#define POLICY_ENDPOINTS 65535

/* Prefix lengths of a policy key's data: identity+direction, +protocol, +port. */
enum policy_prefix {
	POLICY_PREFIX_L3 = 40,
	POLICY_PREFIX_PROTO = 48,
	POLICY_PREFIX_FULL = 64,
};

struct policy_key {
	__u32 prefixlen;
	__u32 identity;
	__u8 egress;
	__u8 protocol;
	__be16 dport;
};

enum policy_action {
	POLICY_ALLOW = 0,
	POLICY_DENY = 1,
	POLICY_REDIRECT = 2,
};

struct policy_entry {
	__u8 action;     /* enum policy_action */
	__u8 prefixlen;  /* of the key this entry was stored under: its specificity */
	__u16 proxy_port;
	__u32 cookie;    /* names the policies this entry came from (agent-side table) */
};

/* Inner map template. Sizes, not __type: clang emits the key and value of a
 * never-instantiated struct as forward declarations, which have no size. */
struct policy_map {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(key_size, sizeof(struct policy_key));
	__uint(value_size, sizeof(struct policy_entry));
	__uint(max_entries, POLICY_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, POLICY_ENDPOINTS);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct policy_map);
} policy_maps SEC(".maps");

struct policy_result {
	__u8 reason;     /* DROP_NONE when allowed */
	__u8 match_type; /* enum match_type */
	__u16 proxy_port;
	__u32 cookie;
};

static __always_inline struct policy_entry *policy_lookup_one(void *map, __u32 identity, __u8 dir,
							      const struct flow *f)
{
	struct policy_key key = {
		.prefixlen = POLICY_PREFIX_FULL,
		.identity = identity,
		.egress = dir,
		.protocol = f->proto,
		.dport = bpf_htons(f->policy_port),
	};

	return bpf_map_lookup_elem(map, &key);
}

static __always_inline __u8 policy_match_type(const struct policy_entry *e, bool l3)
{
	if (e->prefixlen > POLICY_PREFIX_L3)
		return l3 ? MATCH_L3_L4 : MATCH_L4_ONLY;
	return l3 ? MATCH_L3_ONLY : MATCH_ALL;
}

/* Decides a new flow: deny beats allow; otherwise the more specific entry
 * (longer prefix, then the identity-specific one) decides. */
static __noinline void policy_check(__u32 ep_id, __u32 remote_id, __u8 dir, const struct flow *f,
					 struct policy_result *res)
{
	struct policy_entry *l3 = NULL, *l4 = NULL, *win;
	void *map = bpf_map_lookup_elem(&policy_maps, &ep_id);

	res->reason = DROP_POLICY_DENIED;
	res->match_type = MATCH_NONE;
	res->proxy_port = 0;
	res->cookie = 0;
	if (!map)
		return;
	if (remote_id)
		l3 = policy_lookup_one(map, remote_id, dir, f);
	l4 = policy_lookup_one(map, 0, dir, f);

	if (l3 && l3->action == POLICY_DENY)
		win = l3;
	else if (l4 && l4->action == POLICY_DENY)
		win = l4;
	else if (l3 && l4)
		win = l4->prefixlen > l3->prefixlen ? l4 : l3;
	else
		win = l3 ? l3 : l4;
	if (!win)
		return;

	res->match_type = policy_match_type(win, win == l3);
	res->cookie = win->cookie;
	if (win->action == POLICY_DENY) {
		res->reason = DROP_POLICY_DENYLIST;
		return;
	}
	res->reason = DROP_NONE;
	if (win->action == POLICY_REDIRECT)
		res->proxy_port = win->proxy_port;
}

#endif
