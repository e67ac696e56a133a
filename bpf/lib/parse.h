/* Packet parsing: Ethernet, IPv4 (options), IPv6 (extension headers), TCP, UDP,
 * SCTP, ICMP, ICMPv6. Everything is read through load(): checked direct
 * access, or bpf_skb_load_bytes for paged data, so a short frame can only fail
 * a load, never read out of bounds. */
#ifndef KESTREL_PARSE_H
#define KESTREL_PARSE_H

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include "common.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif
#define IPPROTO_ICMPV6_ 58

/* ICMP types (linux/icmp.h drags in libc headers, so they are spelled here). */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129
#define MAX_IPV6_EXT_HEADERS 4

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

/* Fragment state of a packet (struct flow.frag). */
enum frag_state {
	FRAG_NONE = 0,  /* a whole datagram */
	FRAG_FIRST = 1, /* offset 0, more to come: carries the L4 header */
	FRAG_LATER = 2, /* no L4 header: its ports come from the first (fragments.h) */
};

/* The parsed view of a packet the rest of the pipeline works on. Ports are in
 * host byte order. For ICMP echo, the echo id is sport (request) or dport
 * (reply) so that a reply's reversed tuple finds the request's entry. */
struct flow {
	struct ip_addr saddr;
	struct ip_addr daddr;
	__u16 sport;
	__u16 dport;
	__u16 policy_port; /* dport, or the ICMP type */
	__u8 proto;
	__u8 family; /* 4 or 6 */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 is_icmp_error; /* inner holds the offending packet's tuple */
	__u8 is_nd;         /* ICMPv6 neighbour discovery or MLD (lxc.c decides if it is genuine) */
	__u8 frag;          /* enum frag_state */
	__u8 frag_proto;    /* the fragment's protocol as its header names it */
	__u8 hop_limit;     /* IPv6 hop limit: 255 proves ND came from the link itself */
	__u32 frag_id;      /* IPv4 identification or IPv6 fragment id */
	__u32 l3_len;
	struct ip_addr inner_saddr;
	struct ip_addr inner_daddr;
	__u16 inner_sport;
	__u16 inner_dport;
	__u8 inner_proto;
	__u8 inner_pad;
	__u16 l4_off; /* where the L4 header starts (service NAT rewrites it) */
};

/* Reads len bytes at off: straight from the packet when they lie in its
 * linear part (the usual case), else through bpf_skb_load_bytes, which also
 * reads paged data. Either way a short frame fails the read. */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, const __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (off < 0xffff) {
		__u8 *p = data + off;

		if ((void *)(p + len) <= end) {
			__builtin_memcpy(to, p, len);
			return 0;
		}
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* Reads the ports of a TCP/UDP/SCTP header at off. Only the first four bytes
 * are needed for the tuple; TCP also yields its flags and data offset. */
static __always_inline int parse_ports(struct __sk_buff *skb, __u32 off, __u8 proto,
				       __u16 *sport, __u16 *dport, __u8 *tcp_flags)
{
	__be16 ports[2];

	if (proto == IPPROTO_TCP) {
		__u8 b[14];

		if (load(skb, off, b, sizeof(b)) < 0)
			return -DROP_TRUNCATED;
		if ((b[12] >> 4) < 5)
			return -DROP_INVALID_L4;
		*tcp_flags = b[13];
		__builtin_memcpy(ports, b, sizeof(ports));
	} else if (proto == IPPROTO_UDP || proto == IPPROTO_SCTP) {
		if (load(skb, off, ports, sizeof(ports)) < 0)
			return -DROP_TRUNCATED;
	} else {
		return 0;
	}
	*sport = bpf_ntohs(ports[0]);
	*dport = bpf_ntohs(ports[1]);
	return 0;
}

static __always_inline bool icmp4_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB || type == ICMP_SOURCE_QUENCH;
}

static __always_inline bool icmp6_is_error(__u8 type)
{
	return type >= 1 && type <= 4;
}

