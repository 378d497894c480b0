// SPDX-License-Identifier: GPL-2.0
/* Programs for the prog run sweep (tests/cli/test_run_sweep.py): one per
 * test-runnable program type, some writing to the packet or the context. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

/* XDP: retval = packet length; first byte incremented (a write) */
SEC("xdp")
int xdp_len(struct xdp_md *ctx)
{
	unsigned char *d = (void *)(long)ctx->data, *e = (void *)(long)ctx->data_end;

	if (d + 1 <= e)
		d[0]++;
	return (int)(e - d);
}

/* XDP: output packet 100 bytes longer than the input */
SEC("xdp")
int xdp_grow(struct xdp_md *ctx)
{
	if (bpf_xdp_adjust_tail(ctx, 100))
		return XDP_ABORTED;
	return XDP_PASS;
}

/* tc: retval = skb->len; writes mark and cb[0] (ctx_out), first byte */
SEC("tc")
int tc_len(struct __sk_buff *skb)
{
	unsigned char *d = (void *)(long)skb->data, *e = (void *)(long)skb->data_end;

	if (d + 1 <= e)
		d[0] = 0xaa;
	skb->mark = 0x1234;
	skb->cb[0] = skb->cb[0] + 1;
	return skb->len;
}

SEC("socket")
int sock_len(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	return BPF_OK;
}

/* raw tracepoint: retval = first u64 of ctx_in */
SEC("raw_tp/sys_enter")
int rawtp_arg(__u64 *ctx)
{
	return (int)ctx[0];
}

struct sys_args {
	__u32 in;
	__u32 out;
};

/* syscall: writes in+1 to out (ctx_out) */
SEC("syscall")
int sys_ctx(struct sys_args *a)
{
	a->out = a->in + 1;
	return 7;
}

SEC("cgroup_skb/egress")
int cg_egress(struct __sk_buff *skb)
{
	return 1;
}

SEC("sk_lookup")
int lookup(struct bpf_sk_lookup *ctx)
{
	return SK_PASS;
}

SEC("kprobe/do_nanosleep")
int kp(void *ctx)
{
	return 0;
}

char _license[] SEC("license") = "GPL";
