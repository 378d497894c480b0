// SPDX-License-Identifier: GPL-2.0
/* Map-in-map: an array_of_maps whose inner maps are arrays u32 -> u64 (slot
 * 0 preset to inner_map0), and a hash_of_maps with an inner hash template.
 * lookup_inner reads the inner maps so user space can watch the counts. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} inner_map0 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_array);
} outer_array SEC(".maps") = {
	.values = { [0] = &inner_map0 },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(max_entries, 8);
		__type(key, __u32);
		__type(value, __u64);
	});
} outer_hash SEC(".maps");

SEC("xdp")
int lookup_inner(struct xdp_md *ctx)
{
	__u32 slot = 0, key = 0;
	__u64 *v;
	void *inner;

	inner = bpf_map_lookup_elem(&outer_array, &slot);
	if (inner) {
		v = bpf_map_lookup_elem(inner, &key);
		if (v)
			__sync_fetch_and_add(v, 1);
	}
	inner = bpf_map_lookup_elem(&outer_hash, &slot);
	if (inner) {
		v = bpf_map_lookup_elem(inner, &key);
		if (v)
			__sync_fetch_and_add(v, 1);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