/* Fills the inner tuple of an ICMP error from the embedded packet. */
static __always_inline int parse_icmp4_inner(struct __sk_buff *skb, __u32 off, struct flow *f)
{
	struct iphdr ip;
	__u8 tf = 0;

	if (load(skb, off, &ip, sizeof(ip)) < 0 || ip.ihl < 5)
		return -DROP_TRUNCATED;
	f->inner_saddr.addr[0] = ip.saddr;
	f->inner_daddr.addr[0] = ip.daddr;
	f->inner_proto = ip.protocol;
	if (ip.protocol == IPPROTO_ICMP) {
		__u8 hdr[8];

		if (load(skb, off + ip.ihl * 4, hdr, sizeof(hdr)) < 0)
			return -DROP_TRUNCATED;
		f->inner_sport = bpf_ntohs(*(__be16 *)&hdr[4]);
		return 0;
	}
	return parse_ports(skb, off + ip.ihl * 4, ip.protocol, &f->inner_sport,
			   &f->inner_dport, &tf) == -DROP_TRUNCATED ? -DROP_TRUNCATED : 0;
}

static __always_inline int parse_icmp6_inner(struct __sk_buff *skb, __u32 off, struct flow *f)
{
	struct ipv6hdr ip6;
	__u8 tf = 0;

	if (load(skb, off, &ip6, sizeof(ip6)) < 0)
		return -DROP_TRUNCATED;
	__builtin_memcpy(&f->inner_saddr, &ip6.saddr, 16);
	__builtin_memcpy(&f->inner_daddr, &ip6.daddr, 16);
	f->inner_proto = ip6.nexthdr;
	if (ip6.nexthdr == IPPROTO_ICMPV6_) {
		__u8 hdr[8];

		if (load(skb, off + sizeof(ip6), hdr, sizeof(hdr)) < 0)
			return -DROP_TRUNCATED;
		f->inner_sport = bpf_ntohs(*(__be16 *)&hdr[4]);
		return 0;
	}
	return parse_ports(skb, off + sizeof(ip6), ip6.nexthdr, &f->inner_sport,
			   &f->inner_dport, &tf) == -DROP_TRUNCATED ? -DROP_TRUNCATED : 0;
}

/* ICMP and ICMPv6: policy matches on the type; echo carries an id for conntrack. */
static __always_inline int parse_icmp(struct __sk_buff *skb, __u32 off, struct flow *f)
{
	__u8 hdr[8];
	__u16 id;

	if (load(skb, off, hdr, sizeof(hdr)) < 0)
		return -DROP_TRUNCATED;
	f->icmp_type = hdr[0];
	f->icmp_code = hdr[1];
	f->policy_port = hdr[0];
	id = bpf_ntohs(*(__be16 *)&hdr[4]);

	if (f->family == 4) {
		if (hdr[0] == ICMP_ECHO)
			f->sport = id;
		else if (hdr[0] == ICMP_ECHOREPLY)
			f->dport = id;
		else if (icmp4_is_error(hdr[0])) {
			f->is_icmp_error = 1;
			return parse_icmp4_inner(skb, off + 8, f);
		}
		return 0;
	}
	if (hdr[0] == ICMPV6_ECHO_REQUEST)
		f->sport = id;
	else if (hdr[0] == ICMPV6_ECHO_REPLY)
		f->dport = id;
	else if ((hdr[0] >= 133 && hdr[0] <= 137) || hdr[0] == 130 || hdr[0] == 131 || hdr[0] == 132 ||
		 hdr[0] == 143)
		f->is_nd = 1; /* router/neighbour discovery, redirect; MLD queries and reports */
	else if (icmp6_is_error(hdr[0])) {
		f->is_icmp_error = 1;
		return parse_icmp6_inner(skb, off + 8, f);
	}
	return 0;
}

/* How much of an L4 header the parser reads. A first fragment must hold it
 * whole: a later fragment overlapping it could otherwise rewrite ports or
 * TCP flags after policy saw them (RFC 1858). */
static __always_inline __u32 l4_header_len(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return 20;
	case IPPROTO_SCTP:
		return 12;
	case IPPROTO_UDP:
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6_:
		return 8;
	default: /* the parser reads no header of other protocols */
		return 0;
	}
}

static __always_inline int parse_l4(struct __sk_buff *skb, __u32 off, struct flow *f)
{
	int ret;

	f->l4_off = off;
	if (f->proto == IPPROTO_ICMP || f->proto == IPPROTO_ICMPV6_) {
		if ((f->proto == IPPROTO_ICMP) != (f->family == 4))
			return 0; /* ICMP in IPv6 or ICMPv6 in IPv4: plain protocol */
		return parse_icmp(skb, off, f);
	}
	ret = parse_ports(skb, off, f->proto, &f->sport, &f->dport, &f->tcp_flags);
	if (ret < 0)
		return ret;
	f->policy_port = f->dport;
	return 0;
}

