// SPDX-License-Identifier: MIT
/* Reference for bench_load.py: open + load a BPF object N times with libbpf
 * and print the median time of one open+load in seconds. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <bpf/libbpf.h>

static int quiet(enum libbpf_print_level l, const char *f, va_list a) { return 0; }

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 20;
	double *t = calloc(n, sizeof(*t));
	struct timespec a, b;

	if (argc < 2 || !t)
		return 2;
	libbpf_set_print(quiet);
	for (int i = 0; i < n; i++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
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
	return 0;
}
