// SPDX-License-Identifier: GPL-2.0
/* xlated-dump sweep, cpu v4 only: sign-extending moves and loads, signed
 * division and modulo, byte swaps, 32-bit ALU and jmp32, may_goto (which the
 * kernel expands), open-coded iterators (kfuncs), a jump too far for a
 * 16-bit offset (gotol) and code the verifier removes as dead. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct bpf_iter_num { __u64 __opaque[1]; } __attribute__((aligned(8)));
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;

const volatile int mode = 1;
__s64 out64;
__s32 out32;
__s8 bytes[8] = {-1, 2, -3, 4, -5, 6, -7, 8};
__s16 halves[4] = {-100, 200, -300, 400};
__s32 words[2] = {-70000, 70000};

static __always_inline int cond_loop(void)
{
	int acc = 0;

	/* may_goto: the kernel bounds the loop with a hidden counter; the loop's
	 * state does not change between rounds, so the verifier prunes it */
	while (1) {
		asm volatile goto("may_goto %l[out]" :::: out);
		if (bpf_get_prandom_u32() & 1)
			break;
	}
	acc = 4;
out:
	return acc;
}

SEC("tc")
int v4_alu(struct __sk_buff *skb)
{
	__s64 a = (__s64)skb->len - 1000, b = (__s32)skb->mark | 1;
	__s32 c = (__s32)skb->priority - 7, d = (__s32)skb->hash | 3;
	__u32 i = skb->len & 7;

	out64 = a / b + a % b;
	out32 = c / d + c % d;
	out64 += bytes[i] + halves[i & 3] + words[i & 1];
	out64 += (__s8)skb->tc_index + (__s16)skb->queue_mapping + (__s32)skb->ifindex;
	out64 += __builtin_bswap16(skb->protocol) + __builtin_bswap32(skb->vlan_tci)
		 + __builtin_bswap64(skb->tstamp);
	out32 += (__u32)c >> (i & 31);
	if ((__s32)d < -5)
		out32 ^= 0x55;
	if (mode == 2)		/* dead: mode is 1 */
		bpf_printk("mode two %d", d);
	return cond_loop() > 3 ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("xdp")
int v4_iter(struct xdp_md *ctx)
{
	struct bpf_iter_num it;
	int *v, sum = 0;

	bpf_iter_num_new(&it, 0, 10);
	while ((v = bpf_iter_num_next(&it)))
		sum += *v;
	bpf_iter_num_destroy(&it);
	return sum > 5 ? XDP_PASS : XDP_DROP;
}

#define R1 asm volatile("%[r] += 1" : [r]"+r"(r));
#define R4 R1 R1 R1 R1
#define R16 R4 R4 R4 R4
#define R64 R16 R16 R16 R16
#define R256 R64 R64 R64 R64
#define R1K R256 R256 R256 R256
#define R4K R1K R1K R1K R1K
#define R16K R4K R4K R4K R4K

SEC("socket")
int v4_far(struct __sk_buff *skb)
{
	__u64 r = skb->len;

	if (skb->len > 64)
		return 0;
	/* 33K instructions (one asm statement each, so the compiler counts them):
	 * the jump over them needs gotol */
	R16K R16K R1K
	return r;
}

/* Spelled in assembly so each v4 form appears exactly: the verifier wraps
 * divisions and modulos by a register in zero (and -1) checks. */
SEC("xdp")
int v4_asm(struct xdp_md *ctx)
{
	__u64 a = ctx->ingress_ifindex, b = ctx->rx_queue_index;

	asm volatile(
		"%[a] = bswap16 %[a]\n"
		"%[a] = bswap32 %[a]\n"
		"%[a] = bswap64 %[a]\n"
		"%[a] = be16 %[a]\n"
		"%[a] = be32 %[a]\n"
		"%[a] = le64 %[a]\n"
		"%[a] s/= %[b]\n"
		"%[a] s%%= %[b]\n"
		"%[a] s/= -3\n"
		"%[a] s%%= 7\n"
		"%[a] = (s8)%[b]\n"
		"%[a] = (s16)%[b]\n"
		"%[a] = (s32)%[b]\n"
		"*(u64 *)(r10 - 8) = %[a]\n"
		"%[b] = *(s8 *)(r10 - 8)\n"
		"%[b] = *(s16 *)(r10 - 8)\n"
		"%[b] = *(s32 *)(r10 - 8)\n"
		"%[a] s>>= 3\n"
		"%[a] = -%[a]\n"
		"%[a] /= %[b]\n"
		"%[a] %%= %[b]\n"
		: [a]"+r"(a), [b]"+r"(b) :: "memory");
	return (a + b) & 1 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
