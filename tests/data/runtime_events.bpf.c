// SPDX-License-Identifier: GPL-2.0
/* Event producers for the runtime tests and benchmarks: each test run of
 * emit_ringbuf / emit_perf writes one 8-byte sequence number per 16 bytes of
 * packet (at most 64), and say_hello writes a marker line to the trace pipe. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pb SEC(".maps");

__u64 seq;

static __always_inline int n_events(struct xdp_md *ctx)
{
	int n = (ctx->data_end - ctx->data) / 16;

	return n > 64 ? 64 : n;
}

SEC("xdp")
int emit_ringbuf(struct xdp_md *ctx)
{
	int n = n_events(ctx);

	for (int i = 0; i < 64; i++) {
		__u64 v;

		if (i >= n)
			break;
		v = __sync_fetch_and_add(&seq, 1);
		bpf_ringbuf_output(&rb, &v, sizeof(v), 0);
	}
	return XDP_PASS;
}

SEC("xdp")
int emit_perf(struct xdp_md *ctx)
{
	int n = n_events(ctx);

	for (int i = 0; i < 64; i++) {
		__u64 v;

		if (i >= n)
			break;
		v = __sync_fetch_and_add(&seq, 1);
		bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, &v, sizeof(v));
	}
	return XDP_PASS;
}

SEC("xdp")
int say_hello(struct xdp_md *ctx)
{
	bpf_printk("pybpfobj tracelog marker %d", 42);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
