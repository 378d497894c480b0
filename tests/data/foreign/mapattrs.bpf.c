// SPDX-License-Identifier: GPL-2.0
/* Map attributes our objects do not use: map_flags combinations, numa_node,
 * map_extra (bloom filter), key/value given by size only, ringbuf, lpm. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_ZERO_SEED);
	__type(key, __u32);
	__type(value, __u64);
} noprealloc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__uint(numa_node, 0);
	__uint(map_flags, BPF_F_NUMA_NODE);
	__type(key, __u32);
	__type(value, __u32);
} numa SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 100);
	__uint(map_extra, 3);
	__type(value, __u64);
} bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, 4);
	__uint(value_size, 24);
	__uint(map_flags, BPF_F_RDONLY_PROG | BPF_F_MMAPABLE);
} sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, __u32);
	__type(value, __u32);
} lru SEC(".maps");

struct lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u32);
} lpm SEC(".maps");

SEC("xdp")
int attrs_prog(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 v = 1;
	struct lpm_key lk = { 32, {1, 2, 3, 4} };

	bpf_map_lookup_elem(&noprealloc, &k);
	bpf_map_lookup_elem(&numa, &k);
	bpf_map_peek_elem(&bloom, &v);
	bpf_map_lookup_elem(&sized, &k);
	bpf_map_lookup_elem(&lpm, &lk);
	bpf_map_lookup_elem(&lru, &k);
	bpf_ringbuf_output(&rb, &v, sizeof(v), 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
