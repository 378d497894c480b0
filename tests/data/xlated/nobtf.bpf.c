// SPDX-License-Identifier: GPL-2.0
/* xlated-dump sweep: built without -g, so the kernel has no BTF, func_info
 * or line_info for these programs (no prototypes, no source lines). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* BTF-defined maps need BTF: only global data here */
__u64 counts[2];

static __attribute__((noinline)) int bump(__u32 k)
{
	__sync_fetch_and_add(&counts[k & 1], 1);
	return k < 2;
}

SEC("xdp")
int nobtf_xdp(struct xdp_md *ctx)
{
	bpf_printk("len %d", ctx->data_end - ctx->data);
	return bump(ctx->rx_queue_index & 1) ? XDP_PASS : XDP_DROP;
}

SEC("socket")
int nobtf_socket(struct __sk_buff *skb)
{
	return bump(0) + skb->len;
}

char LICENSE[] SEC("license") = "GPL";
