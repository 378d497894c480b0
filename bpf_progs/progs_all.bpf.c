// SPDX-License-Identifier: GPL-2.0
/* One program per common type, each in its libbpf section, plus an xdp and
 * a tc counter that count packets per IP protocol (see proto_count.h) into
 * xdp_proto_count and tc_proto_count (arrays of 256 struct proto_stats). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "proto_count.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct proto_stats);
} xdp_proto_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct proto_stats);
} tc_proto_count SEC(".maps");

/* event counters of the tracing programs, one slot each */
enum { EV_KPROBE, EV_TRACEPOINT, EV_RAW_TP, EV_CGROUP_SKB, EV_SOCKET, EV_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EV_MAX);
	__type(key, __u32);
	__type(value, __u64);
} event_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} sock_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} sock_hash SEC(".maps");

static __always_inline void bump(__u32 ev)
{
	__u64 *c = bpf_map_lookup_elem(&event_count, &ev);

	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline void count_proto(void *map, __u32 proto, __u64 len)
{
	struct proto_stats *s = bpf_map_lookup_elem(map, &proto);

	if (s) {
		__sync_fetch_and_add(&s->packets, 1);
		__sync_fetch_and_add(&s->bytes, len);
	}
}

SEC("xdp")
int xdp_count_proto(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	count_proto(&xdp_proto_count, l4_proto(data, data_end), data_end - data);
	return XDP_PASS;
}

SEC("tc")
int tc_count_proto(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	count_proto(&tc_proto_count, l4_proto(data, data_end), skb->len);
	return TC_ACT_OK;
}

SEC("classifier")
int tc_classifier(struct __sk_buff *skb)
{
	return skb->len > 1000000 ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("socket")
int socket_filter(struct __sk_buff *skb)
{
	bump(EV_SOCKET);
	return skb->len;
}

struct pt_regs;

SEC("kprobe/do_unlinkat")
int kprobe_unlinkat(struct pt_regs *ctx)
{
	bump(EV_KPROBE);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_openat(void *ctx)
{
	bump(EV_TRACEPOINT);
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int raw_tp_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	bump(EV_RAW_TP);
	return 0;
}

SEC("cgroup_skb/ingress")
int cgroup_skb_ingress(struct __sk_buff *skb)
{
	bump(EV_CGROUP_SKB);
	return 1;
}

SEC("sk_msg")
int sk_msg_redirect(struct sk_msg_md *msg)
{
	__u32 key = 0;

	return bpf_msg_redirect_hash(msg, &sock_hash, &key, BPF_F_INGRESS);
}

SEC("sk_skb/stream_parser")
int sk_skb_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int sk_skb_verdict(struct __sk_buff *skb)
{
	return bpf_sk_redirect_map(skb, &sock_map, 0, 0);
}

SEC("flow_dissector")
int flow_dissect(struct __sk_buff *skb)
{
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
