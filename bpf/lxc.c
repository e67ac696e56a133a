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
#include "lib/conntrack.h"
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
	struct ct_verdict v = {};
	struct policy_result pr;
	__u8 smac[8]; /* source MAC, then the ethertype */
	__be16 proto;
	__u32 remote_id;
	int ret;

	if (load(skb, ETH_ALEN, smac, sizeof(smac)) < 0)
		return drop(skb, &ev, DROP_TRUNCATED);
	ep = endpoint_of_device(skb->ifindex);
	if (!ep)
		return drop(skb, &ev, dir == DIR_EGRESS ? DROP_INVALID_SOURCE : DROP_UNROUTABLE);
	ev.endpoint_id = ep->id;
	if (dir == DIR_EGRESS && !endpoint_has_mac(ep, smac))
		return drop(skb, &ev, DROP_INVALID_SOURCE_MAC);

	__builtin_memcpy(&proto, smac + 6, sizeof(proto));
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

	if (f.is_nd && nd_on_link(&f, ep, dir)) {
		ev.ct_status = CT_UNTRACKED;
		return pass(skb, &ev, monitor_aggregation_level == MONITOR_AGG_NONE);
	}
	if (dir == DIR_EGRESS) {
		if (!endpoint_has_ip(ep, &f.saddr, f.family))
			return drop(skb, &ev, DROP_INVALID_SOURCE);
		ev.src_identity = ep->identity;
	} else {
		if (!endpoint_has_ip(ep, &f.daddr, f.family))
			return drop(skb, &ev, DROP_UNROUTABLE);
		ev.dst_identity = ep->identity;
	}

	ct_lookup(&f, dir, now, &ct);
	ev.ct_status = ct.status;
	if (ct.status == CT_RELATED)
		return pass(skb, &ev, 1);
	if (ct.entry) {
		remote_id = ct.entry->remote_identity;
		if (dir == DIR_EGRESS)
			ev.dst_identity = remote_id;
		else
			ev.src_identity = remote_id;
		ev.cookie = ct.entry->cookie;
		ev.match_type = ct.entry->match_type;
		/* Replies ride on the verdict of the flow they answer; an
		 * established packet keeps its verdict while the revision holds. */
		if (ct.status == CT_REPLY || ct.entry->policy_revision == ep->policy_revision)
			return pass(skb, &ev, event_wanted(ct.fresh_flags, &ct.entry->last_report_ns, now));
	}

	remote_id = ipcache_identity(dir == DIR_EGRESS ? &f.daddr : &f.saddr, f.family);
	if (dir == DIR_EGRESS)
		ev.dst_identity = remote_id;
	else
		ev.src_identity = remote_id;
	v.remote_identity = remote_id;
	v.policy_revision = ep->policy_revision;
	ev.cookie = 0;
	ev.match_type = MATCH_NONE;
	if (endpoint_enforced(ep, dir)) {
		policy_check(ep->id, remote_id, dir, &f, &pr);
		ev.match_type = v.match_type = pr.match_type;
		ev.cookie = v.cookie = pr.cookie;
		if (pr.reason != DROP_NONE)
			return drop(skb, &ev, pr.reason);
		/* L7 rules need a proxy, and this datapath has none to steer to:
		 * fail closed rather than pass the port unfiltered. */
		if (pr.proxy_port) {
			ev.proxy_port = pr.proxy_port;
			return drop(skb, &ev, DROP_PROXY_UNAVAILABLE);
		}
	}
	if (ct.entry) {
		ct_restamp(ct.entry, &v);
		ct.entry->last_report_ns = now;
		return pass(skb, &ev, 1);
	}
	if (!f.is_icmp_error && ct_create(&f, dir, now, &v) < 0)
		return drop(skb, &ev, DROP_CT_CREATE_FAILED);
	return pass(skb, &ev, 1);
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
