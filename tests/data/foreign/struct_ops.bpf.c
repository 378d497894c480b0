// SPDX-License-Identifier: GPL-2.0
/* A struct_ops map (tcp_congestion_ops declared locally); read offline only. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct sock;

struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	char name[16];
} __attribute__((preserve_access_index));

SEC("struct_ops/foreign_ssthresh")
__u32 BPF_PROG(foreign_ssthresh, struct sock *sk)
{
	return 2;
}

SEC("struct_ops/foreign_undo")
__u32 BPF_PROG(foreign_undo, struct sock *sk)
{
	return 10;
}

SEC("struct_ops/foreign_cong_avoid")
void BPF_PROG(foreign_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
}

SEC(".struct_ops")
struct tcp_congestion_ops foreign_cc = {
	.ssthresh = (void *)foreign_ssthresh,
	.cong_avoid = (void *)foreign_cong_avoid,
	.undo_cwnd = (void *)foreign_undo,
	.name = "foreign_cc",
};

char LICENSE[] SEC("license") = "GPL";
