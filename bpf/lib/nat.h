/* Rewriting a parsed packet's address and port for service translation, with
 * the checksums that cover them: the IPv4 header checksum, and the TCP/UDP
 * checksum, whose pseudo-header holds the addresses (bpf_l4_csum_replace
 * with BPF_F_PSEUDO_HDR also keeps a partial checksum the pod's stack left
 * for offload right). A later fragment has no L4 header: only its address
 * changes. */
#ifndef KESTREL_NAT_H
#define KESTREL_NAT_H

#include "common.h"
#include "parse.h"

#define NAT_DST 1
#define NAT_SRC 0

/* Rewrites the destination (which == NAT_DST) or source of the packet f was
 * parsed from to addr and port (host byte order). Returns 0 or -1. Inlined:
 * its callers are BPF-to-BPF calls already, and the stack of a call chain is
 * limited to 512 bytes. */
static __always_inline int nat_rewrite(struct __sk_buff *skb, const struct flow *f, __u32 which,
				  struct ip_addr *addr, __u32 port)
{
	bool l4 = f->frag != FRAG_LATER && (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP);
	__u32 csum_off = f->l4_off + (f->proto == IPPROTO_TCP ? 16 : 6);
	/* A UDP checksum of 0 over IPv4 means none: it stays 0. */
	__u64 mangled = f->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be16 oport, nport;

	if (f->family == 4) {
		__be32 old = which == NAT_DST ? f->daddr.addr[0] : f->saddr.addr[0];
		__be32 new = addr->addr[0];
		__u32 at = ETH_HLEN + (which == NAT_DST ? 16 : 12);

		if (old != new) {
			if (l4 && bpf_l4_csum_replace(skb, csum_off, old, new, mangled | BPF_F_PSEUDO_HDR | 4) < 0)
				return -1;
			if (bpf_l3_csum_replace(skb, ETH_HLEN + 10, old, new, 4) < 0)
				return -1;
			if (bpf_skb_store_bytes(skb, at, &new, 4, 0) < 0)
				return -1;
		}
	} else {
		struct ip_addr old = which == NAT_DST ? f->daddr : f->saddr;
		__u32 at = ETH_HLEN + (which == NAT_DST ? 24 : 8);

		if (l4) {
			__s64 diff = bpf_csum_diff(old.addr, 16, addr->addr, 16, 0);

			if (diff < 0 || bpf_l4_csum_replace(skb, csum_off, 0, diff, mangled | BPF_F_PSEUDO_HDR) < 0)
				return -1;
		}
		if (bpf_skb_store_bytes(skb, at, addr->addr, 16, 0) < 0)
			return -1;
	}
	if (!l4)
		return 0;
	oport = bpf_htons(which == NAT_DST ? f->dport : f->sport);
	nport = bpf_htons((__u16)port);
	if (oport == nport)
		return 0;
	if (bpf_l4_csum_replace(skb, csum_off, oport, nport, mangled | 2) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, f->l4_off + (which == NAT_DST ? 2 : 0), &nport, 2, 0) < 0 ? -1 : 0;
}

