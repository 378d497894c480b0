// SPDX-License-Identifier: GPL-2.0
/* Reference consumer for bench_events.py: drains the pinned ring buffer
 * argv[1] until argv[2] samples have been seen; prints "<count> <seconds>". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static long seen;

static int on_sample(void *ctx, void *data, size_t size)
{
	seen++;
	return 0;
}

int main(int argc, char **argv)
{
	struct ring_buffer *rb;
	struct timespec a, b;
	long want;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PINNED_RINGBUF COUNT\n", argv[0]);
		return 2;
	}
	want = atol(argv[2]);
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
	printf("%ld %.9f\n", seen, (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	ring_buffer__free(rb);
	return 0;
}
