/* SPDX-License-Identifier: GPL-2.0 */
/* Shared per-protocol packet counting for the xdp and tc counters.
 * Index = IPv4 protocol / IPv6 next header (IPPROTO_ICMP 1, TCP 6, UDP 17,
 * ICMPV6 58); index 0 counts packets that are not IPv4/IPv6 (e.g. ARP). */
#ifndef PROTO_COUNT_H
#define PROTO_COUNT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>

struct proto_stats {
	__u64 packets;
	__u64 bytes;
};

static __always_inline __u32 l4_proto(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return 0;
		return ip->protocol;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		return ip6->nexthdr;
	}
	return 0;
}

#endif