/* The one's-complement checksum of a buffer, folded, as it is stored. */
static __always_inline __u16 csum_fold(__s64 sum)
{
	__u32 c = (__u32)sum;

	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

/* An ICMP port unreachable for the IPv4 packet f, from its destination, in
 * place of it: swapped MACs, a new IP header and the ICMP header, then the
 * packet's own IP header and first 8 bytes of payload (RFC 792). Only for
 * headers without options. Returns 0 or -1. */
static __noinline int reject_ipv4(struct __sk_buff *skb, const struct flow *f)
{
	struct {
		struct iphdr ip;
		__u8 icmp[8];
		__u8 orig[28];
	} r = {};
	__u8 mac[12], swapped[12];

	if (load(skb, 0, mac, sizeof(mac)) < 0 || load(skb, ETH_HLEN, r.orig, sizeof(r.orig)) < 0)
		return -1;
	if (r.orig[0] != 0x45)
		return -1;
	__builtin_memcpy(swapped, mac + 6, 6);
	__builtin_memcpy(swapped + 6, mac, 6);
	r.ip.version = 4;
	r.ip.ihl = 5;
	r.ip.tot_len = bpf_htons(sizeof(r));
	r.ip.ttl = 64;
	r.ip.protocol = IPPROTO_ICMP;
	r.ip.saddr = f->daddr.addr[0];
	r.ip.daddr = f->saddr.addr[0];
	r.ip.check = csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&r.ip, sizeof(r.ip), 0));
	r.icmp[0] = ICMP_DEST_UNREACH;
	r.icmp[1] = 3; /* port unreachable */
	*(__u16 *)&r.icmp[2] = csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)r.icmp, sizeof(r.icmp) + sizeof(r.orig), 0));
	if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(r), 0) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &r, sizeof(r), 0) < 0)
		return -1;
	return 0;
}

/* The same for IPv6: ICMPv6 destination unreachable, port unreachable (RFC
 * 4443), with the packet's first 48 bytes; the checksum covers the
 * pseudo-header. */
static __noinline int reject_ipv6(struct __sk_buff *skb, const struct flow *f)
{
	struct {
		struct ipv6hdr ip;
		__u8 icmp[8];
		__u8 orig[48];
	} r = {};
	struct {
		struct ip_addr saddr;
		struct ip_addr daddr;
		__be32 len;
		__be32 next;
	} pseudo = {};
	__u8 mac[12], swapped[12];
	__s64 sum;

	if (load(skb, 0, mac, sizeof(mac)) < 0 || load(skb, ETH_HLEN, r.orig, sizeof(r.orig)) < 0)
		return -1;
	__builtin_memcpy(swapped, mac + 6, 6);
	__builtin_memcpy(swapped + 6, mac, 6);
	r.ip.version = 6;
	r.ip.payload_len = bpf_htons(sizeof(r.icmp) + sizeof(r.orig));
	r.ip.nexthdr = IPPROTO_ICMPV6_;
	r.ip.hop_limit = 64;
	__builtin_memcpy(&r.ip.saddr, &f->daddr, 16);
	__builtin_memcpy(&r.ip.daddr, &f->saddr, 16);
	r.icmp[0] = 1; /* destination unreachable */
	r.icmp[1] = 4; /* port unreachable */
	pseudo.saddr = f->daddr;
	pseudo.daddr = f->saddr;
	pseudo.len = bpf_htonl(sizeof(r.icmp) + sizeof(r.orig));
	pseudo.next = bpf_htonl(IPPROTO_ICMPV6_);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&pseudo, sizeof(pseudo), 0);
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)r.icmp, sizeof(r.icmp) + sizeof(r.orig), (__u32)sum);
	*(__u16 *)&r.icmp[2] = csum_fold(sum);
	if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(r), 0) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &r, sizeof(r), 0) < 0)
		return -1;
	return 0;
}

/* One's-complement sums kept by hand, in the packet's own byte order (RFC
 * 1071: the sum does not depend on it): no helper buffers on a stack the
 * pipeline above already fills. csum_sub_add32 adds the change of a 32-bit
 * word from o to n. */
static __always_inline __u64 csum_sub_add32(__u64 acc, __u32 o, __u32 n)
{
	o = ~o;
	return acc + (o & 0xffff) + (o >> 16) + (n & 0xffff) + (n >> 16);
}

static __always_inline __u64 csum_sub_add16(__u64 acc, __u16 o, __u16 n)
{
	return acc + (__u16)~o + n;
}

/* A stored checksum once the words it covers changed by acc (RFC 1624,
 * eqn. 3: ~(~stored + changes)). */
static __always_inline __u16 csum_update(__u16 stored, __u64 acc)
{
	acc += (__u16)~stored;
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)~acc;
}

/* What an ICMP error becomes: the packet it quotes (q*, as its sender sent
 * it: addresses and ports, host byte order for ports) and its own outer
 * addresses. */
