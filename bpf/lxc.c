// SPDX-License-Identifier: GPL-2.0
/* Programs for a pod's host-side veth, attached with TCX:
 *   from_container (ingress of the host veth): traffic the pod sends, egress policy;
 *   to_container   (egress of the host veth):  traffic to the pod, ingress policy.
 * Both run the same pipeline: find the endpoint that owns the device, parse,
 * check that the packet's pod-side address (and, from the pod, its MAC) is
 * that endpoint's, conntrack, then policy for every packet that is not a reply
 * or related, unless the flow's stamped verdict is still current. */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/ipcache.h"
#include "lib/endpoint.h"
#include "lib/policy.h"
#include "lib/proxy.h"
#include "lib/conntrack.h"
#include "lib/lb.h"
#include "lib/nat.h"
#include "lib/snat.h"
#include "lib/fragments.h"
#include "lib/events.h"
#include "lib/metrics.h"

char __license[] SEC("license") = "GPL";

/* Force BTF for enums that fields store as __u8, so bpf2go can hand them to Go. */
const enum drop_reason *unused_drop_reason __attribute__((unused));
const enum verdict *unused_verdict __attribute__((unused));
const enum match_type *unused_match_type __attribute__((unused));
const enum ct_status *unused_ct_status __attribute__((unused));
const enum traffic_direction *unused_direction __attribute__((unused));
const enum policy_action *unused_policy_action __attribute__((unused));
const enum policy_prefix *unused_policy_prefix __attribute__((unused));
const enum endpoint_flags *unused_endpoint_flags __attribute__((unused));
const enum monitor_aggregation *unused_monitor_aggregation __attribute__((unused));
const struct flow_event *unused_flow_event __attribute__((unused));
const struct policy_key *unused_policy_key __attribute__((unused));
const struct policy_entry *unused_policy_entry __attribute__((unused));
const enum lb_flags *unused_lb_flags __attribute__((unused));
const struct lb_key *unused_lb_key __attribute__((unused));
const struct lb_service *unused_lb_service __attribute__((unused));
const struct lb_backend_key *unused_lb_backend_key __attribute__((unused));
const struct lb_addr *unused_lb_addr __attribute__((unused));
const struct lb_flow_key *unused_lb_flow_key __attribute__((unused));
const struct lb_flow *unused_lb_flow __attribute__((unused));
const struct lb_affinity_key *unused_lb_affinity_key __attribute__((unused));
const struct lb_affinity_entry *unused_lb_affinity_entry __attribute__((unused));
const enum lb_scope *unused_lb_scope __attribute__((unused));
const struct lb_source_range_key *unused_lb_source_range_key __attribute__((unused));
const enum observation_point *unused_observation_point __attribute__((unused));
const struct endpoint_addr_key *unused_endpoint_addr_key __attribute__((unused));
const struct nat_key *unused_nat_key __attribute__((unused));
const struct nat_entry *unused_nat_entry __attribute__((unused));
const enum nat_dir *unused_nat_dir __attribute__((unused));
const enum nat_flags *unused_nat_flags __attribute__((unused));
const enum proxy_mark *unused_proxy_mark __attribute__((unused));

#define ETH_P_ARP_ 0x0806
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD

/* The one exit: counts, reports (every drop; forwarded packets when emit
 * says so) and turns the verdict into a TC action. A BPF-to-BPF call, not
 * inlined at each return. */
static __noinline int finish(struct __sk_buff *skb, struct flow_event *ev, int emit)
{
	ev->length = skb->len;
	metrics_count(ev->drop_reason, ev->direction, skb->len);
	if (emit || ev->verdict == VERDICT_DROPPED) {
		ev->timestamp_ns = bpf_ktime_get_ns();
		event_emit(ev);
	}
	return ev->verdict == VERDICT_DROPPED ? TC_ACT_SHOT : TC_ACT_OK;
}

static __always_inline int drop(struct __sk_buff *skb, struct flow_event *ev, __u8 reason)
{
	ev->verdict = VERDICT_DROPPED;
	ev->drop_reason = reason;
	return finish(skb, ev, 1);
}

static __always_inline int pass(struct __sk_buff *skb, struct flow_event *ev, bool emit)
{
	ev->verdict = VERDICT_FORWARDED;
	ev->drop_reason = DROP_NONE;
	return finish(skb, ev, emit);
}

