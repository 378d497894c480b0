// SPDX-License-Identifier: GPL-2.0
/* xlated-dump sweep: context accesses the verifier rewrites per program type
 * (each field load becomes the kernel's own loads). */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>

__u64 acc;

SEC("kprobe/do_nanosleep")
int ctx_kprobe(struct pt_regs *regs)
{
	acc += regs->rdi + bpf_get_current_pid_tgid();
	return 0;
}

SEC("perf_event")
int ctx_perf(struct bpf_perf_event_data *ctx)
{
	acc += ctx->sample_period + ctx->addr;
	return 0;
}

SEC("sockops")
int ctx_sockops(struct bpf_sock_ops *ops)
{
	acc += ops->op + ops->remote_port + ops->snd_cwnd + ops->srtt_us;
	return 1;
}

SEC("sk_msg")
int ctx_sk_msg(struct sk_msg_md *msg)
{
	acc += msg->size + msg->local_port;
	return SK_PASS;
}

SEC("sk_skb/stream_verdict")
int ctx_sk_skb(struct __sk_buff *skb)
{
	acc += skb->len + skb->remote_port;
	return SK_PASS;
}

SEC("cgroup/connect4")
int ctx_connect4(struct bpf_sock_addr *ctx)
{
	acc += ctx->user_ip4 + ctx->user_port;
	return 1;
}

SEC("cgroup/sysctl")
int ctx_sysctl(struct bpf_sysctl *ctx)
{
	char name[16];

	bpf_sysctl_get_name(ctx, name, sizeof(name), 0);
	acc += ctx->write + ctx->file_pos + name[0];
	return 1;
}

SEC("flow_dissector")
int ctx_flow(struct __sk_buff *skb)
{
	if (skb->flow_keys)
		acc += skb->flow_keys->nhoff + skb->flow_keys->thoff;
	return BPF_OK;
}

SEC("cgroup/sock_create")
int ctx_sock(struct bpf_sock *sk)
{
	acc += sk->family + sk->type + sk->protocol;
	return 1;
}

SEC("lwt_in")
int ctx_lwt(struct __sk_buff *skb)
{
	acc += skb->len + skb->protocol;
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
