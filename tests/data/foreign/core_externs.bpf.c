// SPDX-License-Identifier: GPL-2.0
/* CO-RE relocations against locally declared vmlinux types, .kconfig and
 * __ksym externs. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	char comm[16];
} __attribute__((preserve_access_index));

struct pt_regs___x86 {
	unsigned long di;
} __attribute__((preserve_access_index));

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig __weak;
extern _Bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[64] __kconfig __weak;
extern unsigned long long CONFIG_NR_CPUS __kconfig __weak;
extern const void cpu_hw_events __ksym __weak;
extern const int cpu_number __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

SEC("kprobe/do_nanosleep")
int core_prog(struct pt_regs *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&out, &k);
	int ppid = BPF_CORE_READ(t, real_parent, tgid);
	int pid = 0;

	if (!v)
		return 0;
	if (bpf_core_field_exists(t->comm))
		*v = ppid + LINUX_KERNEL_VERSION + CONFIG_HZ + CONFIG_BPF_SYSCALL + CONFIG_DEFAULT_HOSTNAME[1] + CONFIG_NR_CPUS;
	*v += (unsigned long)&cpu_hw_events;
	bpf_probe_read_kernel(&pid, sizeof(pid), __builtin_preserve_access_index(&t->pid));
	*v += pid;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
