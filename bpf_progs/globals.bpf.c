// SPDX-License-Identifier: GPL-2.0
/* Global data in every libbpf section: .rodata (const volatile config),
 * .data, .bss, a custom .data.custom section and bpf_metadata_* variables.
 * xdp_globals returns a verdict chosen by .rodata and counts into .bss. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct config {
	__u32 mode;
	__u16 port;
	__u8 enabled;
	char label[5];
};

enum color { RED = 1, GREEN = 2, BLUE = 4 };

/* .rodata: read-only after load, set before load */
const volatile __u32 verdict = XDP_PASS;
const volatile __u64 threshold = 1000;
const volatile struct config cfg = { .mode = 3, .port = 8080, .enabled = 1, .label = "abcd" };
const volatile enum color favourite = GREEN;
const volatile char bpf_metadata_version[] SEC(".rodata") = "1.0";
const volatile int bpf_metadata_build = 42;

/* .data: initialised, writable */
__u64 packets_seen = 5;
__s32 last_len = -1;
char greeting[8] = "hello";
__u16 ports[4] = { 22, 80, 443, 8080 };

/* .bss: zero-initialised, writable */
__u64 counter;
__u64 bytes_total;
struct config seen_cfg;

/* custom data section: its own internal map */
__u32 custom_val SEC(".data.custom") = 0xdeadbeef;
__u64 custom_arr[2] SEC(".data.custom") = { 1, 2 };

SEC("xdp")
int xdp_globals(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;

	__sync_fetch_and_add(&counter, 1);
	bytes_total += len;
	packets_seen++;
	last_len = len;
	custom_val++;
	custom_arr[1] += len;
	seen_cfg.mode = cfg.mode;
	seen_cfg.port = cfg.port + ports[1];
	if (greeting[0] != 'h' || bytes_total > threshold * 1000000)
		return XDP_ABORTED;
	if (favourite == BLUE)
		return XDP_DROP;
	return verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
