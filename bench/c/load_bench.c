// SPDX-License-Identifier: MIT
/* Reference for bench_load.py: open + load a BPF object with libbpf and
 * print the median time of one open+load in seconds (close not timed).
 *
 *   load_bench OBJ N    N loads, one median
 *   load_bench OBJ -    a batch per line read from stdin ("N"), one median
 *                       printed (and flushed) per batch, until EOF: the
 *                       benchmark interleaves these batches with its own
 *   load_bench OBJ - mem  the same, each open from the file's bytes read
 *                       once before (bpf_object__open_mem, named as
 *                       open_file names the path), as pybpfobj opens a file
 *                       it loaded before
 *
 * A plain libbpf user: libbpf's default print function stays (warnings and
 * info lines to stderr, debug lines dropped), as pybpfobj sends the same
 * lines to logging. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

static char *mem;		/* the file's bytes, for "mem" */
static size_t mem_size;
static char mem_name[16];

static int read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	const char *base = strrchr(path, '/');
	char *dot;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		return -1;
	mem = malloc(n ? n : 1);
	if (!mem || fread(mem, 1, n, f) != (size_t)n)
		return -1;
	fclose(f);
	mem_size = n;
	snprintf(mem_name, sizeof(mem_name), "%s", base ? base + 1 : path);
	dot = strchr(mem_name, '.');
	if (dot)
		*dot = 0;
	return 0;
}

static struct bpf_object *open_obj(const char *path)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = mem_name);

	return mem ? bpf_object__open_mem(mem, mem_size, &opts) : bpf_object__open_file(path, NULL);
}

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
		struct bpf_object *obj = open_obj(path);
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
	if (argc > 3 && strcmp(argv[3], "mem") == 0 && read_file(argv[1]))
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
