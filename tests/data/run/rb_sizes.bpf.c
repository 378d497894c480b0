// SPDX-License-Identifier: GPL-2.0
/* Ring buffer and perf buffer producers for tests/kernel/test_events_sweep.py,
 * run with BPF_PROG_TEST_RUN: each run writes `count` records of `size` bytes
 * (buf as the test filled it, byte 0 = n & 0xff); every `discard_every`-th reserved
 * record is discarded instead of submitted. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SIZE 3000

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 14);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 12);
} rb2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pb SEC(".maps");

struct args {
	__u32 size;
	__u32 count;
	__u32 discard_every;
	__u32 which;
};

unsigned char buf[MAX_SIZE];
__u32 dropped;

SEC("syscall")
int rb_out(struct args *a)
{
	__u32 size = a->size, count = a->count, every = a->discard_every;
	void *ring = a->which ? (void *)&rb2 : (void *)&rb;

	if (size > MAX_SIZE || size == 0)
		return -1;
	for (__u32 n = 0; n < count && n < 1000; n++) {
		buf[0] = n & 0xff;
		if (every && (n % every) == every - 1) {
			/* reserve a fixed size so the verifier knows it, then discard */
			void *r = bpf_ringbuf_reserve(ring, 24, 0);

			if (r)
				bpf_ringbuf_discard(r, 0);
			continue;
		}
		if (bpf_ringbuf_output(ring, buf, size, 0))
			dropped++;
	}
	return 0;
}

/* perf samples: the packet's bytes, as many as it has (up to MAX_SIZE) */
SEC("xdp")
int pb_out(struct xdp_md *ctx)
{
	__u64 len = ctx->data_end - ctx->data;
	__u8 none = 0;

	bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU | (len << 32), &none, 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
