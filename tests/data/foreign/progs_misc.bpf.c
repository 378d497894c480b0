// SPDX-License-Identifier: GPL-2.0
/* Several programs in one section, static and global subprograms, an
 * custom data sections, string literals (.rodata.str1.1). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int counter_a SEC(".data.foo") = 1;
int counter_b SEC(".data.foo") = 2;
const char greeting[] SEC(".rodata.cfg") = "hello";
int zeroed;

static __noinline int static_helper(int x)
{
	return x * 3 + counter_b;
}

__noinline int global_helper(int x)
{
	return x + 1;
}

SEC("xdp")
int first_in_xdp(struct xdp_md *ctx)
{
	return static_helper(ctx->ingress_ifindex) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int second_in_xdp(struct xdp_md *ctx)
{
	counter_a++;
	zeroed++;
	return global_helper(ctx->rx_queue_index) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int third_in_xdp(struct xdp_md *ctx)
{
	bpf_printk("%s %d", greeting, counter_a);
	return XDP_PASS;
}

SEC("xdp")
int literal_printer(struct xdp_md *ctx)
{
	/* a bare string literal: clang puts it in .rodata.str1.1 */
	bpf_trace_printk("literal\n", sizeof("literal\n"));
	return XDP_PASS;
}

SEC("socket")
int sock_prog(struct __sk_buff *skb)
{
	bpf_printk("len %d", skb->len);
	return static_helper(skb->len);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
