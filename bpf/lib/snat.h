/* Address translation on the node's own device (host.c): the flows that
 * cross it translated, and the node's ports handed out for them.
 *
 * Three kinds of entry live in one LRU table, told apart by dir:
 *   NAT_DIR_OUT:   a flow as it first meets the node (a client's packet to a
 *                  NodePort, a pod's packet to the world), keyed by the
 *                  tuple it arrives with: what its packets become;
 *   NAT_DIR_IN:    the reply to a translated flow as it reaches the node's
 *                  own address and port (after SNAT or masquerade): what it
 *                  becomes, and whether it leaves again by the device;
 *   NAT_DIR_REPLY: a local backend's reply leaving by the device (NodePort
 *                  to a pod of this node, or DSR): the frontend it must come
 *                  from.
 * An entry only ever matches its own flow's exact tuple, so a packet from
 * anyone else, spoofed or not, meets no translation. */
#ifndef KESTREL_SNAT_H
#define KESTREL_SNAT_H

#include "common.h"
#include "parse.h"
#include "ipcache.h"

#define NAT_FLOWS_MAP_SIZE 262144
#define NONMASQ_MAP_SIZE 1024

enum nat_dir {
	NAT_DIR_OUT = 1,
	NAT_DIR_IN = 2,
	NAT_DIR_REPLY = 3,
};

enum nat_flags {
	NAT_F_FORWARD = 1 << 0, /* after the rewrite the packet leaves by the node's device */
	NAT_F_DSR = 1 << 1,     /* to a remote backend with the frontend in a DSR option */
};

struct nat_key {
	struct ip_addr saddr;
	struct ip_addr daddr;
	__u16 sport; /* host byte order */
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 dir; /* enum nat_dir */
	__u8 pad;
};

/* The tuple a matching packet gets. (A DSR flow's frontend is its key's
 * destination: the option is added before the rewrite.) */
struct nat_entry {
	struct ip_addr saddr;
	struct ip_addr daddr;
	__u16 sport;
	__u16 dport;
	__u8 flags; /* enum nat_flags */
	__u8 pad;
	__u16 pad2;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct nat_key);
	__type(value, struct nat_entry);
	__uint(max_entries, NAT_FLOWS_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nat_flows SEC(".maps");

/* Destinations a pod reaches with its own address (ip-masq-agent's
 * nonMasqueradeCIDRs): the native-routing CIDRs, the nodes' network. Keyed
 * as the ipcache is; the value is unused. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, __u32);
	__uint(max_entries, NONMASQ_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nonmasq SEC(".maps");

/* The node's addresses on its device (network byte order), set at load.
 * Zero: that family has none, so nothing is masqueraded or SNATed to it. */
const volatile __be32 node_ipv4 = 0;
const volatile __u32 node_ipv6[4] = {};
/* Masquerade pods' traffic to the world (Cilium's enable-bpf-masquerade). */
const volatile __u8 masquerade = 0;
/* Remote NodePort backends: 0 SNAT to the node, 1 DSR (Cilium's bpf-lb-mode). */
const volatile __u8 nodeport_dsr = 0;
/* The node's ports for translated flows: above Linux's default ephemeral
 * range (32768-60999), so they never meet the node's own connections. */
const volatile __u16 snat_port_min = 61000;
const volatile __u16 snat_port_max = 65535;

#define SNAT_TRIES 16

static __always_inline bool node_addr(struct ip_addr *a, __u8 family)
{
	if (family == 4) {
		a->addr[0] = node_ipv4;
		a->addr[1] = a->addr[2] = a->addr[3] = 0;
		return node_ipv4 != 0;
	}
	a->addr[0] = node_ipv6[0];
	a->addr[1] = node_ipv6[1];
	a->addr[2] = node_ipv6[2];
	a->addr[3] = node_ipv6[3];
	return a->addr[0] | a->addr[1] | a->addr[2] | a->addr[3];
}

static __always_inline bool is_node_addr(const struct ip_addr *a, __u8 family)
{
	if (family == 4)
		return node_ipv4 && a->addr[0] == node_ipv4;
	return (node_ipv6[0] | node_ipv6[1] | node_ipv6[2] | node_ipv6[3]) && a->addr[0] == node_ipv6[0] &&
	       a->addr[1] == node_ipv6[1] && a->addr[2] == node_ipv6[2] && a->addr[3] == node_ipv6[3];
}

static __always_inline bool masquerade_exempt(const struct ip_addr *dst, __u8 family)
{
	struct ipcache_key k = { .prefixlen = 32 + (family == 4 ? 32 : 128), .family = family, .ip = *dst };

	return bpf_map_lookup_elem(&nonmasq, &k) != NULL;
}

static __always_inline void nat_key_of(struct nat_key *k, const struct flow *f, __u8 dir)
{
	k->saddr = f->saddr;
	k->daddr = f->daddr;
	k->sport = f->sport;
	k->dport = f->dport;
	k->proto = f->proto;
	k->family = f->family;
	k->dir = dir;
	k->pad = 0;
}

/* Claims a port of the node's address for a flow to peer:peer_port: writes
 * the IN entry (key in, its dport chosen here) only if no flow holds that
 * port towards that peer. Returns the port, or 0 when every try collided. */
static __noinline __u16 snat_claim(struct nat_key *in, const struct nat_entry *back)
{
	__u32 span = (__u32)snat_port_max - snat_port_min + 1;
	__u32 base = bpf_get_prandom_u32();
	int i;

	if (!span || span > 65536)
		return 0;
	for (i = 0; i < SNAT_TRIES; i++) {
		in->dport = snat_port_min + (base + i * 7919) % span;
		if (bpf_map_update_elem(&nat_flows, in, back, BPF_NOEXIST) == 0)
			return in->dport;
	}
	return 0;
}

#endif
