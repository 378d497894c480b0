// SPDX-License-Identifier: GPL-2.0
/* Maps the object leaves unsized: a ringbuf without max_entries and a
 * stack_trace map without max_entries or value_size (its tool picks the
 * stack depth and the table size).  The kernel refuses 0 for either, so
 * the user sizes them before load (set_max_entries / set_value_size, or
 * 'size NAME N' / 'value_size NAME N' on the command line); bpftool cannot
 * load this object as is.  A kprobe, because bpf_get_stackid needs a
 * tracing context (XDP may not call it). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
} unsized_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
} unsized_stacks SEC(".maps");

SEC("kprobe/do_nanosleep")
int kprobe_sized(void *ctx)
{
	__s32 *e = bpf_ringbuf_reserve(&unsized_rb, sizeof(__s32), 0);

	if (e) {
		*e = bpf_get_stackid(ctx, &unsized_stacks, 0);
		bpf_ringbuf_submit(e, 0);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
