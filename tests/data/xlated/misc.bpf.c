// SPDX-License-Identifier: GPL-2.0
/* xlated-dump sweep: allocated objects (kfuncs whose calls the verifier
 * rewrites with extra arguments; a kptr in a map value makes this kernel
 * refuse the object's BTF), ring buffers and dynptrs, backward jumps,
 * 64-bit constants, negation and shifts, a tail call from a subprogram, and
 * a global function taking a pointer. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct node {
	__u64 key;
	__u64 val;
};

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 2);
	 __uint(key_size, 4); __uint(value_size, 4); } progs SEC(".maps");

extern void *bpf_obj_new_impl(__u64 local_type_id, void *meta) __ksym;
extern void bpf_obj_drop_impl(void *kptr, void *meta) __ksym;

__u64 seen;

SEC("tc")
int misc_obj(struct __sk_buff *skb)
{
	struct node *n;

	n = bpf_obj_new_impl(__builtin_btf_type_id(*(struct node *)0, 0), NULL);
	if (!n)
		return TC_ACT_SHOT;
	n->key = skb->len;
	seen += n->key;
	bpf_obj_drop_impl(n, NULL);
	return TC_ACT_OK;
}

__noinline int global_sum(struct __sk_buff *skb)
{
	__u32 i, acc = 0, n = skb->len & 31;

	if (!skb)
		return 0;
	for (i = 0; i < n && i < 32; i++)	/* a backward jump */
		acc += (i ^ skb->mark) >> (i & 7);
	return acc;
}

enum colour { RED, GREEN };
union either { __u32 a; __u16 b[2]; };
typedef unsigned long long ull;

/* parameter types bpftool prints in func_info prototypes */
static __noinline ull odd_types(int (*fp)(int), const volatile __u32 *cv, enum colour c,
				union either *u, _Bool flag, const char *name, struct __sk_buff *skb)
{
	return (fp != 0) + *cv + c + u->a + flag + name[0] + skb->len;
}

static __noinline void no_result(__u64 *p)
{
	*p += 1;
}

static __noinline int jump_away(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &progs, 0);
	return 1;
}

SEC("tc")
int misc_ring(struct __sk_buff *skb)
{
	struct bpf_dynptr ptr;
	__s64 v = skb->len;
	__u64 *slot;

	slot = bpf_ringbuf_reserve(&rb, sizeof(*slot), 0);
	if (slot) {
		*slot = 0x123456789abcdef0ULL ^ (__u64)v;
		bpf_ringbuf_submit(slot, BPF_RB_NO_WAKEUP);
	}
	if (!bpf_ringbuf_reserve_dynptr(&rb, 16, 0, &ptr)) {
		__u64 x = -v;
		bpf_dynptr_write(&ptr, 0, &x, sizeof(x), 0);
		bpf_ringbuf_submit_dynptr(&ptr, 0);
	} else {
		bpf_ringbuf_discard_dynptr(&ptr, 0);
	}
	seen = (v >> (skb->mark & 63)) + (v << 3) + bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA);
	seen += global_sum(skb) + jump_away(skb);
	{
		union either u = { .a = skb->mark };
		__u32 cv = skb->hash;

		seen += odd_types(0, &cv, (enum colour)(skb->len & 1), &u, skb->len > 3, "nm", skb);
		no_result(&seen);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
