// SPDX-License-Identifier: GPL-2.0
/* Compiles, but the verifier rejects bad_deref: the map-lookup result is
 * dereferenced without a NULL check ("R0 invalid mem access
 * 'map_value_or_null'").  Built with -g, so BTF line_info lets the loader
 * report the failing source line (the line marked BAD LINE).  A hash map,
 * not an array: this kernel proves constant-key array lookups non-NULL. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} bad_counts SEC(".maps");

SEC("xdp")
int good_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bad_deref(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&bad_counts, &key);

	*value += 1; /* BAD LINE: no NULL check */
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