/* A packet to a service that has nothing to serve it, answered in place with
 * ICMP port unreachable (kube-proxy's REJECT) and sent straight back into the
 * pod (bpf_redirect_peer: the answer is the datapath's own, so the pod's
 * ingress program does not judge it). Reported as the drop of the packet it
 * answers. Only TCP and UDP are answered; anything else, or a packet the
 * answer cannot be built from, is dropped. */
static __always_inline int reject(struct __sk_buff *skb, struct flow_event *ev, const struct flow *f, __u8 reason)
{
	int ret;

	if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP)
		return drop(skb, ev, reason);
	ret = f->family == 4 ? reject_ipv4(skb, f) : reject_ipv6(skb, f);
	if (ret < 0)
		return drop(skb, ev, reason);
	ev->verdict = VERDICT_DROPPED;
	ev->drop_reason = reason;
	finish(skb, ev, 1);
	return bpf_redirect_peer(skb->ifindex, 0);
}

/* What a forwarded packet still needs once its verdict is known. */
enum lb_turn {
	LB_TURN_NONE = 0,
	LB_TURN_HAIRPIN = 1,       /* a pod's packet to itself through a service */
	LB_TURN_HAIRPIN_REPLY = 2, /* the pod's answer to such a packet */
};

static __always_inline __u32 lb_turn_of(__u32 lb)
{
	return (lb & LB_HAIRPIN) ? LB_TURN_HAIRPIN : LB_TURN_NONE;
}

/* A hairpin's source becomes the hairpin address and the packet turns back
 * to the pod's own device (egress, so the pod's ingress policy judges it); a
 * hairpin reply's destination becomes the pod's own address again, turned
 * back the same way; a reply from a service's backend takes the frontend as
 * its source. Returns the TC action or a negative drop reason. */
/* A frame turned back to the pod it came from must be addressed to the pod:
 * the MACs swap (the pod sent it to the node's side of the veth). */
static __always_inline int turn_back(struct __sk_buff *skb)
{
	__u8 mac[12], swapped[12];

	if (load(skb, 0, mac, sizeof(mac)) < 0)
		return -DROP_NAT_FAILED;
	__builtin_memcpy(swapped, mac + 6, 6);
	__builtin_memcpy(swapped + 6, mac, 6);
	if (bpf_skb_store_bytes(skb, 0, swapped, sizeof(swapped), 0) < 0)
		return -DROP_NAT_FAILED;
	return bpf_redirect(skb->ifindex, 0);
}

static __noinline int lb_finish(struct __sk_buff *skb, const struct flow *f, const struct endpoint_info *ep,
				__u32 rev_nat_id, __u32 turn)
{
	struct ip_addr a = {};
	struct lb_addr *fe;

	if (turn == LB_TURN_HAIRPIN) {
		lb_hairpin_addr(&a, f->family);
		if (nat_rewrite(skb, f, NAT_SRC, &a, f->sport) < 0)
			return -DROP_NAT_FAILED;
		return turn_back(skb);
	}
	if (turn == LB_TURN_HAIRPIN_REPLY) {
		if (f->family == 4) {
			a.addr[0] = ep->ipv4;
		} else {
			a.addr[0] = ep->ipv6[0];
			a.addr[1] = ep->ipv6[1];
			a.addr[2] = ep->ipv6[2];
			a.addr[3] = ep->ipv6[3];
		}
		if (nat_rewrite(skb, f, NAT_DST, &a, f->dport) < 0)
			return -DROP_NAT_FAILED;
		return turn_back(skb);
	}
	if (!rev_nat_id)
		return TC_ACT_OK;
	fe = bpf_map_lookup_elem(&lb_revnat, &rev_nat_id);
	if (!fe || nat_rewrite(skb, f, NAT_SRC, &fe->addr, fe->port) < 0)
		return -DROP_NAT_FAILED;
	return TC_ACT_OK;
}

/* pass, after the translations lb_finish does. */
static __always_inline int pass_nat(struct __sk_buff *skb, struct flow_event *ev, bool emit, const struct flow *f,
				    const struct endpoint_info *ep, __u32 rev_nat_id, __u32 turn)
{
	int ret = TC_ACT_OK;

	if (turn != LB_TURN_NONE || rev_nat_id)
		ret = lb_finish(skb, f, ep, rev_nat_id, turn);
	if (ret < 0)
		return drop(skb, ev, (__u8)-ret);
	pass(skb, ev, emit);
	return ret;
}

