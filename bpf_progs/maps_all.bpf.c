// SPDX-License-Identifier: GPL-2.0
/* One BTF-defined map of every common type, value types exercising the BTF
 * shapes (nested structs, union, enum, bitfields, arrays, typedefs, anonymous
 * members) and map-in-map templates with declared initial values.
 * Programs use the maps so none is dead code.  (The LIBBPF_PIN_BY_NAME map
 * lives in pinbyname.bpf.c: libbpf pins it under /sys/fs/bpf, which is not a
 * bpffs here, so it would make this object unloadable by bpftool.) */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

typedef __u32 flow_id_t;
typedef unsigned long long counter_t;

enum flow_state {
	FLOW_NEW = 0,
	FLOW_ESTABLISHED = 1,
	FLOW_CLOSED = 7,
};

struct addr_pair {
	__u32 src;
	__u32 dst;
};

struct flow_key {
	struct addr_pair addrs;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_value {
	counter_t packets;
	counter_t bytes;
	enum flow_state state;
	__u32 flags_syn : 1;
	__u32 flags_fin : 1;
	__u32 reserved : 6;
	__u32 ttl : 8;
	union {
		__u32 ipv4;
		__u8 ipv6[16];
	} nexthop;
	struct {
		__u16 vlan;
		__u16 mark;
	};
	char comm[16];
	__u64 hist[4];
};

struct lpm_v4_key {
	__u32 prefixlen;
	__u32 addr;
};

struct event {
	__u32 pid;
	__u32 len;
	char tag[8];
};

/* hash: struct key -> struct value */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} flows SEC(".maps");

/* array with sizes given numerically (no BTF key/value types) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
} sized_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, counter_t);
} plain_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 128);
	__type(key, flow_id_t);
	__type(value, __u64);
} pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct addr_pair);
} pcpu_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct flow_value);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 16);
	__type(value, __u32);
} queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 16);
	__type(value, __u64);
} stack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 100);
	__uint(map_extra, 3);
	__type(value, __u32);
} bloom SEC(".maps");

/* inner maps for the map-in-map declarations below */
struct inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_map);
} outer_arr SEC(".maps") = {
	.values = { &inner_a, &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(max_entries, 16);
		__type(key, __u32);
		__type(value, __u32);
	});
} outer_hash SEC(".maps");

int xdp_tail_a(struct xdp_md *ctx);
int xdp_tail_b(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = {
		[0] = (void *)&xdp_tail_a,
		[2] = (void *)&xdp_tail_b,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} jumps_empty SEC(".maps");

SEC("xdp")
int xdp_tail_a(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_tail_b(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int xdp_maps(struct xdp_md *ctx)
{
	struct flow_key fk = {};
	struct flow_value *fv, nv = {};
	struct lpm_v4_key lk = { .prefixlen = 32, .addr = 0 };
	struct addr_pair *ap;
	struct event *ev;
	__u32 k = 0, qv = 1;
	__u64 *c, sv = 2;
	void *inner;

	fv = bpf_map_lookup_elem(&flows, &fk);
	if (!fv) {
		nv.state = FLOW_NEW;
		nv.flags_syn = 1;
		bpf_map_update_elem(&flows, &fk, &nv, BPF_ANY);
	}
	c = bpf_map_lookup_elem(&sized_array, &k);
	if (c)
		__sync_fetch_and_add(c, 1);
	c = bpf_map_lookup_elem(&plain_array, &k);
	if (c)
		(*c)++;
	c = bpf_map_lookup_elem(&pcpu_hash, &k);
	if (c)
		(*c)++;
	ap = bpf_map_lookup_elem(&pcpu_array, &k);
	if (ap)
		ap->src++;
	fv = bpf_map_lookup_elem(&lru, &k);
	if (fv)
		fv->packets++;
	if (bpf_map_lookup_elem(&routes, &lk))
		k = 1;
	bpf_map_push_elem(&queue, &qv, BPF_ANY);
	bpf_map_push_elem(&stack, &sv, BPF_ANY);
	if (bpf_map_peek_elem(&bloom, &qv) == 0)
		k = 2;
	inner = bpf_map_lookup_elem(&outer_arr, &k);
	if (inner) {
		c = bpf_map_lookup_elem(inner, &k);
		if (c)
			(*c)++;
	}
	inner = bpf_map_lookup_elem(&outer_hash, &k);
	if (inner) {
		__u32 *v = bpf_map_lookup_elem(inner, &k);
		if (v)
			(*v)++;
	}
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (ev) {
		ev->pid = 1;
		ev->len = ctx->data_end - ctx->data;
		__builtin_memcpy(ev->tag, "maps_all", 8);
		bpf_ringbuf_submit(ev, 0);
	}
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &k, sizeof(k));
	bpf_tail_call(ctx, &jumps, 0);
	bpf_tail_call(ctx, &jumps_empty, 0);
	return XDP_PASS;
}

SEC("socket")
int sock_maps(struct __sk_buff *skb)
{
	__u32 k = 1;
	__u64 *c = bpf_map_lookup_elem(&plain_array, &k);

	if (c)
		__sync_fetch_and_add(c, skb->len);
	bpf_map_push_elem(&queue, &k, BPF_EXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
