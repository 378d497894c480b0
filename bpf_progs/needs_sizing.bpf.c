// SPDX-License-Identifier: GPL-2.0
/* Maps without max_entries (a ringbuf and a stack_trace map): the kernel
 * refuses max_entries 0, so the user must size them (set_max_entries)
 * before load.  bpftool cannot load this object as is. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_STACK_DEPTH 32

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
} unsized_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
} unsized_stacks SEC(".maps");

SEC("xdp")
int xdp_sized(struct xdp_md *ctx)
{
	__u32 *e = bpf_ringbuf_reserve(&unsized_rb, sizeof(__u32), 0);

	if (e) {
		*e = bpf_get_stackid(ctx, &unsized_stacks, 0);
		bpf_ringbuf_submit(e, 0);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
