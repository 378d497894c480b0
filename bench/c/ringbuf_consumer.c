// SPDX-License-Identifier: GPL-2.0
/* Reference consumer for bench_events.py: drains the pinned ring buffer
 * argv[1] until argv[2] samples have been seen, reading each sample's u64
 * sequence number (as the Python consumer does), and prints
 * "<count> <seconds> <min> <max> <sum>" so the caller can check that it
 * consumed exactly the records the producer wrote. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static unsigned long long seen, lo = ~0ULL, hi, sum;

static int on_sample(void *ctx, void *data, size_t size)
{
	unsigned long long v;

	if (size < sizeof(v))
		return -1;
	memcpy(&v, data, sizeof(v));
	seen++;
	sum += v;
	if (v < lo)
		lo = v;
	if (v > hi)
		hi = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct ring_buffer *rb;
	struct timespec a, b;
	unsigned long long want;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PINNED_RINGBUF COUNT\n", argv[0]);
		return 2;
	}
	want = strtoull(argv[2], NULL, 0);
	fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		perror("bpf_obj_get");
		return 1;
	}
	rb = ring_buffer__new(fd, on_sample, NULL, NULL);
	if (!rb) {
		perror("ring_buffer__new");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	while (seen < want) {
		if (ring_buffer__poll(rb, 1000) <= 0)
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%llu %.9f %llu %llu %llu\n", seen, (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9,
	       lo, hi, sum);
	ring_buffer__free(rb);
	return 0;
}