static __always_inline int parse_ipv4(struct __sk_buff *skb, struct flow *f)
{
	struct iphdr ip;
	__u32 hlen, tot;

	if (load(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return -DROP_TRUNCATED;
	if (ip.version != 4 || ip.ihl < 5)
		return -DROP_INVALID_IPV4;
	hlen = ip.ihl * 4;
	tot = bpf_ntohs(ip.tot_len);
	if (tot < hlen)
		return -DROP_INVALID_IPV4;
	if (skb->len < ETH_HLEN + tot)
		return -DROP_TRUNCATED;
	f->family = 4;
	f->saddr.addr[0] = ip.saddr;
	f->daddr.addr[0] = ip.daddr;
	f->proto = ip.protocol;
	f->l3_len = tot;
	if (ip.frag_off & bpf_htons(0x3fff)) { /* MF or a non-zero offset */
		f->frag = (ip.frag_off & bpf_htons(0x1fff)) ? FRAG_LATER : FRAG_FIRST;
		f->frag_proto = ip.protocol;
		f->frag_id = bpf_ntohs(ip.id);
		if (f->frag == FRAG_LATER)
			return 0;
		if (tot - hlen < l4_header_len(ip.protocol))
			return -DROP_FRAG_TOO_SHORT;
	}
	return parse_l4(skb, ETH_HLEN + hlen, f);
}

static __always_inline bool ipv6_is_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS ||
	       nh == IPPROTO_FRAGMENT || nh == IPPROTO_AH;
}

static __always_inline int parse_ipv6(struct __sk_buff *skb, struct flow *f)
{
	struct ipv6hdr ip6;
	__u32 off = ETH_HLEN + sizeof(ip6);
	__u8 nh;
	int i;

	if (load(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0)
		return -DROP_TRUNCATED;
	if (ip6.version != 6)
		return -DROP_INVALID_IPV6;
	if (skb->len < off + bpf_ntohs(ip6.payload_len))
		return -DROP_TRUNCATED;
	f->family = 6;
	__builtin_memcpy(&f->saddr, &ip6.saddr, 16);
	__builtin_memcpy(&f->daddr, &ip6.daddr, 16);
	f->l3_len = sizeof(ip6) + bpf_ntohs(ip6.payload_len);
	f->hop_limit = ip6.hop_limit;
	nh = ip6.nexthdr;

#pragma unroll
	for (i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
		__u8 ext[2];

		if (!ipv6_is_ext(nh))
			break;
		if (nh == IPPROTO_FRAGMENT) {
			struct {
				__u8 nexthdr;
				__u8 reserved;
				__be16 off_m; /* offset in 8-byte units << 3 | M */
				__be32 id;
			} fh;

			if (load(skb, off, &fh, sizeof(fh)) < 0)
				return -DROP_TRUNCATED;
			off += sizeof(fh);
			nh = fh.nexthdr;
			if (!(fh.off_m & bpf_htons(0xfff9)))
				continue; /* an atomic fragment: offset 0, no more */
			f->frag = (fh.off_m & bpf_htons(0xfff8)) ? FRAG_LATER : FRAG_FIRST;
			f->frag_proto = nh;
			f->frag_id = bpf_ntohl(fh.id);
			if (f->frag == FRAG_LATER) {
				f->proto = nh; /* until frag_recall gives the first's */
				return 0;
			}
			continue;
		}
		if (load(skb, off, ext, sizeof(ext)) < 0)
			return -DROP_TRUNCATED;
		off += nh == IPPROTO_AH ? (ext[1] + 2) * 4 : (ext[1] + 1) * 8;
		nh = ext[0];
	}
	if (ipv6_is_ext(nh))
		return -DROP_IPV6_EXT_HEADERS;
	f->proto = nh;
	if (f->frag == FRAG_FIRST && f->l3_len < off - ETH_HLEN + l4_header_len(nh))
		return -DROP_FRAG_TOO_SHORT;
	return parse_l4(skb, off, f);
}

#endif
