// SPDX-License-Identifier: GPL-2.0
/* Programs for the node's own device (its uplink), attached with TCX:
 *   from_netdev (ingress): NodePort, LoadBalancer, externalIP and hostPort
 *       frontends for traffic from outside the node; replies to flows the
 *       node translated; DSR options from other nodes;
 *   to_netdev (egress): masquerade of pods' traffic to the world; local
 *       backends' replies to external clients get their frontend back.
 * Compiled as part of lxc.c's object (included at its end), so both share
 * maps and the one exit (finish). Policy is not applied here: a translated
 * packet to a pod of this node meets that pod's ingress policy at its veth,
 * with the client as its source (or this node, after SNAT).
 *
 * A remote backend gets the client's packet by SNAT to the node's address
 * (its reply comes back here), or with bpf-lb-mode dsr by DSR: the packet
 * keeps the client's address and carries the frontend in an IPv4 option;
 * the backend's node records it and its reply goes straight to the client
 * with the frontend as source. IPv6 carries the frontend in a Destination
 * Options extension header instead. */

#define AF_INET_ 2
#define AF_INET6_ 10

/* The DSR option (RFC 791 layout): type 0x9c is copied, control class,
 * number 28, which IANA has not assigned. */
#define IPOPT_DSR 0x9c

struct dsr_opt {
	__u8 type;
	__u8 len;
	__be16 port;
	__be32 addr;
};

/* IPv6 has no header options: the frontend goes in a Destination Options
 * header (RFC 8200 4.6) of its own, 24 bytes, holding one option of type
 * 0x1e (RFC 4727's experimental type: a node that does not know it skips
 * it, and it does not change en route). */
#define IP6OPT_DSR 0x1e

/* The IPv6 header's words that an extension header inserted or taken off
 * changes (at offset 4). */
struct ip6_lens {
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
};

struct dsr_opt6 {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-byte units, not counting the first 8 */
	__u8 type;
	__u8 len;    /* of the option's data */
	__be16 port;
	__u16 pad;
	__u32 addr[4];
};

#define HOST_ID 1
#define REMOTE_NODE_ID 6

/* The identities go in only when a packet is reported: most packets the
 * node's device sees are none of this program's business. */
static __always_inline void netdev_identities(struct flow_event *ev)
{
	ev->src_identity = ipcache_identity(&ev->saddr, ev->family);
	ev->dst_identity = ipcache_identity(&ev->daddr, ev->family);
}

static __always_inline int netdev_drop(struct __sk_buff *skb, struct flow_event *ev, __u8 reason)
{
	if (ev->family)
		netdev_identities(ev);
	ev->verdict = VERDICT_DROPPED;
	ev->drop_reason = reason;
	finish(skb, ev, 1);
	return TC_ACT_SHOT;
}

/* Reports a forwarded packet (when emit) and hands back the action. */
static __always_inline int netdev_pass(struct __sk_buff *skb, struct flow_event *ev, bool emit, int action)
{
	ev->verdict = VERDICT_FORWARDED;
	ev->drop_reason = DROP_NONE;
	if (emit)
		netdev_identities(ev);
	finish(skb, ev, emit);
	return action;
}

/* A packet this program routes on (bypassing the node's stack, which would
 * do it) loses one of its TTL or hop limit, so a routing loop ends; one
 * with none left is dropped. Returns 0 or minus a drop reason. */
static __always_inline int ttl_decrement(struct __sk_buff *skb, __u8 family)
{
	__u32 off = ETH_HLEN + (family == 4 ? 8 : 7);
	__u8 ttl, left;

	if (load(skb, off, &ttl, 1) < 0)
		return -DROP_TRUNCATED;
	if (ttl <= 1)
		return -DROP_TTL_EXCEEDED;
	left = ttl - 1;
	/* IPv4's header checksum covers the TTL, the high byte of the
	 * 16-bit word it shares with the protocol. */
	if (family == 4 && bpf_l3_csum_replace(skb, ETH_HLEN + 10, bpf_htons((__u16)ttl << 8),
					       bpf_htons((__u16)left << 8), 2) < 0)
		return -DROP_NAT_FAILED;
	return bpf_skb_store_bytes(skb, off, &left, 1, 0) < 0 ? -DROP_NAT_FAILED : 0;
}

