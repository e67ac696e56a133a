// SPDX-License-Identifier: GPL-2.0
/* Socket-level load balancing (as Cilium's socket LB): cgroup programs that
 * translate a service frontend to a backend when a socket connects or sends,
 * so a pod's connection goes to the backend from its first packet and the
 * per-packet path (lxc.c) sees plain pod-to-pod traffic, with no DNAT and no
 * reverse NAT. Attached to a cgroup v2 directory; every socket made by a
 * process below it is translated.
 *
 *   connect4/6  TCP and UDP connect(): the destination becomes a backend;
 *   sendmsg4/6  unconnected UDP sends (sendto/sendmsg with an address);
 *   recvmsg4/6  the source of a UDP datagram from a translated backend
 *               becomes the frontend again;
 *   getpeername4/6  the peer of a translated socket is the frontend.
 *
 * The backend is chosen as lxc.c chooses it (lib/lb.h: ClientIP affinity,
 * else Maglev, else random), from the same maps: the agent loads this object
 * over lxc.c's maps. A socket cannot name its client address before it is
 * bound, so affinity here is keyed by the socket's network namespace (one
 * per pod) instead of the pod's address, as Cilium's socket LB does. Only a
 * frontend with backends is translated: anything else (no backends, a
 * reject, a wrong port, an unallocated service address, SCTP, source
 * ranges) is left to
 * the per-packet path, which drops or rejects it with its named reason.
 * Every program lets the call proceed (returns 1): it only rewrites. */
#include "lib/common.h"
/* lb.h also holds the per-packet translation (and nat.h the ICMP reject),
 * which these programs do not call. */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#include "lib/lb.h"
#pragma clang diagnostic pop

char __license[] SEC("license") = "GPL";

#define SYS_PROCEED 1
#define LB_SOCK_REVNAT_MAP_SIZE 262144

/* An affinity held by a network namespace: lb_affinity_key.client holds the
 * namespace cookie, and the family this marker, so it never meets a key of
 * lxc.c's (family 4 or 6, client an address). */
#define SOCK_AFFINITY_NETNS 0x80

/* What a socket was translated to: its cookie and the backend, as recvmsg
 * and getpeername see it (Cilium's reverse-sk map). */
struct sock_revnat_key {
	__u64 cookie;
	struct ip_addr addr;
	__u16 port; /* host byte order */
	__u8 family;
	__u8 pad[5];
};

/* The frontend the socket asked for, and its service: the entry counts only
 * while lb_revnat still gives that service this frontend. */
