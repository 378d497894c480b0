// SPDX-License-Identifier: GPL-2.0
/* `pybpfobj prog profile`: an fentry/fexit pair attached (at run time, with
 * bpf_program__set_attach_target) to the profiled program's main function.
 * fentry reads each selected perf counter of the current CPU; fexit reads it
 * again and adds the difference to accum_readings; counts counts the runs.
 * events holds the perf event fds: slot metric * num_cpu + cpu.
 * User space sets num_cpu/num_metric and sizes the maps before load. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_METRICS 4

const volatile __u32 num_cpu = 1;
const volatile __u32 num_metric = 1;

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(int));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_METRICS);
	__type(key, __u32);
	__type(value, struct bpf_perf_event_value);
} fentry_readings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_METRICS);
	__type(key, __u32);
	__type(value, struct bpf_perf_event_value);
} accum_readings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("fentry/XXX")
int fentry_XXX(void *ctx)
{
	__u32 slot = bpf_get_smp_processor_id();

	for (__u32 m = 0; m < MAX_METRICS && m < num_metric; m++) {
		struct bpf_perf_event_value *before = bpf_map_lookup_elem(&fentry_readings, &m);

		if (!before)
			return 0;
		if (bpf_perf_event_read_value(&events, slot, before, sizeof(*before)))
			return 0;
		slot += num_cpu;
	}
	return 0;
}

SEC("fexit/XXX")
int fexit_XXX(void *ctx)
{
	struct bpf_perf_event_value now, *before, *sum;
	__u32 slot = bpf_get_smp_processor_id();
	__u32 zero = 0;
	__u64 *runs;

	for (__u32 m = 0; m < MAX_METRICS && m < num_metric; m++) {
		if (bpf_perf_event_read_value(&events, slot, &now, sizeof(now)))
			return 0;
		before = bpf_map_lookup_elem(&fentry_readings, &m);
		sum = bpf_map_lookup_elem(&accum_readings, &m);
		if (!before || !sum)
			return 0;
		/* a counter that was never read at entry (attached mid-run) counts nothing */
		if (before->enabled) {
			sum->counter += now.counter - before->counter;
			sum->enabled += now.enabled - before->enabled;
			sum->running += now.running - before->running;
		}
		slot += num_cpu;
	}
	runs = bpf_map_lookup_elem(&counts, &zero);
	if (runs)
		*runs += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