/* Sends a packet out by the device the node's routes pick for its
 * destination, with the next hop's MAC, one hop older. Without a route (a
 * test namespace) it leaves by the device it came in on, resolving the
 * neighbour there. Returns the TC action or minus a drop reason. */
static __noinline int netdev_forward(struct __sk_buff *skb, const struct flow *f)
{
	struct bpf_fib_lookup fib = {};
	long ret;

	ret = ttl_decrement(skb, f->family);
	if (ret < 0)
		return ret;

	fib.ifindex = skb->ifindex;
	fib.l4_protocol = f->proto;
	fib.sport = bpf_htons(f->sport);
	fib.dport = bpf_htons(f->dport);
	if (f->family == 4) {
		fib.family = AF_INET_;
		fib.ipv4_src = f->saddr.addr[0];
		fib.ipv4_dst = f->daddr.addr[0];
	} else {
		fib.family = AF_INET6_;
		__builtin_memcpy(fib.ipv6_src, &f->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, &f->daddr, 16);
	}
	ret = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (ret == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0) < 0)
			return TC_ACT_SHOT;
		return bpf_redirect(fib.ifindex, 0);
	}
	if (ret == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib.ifindex, NULL, 0, 0);
	return bpf_redirect_neigh(skb->ifindex, NULL, 0, 0);
}

/* Rewrites the parsed packet to e's tuple, and f with it. */
static __noinline int nat_apply(struct __sk_buff *skb, struct flow *f, const struct nat_entry *e)
{
	struct ip_addr a = e->saddr;

	if (!ip_addr_eq(&a, &f->saddr) || e->sport != f->sport) {
		if (nat_rewrite(skb, f, NAT_SRC, &a, e->sport) < 0)
			return -1;
		f->saddr = a;
		f->sport = e->sport;
	}
	a = e->daddr;
	if (!ip_addr_eq(&a, &f->daddr) || e->dport != f->dport) {
		if (nat_rewrite(skb, f, NAT_DST, &a, e->dport) < 0)
			return -1;
		f->daddr = a;
		f->dport = e->dport;
	}
	return 0;
}

/* Inserts the DSR option after an IPv4 header that has none: the room goes
 * after the fixed header, and the header's length fields and checksum follow. */
static __noinline int dsr_add4(struct __sk_buff *skb, __be32 addr, __u16 port)
{
	struct iphdr ip;
	struct dsr_opt opt = { .type = IPOPT_DSR, .len = sizeof(opt), .port = bpf_htons(port), .addr = addr };
	__s64 sum;

	if (load(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl != 5)
		return -1;
	if (bpf_skb_adjust_room(skb, sizeof(opt), BPF_ADJ_ROOM_NET, 0) < 0)
		return -1;
	ip.ihl = 5 + sizeof(opt) / 4;
	ip.tot_len = bpf_htons(bpf_ntohs(ip.tot_len) + sizeof(opt));
	ip.check = 0;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&ip, sizeof(ip), 0);
	if (sum < 0)
		return -1;
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&opt, sizeof(opt), (__u32)sum);
	ip.check = csum_fold(sum);
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &opt, sizeof(opt), 0) < 0)
		return -1;
	return 0;
}

/* Inserts the DSR Destination Options header right after the IPv6 header,
 * which then names it as its next header. The TCP/UDP checksum does not
 * move: its pseudo-header holds the upper-layer protocol and length. */
static __noinline int dsr_add6(struct __sk_buff *skb, const struct ip_addr *addr, __u16 port)
{
	struct ip6_lens h; /* only these fields change */
	struct dsr_opt6 opt = { .hdrlen = (sizeof(opt) - 8) / 8, .type = IP6OPT_DSR,
				.len = sizeof(opt) - 4, .port = bpf_htons(port) };

	if (load(skb, ETH_HLEN + 4, &h, sizeof(h)) < 0)
		return -1;
	__builtin_memcpy(opt.addr, addr->addr, 16);
	opt.nexthdr = h.nexthdr;
	h.nexthdr = IPPROTO_DSTOPTS;
	h.payload_len = bpf_htons(bpf_ntohs(h.payload_len) + sizeof(opt));
	if (bpf_skb_adjust_room(skb, sizeof(opt), BPF_ADJ_ROOM_NET, 0) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, ETH_HLEN + 4, &h, sizeof(h), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(struct ipv6hdr), &opt, sizeof(opt), 0) < 0)
		return -1;
	return 0;
}