struct sock_revnat_entry {
	struct lb_addr frontend;
	__u32 service_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sock_revnat_key);
	__type(value, struct sock_revnat_entry);
	__uint(max_entries, LB_SOCK_REVNAT_MAP_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_sock_revnat SEC(".maps");

const struct sock_revnat_key *unused_sock_revnat_key __attribute__((unused));
const struct sock_revnat_entry *unused_sock_revnat_entry __attribute__((unused));

/* The Maglev hash of a socket: its cookie and the frontend, so a socket
 * keeps its entry while the table does. */
static __always_inline __u32 sock_hash(__u64 cookie, const struct lb_key *k)
{
	__u32 h = 0x2545f491;

	h = lb_mix(h, (__u32)cookie);
	h = lb_mix(h, (__u32)(cookie >> 32));
	h = lb_mix(h, k->addr.addr[0]);
	h = lb_mix(h, k->addr.addr[1]);
	h = lb_mix(h, k->addr.addr[2]);
	h = lb_mix(h, k->addr.addr[3]);
	h = lb_mix(h, ((__u32)k->port << 8) | k->proto);
	return h ^ (h >> 16);
}

/* Translates a frontend (addr, port in host order, family 4 or 6) to one of
 * its backends, in place. Returns true when it did. */
static __always_inline bool sock_xlate(struct bpf_sock_addr *ctx, struct ip_addr *addr, __u16 *port, __u8 family)
{
	struct lb_key k = { .addr = *addr, .port = *port, .family = family };
	struct lb_affinity_key ak = {};
	struct sock_revnat_key rk = {};
	struct sock_revnat_entry re = {};
	struct lb_service *svc;
	struct lb_addr *be;
	__u64 cookie, now;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return false;
	if (!lb_maybe_frontend(addr))
		return false;
	k.proto = ctx->protocol;
	svc = bpf_map_lookup_elem(&lb_services, &k);
	/* A service open to some clients only (loadBalancerSourceRanges) is
	 * judged by the client's address, which the per-packet path has. */
	if (!svc || !svc->backend_count || (svc->flags & LB_F_SOURCE_RANGES))
		return false;
	cookie = bpf_get_socket_cookie(ctx);
	now = bpf_ktime_get_ns();
	if (svc->flags & LB_F_AFFINITY) {
		__u64 ns = bpf_get_netns_cookie(ctx);

		ak.client.addr[0] = (__u32)ns;
		ak.client.addr[1] = (__u32)(ns >> 32);
		ak.service_id = svc->id;
		ak.family = SOCK_AFFINITY_NETNS | family;
	}
	be = lb_choose(svc, &ak, (svc->flags & LB_F_MAGLEV) ? sock_hash(cookie, &k) : 0, now);
	if (!be || be->family != family)
		return false;
	rk.cookie = cookie;
	rk.addr = be->addr;
	rk.port = be->port;
	rk.family = family;
	re.frontend.addr = *addr;
	re.frontend.port = *port;
	re.frontend.family = family;
	re.service_id = svc->id;
	if (bpf_map_update_elem(&lb_sock_revnat, &rk, &re, BPF_ANY) < 0)
		return false; /* untranslated, the per-packet path still serves it */
	*addr = be->addr;
	*port = be->port;
	return true;
}

/* The frontend a translated socket's backend stands for, if the socket was
 * translated to it and the service still has that frontend. */
static __always_inline bool sock_revxlate(struct bpf_sock_addr *ctx, struct ip_addr *addr, __u16 *port, __u8 family)
{
	struct sock_revnat_key rk = { .addr = *addr, .port = *port, .family = family };
	struct sock_revnat_entry *re;
	struct lb_addr *fe;

	rk.cookie = bpf_get_socket_cookie(ctx);
	re = bpf_map_lookup_elem(&lb_sock_revnat, &rk);
	if (!re)
		return false;
	fe = bpf_map_lookup_elem(&lb_revnat, &re->service_id);
	if (!fe || !ip_addr_eq(&fe->addr, &re->frontend.addr) || fe->port != re->frontend.port) {
		bpf_map_delete_elem(&lb_sock_revnat, &rk);
		return false;
	}
	*addr = re->frontend.addr;
	*port = re->frontend.port;
	return true;
}

/* The port of a sock_addr context (network byte order in the low 16 bits),
 * read whole: the verifier wants 4-byte loads of user_port. */
static __always_inline __u16 sock_port(const struct bpf_sock_addr *ctx)
{
	volatile __u32 p = ctx->user_port;

	return bpf_ntohs((__u16)p);
}

/* IPv4: user_ip4 and user_port are in network byte order. */
static __always_inline void sock4(struct bpf_sock_addr *ctx, bool forward)
{
	struct ip_addr a = { .addr = { ctx->user_ip4 } };
	__u16 port = sock_port(ctx);
	bool done = forward ? sock_xlate(ctx, &a, &port, 4) : sock_revxlate(ctx, &a, &port, 4);

	if (done) {
		ctx->user_ip4 = a.addr[0];
		ctx->user_port = (__u32)bpf_htons(port);
	}
}

/* IPv6, and IPv4 through an IPv6 socket (::ffff:a.b.c.d), which is an IPv4
 * frontend. */
static __always_inline void sock6(struct bpf_sock_addr *ctx, bool forward)
{
	struct ip_addr a = { .addr = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] } };
	bool mapped = a.addr[0] == 0 && a.addr[1] == 0 && a.addr[2] == bpf_htonl(0xffff);
	__u16 port = sock_port(ctx);
	__u8 family = mapped ? 4 : 6;
	bool done;

	if (mapped) {
		a.addr[0] = a.addr[3];
		a.addr[1] = a.addr[2] = a.addr[3] = 0;
	}
	done = forward ? sock_xlate(ctx, &a, &port, family) : sock_revxlate(ctx, &a, &port, family);
	if (!done)
		return;
	if (mapped) {
		a.addr[3] = a.addr[0];
		a.addr[0] = a.addr[1] = 0;
		a.addr[2] = bpf_htonl(0xffff);
	}
	ctx->user_ip6[0] = a.addr[0];
	ctx->user_ip6[1] = a.addr[1];
	ctx->user_ip6[2] = a.addr[2];
	ctx->user_ip6[3] = a.addr[3];
	ctx->user_port = (__u32)bpf_htons(port);
}

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	sock4(ctx, true);
	return SYS_PROCEED;
}

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	sock4(ctx, true);
	return SYS_PROCEED;
}

SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	sock4(ctx, false);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int sock_getpeername4(struct bpf_sock_addr *ctx)
{
	sock4(ctx, false);
	return SYS_PROCEED;
}

SEC("cgroup/connect6")
int sock_connect6(struct bpf_sock_addr *ctx)
{
	sock6(ctx, true);
	return SYS_PROCEED;
}

SEC("cgroup/sendmsg6")
int sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	sock6(ctx, true);
	return SYS_PROCEED;
}

SEC("cgroup/recvmsg6")
int sock_recvmsg6(struct bpf_sock_addr *ctx)
{
	sock6(ctx, false);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername6")
int sock_getpeername6(struct bpf_sock_addr *ctx)
{
	sock6(ctx, false);
	return SYS_PROCEED;
}