/* An ICMP error about a tracked flow passes; one entering a client about
 * a flow it sent to a service is translated back to the frontend first. */
static __always_inline int pass_related(struct __sk_buff *skb, struct flow_event *ev, const struct flow *f,
					__u32 rev_nat_id)
{
	struct lb_addr *fe = rev_nat_id ? bpf_map_lookup_elem(&lb_revnat, &rev_nat_id) : NULL;

	if (rev_nat_id && (!fe || nat_icmp_error_revnat(skb, f, &fe->addr, fe->port) < 0))
		return drop(skb, ev, DROP_NAT_FAILED);
	return pass(skb, ev, 1);
}

/* Hands a packet to the node's proxy: reported as REDIRECTED to port, the
 * socket found for sock_port (0: the connection's own socket only). */
static __always_inline int to_proxy(struct __sk_buff *skb, struct flow_event *ev, const struct flow *f, __u16 port,
			       __u16 sock_port, __u8 dir, bool emit)
{
	int ret;

	ev->proxy_port = port;
	ret = dir == DIR_EGRESS ? proxy_assign(skb, f, sock_port) : proxy_hairpin(skb, sock_port);
	if (ret < 0)
		return drop(skb, ev, (__u8)-ret);
	ev->verdict = VERDICT_REDIRECTED;
	ev->drop_reason = DROP_NONE;
	finish(skb, ev, emit);
	return ret;
}

/* A flow whose policy entry names a proxy port goes to the node's proxy
 * (lib/proxy.h), reported as REDIRECTED; with no proxy socket to take it, it
 * is dropped (PROXY_UNAVAILABLE), never passed unfiltered. */
static __always_inline int redirect_to_proxy(struct __sk_buff *skb, struct flow_event *ev, const struct flow *f,
					     __u16 port, __u8 dir, bool emit)
{
	return to_proxy(skb, ev, f, port, port, dir, emit);
}

/* A reply for the proxy's upstream connection on a redirected flow (the
 * flow's own tuple: lib/proxy.h) goes to that connection's socket, never to
 * the client. */
static __always_inline int reply_to_proxy(struct __sk_buff *skb, struct flow_event *ev, const struct flow *f,
					  __u16 port, __u8 dir, bool emit)
{
	return to_proxy(skb, ev, f, port, 0, dir, emit);
}

/* Whether a reply on a flow redirected to a proxy is the upstream's: from the
 * pod a redirected ingress flow went to (the proxy took the client's packets,
 * so the pod only ever spoke to the proxy's upstream), or towards the client of
 * a redirected egress flow from anywhere but the node's own stack (where the
 * proxy answers its client from the accepted socket). */
static __always_inline bool reply_for_upstream(const struct __sk_buff *skb, __u8 dir)
{
	return dir == DIR_EGRESS || skb->ingress_ifindex != 0;
}

static __always_inline void event_fill_flow(struct flow_event *ev, const struct flow *f)
{
	ev->saddr = f->saddr;
	ev->daddr = f->daddr;
	ev->proto = f->proto;
	ev->family = f->family;
	ev->tcp_flags = f->tcp_flags;
	ev->icmp_type = f->icmp_type;
	if (f->proto == IPPROTO_ICMP || f->proto == IPPROTO_ICMPV6_) {
		ev->sport = 0;
		ev->dport = f->icmp_type;
	} else {
		ev->sport = f->sport;
		ev->dport = f->dport;
	}
}

/* ARP body for Ethernet and IPv4, the only kind a pod has reason to send. */
struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};

/* ARP from a pod must speak for the pod itself: sender MAC and IP its own
 * (a probe from 0.0.0.0 claims nothing), so it cannot poison the node's
 * neighbour entries for another address. */
