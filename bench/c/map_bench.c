// Reference side of bench/bench_maps.py: the same operations in C over
// libbpf, on the *same* 100,000-entry u32 -> u64 hash map the Python side
// uses (opened from its pin), run in lockstep with the Python side.
//
//   map_bench PINNED_HASH N
//
// Reads one command per line on stdin and answers each with one line of
// nanoseconds of process CPU time (user + system; on a shared machine wall
// time mostly measures the neighbours):
//
//   update   N bpf_map_update_elem on keys 0..N-1 (they exist), per element
//   lookup   N bpf_map_lookup_elem, per element
//   dump     the whole map with bpf_map_lookup_batch in batches of N, whole
//   bupd     one bpf_map_update_batch of N elements, count N, no opts, whole
//   alookup  N lookups in a 16-entry array of our own, per element
//
// Only the calls are timed.  Every buffer is allocated and written once at
// start-up, before any timing (the Python side builds its array.array
// buffers once too), so neither side page-faults or first-touches a buffer
// inside a timed region; the batch update buffers are not the ones the dump
// writes into (Python's items() does not touch its update buffers either).
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	unsigned int n, i, count, total;
	__u32 *keys, *dkeys, out_batch = 0;
	__u64 *vals, *dvals, v;
	char cmd[64];
	double t0, r;
	int fd, afd, rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PINNED_HASH N\n", argv[0]);
		return 2;
	}
	n = atoi(argv[2]);
	fd = bpf_obj_get(argv[1]);
	afd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "carr", 4, 8, 16, NULL);
	if (fd < 0 || afd < 0) {
		fprintf(stderr, "map open/create: %d %d\n", fd, afd);
		return 1;
	}
	keys = malloc(n * sizeof(*keys));
	vals = malloc(n * sizeof(*vals));
	dkeys = malloc(n * sizeof(*dkeys));
	dvals = malloc(n * sizeof(*dvals));
	if (!keys || !vals || !dkeys || !dvals)
		return 1;
	for (i = 0; i < n; i++) {
		keys[i] = i;
		vals[i] = i * 3ULL;
	}
	memset(dkeys, 0, n * sizeof(*dkeys));
	memset(dvals, 0, n * sizeof(*dvals));

	while (fgets(cmd, sizeof(cmd), stdin)) {
		cmd[strcspn(cmd, "\n")] = 0;
		if (!strcmp(cmd, "update")) {
			t0 = now_ns();
			for (i = 0; i < n; i++) {
				v = i * 2ULL;
				if (bpf_map_update_elem(fd, &i, &v, BPF_ANY))
					return 3;
			}
			r = (now_ns() - t0) / n;
		} else if (!strcmp(cmd, "lookup")) {
			t0 = now_ns();
			for (i = 0; i < n; i++)
				if (bpf_map_lookup_elem(fd, &i, &v))
					return 4;
			r = (now_ns() - t0) / n;
		} else if (!strcmp(cmd, "dump")) {
			void *in = NULL;

			total = 0;
			t0 = now_ns();
			for (;;) {
				count = n - total;
				rc = bpf_map_lookup_batch(fd, in, &out_batch, dkeys + total, dvals + total,
							  &count, NULL);
				total += count;
				if (rc) {
					if (errno != ENOENT)
						return 5;
					break;
				}
				in = &out_batch;
			}
			r = now_ns() - t0;
			if (total != n)
				return 6;
		} else if (!strcmp(cmd, "bupd")) {
			count = n;
			t0 = now_ns();
			rc = bpf_map_update_batch(fd, keys, vals, &count, NULL);
			r = now_ns() - t0;
			if (rc || count != n)
				return 7;
		} else if (!strcmp(cmd, "alookup")) {
			t0 = now_ns();
			for (i = 0; i < n; i++) {
				__u32 k = i & 15;

				if (bpf_map_lookup_elem(afd, &k, &v))
					return 8;
			}
			r = (now_ns() - t0) / n;
		} else {
			fprintf(stderr, "unknown command %s\n", cmd);
			return 2;
		}
		printf("%.1f\n", r);
		fflush(stdout);
	}
	return 0;
}