struct icmp_xlate {
	struct ip_addr qsaddr;
	struct ip_addr qdaddr;
	struct ip_addr osaddr;
	struct ip_addr odaddr;
	__u16 qsport;
	__u16 qdport;
	__u8 quoted[48]; /* scratch: the quoted IP header and 8 bytes of L4 */
};

/* Room for one icmp_xlate per CPU: the pod programs' call chain has no
 * stack left for it (512 bytes for the whole chain). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct icmp_xlate);
	__uint(max_entries, 1);
} icmp_xlate_scratch SEC(".maps");

static __always_inline struct icmp_xlate *icmp_xlate_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&icmp_xlate_scratch, &zero);
}

/* Rewrites the ICMP error f was parsed from to x: the quoted packet's
 * addresses with its IPv4 header checksum and its TCP or UDP checksum, the
 * quoted ports, the outer addresses with the IPv4 header checksum, and the
 * ICMP checksum for every change it covers (ICMPv6's also covers the outer
 * addresses; an IPv4 quoted header's own checksum absorbs its address
 * changes, so ICMPv4's does not see them). The receiving socket then finds
 * its connection by the quoted tuple (Linux matches it: a connected UDP
 * socket gets ECONNREFUSED). The quoted header must be plain (IPv4 without
 * options, IPv6 without extension headers, as stacks send them), TCP or
 * UDP, with the 8 bytes of L4 header every error quotes. Reads go through
 * bpf_skb_load_bytes: the offsets come from the parse, and the verifier
 * cannot bound them for direct access. Returns 0 or -1. */
