// SPDX-License-Identifier: GPL-2.0
/* Programs for a pod's host-side veth, attached with TCX:
 *   from_container (ingress of the host veth): traffic the pod sends, egress policy;
 *   to_container   (egress of the host veth):  traffic to the pod, ingress policy.
 * Both run the same pipeline: parse, find the local endpoint and the remote
 * identity, conntrack, policy for new flows, event and counters. */
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
const struct flow_event *unused_flow_event __attribute__((unused));
const struct policy_key *unused_policy_key __attribute__((unused));
const struct policy_entry *unused_policy_entry __attribute__((unused));

#define ETH_P_ARP_ 0x0806
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD

/* Marks a packet for the L7 proxy: the proxy port in the upper 16 bits. */
#define MARK_MAGIC_PROXY 0x0A00

static __always_inline int finish(struct __sk_buff *skb, struct flow_event *ev, __u8 verdict, __u8 reason)
{
	ev->verdict = verdict;
	ev->drop_reason = reason;
	ev->length = skb->len;
	metrics_count(reason, ev->direction, skb->len);
	event_emit(ev);
	if (verdict == VERDICT_DROPPED)
		return TC_ACT_SHOT;
	if (verdict == VERDICT_REDIRECTED)
		skb->mark = ((__u32)ev->proxy_port << 16) | MARK_MAGIC_PROXY;
	return TC_ACT_OK;
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

static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
	__u64 now = bpf_ktime_get_ns();
	struct flow_event ev = { .direction = dir, .timestamp_ns = now };
	struct flow f = {};
	struct endpoint_info *ep;
	struct ct_entry hit = {};
	struct policy_result pr;
	__u32 remote_id;
	__be16 proto;
	int ret;

	if (load(skb, 12, &proto, sizeof(proto)) < 0)
		return finish(skb, &ev, VERDICT_DROPPED, DROP_TRUNCATED);
	if (proto == bpf_htons(ETH_P_ARP_))
		return TC_ACT_OK; /* address resolution is not policed */
	if (proto == bpf_htons(ETH_P_IP_))
		ret = parse_ipv4(skb, &f);
	else if (proto == bpf_htons(ETH_P_IPV6_))
		ret = parse_ipv6(skb, &f);
	else
		return finish(skb, &ev, VERDICT_DROPPED, DROP_UNSUPPORTED_L3);
	if (ret == 0 && f.frag == FRAG_LATER)
		ret = frag_recall(&f);
	else if (ret == 0 && f.frag == FRAG_FIRST)
		frag_remember(&f);
	event_fill_flow(&ev, &f);
	if (ret < 0)
		return finish(skb, &ev, VERDICT_DROPPED, (__u8)-ret);

	if (dir == DIR_EGRESS) {
		ep = endpoint_lookup(&f.saddr, f.family);
		if (!ep)
			return finish(skb, &ev, VERDICT_DROPPED, DROP_INVALID_SOURCE);
		remote_id = ipcache_identity(&f.daddr, f.family);
		ev.src_identity = ep->identity;
		ev.dst_identity = remote_id;
	} else {
		ep = endpoint_lookup(&f.daddr, f.family);
		if (!ep)
			return finish(skb, &ev, VERDICT_DROPPED, DROP_UNROUTABLE);
		remote_id = ipcache_identity(&f.saddr, f.family);
		ev.src_identity = remote_id;
		ev.dst_identity = ep->identity;
	}
	ev.endpoint_id = ep->id;

	if (f.is_nd) {
		ev.ct_status = CT_UNTRACKED;
		return finish(skb, &ev, VERDICT_FORWARDED, DROP_NONE);
	}

	ev.ct_status = ct_lookup(&f, dir, now, &hit);
	if (ev.ct_status != CT_NEW) {
		ev.cookie = hit.cookie;
		ev.proxy_port = hit.proxy_port;
		return finish(skb, &ev, hit.proxy_port && ev.ct_status == CT_ESTABLISHED ?
				   VERDICT_REDIRECTED : VERDICT_FORWARDED, DROP_NONE);
	}

	if (endpoint_enforced(ep, dir)) {
		policy_check(ep->id, remote_id, dir, &f, &pr);
		ev.match_type = pr.match_type;
		ev.cookie = pr.cookie;
		ev.proxy_port = pr.proxy_port;
		if (pr.reason != DROP_NONE)
			return finish(skb, &ev, VERDICT_DROPPED, pr.reason);
	}
	if (!f.is_icmp_error && ct_create(&f, dir, now, remote_id, ev.cookie, ev.proxy_port) < 0)
		return finish(skb, &ev, VERDICT_DROPPED, DROP_CT_CREATE_FAILED);
	return finish(skb, &ev, ev.proxy_port ? VERDICT_REDIRECTED : VERDICT_FORWARDED, DROP_NONE);
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