/* Whether a DSR option names a frontend another node may have served: one
 * of the frontends this node has too (LoadBalancer IPs, externalIPs), or a
 * NodePort on the address of a node the ipcache knows. */
static __always_inline bool dsr_frontend_known(const struct ip_addr *addr, __u16 port, __u8 family, __u8 proto)
{
	struct lb_key k = { .family = family, .proto = proto, .port = port };
	struct lb_service *svc;
	__u32 id;

	k.addr = *addr;
	svc = bpf_map_lookup_elem(&lb_services, &k);
	if (svc && (svc->flags & LB_F_EXTERNAL))
		return true;
	id = ipcache_identity(&k.addr, family);
	if (id != REMOTE_NODE_ID && id != HOST_ID)
		return false;
	if (!node_addr(&k.addr, family))
		return false;
	svc = bpf_map_lookup_elem(&lb_services, &k);
	return svc && (svc->flags & LB_F_EXTERNAL);
}

/* Records, for a packet that came with a DSR option naming front:port, that
 * the backend's reply (backend -> client) must come from the frontend.
 * Returns 0 or a drop reason. */
static __noinline int dsr_remember(const struct flow *f, const struct ip_addr *front, __u16 port)
{
	struct nat_key k;
	struct nat_entry e = {};

	k.saddr = f->daddr;
	k.daddr = f->saddr;
	k.sport = f->dport;
	k.dport = f->sport;
	k.proto = f->proto;
	k.family = f->family;
	k.dir = NAT_DIR_REPLY;
	k.pad = 0;
	e.saddr = *front;
	e.sport = port;
	e.daddr = f->saddr;
	e.dport = f->sport;
	return bpf_map_update_elem(&nat_flows, &k, &e, BPF_ANY) < 0 ? DROP_CT_CREATE_FAILED : 0;
}

/* Whether the packet may carry a DSR option at all: the first of a TCP or
 * UDP flow's packets (not a later fragment), for a pod of this node. */
static __always_inline bool dsr_acceptable(const struct flow *f)
{
	return f->frag != FRAG_LATER && (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP) &&
	       endpoint_is_local(&f->daddr, f->family);
}

/* A packet carrying the DSR option: another node chose a backend of this
 * node for it. Its reply must come from the frontend the option names; the
 * option goes, so the pod sees a plain packet. Returns 0, or a drop reason
 * for an option that names no frontend or a backend that is not here (a
 * forged option would otherwise choose the source of the pod's replies). */
static __noinline int dsr_accept4(struct __sk_buff *skb, const struct flow *f)
{
	struct iphdr ip;
	struct dsr_opt o;
	struct ip_addr front = {};
	int ret;

	if (load(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || load(skb, ETH_HLEN + sizeof(ip), &o, sizeof(o)) < 0)
		return DROP_TRUNCATED;
	if (o.type != IPOPT_DSR || o.len != sizeof(o) || ip.ihl != 5 + sizeof(o) / 4)
		return DROP_DSR_INVALID;
	front.addr[0] = o.addr;
	if (!dsr_acceptable(f) || !dsr_frontend_known(&front, bpf_ntohs(o.port), 4, f->proto))
		return DROP_DSR_INVALID;
	ret = dsr_remember(f, &front, bpf_ntohs(o.port));
	if (ret)
		return ret;
	ip.ihl = 5;
	ip.tot_len = bpf_htons(bpf_ntohs(ip.tot_len) - sizeof(o));
	ip.check = 0;
	ip.check = csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&ip, sizeof(ip), 0));
	if (bpf_skb_adjust_room(skb, -(__s32)sizeof(o), BPF_ADJ_ROOM_NET, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) < 0)
		return DROP_NAT_FAILED;
	return 0;
}

/* The same for IPv6: the Destination Options header goes whole, and the
 * IPv6 header names what followed it. */
