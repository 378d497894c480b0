// SPDX-License-Identifier: GPL-2.0
/* XDP packet counter: configuration in .rodata, per-CPU statistics in a struct. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stats);
} stats SEC(".maps");

const volatile __u32 verdict = XDP_PASS;
const volatile char bpf_metadata_owner[] = "pybpfobj";

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct stats *s = bpf_map_lookup_elem(&stats, &key);

	if (s) {
		s->packets++;
		s->bytes += ctx->data_end - ctx->data;
	}
	return verdict;
}

char LICENSE[] SEC("license") = "GPL";
