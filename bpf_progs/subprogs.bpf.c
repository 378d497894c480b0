// SPDX-License-Identifier: GPL-2.0
/* BPF-to-BPF calls for the dump tests: a global (separately verified)
 * function and a static __noinline one, both called from an XDP and a tc
 * program, and a bpf_loop callback (the verifier inlines bpf_loop into a
 * loop that calls the callback as a subprogram).
 *
 * xdp_subprogs returns XDP_PASS (2) for any packet: mix(len & 1, 2) is 2 or
 * 3, and global_clamp() keeps it within [XDP_DROP, XDP_PASS].
 * tc_subprogs returns TC_ACT_OK (0) and counts loop rounds into hits[0]. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

/* static: inlined into the caller's verification, shares its stack budget */
static __noinline int mix(int a, int b)
{
	return a * 3 + b;
}

/* global: verified on its own against its BTF prototype */
__noinline int global_clamp(int v)
{
	if (v < XDP_DROP)
		return XDP_DROP;
	if (v > XDP_PASS)
		return XDP_PASS;
	return v;
}

struct loop_ctx {
	__u64 sum;
};

static int loop_body(__u32 index, void *data)
{
	struct loop_ctx *c = data;

	c->sum += index;
	return 0;
}

SEC("xdp")
int xdp_subprogs(struct xdp_md *ctx)
{
	int len = ctx->data_end - ctx->data;

	return global_clamp(mix(len & 1, 2));
}

SEC("tc")
int tc_subprogs(struct __sk_buff *skb)
{
	struct loop_ctx c = { .sum = 0 };
	__u32 key = 0;
	__u64 *v;

	bpf_loop(4, loop_body, &c, 0);
	v = bpf_map_lookup_elem(&hits, &key);
	if (v)
		__sync_fetch_and_add(v, c.sum);
	return global_clamp(mix(skb->len & 1, 0)) >= 0 ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
