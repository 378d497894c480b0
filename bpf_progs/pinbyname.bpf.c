// SPDX-License-Identifier: GPL-2.0
/* A map with LIBBPF_PIN_BY_NAME: libbpf pins it at <pin_root_path>/<name>
 * (default /sys/fs/bpf) and reuses an existing pin on the next load.
 * bpftool loads it only where /sys/fs/bpf is a bpffs; our loader takes a
 * pin_root_path. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u32);
	__type(value, __u64);
} pinned_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} unpinned SEC(".maps");

SEC("xdp")
int xdp_pinned(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 one = 1, *c;

	c = bpf_map_lookup_elem(&pinned_hash, &k);
	if (c)
		__sync_fetch_and_add(c, 1);
	else
		bpf_map_update_elem(&pinned_hash, &k, &one, BPF_NOEXIST);
	c = bpf_map_lookup_elem(&unpinned, &k);
	if (c)
		(*c)++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
