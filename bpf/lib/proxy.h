/* Steering flows to the node's L7 proxy, transparently: the proxy listens
 * with IP_TRANSPARENT in the node's namespace and reads a connection's
 * original destination from the accepted socket's local address, so the
 * packet itself is never rewritten.
 *
 * A pod's egress (from_container, TCX ingress of the host veth): the proxy's
 * socket is looked up (the established one of this connection, else the
 * listener on the proxy port) and bpf_sk_assign'ed; skb->mark then carries
 * MARK_MAGIC_TO_PROXY, which the node's policy routing (fwmark 0x200/0xf00
 * -> table 2004: local default dev lo) turns into local delivery, where the
 * stack takes the assigned socket instead of looking one up.
 *
 * Towards a pod (to_container, TCX egress): bpf_sk_assign only works at an
 * ingress hook, so the frame gets MARK_MAGIC_TO_PROXY with the proxy port in
 * the upper 16 bits, its MACs swapped (so the device accepts it as its own)
 * and is redirected to the same device's ingress, where from_container sees
 * the mark and assigns the proxy's socket as above. A pod cannot forge that
 * mark: crossing from the pod's namespace to the node's scrubs skb->mark.
 *
 * The proxy's own upstream connections carry a mark too (SO_MARK): an
 * ingress proxy's connection to the pod it serves has been judged already
 * (MARK_MAGIC_PROXY_INGRESS: no policy again, or it would loop back), an
 * egress proxy's carries the client's identity (MARK_MAGIC_PROXY_EGRESS,
 * identity in the upper 16 bits) so the destination's ingress policy judges
 * the client, not the node. Only CAP_NET_ADMIN can set SO_MARK.
 *
 * Upstream connections leave from the client's own address and port (an
 * IP_TRANSPARENT socket bound to them: the flow's tuple), so the server sees
 * the client and a remote node judges the client's identity. Their replies
 * are addressed to the client, so the datapath hands them to the proxy: an
 * ingress proxy's, which the server sends, in from_container (a reply on a
 * flow whose ingress entry was redirected); an egress proxy's, which arrive
 * from elsewhere (never from the node's own stack, where the proxy answers
 * its client), in to_container, turned back as above with port 0. Port 0
 * asks for the connection's own socket only: a reply is never given to a
 * listener, and with no such socket it is dropped (PROXY_UNAVAILABLE), so a
 * server cannot answer the client past the proxy. */
#ifndef KESTREL_PROXY_H
#define KESTREL_PROXY_H

#include "common.h"
#include "parse.h"

#define MARK_MAGIC_MASK 0x0F00
#define MARK_MAGIC_TO_PROXY 0x0200
#define MARK_MAGIC_PROXY_INGRESS 0x0A00
#define MARK_MAGIC_PROXY_EGRESS 0x0B00

#ifndef BPF_F_INGRESS
#define BPF_F_INGRESS 1
#endif

/* Names the Go side reads from BTF (datapath/proxy.go). */
enum proxy_mark {
	PROXY_MARK_MASK = MARK_MAGIC_MASK,
	PROXY_MARK_TO_PROXY = MARK_MAGIC_TO_PROXY,
	PROXY_MARK_INGRESS = MARK_MAGIC_PROXY_INGRESS,
	PROXY_MARK_EGRESS = MARK_MAGIC_PROXY_EGRESS,
	PROXY_ROUTE_TABLE = 2004,
};

/* BPF_PROG_TEST_RUN runs a program outside any hook, so bpf_sk_assign
 * refuses it (-EOPNOTSUPP: not at TC ingress). A datapath loaded to run test
 * frames (datapath.Config.TestDevices) takes the proxy's socket being found
 * as the redirect; an attached datapath never sets this. */
const volatile __u32 proxy_test_run = 0;

static __always_inline __u32 proxy_mark_magic(__u32 mark)
{
	return mark & MARK_MAGIC_MASK;
}

/* The proxy's socket for f: the connection's own (its tuple, seen from the
 * proxy, is the packet's), else the listener on port (none for port 0). A
 * listener found on the original tuple is some other service of the node's,
 * never the proxy's. */
static __always_inline struct bpf_sock *proxy_socket(struct __sk_buff *skb, const struct flow *f, __u16 port)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	__u32 len;

	if (f->family == 4) {
		t.ipv4.saddr = f->saddr.addr[0];
		t.ipv4.daddr = f->daddr.addr[0];
		t.ipv4.sport = bpf_htons(f->sport);
		t.ipv4.dport = bpf_htons(f->dport);
		len = sizeof(t.ipv4);
	} else {
		__builtin_memcpy(t.ipv6.saddr, f->saddr.addr, 16);
		__builtin_memcpy(t.ipv6.daddr, f->daddr.addr, 16);
		t.ipv6.sport = bpf_htons(f->sport);
		t.ipv6.dport = bpf_htons(f->dport);
		len = sizeof(t.ipv6);
	}
	if (f->proto == IPPROTO_TCP) {
		sk = bpf_skc_lookup_tcp(skb, &t, len, BPF_F_CURRENT_NETNS, 0);
		if (sk) {
			if (sk->state != BPF_TCP_LISTEN)
				return sk;
			bpf_sk_release(sk);
		}
	}
	if (!port)
		return NULL; /* a reply for an upstream connection: its own socket or none */
	if (f->family == 4)
		t.ipv4.dport = bpf_htons(port);
	else
		t.ipv6.dport = bpf_htons(port);
	if (f->proto == IPPROTO_TCP) {
		sk = bpf_skc_lookup_tcp(skb, &t, len, BPF_F_CURRENT_NETNS, 0);
		if (sk && sk->state != BPF_TCP_LISTEN) {
			bpf_sk_release(sk);
			return NULL;
		}
		return sk;
	}
	return bpf_sk_lookup_udp(skb, &t, len, BPF_F_CURRENT_NETNS, 0);
}

/* Hands the packet to the proxy on this node: 0, or a negative drop reason
 * (PROXY_UNAVAILABLE when no proxy socket listens: never passed unfiltered).
 * Only at an ingress hook. */
static __noinline int proxy_assign(struct __sk_buff *skb, const struct flow *f, __u16 port)
{
	struct bpf_sock *sk;
	long err;

	if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP)
		return -DROP_PROXY_UNAVAILABLE;
	sk = proxy_socket(skb, f, port);
	if (!sk)
		return -DROP_PROXY_UNAVAILABLE;
	err = proxy_test_run ? 0 : bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	if (err)
		return -DROP_PROXY_UNAVAILABLE;
	skb->mark = MARK_MAGIC_TO_PROXY | ((__u32)port << 16);
	return 0;
}

/* Towards a pod: turns the frame back into its device's ingress with the
 * proxy port in the mark (see the top of this file). A TC action, or a
 * negative drop reason. */
static __noinline int proxy_hairpin(struct __sk_buff *skb, __u16 port)
{
	__u8 mac[12], swapped[12];

	if (bpf_skb_load_bytes(skb, 0, mac, sizeof(mac)) < 0)
		return -DROP_PROXY_UNAVAILABLE;
	__builtin_memcpy(swapped, mac + 6, 6);
	__builtin_memcpy(swapped + 6, mac, 6);
	if (bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0) < 0)
		return -DROP_PROXY_UNAVAILABLE;
	skb->mark = MARK_MAGIC_TO_PROXY | ((__u32)port << 16);
	return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
}

#endif
