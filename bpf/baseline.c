// SPDX-License-Identifier: GPL-2.0
/* The smallest TC program: passes every packet. Benchmarks subtract its cost
 * (BPF_PROG_TEST_RUN setup, skb allocation) from the pipeline's. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "GPL";

SEC("tcx/ingress")
int pass(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}
