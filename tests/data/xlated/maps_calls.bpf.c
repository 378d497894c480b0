// SPDX-License-Identifier: GPL-2.0
/* xlated-dump sweep: what the kernel rewrites in map, global, helper, kfunc,
 * ksym, callback and tail-call code.  Built at the default CPU and at v3/v4;
 * the programs only need to load, never to run. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct locked {
	struct bpf_spin_lock lock;
	__u64 a;
	__u32 b;
};

struct with_timer {
	struct bpf_timer t;
	__u64 fired;
};

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4);
	 __type(key, __u32); __type(value, __u64); } arr SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16);
	 __type(key, __u32); __type(value, __u64); } hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1);
	 __type(key, __u32); __type(value, __u64); } pcpu SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
	 __type(key, __u32); __type(value, struct locked); } locks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
	 __type(key, __u32); __type(value, struct with_timer); } timers SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 4);
	 __uint(key_size, 4); __uint(value_size, 4); } jmp SEC(".maps");

__u64 data_counter = 7;
__u64 bss_counter;
const volatile __u32 debug_on = 0;
const volatile __u64 limit = 1000;
__u64 custom_data SEC(".data.custom") = 3;
__u32 custom_arr[4] SEC(".data.custom") = {1, 2, 3, 4};
const char custom_ro[8] SEC(".rodata.custom") = "abc";

/* typed (BTF id) ksyms need KALLSYMS_ALL, which this kernel lacks: only typeless ones load */
extern const void bpf_prog_put __ksym;	/* typeless: resolved through kallsyms */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

static __noinline __u64 twice(__u64 v)
{
	return v * 2 + bss_counter;
}

__noinline int global_sub(int v)
{
	if (v > 100)
		return v - 100;
	return v + data_counter;
}

static long loop_cb(__u32 i, void *ctx)
{
	__sync_fetch_and_add(&bss_counter, i);
	return i > 5;
}

static long each_cb(void *map, __u32 *key, __u64 *val, void *ctx)
{
	*(__u64 *)ctx += *val;
	return 0;
}

static int timer_cb(void *map, int *key, struct with_timer *v)
{
	v->fired++;
	return 0;
}

SEC("xdp")
int xl_xdp(struct xdp_md *ctx)
{
	__u32 k = 0, k2 = ctx->ingress_ifindex & 3;
	__u64 one = 1, *v, sum = 0;
	struct locked *l;

	v = bpf_map_lookup_elem(&arr, &k2);
	if (v)
		__sync_fetch_and_add(v, 1);
	v = bpf_map_lookup_elem(&hash, &k2);
	if (!v)
		bpf_map_update_elem(&hash, &k2, &one, BPF_ANY);
	else
		bpf_map_delete_elem(&hash, &k2);
	v = bpf_map_lookup_elem(&pcpu, &k);
	if (v)
		*v += bpf_get_smp_processor_id();
	l = bpf_map_lookup_elem(&locks, &k);
	if (l) {
		bpf_spin_lock(&l->lock);
		l->a += 1;
		l->b ^= 3;
		bpf_spin_unlock(&l->lock);
	}
	if (debug_on)
		bpf_printk("debug %d %llu", k2, data_counter);
	bpf_printk("xdp %u", ctx->data_end - ctx->data);
	data_counter += twice(custom_data) + limit;
	custom_arr[k2 & 3] += custom_ro[k2 & 7];
	bpf_tail_call(ctx, &jmp, k2);
	bpf_tail_call(ctx, &jmp, 1);
	return global_sub(ctx->rx_queue_index) > 0 ? XDP_PASS : XDP_DROP;
}