static __noinline int dsr_accept6(struct __sk_buff *skb, const struct flow *f)
{
	struct ip6_lens h;
	struct dsr_opt6 o;
	int ret;

	if (load(skb, ETH_HLEN + 4, &h, sizeof(h)) < 0 ||
	    load(skb, ETH_HLEN + sizeof(struct ipv6hdr), &o, sizeof(o)) < 0)
		return DROP_TRUNCATED;
	if (o.hdrlen != (sizeof(o) - 8) / 8 || o.type != IP6OPT_DSR || o.len != sizeof(o) - 4 ||
	    bpf_ntohs(h.payload_len) < sizeof(o))
		return DROP_DSR_INVALID;
	if (!dsr_acceptable(f) || !dsr_frontend_known((struct ip_addr *)o.addr, bpf_ntohs(o.port), 6, f->proto))
		return DROP_DSR_INVALID;
	ret = dsr_remember(f, (struct ip_addr *)o.addr, bpf_ntohs(o.port));
	if (ret)
		return ret;
	h.nexthdr = o.nexthdr;
	h.payload_len = bpf_htons(bpf_ntohs(h.payload_len) - sizeof(o));
	if (bpf_skb_adjust_room(skb, -(__s32)sizeof(o), BPF_ADJ_ROOM_NET, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + 4, &h, sizeof(h), 0) < 0)
		return DROP_NAT_FAILED;
	return 0;
}

/* Whether the IPv4 packet's first option is the DSR option. Other options
 * (IGMP's router alert, say) are the node's own business. */
static __always_inline bool ipv4_has_dsr_option(struct __sk_buff *skb)
{
	__u8 vihl, type;

	return load(skb, ETH_HLEN, &vihl, 1) == 0 && (vihl & 0x0f) > 5 &&
	       load(skb, ETH_HLEN + sizeof(struct iphdr), &type, 1) == 0 && type == IPOPT_DSR;
}

/* Whether the IPv6 packet's first extension header is Destination Options
 * whose first option is the DSR option; other options are the node's. */
static __always_inline bool ipv6_has_dsr_option(struct __sk_buff *skb)
{
	__u8 nh, type;

	return load(skb, ETH_HLEN + 6, &nh, 1) == 0 && nh == IPPROTO_DSTOPTS &&
	       load(skb, ETH_HLEN + sizeof(struct ipv6hdr) + 2, &type, 1) == 0 && type == IP6OPT_DSR;
}

/* Applies a flow's OUT entry to one of its packets; for DSR, the option
 * naming the frontend (the packet's destination until the rewrite) goes on
 * every UDP datagram and on a TCP SYN (the backend's node keeps it from
 * there), and the L4 header moves by its length. Returns the TC action or
 * minus a drop reason. */
static __noinline int nodeport_out(struct __sk_buff *skb, struct flow *f, const struct nat_entry *e)
{
	if ((e->flags & NAT_F_DSR) && (f->proto == IPPROTO_UDP || (f->tcp_flags & TCP_FLAG_SYN)) &&
	    f->frag != FRAG_LATER) {
		if ((f->family == 4 ? dsr_add4(skb, f->daddr.addr[0], f->dport) : dsr_add6(skb, &f->daddr, f->dport)) < 0)
			return -DROP_NAT_FAILED;
		f->l4_off += f->family == 4 ? sizeof(struct dsr_opt) : sizeof(struct dsr_opt6);
	}
	if (nat_apply(skb, f, e) < 0)
		return -DROP_NAT_FAILED;
	if (e->flags & NAT_F_FORWARD)
		return netdev_forward(skb, f);
	return TC_ACT_OK;
}

/* A new flow from outside to a frontend of this node: the backend was
 * chosen (nat); writes the flow's entries and translates its first packet.
 * Returns the TC action, or minus a drop reason. */
