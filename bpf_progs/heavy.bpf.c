// SPDX-License-Identifier: GPL-2.0
/* Valid but verifier-heavy programs: a long bounded loop (the verifier walks
 * every iteration) with data-dependent branches and map lookups, so the
 * verifier explores many states.  Three programs of that body: the object
 * takes well over 100 ms of verifier time (about 170 ms on a 6.18 kernel on
 * a fast machine).  Used to test load timing, verifier statistics and log
 * handling, and by bench/bench_load.py as the load heavy enough for a ratio. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef HEAVY_ROUNDS
#define HEAVY_ROUNDS 1000
#endif

#define MIX(x) do { (x) ^= (x) >> 7; (x) *= 0x9E3779B97F4A7C15ULL; (x) ^= (x) << 11; } while (0)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} heavy_data SEC(".maps");

/* The verifier checks each program on its own, so three copies of the same
 * body triple the load time without nearing the per-program limit of one
 * million processed instructions (one copy processes about 340 thousand on
 * 6.18); the object loads in well over 100 ms even on a fast machine. */
#define HEAVY_PROG(name)							\
SEC("xdp")									\
int name(struct xdp_md *ctx)							\
{										\
	__u64 acc = ctx->data_end - ctx->data;					\
	__u32 i;								\
										\
	for (i = 0; i < HEAVY_ROUNDS; i++) {					\
		__u32 key = (acc + i) & 63;					\
		__u64 *v = bpf_map_lookup_elem(&heavy_data, &key);		\
										\
		if (!v)								\
			continue;						\
		if (*v & (1ULL << (i & 63)))					\
			acc += *v ^ i;						\
		else if (*v > acc)						\
			acc -= i;						\
		else								\
			acc = (acc << 1) | (i & 1);				\
		/* straight-line mixing: verifier work without extra	\
		 * jumps (the kernel caps pending branches at 8192) */	\
		MIX(acc); MIX(acc); MIX(acc); MIX(acc);				\
		MIX(acc); MIX(acc); MIX(acc); MIX(acc);				\
		if (acc & 4)							\
			*v = acc;						\
	}									\
	return acc & 1 ? XDP_PASS : XDP_DROP;					\
}

HEAVY_PROG(heavy_prog)
HEAVY_PROG(heavy_prog2)
HEAVY_PROG(heavy_prog3)

char LICENSE[] SEC("license") = "GPL";
