// SPDX-License-Identifier: GPL-2.0
/* Tail calls as in bpftool-map(8)'s example: main_func jumps through slot 0
 * of jmp_table (declared without values: user space fills it).
 * bpf_func_process -> XDP_PASS, bpf_func_debug -> XDP_TX, and main_func
 * returns XDP_DROP when the slot is empty and the tail call falls through. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jmp_table SEC(".maps");

SEC("xdp")
int main_func(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jmp_table, 0);
	return XDP_DROP;
}

SEC("xdp")
int bpf_func_process(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bpf_func_debug(struct xdp_md *ctx)
{
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
