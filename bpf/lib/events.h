/* Flow events into a ring buffer the agent reads. Every drop is reported;
 * forwarded packets are aggregated as Cilium's monitor aggregation does (see
 * event_wanted), so an established connection does not cost an event per
 * packet. */
#ifndef KESTREL_EVENTS_H
#define KESTREL_EVENTS_H

#include "common.h"
#include "parse.h"

struct flow_event {
	__u64 timestamp_ns;
	struct ip_addr saddr;
	struct ip_addr daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 direction;   /* enum traffic_direction */
	__u8 verdict;     /* enum verdict */
	__u8 drop_reason; /* enum drop_reason */
	__u8 match_type;  /* enum match_type */
	__u8 ct_status;   /* enum ct_status */
	__u8 tcp_flags;
	__u32 endpoint_id;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 cookie;
	__u16 proxy_port;
	__u8 icmp_type;
	__u8 point; /* enum observation_point: which device's program saw it */
	__u32 length;
};

/* Where an event was seen: a pod's host veth (endpoint_id names the pod) or
 * the node's own device (NodePort, masquerade; endpoint_id 0). */
enum observation_point {
	POINT_POD_DEVICE = 0,
	POINT_NODE_DEVICE = 1,
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events_lost SEC(".maps");

/* Waking the reader for every event costs more than the rest of the pipeline,
 * so events are written silently and the reader is woken only once this many
 * bytes wait; it also polls on a short deadline (datapath.ReadEvent). */
const volatile __u32 events_wakeup_bytes = 32 * sizeof(struct flow_event);

/* Monitor aggregation levels (Cilium's names):
 *   none:    every packet;
 *   low:     drops, new flows, TCP flags a flow shows for the first time in a
 *            direction, and otherwise one report per flow per second;
 *   medium:  as low, one report per flow per monitor_interval_s (default);
 *   maximum: drops, new flows, and the first SYN, FIN or RST of each direction. */
enum monitor_aggregation {
	MONITOR_AGG_NONE = 0,
	MONITOR_AGG_LOW = 1,
	MONITOR_AGG_MEDIUM = 2,
	MONITOR_AGG_MAXIMUM = 3,
};

const volatile __u8 monitor_aggregation_level = MONITOR_AGG_MEDIUM;
const volatile __u32 monitor_interval_s = 5;

/* Whether a forwarded packet of a tracked flow is reported. last_report is
 * the flow's last report time, advanced when this returns true. */
static __always_inline bool event_wanted(__u8 fresh_tcp_flags, __u64 *last_report, __u64 now)
{
	__u64 interval;

	if (monitor_aggregation_level == MONITOR_AGG_NONE)
		return true;
	if (monitor_aggregation_level == MONITOR_AGG_MAXIMUM)
		return fresh_tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST);
	if (fresh_tcp_flags) {
		*last_report = now;
		return true;
	}
	interval = monitor_aggregation_level == MONITOR_AGG_LOW ? NSEC_PER_SEC :
							   (__u64)monitor_interval_s * NSEC_PER_SEC;
	if (now - *last_report < interval)
		return false;
	*last_report = now;
	return true;
}

static __always_inline void event_lost(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&events_lost, &zero);

	if (lost)
		(*lost)++;
}

/* Forwarded packets give way to drops: once the ring is half full only drops
 * are written, so a flood of traffic the agent would merely count cannot
 * crowd out the drops it must see. What is not written is counted as lost. */
static __always_inline void event_emit(const struct flow_event *ev)
{
	__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 flags = pending >= events_wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;

	if (ev->verdict != VERDICT_DROPPED && pending > bpf_ringbuf_query(&events, BPF_RB_RING_SIZE) / 2) {
		event_lost();
		return;
	}
	if (bpf_ringbuf_output(&events, (void *)ev, sizeof(*ev), flags) < 0)
		event_lost();
}

#endif