static __noinline int icmp_error_rewrite(struct __sk_buff *skb, const struct flow *f, struct icmp_xlate *x)
{
	__u32 icmp_csum_off = f->l4_off + 2, inner = f->l4_off + 8;
	__u8 *b = x->quoted;
	__u32 hlen, soff, i, o32;
	__u64 icmp = 0, l4sum = 0;
	__u16 o16, n16, c;
	__be16 nport;
	bool v4 = f->family == 4;
	__u8 proto;

	hlen = v4 ? 20 : 40;
	soff = v4 ? 12 : 8;
	if (bpf_skb_load_bytes(skb, inner, b, v4 ? 28 : 48) < 0)
		return -1;
	if (v4 ? b[0] != 0x45 : (b[0] >> 4) != 6)
		return -1;
	proto = v4 ? b[9] : b[6];
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -1;

	/* The quoted addresses, in its header and its L4 pseudo-header. */
	for (i = 0; i < (v4 ? 1 : 4); i++) {
		__builtin_memcpy(&o32, b + soff + 4 * i, 4);
		l4sum = csum_sub_add32(l4sum, o32, x->qsaddr.addr[i]);
		__builtin_memcpy(b + soff + 4 * i, &x->qsaddr.addr[i], 4);
		__builtin_memcpy(&o32, b + soff + (v4 ? 4 : 16) + 4 * i, 4);
		l4sum = csum_sub_add32(l4sum, o32, x->qdaddr.addr[i]);
		__builtin_memcpy(b + soff + (v4 ? 4 : 16) + 4 * i, &x->qdaddr.addr[i], 4);
	}
	if (v4) {
		/* The header checksum moves with its addresses, so the
		 * header's own sum, and the ICMP checksum's share of it, stay. */
		__builtin_memcpy(&o16, b + 10, 2);
		c = csum_update(o16, l4sum);
		__builtin_memcpy(b + 10, &c, 2);
	} else {
		icmp = l4sum; /* no quoted header checksum to absorb them */
	}
	/* The quoted ports. */
	__builtin_memcpy(&o16, b + hlen, 2);
	nport = bpf_htons(x->qsport);
	l4sum = csum_sub_add16(l4sum, o16, nport);
	icmp = csum_sub_add16(icmp, o16, nport);
	__builtin_memcpy(b + hlen, &nport, 2);
	__builtin_memcpy(&o16, b + hlen + 2, 2);
	nport = bpf_htons(x->qdport);
	l4sum = csum_sub_add16(l4sum, o16, nport);
	icmp = csum_sub_add16(icmp, o16, nport);
	__builtin_memcpy(b + hlen + 2, &nport, 2);

	/* The L4 checksum: UDP's lies in the 8 bytes, TCP's (at 16) only
	 * when the error quotes that much. Over IPv4 a UDP checksum of 0
	 * means none and stays so; a computed 0 is sent as 0xffff. */
	if (proto == IPPROTO_UDP) {
		__builtin_memcpy(&o16, b + hlen + 6, 2);
		if (o16 || !v4) {
			n16 = csum_update(o16, l4sum);
			if (!n16)
				n16 = 0xffff;
			icmp = csum_sub_add16(icmp, o16, n16);
			__builtin_memcpy(b + hlen + 6, &n16, 2);
		}
	} else if (bpf_skb_load_bytes(skb, inner + hlen + 16, &o16, 2) == 0) {
		n16 = csum_update(o16, l4sum);
		icmp = csum_sub_add16(icmp, o16, n16);
		if (bpf_skb_store_bytes(skb, inner + hlen + 16, &n16, 2, 0) < 0)
			return -1;
	}
	if (bpf_skb_store_bytes(skb, inner, b, v4 ? 28 : 48, 0) < 0)
		return -1;

	/* The outer addresses. */
	if (v4) {
		if (f->saddr.addr[0] != x->osaddr.addr[0] &&
		    (bpf_l3_csum_replace(skb, ETH_HLEN + 10, f->saddr.addr[0], x->osaddr.addr[0], 4) < 0 ||
		     bpf_skb_store_bytes(skb, ETH_HLEN + 12, &x->osaddr.addr[0], 4, 0) < 0))
			return -1;
		if (f->daddr.addr[0] != x->odaddr.addr[0] &&
		    (bpf_l3_csum_replace(skb, ETH_HLEN + 10, f->daddr.addr[0], x->odaddr.addr[0], 4) < 0 ||
		     bpf_skb_store_bytes(skb, ETH_HLEN + 16, &x->odaddr.addr[0], 4, 0) < 0))
			return -1;
	} else {
		for (i = 0; i < 4; i++) {
			icmp = csum_sub_add32(icmp, f->saddr.addr[i], x->osaddr.addr[i]);
			icmp = csum_sub_add32(icmp, f->daddr.addr[i], x->odaddr.addr[i]);
		}
		if (bpf_skb_store_bytes(skb, ETH_HLEN + 8, x->osaddr.addr, 16, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_HLEN + 24, x->odaddr.addr, 16, 0) < 0)
			return -1;
	}
	if (bpf_skb_load_bytes(skb, icmp_csum_off, &o16, 2) < 0)
		return -1;
	n16 = csum_update(o16, icmp);
	return bpf_skb_store_bytes(skb, icmp_csum_off, &n16, 2, 0) < 0 ? -1 : 0;
}

/* Reverse translation of an ICMP error about a flow that was translated to a
 * backend, on its way to the client: the quoted packet is the client's as
 * the backend received it, so its destination becomes the frontend again
 * (addr, port: host byte order); the outer source becomes the frontend when
 * it is the backend itself (a router on the way keeps its own address, as
 * in Linux's NAT). Returns 0 or -1. */
static __always_inline int nat_icmp_error_revnat(struct __sk_buff *skb, const struct flow *f,
						 const struct ip_addr *addr, __u32 port)
{
	struct icmp_xlate *x = icmp_xlate_get();

	if (!x)
		return -1;
	x->qsaddr = f->inner_saddr;
	x->qdaddr = *addr;
	x->osaddr = ip_addr_eq(&f->saddr, &f->inner_daddr) ? *addr : f->saddr;
	x->odaddr = f->daddr;
	x->qsport = f->inner_sport;
	x->qdport = (__u16)port;
	return icmp_error_rewrite(skb, f, x);
}

#endif