static __noinline int arp_from_pod(struct __sk_buff *skb, struct flow_event *ev,
					const struct endpoint_info *ep)
{
	struct arp_ipv4 a;
	__be32 spa, tpa;

	ev->ct_status = CT_UNTRACKED;
	if (load(skb, ETH_HLEN, &a, sizeof(a)) < 0)
		return drop(skb, ev, DROP_TRUNCATED);
	if (a.htype != bpf_htons(1) || a.ptype != bpf_htons(ETH_P_IP_) || a.hlen != 6 || a.plen != 4)
		return drop(skb, ev, DROP_INVALID_ARP);
	__builtin_memcpy(&spa, a.spa, 4);
	__builtin_memcpy(&tpa, a.tpa, 4);
	ev->family = 4;
	ev->saddr.addr[0] = spa;
	ev->daddr.addr[0] = tpa;
	if (!endpoint_has_mac(ep, a.sha))
		return drop(skb, ev, DROP_INVALID_SOURCE_MAC);
	if (spa == 0)
		return a.oper == bpf_htons(1) ? pass(skb, ev, monitor_aggregation_level == MONITOR_AGG_NONE) :
						drop(skb, ev, DROP_INVALID_ARP);
	if (spa != ep->ipv4)
		return drop(skb, ev, DROP_INVALID_SOURCE);
	return pass(skb, ev, monitor_aggregation_level == MONITOR_AGG_NONE);
}

static __always_inline bool ipv6_link_local_or_unspecified(const struct ip_addr *a)
{
	if ((a->addr[0] & bpf_htonl(0xffc00000)) == bpf_htonl(0xfe800000))
		return true;
	return !(a->addr[0] | a->addr[1] | a->addr[2] | a->addr[3]);
}

static __always_inline bool ipv6_link_local_or_multicast(const struct ip_addr *a)
{
	return (a->addr[0] & bpf_htonl(0xffc00000)) == bpf_htonl(0xfe800000) ||
	       (a->addr[0] & bpf_htonl(0xff000000)) == bpf_htonl(0xff000000);
}

/* Neighbour discovery and MLD keep a pod's IPv6 working and are not policed,
 * but only when they cannot have crossed a router: ND must arrive with hop
 * limit 255 and MLD with hop limit 1 from a link-local source, so the other
 * end is the node itself. From the pod, the source must also be link-local,
 * unspecified (duplicate address detection) or the pod's own address. */
static __always_inline bool nd_on_link(const struct flow *f, const struct endpoint_info *ep, __u8 dir)
{
	if (f->icmp_type >= 133 && f->icmp_type <= 137) {
		if (f->hop_limit != 255)
			return false;
	} else if (f->hop_limit != 1 || !ipv6_link_local_or_unspecified(&f->saddr)) {
		return false;
	}
	if (dir == DIR_INGRESS)
		return true;
	/* From the pod it must also stay on the link: to a link-local or
	 * multicast address. ND to anything else (the host forwards it) is
	 * policed like any packet, so it cannot carry data past egress policy. */
	if (!ipv6_link_local_or_multicast(&f->daddr))
		return false;
	return ipv6_link_local_or_unspecified(&f->saddr) || endpoint_has_ip(ep, &f->saddr, 6);
}

/* Parses an IP packet into f, fragments included; a negative drop reason
 * when it cannot be judged. Its own call frame keeps the headers it reads
 * off the pipeline's stack. */
static __noinline int parse_packet(struct __sk_buff *skb, __be16 proto, struct flow *f)
{
	int ret;

	if (proto == bpf_htons(ETH_P_IP_))
		ret = parse_ipv4(skb, f);
	else if (proto == bpf_htons(ETH_P_IPV6_))
		ret = parse_ipv6(skb, f);
	else
		return -DROP_UNSUPPORTED_L3;
	if (ret == 0 && f->frag == FRAG_LATER)
		ret = frag_recall(f);
	else if (ret == 0 && f->frag == FRAG_FIRST)
		frag_remember(f);
	return ret;
}

