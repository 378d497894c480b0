// SPDX-License-Identifier: GPL-2.0
/* SEC("?..."): programs libbpf opens with autoload off. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("?xdp")
int lazy_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("?tc")
int lazy_tc(struct __sk_buff *skb)
{
	return 0;
}

SEC("socket")
int eager_sock(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