static __noinline int nodeport_new(struct __sk_buff *skb, struct flow *f, const struct lb_nat *nat)
{
	struct nat_key k;
	struct nat_entry out = {}, back = {};

	out.saddr = f->saddr;
	out.sport = f->sport;
	out.daddr = nat->backend.addr;
	out.dport = nat->backend.port;
	back.saddr = f->daddr;
	back.sport = f->dport;
	back.daddr = f->saddr;
	back.dport = f->sport;
	if (endpoint_is_local(&nat->backend.addr, f->family)) {
		/* A pod here: the client's address stays; the reply leaves by
		 * this device and gets the frontend back (NAT_DIR_REPLY). */
		k.saddr = out.daddr;
		k.daddr = f->saddr;
		k.sport = out.dport;
		k.dport = f->sport;
		k.proto = f->proto;
		k.family = f->family;
		k.dir = NAT_DIR_REPLY;
		k.pad = 0;
		if (bpf_map_update_elem(&nat_flows, &k, &back, BPF_ANY) < 0)
			return -DROP_CT_CREATE_FAILED;
	} else if (nodeport_dsr) {
		out.flags = NAT_F_FORWARD | NAT_F_DSR;
	} else {
		/* SNAT: the backend answers this node, which answers the client
		 * from the frontend. */
		out.flags = NAT_F_FORWARD;
		back.flags = NAT_F_FORWARD;
		k.saddr = out.daddr;
		k.sport = out.dport;
		k.proto = f->proto;
		k.family = f->family;
		k.dir = NAT_DIR_IN;
		k.pad = 0;
		if (!node_addr(&k.daddr, f->family))
			return -DROP_SNAT_NO_PORT;
		out.saddr = k.daddr;
		out.sport = snat_claim(&k, &back);
		if (!out.sport)
			return -DROP_SNAT_NO_PORT;
	}
	nat_key_of(&k, f, NAT_DIR_OUT);
	if (bpf_map_update_elem(&nat_flows, &k, &out, BPF_ANY) < 0)
		return -DROP_CT_CREATE_FAILED;
	return nodeport_out(skb, f, &out);
}

/* A packet of a flow the node device already translates: the reply to a
 * masqueraded or SNATed flow reaching the node's address, or a later packet
 * of a NodePort flow. Returns the TC action, minus a drop reason, or 1 when
 * the packet belongs to no such flow. */
static __noinline int netdev_known(struct __sk_buff *skb, struct flow *f)
{
	struct nat_key k;
	struct nat_entry *e;

	if (is_node_addr(&f->daddr, f->family)) {
		nat_key_of(&k, f, NAT_DIR_IN);
		e = bpf_map_lookup_elem(&nat_flows, &k);
		if (e) {
			if (nat_apply(skb, f, e) < 0)
				return -DROP_NAT_FAILED;
			return e->flags & NAT_F_FORWARD ? netdev_forward(skb, f) : TC_ACT_OK;
		}
	}
	nat_key_of(&k, f, NAT_DIR_OUT);
	e = bpf_map_lookup_elem(&nat_flows, &k);
	if (!e)
		return 1;
	return nodeport_out(skb, f, e);
}

/* An ICMP error about a flow this device translates quotes the packet as
 * it left here, translated; it must become about the packet its sender
 * sent, and go to that sender. The reply to the quoted packet is looked up
 * as a reply arriving here would be (ingress: IN when it is for the node's
 * address, then OUT; egress: REPLY, then OUT); the entry turns that reply
 * into its tuple, so the quoted packet becomes that tuple reversed. An
 * error is addressed to the quoted packet's source, or it is no error
 * about it. f's outer addresses follow the rewrite. Returns the TC action,
 * minus a drop reason, or 1 when no translated flow explains the error. */
static __noinline int netdev_icmp_error(struct __sk_buff *skb, struct flow *f, bool ingress)
{
	struct nat_key k;
	struct nat_entry *e = NULL;
	struct icmp_xlate *x = icmp_xlate_get();

	if ((f->inner_proto != IPPROTO_TCP && f->inner_proto != IPPROTO_UDP) || !ip_addr_eq(&f->daddr, &f->inner_saddr))
		return 1;
	k.saddr = f->inner_daddr;
	k.daddr = f->inner_saddr;
	k.sport = f->inner_dport;
	k.dport = f->inner_sport;
	k.proto = f->inner_proto;
	k.family = f->family;
	k.pad = 0;
	if (!ingress || is_node_addr(&k.daddr, f->family)) {
		k.dir = ingress ? NAT_DIR_IN : NAT_DIR_REPLY;
		e = bpf_map_lookup_elem(&nat_flows, &k);
	}
	if (!e) {
		k.dir = NAT_DIR_OUT;
		e = bpf_map_lookup_elem(&nat_flows, &k);
	}
	if (!e)
		return 1;
	if (!x)
		return -DROP_NAT_FAILED;
	x->qsaddr = e->daddr;
	x->qsport = e->dport;
	x->qdaddr = e->saddr;
	x->qdport = e->sport;
	x->odaddr = e->daddr;
	/* The peer's own error comes from what the peer is to the sender; a
	 * router's keeps the router's address. */
	x->osaddr = ip_addr_eq(&f->saddr, &f->inner_daddr) ? e->saddr : f->saddr;
	if (icmp_error_rewrite(skb, f, x) < 0)
		return -DROP_NAT_FAILED;
	f->saddr = x->osaddr;
	f->daddr = x->odaddr;
	if (ingress && (e->flags & NAT_F_FORWARD))
		return netdev_forward(skb, f);
	return TC_ACT_OK;
}

