// SPDX-License-Identifier: GPL-2.0
/* Benchmark entry points, never attached to a device. BPF_PROG_TEST_RUN runs
 * one program on one skb many times and times the loop in the kernel, but it
 * reuses that skb, so a plain run measures one flow hitting one hot key. Each
 * program here first rewrites the frame's remote IPv4 address and one port
 * from a per-CPU cursor and advances the cursor, so every repeat is another
 * flow: other ipcache, conntrack and policy keys, as on a busy node.
 *
 * The pipeline is lxc.c's own: this file includes it (as Cilium's bpf/tests
 * include the entry file) and calls handle(skb, dir). The reference program
 * does only what an established packet needs at least (find the endpoint, hit
 * its conntrack entry, update it in place) with lxc.c's maps and helpers; the
 * empty program does only the rewrite. Go subtracts the empty program's cost
 * from the others (datapath/bench.go, datapath/bench_test.go).
 *
 * Frames are Ethernet + IPv4 without options + TCP/UDP. Checksums are left
 * stale: nothing in the pipeline checks them. */
#include "lxc.c"

/* Where the cursor puts the varied port: the source port for the pipeline's
 * own packets, the destination port for the replies that establish flows. */
#define BENCH_PORT_SRC 0
#define BENCH_PORT_DST 2

/* Set by datapath.LoadBench before load. Remote addresses cycle through
 * [remote_first, remote_first + remote_count); each time they wrap, the port
 * goes up by one. After `flows` packets the cursor returns to flow 0
 * (remote_first, port_first): established runs cycle over flows set up in
 * advance. 0 = never return: every packet of a new-flow run is a new tuple. */
const volatile __u32 bench_remote_first = 0; /* host byte order */
const volatile __u32 bench_remote_count = 1;
const volatile __u32 bench_port_first = 1024;
const volatile __u32 bench_flows = 0;

/* The cursor, one per CPU; Go seeds it before each run (datapath.Bench.Seed). */
struct bench_state {
	__u32 flow;   /* index of the next flow, counted from flow 0 */
	__u32 remote; /* offset of its remote address from bench_remote_first */
	__u32 port;   /* its varied port */
	__u32 misses; /* reference packets that found no endpoint or no entry */
	__u64 packets; /* packets rewritten: what Go checks the counters against */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_state);
} bench_cursor SEC(".maps");

/* Rewrites the frame to the cursor's flow and advances the cursor. The remote
 * address is the destination of a packet the pod sends (DIR_EGRESS) and the
 * source of one it receives. */
static __always_inline struct bench_state *bench_vary(struct __sk_buff *skb, __u8 dir, __u32 port_at)
{
	__u32 zero = 0;
	struct bench_state *s = bpf_map_lookup_elem(&bench_cursor, &zero);
	__u32 addr_at = dir == DIR_EGRESS ? __builtin_offsetof(struct iphdr, daddr) :
					    __builtin_offsetof(struct iphdr, saddr);
	__be32 addr;
	__be16 port;

	if (!s)
		return NULL;
	addr = bpf_htonl(bench_remote_first + s->remote);
	port = bpf_htons((__u16)s->port);
	if (bpf_skb_store_bytes(skb, ETH_HLEN + addr_at, &addr, sizeof(addr), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(struct iphdr) + port_at, &port, sizeof(port), 0) < 0)
		return NULL;
	s->packets++;
	s->flow++;
	if (bench_flows && s->flow >= bench_flows) {
		s->flow = 0;
		s->remote = 0;
		s->port = bench_port_first;
	} else if (++s->remote >= bench_remote_count) {
		s->remote = 0;
		s->port++;
	}
	return s;
}

/* An established packet's least work: its endpoint, then a hit on its own
 * conntrack entry, updated in place. Reads the packet directly. */
static __always_inline int bench_reference(struct __sk_buff *skb, __u8 dir)
{
	struct bench_state *s = bench_vary(skb, dir, BENCH_PORT_SRC);
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;
	__be16 *ports;
	struct ct_key k;
	struct ip_addr local = {};
	struct endpoint_info *ep;
	struct ct_entry *e;

	if (!s)
		return TC_ACT_SHOT;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip = data + ETH_HLEN;
	ports = data + ETH_HLEN + sizeof(*ip);
	if ((void *)(ports + 2) > data_end || eth->h_proto != bpf_htons(ETH_P_IP_) || ip->ihl != 5)
		goto miss;
	local.addr[0] = dir == DIR_EGRESS ? ip->saddr : ip->daddr;
	ep = endpoint_lookup(&local, 4);
	if (!ep)
		goto miss;
	__builtin_memset(&k, 0, sizeof(k));
	k.saddr.addr[0] = ip->saddr;
	k.daddr.addr[0] = ip->daddr;
	k.sport = bpf_ntohs(ports[0]);
	k.dport = bpf_ntohs(ports[1]);
	k.proto = ip->protocol;
	k.direction = dir;
	k.family = 4;
	e = bpf_map_lookup_elem(&conntrack, &k);
	if (!e)
		goto miss;
	e->packets_fwd++;
	e->expires_ns = bpf_ktime_get_ns() + (__u64)ct_lifetime_tcp * NSEC_PER_SEC;
	return TC_ACT_OK;
miss:
	s->misses++;
	return TC_ACT_SHOT;
}

/* The pipeline on the packet as the cursor rewrote it. */
SEC("tcx/ingress")
int bench_pipeline_egress(struct __sk_buff *skb)
{
	return bench_vary(skb, DIR_EGRESS, BENCH_PORT_SRC) ? handle(skb, DIR_EGRESS) : TC_ACT_SHOT;
}

SEC("tcx/egress")
int bench_pipeline_ingress(struct __sk_buff *skb)
{
	return bench_vary(skb, DIR_INGRESS, BENCH_PORT_SRC) ? handle(skb, DIR_INGRESS) : TC_ACT_SHOT;
}

/* The pipeline on replies (the cursor's port is their destination): the
 * SYN-ACKs that establish the flows the other hook opened. Not timed. */
SEC("tcx/ingress")
int bench_reply_egress(struct __sk_buff *skb)
{
	return bench_vary(skb, DIR_EGRESS, BENCH_PORT_DST) ? handle(skb, DIR_EGRESS) : TC_ACT_SHOT;
}

SEC("tcx/egress")
int bench_reply_ingress(struct __sk_buff *skb)
{
	return bench_vary(skb, DIR_INGRESS, BENCH_PORT_DST) ? handle(skb, DIR_INGRESS) : TC_ACT_SHOT;
}

/* Only the rewrite: what the others' cost is measured over. */
SEC("tcx/ingress")
int bench_empty_egress(struct __sk_buff *skb)
{
	return bench_vary(skb, DIR_EGRESS, BENCH_PORT_SRC) ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("tcx/egress")
int bench_empty_ingress(struct __sk_buff *skb)
{
	return bench_vary(skb, DIR_INGRESS, BENCH_PORT_SRC) ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("tcx/ingress")
int bench_reference_egress(struct __sk_buff *skb)
{
	return bench_reference(skb, DIR_EGRESS);
}

SEC("tcx/egress")
int bench_reference_ingress(struct __sk_buff *skb)
{
	return bench_reference(skb, DIR_INGRESS);
}