SEC("tc")
int xl_tc(struct __sk_buff *skb)
{
	__u64 sum = 0;
	__u32 k = 0;
	struct with_timer *t;

	bpf_loop(10, loop_cb, NULL, 0);
	bpf_for_each_map_elem(&arr, each_cb, &sum, 0);
	t = bpf_map_lookup_elem(&timers, &k);
	if (t) {
		bpf_timer_init(&t->t, &timers, 1);
		bpf_timer_set_callback(&t->t, timer_cb);
		bpf_timer_start(&t->t, 1000, 0);
	}
	bss_counter = sum + bpf_ktime_get_ns() + bpf_get_prandom_u32();
	return twice(skb->len) ? TC_ACT_OK : TC_ACT_SHOT;
}

static __always_inline void atomics(__u64 *p64, __u32 *p32)
{
	__u64 r = 0;

	__sync_fetch_and_add(p64, 1);
	__sync_fetch_and_and(p64, 2);
	__sync_fetch_and_or(p64, 4);
	__sync_fetch_and_xor(p64, 8);
	__sync_fetch_and_add(p32, 1);
#if __BPF_CPU_VERSION__ >= 3	/* 32-bit atomics other than add need v3 */
	__sync_fetch_and_and(p32, 2);
	__sync_fetch_and_or(p32, 4);
	__sync_fetch_and_xor(p32, 8);
	r += __sync_fetch_and_add(p64, 1);
	r += __sync_fetch_and_and(p64, 2);
	r += __sync_fetch_and_or(p64, 4);
	r += __sync_fetch_and_xor(p64, 8);
#endif
	r += __sync_fetch_and_add(p64, 16);
#if __BPF_CPU_VERSION__ >= 3
	r += __sync_fetch_and_add(p32, 1);
	r += __sync_fetch_and_and(p32, 2);
	r += __sync_fetch_and_or(p32, 4);
	r += __sync_fetch_and_xor(p32, 8);
	r += __sync_lock_test_and_set(p64, r);
	r += __sync_lock_test_and_set(p32, (__u32)r);
	r += __sync_val_compare_and_swap(p64, r, 5);
	r += __sync_val_compare_and_swap(p32, (__u32)r, 6);
#endif
	*p64 = r;
}

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

SEC("socket")
int xl_socket(struct __sk_buff *skb)
{
	__u32 k = 1;
	/* ld_abs/ld_ind: the verifier rewrites them into calls of kernel load helpers */
	__u64 proto = load_half(skb, 12) + load_byte(skb, 23) + load_word(skb, skb->len & 15);

	if (proto == 0x12345)
		return 1;
	__u64 *v = bpf_map_lookup_elem(&arr, &k);
	__u32 *c = bpf_map_lookup_elem(&hash, &k);

	if (v && c)
		atomics(v, c);
	return skb->len > 60 ? skb->len : 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int xl_tracepoint(void *ctx)
{
	char comm[16];
	__u64 id = bpf_get_current_pid_tgid();

	bpf_get_current_comm(comm, sizeof(comm));
	bss_counter = id + (__u64)&bpf_prog_put + comm[0];
	bpf_printk("pid %d comm %s", id >> 32, comm);
	/* source lines with a quote, a backslash, a tab inside and UTF-8 (JSON escaping) */
	if (comm[0] == '\'' || comm[1] == '"')
		bpf_printk("café \"q\"\t%d\n", comm[2]);
	bss_counter +=	comm[3];
	return 0;
}

SEC("raw_tp/sys_enter")
int xl_raw_tp(void *ctx)
{
	__u32 k = 2;
	__u64 *v = bpf_map_lookup_elem(&hash, &k);

	if (v)
		*v = bpf_ktime_get_boot_ns();
	bpf_rcu_read_lock();
	bss_counter += global_sub(k);
	bpf_rcu_read_unlock();
	return 0;
}

SEC("syscall")
int xl_syscall(void *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&arr, &k);

	if (v)
		*v = bpf_ktime_get_ns();
	return 0;
}

SEC("cgroup_skb/ingress")
int xl_cgroup(struct __sk_buff *skb)
{
	struct __sk_buff *kskb = bpf_cast_to_kern_ctx(skb);

	bss_counter += (kskb != 0) + skb->protocol + bpf_get_socket_uid(skb);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
