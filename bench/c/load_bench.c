// SPDX-License-Identifier: MIT
/* Reference for bench_load.py: open + load a BPF object with libbpf and
 * print the median time of one open+load in seconds (close not timed).
 *
 *   load_bench OBJ N    N loads, one median
 *   load_bench OBJ -    a batch per line read from stdin ("N"), one median
 *                       printed (and flushed) per batch, until EOF: the
 *                       benchmark interleaves these batches with its own
 *
 * A plain libbpf user: libbpf's default print function stays (warnings and
 * info lines to stderr, debug lines dropped), as pybpfobj sends the same
 * lines to logging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int batch(const char *path, int n, double *t)
{
	struct timespec a, b;

	for (int i = 0; i < n; i++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		struct bpf_object *obj = bpf_object__open_file(path, NULL);
		if (!obj || bpf_object__load(obj)) {
			fprintf(stderr, "load failed\n");
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		bpf_object__close(obj);
		t[i] = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	}
	qsort(t, n, sizeof(*t), cmp);
	printf("%.9f\n", t[n / 2]);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	char line[64];
	double *t;
	int n;

	if (argc < 2)
		return 2;
	if (argc > 2 && strcmp(argv[2], "-") == 0) {
		while (fgets(line, sizeof(line), stdin)) {
			n = atoi(line);
			if (n <= 0 || !(t = calloc(n, sizeof(*t))))
				return 2;
			if (batch(argv[1], n, t))
				return 1;
			free(t);
		}
		return 0;
	}
	n = argc > 2 ? atoi(argv[2]) : 20;
	if (n <= 0 || !(t = calloc(n, sizeof(*t))))
		return 2;
	return batch(argv[1], n, t);
}
