/* Per-CPU packet and byte counters by (drop reason, direction): slot
 * reason * 2 + direction of a per-CPU array, so counting never allocates and
 * never races. Reason 0 (DROP_NONE) counts forwarded packets. */
#ifndef KESTREL_METRICS_H
#define KESTREL_METRICS_H

#include "common.h"

#define METRICS_SLOTS 512

struct metrics_value {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct metrics_value);
	__uint(max_entries, METRICS_SLOTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} metrics SEC(".maps");

static __always_inline void metrics_count(__u8 reason, __u8 dir, __u32 bytes)
{
	__u32 slot = (__u32)reason * 2 + (dir & 1);
	struct metrics_value *v = bpf_map_lookup_elem(&metrics, &slot);

	if (v) {
		v->packets++;
		v->bytes += bytes;
	}
}

#endif
