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

#endif