static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
	/* Lifetimes are seconds and report intervals at least one: the coarse
	 * clock (a tick's resolution) is enough and far cheaper; events get
	 * the precise time. */
	__u64 now = bpf_ktime_get_coarse_ns();
	struct flow_event ev = { .direction = dir };
	struct flow f = {};
	struct endpoint_info *ep;
	struct ct_result ct;
	__be16 proto;
	/* What service translation did: lb_translate's result (the service
	 * id, and LB_HAIRPIN), 0 for a packet to no service. Scalars, not
	 * structs: this frame and the deepest call under it share 512 bytes. */
	__u32 remote_id, lb = 0;
	int ret;

	{
		__u8 smac[8]; /* source MAC, then the ethertype */

		if (load(skb, ETH_ALEN, smac, sizeof(smac)) < 0)
			return drop(skb, &ev, DROP_TRUNCATED);
		ep = endpoint_of_device(skb->ifindex);
		if (!ep)
			return drop(skb, &ev, dir == DIR_EGRESS ? DROP_INVALID_SOURCE : DROP_UNROUTABLE);
		ev.endpoint_id = ep->id;
		/* A frame turned back for the proxy carries the MAC it was sent
		 * to; the mark proves it is the datapath's own (lib/proxy.h). */
		if (dir == DIR_EGRESS && !endpoint_has_mac(ep, smac) &&
		    proxy_mark_magic(skb->mark) != MARK_MAGIC_TO_PROXY)
			return drop(skb, &ev, DROP_INVALID_SOURCE_MAC);
		__builtin_memcpy(&proto, smac + 6, sizeof(proto));
	}
	if (proto == bpf_htons(ETH_P_ARP_)) {
		if (dir == DIR_EGRESS)
			return arp_from_pod(skb, &ev, ep);
		ev.ct_status = CT_UNTRACKED;
		return pass(skb, &ev, monitor_aggregation_level == MONITOR_AGG_NONE);
	}
	ret = parse_packet(skb, proto, &f);
	event_fill_flow(&ev, &f);
	if (ret < 0)
		return drop(skb, &ev, (__u8)-ret);

	/* A frame to_container turned back for the proxy (lib/proxy.h): it
	 * was judged and reported there; only the socket is left to find. */
	if (dir == DIR_EGRESS && proxy_mark_magic(skb->mark) == MARK_MAGIC_TO_PROXY) {
		ret = proxy_assign(skb, &f, skb->mark >> 16);
		if (ret < 0) {
			ev.direction = DIR_INGRESS;
			ev.proxy_port = skb->mark >> 16;
			return drop(skb, &ev, (__u8)-ret);
		}
		return TC_ACT_OK;
	}
	if (f.is_nd && nd_on_link(&f, ep, dir)) {
		ev.ct_status = CT_UNTRACKED;
		return pass(skb, &ev, monitor_aggregation_level == MONITOR_AGG_NONE);
	}
	if (dir == DIR_EGRESS) {
		if (!endpoint_has_ip(ep, &f.saddr, f.family))
			return drop(skb, &ev, DROP_INVALID_SOURCE);
		ev.src_identity = ep->identity;
		/* Service translation comes first: conntrack and policy see
		 * the backend the packet goes to, not the frontend. */
		ret = lb_translate(skb, &f, now);
		if (ret < 0)
			return (-ret & LB_REJECT) ? reject(skb, &ev, &f, (__u8)-ret) : drop(skb, &ev, (__u8)-ret);
		if (ret > 0) {
			lb = ret;
			event_fill_flow(&ev, &f);
		}
	} else {
		if (!endpoint_has_ip(ep, &f.daddr, f.family))
			return drop(skb, &ev, DROP_UNROUTABLE);
		ev.dst_identity = ep->identity;
	}

	ct_lookup(&f, dir, now, &ct);
	ev.ct_status = ct.status;
	/* A tuple reused by a new connection through another service (or
	 * none: socket LB, or a direct connect) takes that one's reverse NAT,
	 * or its replies would get the old frontend, or none. */
	if (dir == DIR_EGRESS && ct.status == CT_ESTABLISHED && ct.entry->rev_nat_id != (lb & ~LB_HAIRPIN))
		ct.entry->rev_nat_id = lb & ~LB_HAIRPIN;
	if (ct.status == CT_RELATED)
		return pass_related(skb, &ev, &f, dir == DIR_INGRESS ? ct.entry->rev_nat_id : 0);
	/* An error about no flow of the pod's is forged or stale: as
	 * conntrack's INVALID, which kube-proxy drops. */
	if (f.is_icmp_error)
		return drop(skb, &ev, DROP_ICMP_ERROR_UNRELATED);
	if (ct.entry) {
		remote_id = ct.entry->remote_identity;
		if (dir == DIR_EGRESS)
			ev.dst_identity = remote_id;
		else
			ev.src_identity = remote_id;
		ev.cookie = ct.entry->cookie;
		ev.match_type = ct.entry->match_type;
		/* Replies ride on the verdict of the flow they answer; an
		 * established packet keeps its verdict while the revision holds.
		 * A reply from a service backend gets its frontend back when it
		 * enters the client; a pod's reply to its own hairpin turns
		 * back to it. */
		if (ct.status == CT_REPLY && ct.entry->proxy_port && reply_for_upstream(skb, dir))
			return reply_to_proxy(skb, &ev, &f, ct.entry->proxy_port, dir,
					      event_wanted(ct.fresh_flags, &ct.entry->last_report_ns, now));
		if (ct.status == CT_REPLY)
			return pass_nat(skb, &ev, event_wanted(ct.fresh_flags, &ct.entry->last_report_ns, now), &f, ep,
					dir == DIR_INGRESS ? ct.entry->rev_nat_id : 0,
					dir == DIR_EGRESS && lb_is_hairpin_addr(&f.daddr, f.family) ?
						LB_TURN_HAIRPIN_REPLY : LB_TURN_NONE);
		/* An ingress proxy's upstream on the flow it took (the client's
		 * tuple): judged when the proxy took it, never sent back to it. */
		if (dir == DIR_INGRESS && ct.entry->proxy_port &&
		    proxy_mark_magic(skb->mark) == MARK_MAGIC_PROXY_INGRESS)
			return pass(skb, &ev, event_wanted(ct.fresh_flags, &ct.entry->last_report_ns, now));
		if (ct.entry->policy_revision == ep->policy_revision) {
			if (ct.entry->proxy_port)
				return redirect_to_proxy(skb, &ev, &f, ct.entry->proxy_port, dir,
							 event_wanted(ct.fresh_flags, &ct.entry->last_report_ns, now));
			return pass_nat(skb, &ev, event_wanted(ct.fresh_flags, &ct.entry->last_report_ns, now), &f, ep,
					0, lb_turn_of(lb));
		}
	}

	/* A hairpin comes from the hairpin address, turned back by this
	 * device's own program: the pod is its own peer. The device test keeps
	 * anyone else from claiming that address. */
	if (dir == DIR_INGRESS && skb->ingress_ifindex == skb->ifindex && lb_is_hairpin_addr(&f.saddr, f.family))
		remote_id = ep->identity;
	else if (dir == DIR_INGRESS && proxy_mark_magic(skb->mark) == MARK_MAGIC_PROXY_EGRESS)
		remote_id = skb->mark >> 16; /* an egress proxy's upstream: the client it speaks for */
	else
		remote_id = ipcache_identity(dir == DIR_EGRESS ? &f.daddr : &f.saddr, f.family);
	if (dir == DIR_EGRESS)
		ev.dst_identity = remote_id;
	else
		ev.src_identity = remote_id;
	struct ct_verdict v = { .rev_nat_id = lb & ~LB_HAIRPIN };
	v.remote_identity = remote_id;
	v.policy_revision = ep->policy_revision;
	ev.cookie = 0;
	ev.match_type = MATCH_NONE;
	/* An ingress proxy's upstream was judged before the proxy took it;
	 * judging it again would send it back to the proxy. */
	if (endpoint_enforced(ep, dir) &&
	    !(dir == DIR_INGRESS && proxy_mark_magic(skb->mark) == MARK_MAGIC_PROXY_INGRESS)) {
		struct policy_result pr;

		policy_check(ep->id, remote_id, dir, &f, &pr);
		ev.match_type = v.match_type = pr.match_type;
		ev.cookie = v.cookie = pr.cookie;
		if (pr.reason != DROP_NONE)
			return drop(skb, &ev, pr.reason);
		v.proxy_port = pr.proxy_port;
	}
	if (ct.entry) {
		ct_restamp(ct.entry, &v);
		ct.entry->last_report_ns = now;
		if (v.proxy_port)
			return redirect_to_proxy(skb, &ev, &f, v.proxy_port, dir, 1);
		return pass_nat(skb, &ev, 1, &f, ep, 0, lb_turn_of(lb));
	}
	if (!f.is_icmp_error && ct_create(&f, dir, now, &v) < 0)
		return drop(skb, &ev, DROP_CT_CREATE_FAILED);
	if (v.proxy_port)
		return redirect_to_proxy(skb, &ev, &f, v.proxy_port, dir, 1);
	return pass_nat(skb, &ev, 1, &f, ep, 0, lb_turn_of(lb));
}

SEC("tcx/ingress")
int from_container(struct __sk_buff *skb)
{
	return handle(skb, DIR_EGRESS);
}

SEC("tcx/egress")
int to_container(struct __sk_buff *skb)
{
	return handle(skb, DIR_INGRESS);
}

/* The node device's programs: same object, same maps. */
#include "host.c"
