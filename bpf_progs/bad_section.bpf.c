// SPDX-License-Identifier: GPL-2.0
/* A program in a section libbpf does not know (SEC("foo/bar")): libbpf
 * cannot guess its type, so loading fails unless a type is given
 * (bpftool prog load ... type xdp). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("foo/bar")
int unknown_sec_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