/* lb_select for traffic from outside, in a frame of its own. */
static __noinline int netdev_select(const struct flow *f, __u64 now, struct lb_nat *nat)
{
	return lb_select(f, now, nat, true);
}

static __noinline int netdev_parse(struct __sk_buff *skb, __be16 proto, struct flow *f)
{
	if (proto == bpf_htons(ETH_P_IP_))
		return parse_ipv4(skb, f);
	if (proto == bpf_htons(ETH_P_IPV6_))
		return parse_ipv6(skb, f);
	return 1;
}

SEC("tcx/ingress")
int from_netdev(struct __sk_buff *skb)
{
	__u64 now = bpf_ktime_get_coarse_ns();
	struct flow_event ev = { .direction = DIR_INGRESS, .point = POINT_NODE_DEVICE };
	struct flow f = {};
	struct lb_nat nat = {};
	__be16 proto;
	int ret;

	if (load(skb, 12, &proto, sizeof(proto)) < 0)
		return TC_ACT_OK;
	ret = netdev_parse(skb, proto, &f);
	if (ret > 0)
		return TC_ACT_OK; /* not IP: the node's own business */
	event_fill_flow(&ev, &f);
	if (ret < 0)
		return netdev_drop(skb, &ev, (__u8)-ret);
	/* A later fragment has no ports to translate by: the node's stack
	 * reassembles what is its own. */
	if (f.frag == FRAG_LATER)
		return TC_ACT_OK;
	if (f.is_icmp_error) {
		/* An error no translated flow explains is the node's own. */
		ret = netdev_icmp_error(skb, &f, true);
		if (ret < 0)
			return netdev_drop(skb, &ev, (__u8)-ret);
		if (ret == 1)
			return TC_ACT_OK;
		event_fill_flow(&ev, &f);
		return netdev_pass(skb, &ev, 1, ret);
	}
	if (f.family == 4 ? ipv4_has_dsr_option(skb) : ipv6_has_dsr_option(skb)) {
		ret = f.family == 4 ? dsr_accept4(skb, &f) : dsr_accept6(skb, &f);
		if (ret)
			return netdev_drop(skb, &ev, ret);
		return netdev_pass(skb, &ev, 1, TC_ACT_OK);
	}
	ret = netdev_known(skb, &f);
	if (ret < 0)
		return netdev_drop(skb, &ev, (__u8)-ret);
	if (ret != 1)
		return ret;
	ret = netdev_select(&f, now, &nat);
	if (ret == 0)
		return TC_ACT_OK;
	if (ret < 0) {
		/* kube-proxy rejects from outside too: the answer goes back out
		 * this device to whoever sent it. */
		if (nat.reject && (f.proto == IPPROTO_TCP || f.proto == IPPROTO_UDP) &&
		    (f.family == 4 ? reject_ipv4(skb, &f) : reject_ipv6(skb, &f)) == 0) {
			netdev_drop(skb, &ev, (__u8)-ret);
			return bpf_redirect(skb->ifindex, 0);
		}
		return netdev_drop(skb, &ev, (__u8)-ret);
	}
	ret = nodeport_new(skb, &f, &nat);
	if (ret < 0)
		return netdev_drop(skb, &ev, (__u8)-ret);
	event_fill_flow(&ev, &f);
	return netdev_pass(skb, &ev, 1, ret);
}

/* A pod's packet to the world leaves from the node's address: the flow's
 * port on the node is claimed on its first packet. Returns 0, 1 for a new
 * flow (to report), or minus a drop reason. */
