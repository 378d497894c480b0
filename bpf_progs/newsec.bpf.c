// SPDX-License-Identifier: GPL-2.0
/* Programs in sections newer than libbpf 1.1 that this kernel supports:
 * tcx/ingress, tcx/egress, netkit/primary, netkit/peer (sched_cls with the
 * tcx/netkit attach types) and netfilter.  libbpf 1.1 (and so bpftool 7.1)
 * cannot guess their types; pybpfobj's loader sets type and expected attach
 * type from its own section table (pybpfobj/spec/sections.py). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} newsec_hits SEC(".maps");

static __always_inline void hit(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&newsec_hits, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("tcx/ingress")
int tcx_in(struct __sk_buff *skb)
{
	hit(0);
	return TC_ACT_OK;
}

SEC("tcx/egress")
int tcx_out(struct __sk_buff *skb)
{
	hit(1);
	return TC_ACT_OK;
}

SEC("netkit/primary")
int netkit_primary(struct __sk_buff *skb)
{
	hit(2);
	return TC_ACT_OK;
}

SEC("netkit/peer")
int netkit_peer(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

struct bpf_nf_ctx;

SEC("netfilter")
int nf_accept(struct bpf_nf_ctx *ctx)
{
	hit(3);
	return 1; /* NF_ACCEPT */
}

char LICENSE[] SEC("license") = "GPL";
