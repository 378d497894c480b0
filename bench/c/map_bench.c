// Reference timings for bench/bench_maps.py: the same operations in C over
// libbpf on a 100,000-entry u32 -> u64 hash map.  Prints one JSON object of
// nanoseconds (per element for the loops, whole-map for the batches), of
// process CPU time (user + system): on a shared machine, wall time mostly
// measures the neighbours.  The update loop is timed on its second pass, on
// keys that exist, as bench_maps.py times Python's.
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	unsigned int n = argc > 1 ? atoi(argv[1]) : 100000, i, count;
	__u32 *keys = calloc(n, sizeof(*keys));
	__u64 *vals = calloc(n, sizeof(*vals)), v;
	__u32 out_batch = 0;
	double t0, upd, lkp, dump = 1e18, bupd = 1e18, alkp;
	int fd, afd, r, rep;

	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "cbench", 4, 8, n, NULL);
	afd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "carr", 4, 8, 16, NULL);
	if (fd < 0 || afd < 0) {
		fprintf(stderr, "map create: %d %d\n", fd, afd);
		return 1;
	}
	for (rep = 0; rep < 2; rep++) {
		t0 = now_ns();
		for (i = 0; i < n; i++) {
			v = i * 2ULL;
			if (bpf_map_update_elem(fd, &i, &v, BPF_ANY))
				return 2;
		}
		upd = (now_ns() - t0) / n;
	}
	t0 = now_ns();
	for (i = 0; i < n; i++)
		if (bpf_map_lookup_elem(fd, &i, &v))
			return 3;
	lkp = (now_ns() - t0) / n;
	for (rep = 0; rep < 3; rep++) {
		void *in = NULL;
		unsigned int total = 0;
		t0 = now_ns();
		for (;;) {
			count = n - total;
			r = bpf_map_lookup_batch(fd, in, &out_batch, keys + total, vals + total, &count, NULL);
			total += count;
			if (r) {
				if (errno != ENOENT)
					return 4;
				break;
			}
			in = &out_batch;
		}
		t0 = now_ns() - t0;
		if (t0 < dump)
			dump = t0;
		if (total != n)
			return 5;
	}
	for (rep = 0; rep < 3; rep++) {
		for (i = 0; i < n; i++) {
			keys[i] = i;
			vals[i] = i * 3ULL;
		}
		count = n;
		t0 = now_ns();
		if (bpf_map_update_batch(fd, keys, vals, &count, NULL))
			return 6;
		t0 = now_ns() - t0;
		if (t0 < bupd)
			bupd = t0;
	}
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		__u32 k = i & 15;
		if (bpf_map_lookup_elem(afd, &k, &v))
			return 7;
	}
	alkp = (now_ns() - t0) / n;
	printf("{\"update\": %.1f, \"lookup\": %.1f, \"batch_dump\": %.1f, \"batch_update\": %.1f, "
	       "\"array_lookup\": %.1f}\n", upd, lkp, dump, bupd, alkp);
	return 0;
}