static __noinline int masquerade_out(struct __sk_buff *skb, struct flow *f)
{
	struct nat_key k, in;
	struct nat_entry out = {}, back = {};
	struct nat_entry *e;

	nat_key_of(&k, f, NAT_DIR_OUT);
	e = bpf_map_lookup_elem(&nat_flows, &k);
	if (e)
		return nat_apply(skb, f, e) < 0 ? -DROP_NAT_FAILED : 0;
	in.saddr = f->daddr;
	in.sport = f->dport;
	in.proto = f->proto;
	in.family = f->family;
	in.dir = NAT_DIR_IN;
	in.pad = 0;
	back.saddr = f->daddr;
	back.sport = f->dport;
	back.daddr = f->saddr;
	back.dport = f->sport;
	out.daddr = f->daddr;
	out.dport = f->dport;
	if (!node_addr(&in.daddr, f->family))
		return -DROP_SNAT_NO_PORT;
	out.saddr = in.daddr;
	out.sport = snat_claim(&in, &back);
	if (!out.sport)
		return -DROP_SNAT_NO_PORT;
	if (bpf_map_update_elem(&nat_flows, &k, &out, BPF_ANY) < 0)
		return -DROP_CT_CREATE_FAILED;
	return nat_apply(skb, f, &out) < 0 ? -DROP_NAT_FAILED : 1;
}

/* A local backend's reply to an external client gets its frontend back.
 * Returns 0 when translated, 1 when the packet is no such reply, or minus
 * a drop reason. */
static __noinline int netdev_reply(struct __sk_buff *skb, struct flow *f)
{
	struct nat_key k;
	struct nat_entry *e;

	nat_key_of(&k, f, NAT_DIR_REPLY);
	e = bpf_map_lookup_elem(&nat_flows, &k);
	if (!e)
		return 1;
	return nat_apply(skb, f, e) < 0 ? -DROP_NAT_FAILED : 0;
}

SEC("tcx/egress")
int to_netdev(struct __sk_buff *skb)
{
	struct flow_event ev = { .direction = DIR_EGRESS, .point = POINT_NODE_DEVICE };
	struct flow f = {};
	__be16 proto;
	int ret;

	if (load(skb, 12, &proto, sizeof(proto)) < 0)
		return TC_ACT_OK;
	ret = netdev_parse(skb, proto, &f);
	if (ret != 0 || f.frag == FRAG_LATER)
		return TC_ACT_OK; /* the kernel built it; nothing here to translate */
	event_fill_flow(&ev, &f);
	if (f.is_icmp_error) {
		ret = netdev_icmp_error(skb, &f, false);
		if (ret < 0)
			return netdev_drop(skb, &ev, (__u8)-ret);
		if (ret == 0) {
			event_fill_flow(&ev, &f);
			return netdev_pass(skb, &ev, 1, TC_ACT_OK);
		}
	}
	/* Only TCP and UDP are masqueraded: anything else a pod sends to the
	 * world would leave with the pod's address and never be answered, so
	 * it is dropped by name rather than leaked; an ICMP error that no
	 * translated flow explains likewise. */
	if (f.proto != IPPROTO_TCP && f.proto != IPPROTO_UDP) {
		if (masquerade && endpoint_is_local(&f.saddr, f.family) && !masquerade_exempt(&f.daddr, f.family))
			return netdev_drop(skb, &ev, f.is_icmp_error ? DROP_ICMP_ERROR_UNRELATED : DROP_NAT_UNSUPPORTED_PROTO);
		return TC_ACT_OK;
	}
	ret = netdev_reply(skb, &f);
	if (ret < 0)
		return netdev_drop(skb, &ev, (__u8)-ret);
	if (ret == 0)
		return TC_ACT_OK;
	if (!masquerade || !endpoint_is_local(&f.saddr, f.family) || masquerade_exempt(&f.daddr, f.family))
		return TC_ACT_OK;
	ret = masquerade_out(skb, &f);
	if (ret < 0)
		return netdev_drop(skb, &ev, (__u8)-ret);
	if (ret == 0)
		return TC_ACT_OK;
	event_fill_flow(&ev, &f);
	return netdev_pass(skb, &ev, 1, TC_ACT_OK);
}
