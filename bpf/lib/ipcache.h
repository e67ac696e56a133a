/* ipcache: longest-prefix match from an IP address to its security identity. */
#ifndef KESTREL_IPCACHE_H
#define KESTREL_IPCACHE_H

#include "common.h"

#define IPCACHE_MAP_SIZE 512000
#define WORLD_ID 2

struct ipcache_key {
	__u32 prefixlen; /* bits after this field: 32 for family, then the address */
	__u32 family;    /* 4 or 6: keeps the two families' tries apart */
	struct ip_addr ip;
};

struct ipcache_entry {
	__u32 identity;
	__u32 flags; /* reserved */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_entry);
	__uint(max_entries, IPCACHE_MAP_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ipcache SEC(".maps");

/* Unknown addresses are the world. */
static __always_inline __u32 ipcache_identity(const struct ip_addr *ip, __u8 family)
{
	struct ipcache_key key = {
		.prefixlen = 32 + (family == 4 ? 32 : 128),
		.family = family,
		.ip = *ip,
	};
	struct ipcache_entry *e = bpf_map_lookup_elem(&ipcache, &key);

	return e ? e->identity : WORLD_ID;
}

#endif
