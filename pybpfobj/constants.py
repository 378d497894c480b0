"""Kernel enum values and the names libbpf and bpftool print for them.

Pure data: program types, map types, attach types, link types and map
flags, in the kernel's numbering (index in each tuple = enum value), up to
what Linux 6.18 knows.  The names are libbpf's ``libbpf_bpf_*_type_str``
spellings, which bpftool prints.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing stays out of start-up (annotations are strings)

PROG_TYPES: tuple[str, ...] = (
    "unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp",
    "perf_event", "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops",
    "sk_skb", "cgroup_device", "sk_msg", "raw_tracepoint", "cgroup_sock_addr", "lwt_seg6local",
    "lirc_mode2", "sk_reuseport", "flow_dissector", "cgroup_sysctl", "raw_tracepoint_writable",
    "cgroup_sockopt", "tracing", "struct_ops", "ext", "lsm", "sk_lookup", "syscall", "netfilter",
)

MAP_TYPES: tuple[str, ...] = (
    "unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash", "percpu_array",
    "stack_trace", "cgroup_array", "lru_hash", "lru_percpu_hash", "lpm_trie", "array_of_maps",
    "hash_of_maps", "devmap", "sockmap", "cpumap", "xskmap", "sockhash", "cgroup_storage",
    "reuseport_sockarray", "percpu_cgroup_storage", "queue", "stack", "sk_storage", "devmap_hash",
    "struct_ops", "ringbuf", "inode_storage", "task_storage", "bloom_filter", "user_ringbuf",
    "cgrp_storage", "arena",
)

ATTACH_TYPES: tuple[str, ...] = (
    "cgroup_inet_ingress", "cgroup_inet_egress", "cgroup_inet_sock_create", "cgroup_sock_ops",
    "sk_skb_stream_parser", "sk_skb_stream_verdict", "cgroup_device", "sk_msg_verdict",
    "cgroup_inet4_bind", "cgroup_inet6_bind", "cgroup_inet4_connect", "cgroup_inet6_connect",
    "cgroup_inet4_post_bind", "cgroup_inet6_post_bind", "cgroup_udp4_sendmsg", "cgroup_udp6_sendmsg",
    "lirc_mode2", "flow_dissector", "cgroup_sysctl", "cgroup_udp4_recvmsg", "cgroup_udp6_recvmsg",
    "cgroup_getsockopt", "cgroup_setsockopt", "trace_raw_tp", "trace_fentry", "trace_fexit",
    "modify_return", "lsm_mac", "trace_iter", "cgroup_inet4_getpeername", "cgroup_inet6_getpeername",
    "cgroup_inet4_getsockname", "cgroup_inet6_getsockname", "xdp_devmap", "cgroup_inet_sock_release",
    "xdp_cpumap", "sk_lookup", "xdp", "sk_skb_verdict", "sk_reuseport_select",
    "sk_reuseport_select_or_migrate", "perf_event", "trace_kprobe_multi", "lsm_cgroup", "struct_ops",
    "netfilter", "tcx_ingress", "tcx_egress", "trace_uprobe_multi", "cgroup_unix_connect",
    "cgroup_unix_sendmsg", "cgroup_unix_recvmsg", "cgroup_unix_getpeername", "cgroup_unix_getsockname",
    "netkit_primary", "netkit_peer", "trace_kprobe_session", "trace_uprobe_session",
)

LINK_TYPES: tuple[str, ...] = (
    "unspec", "raw_tracepoint", "tracing", "cgroup", "iter", "netns", "xdp", "perf_event",
    "kprobe_multi", "struct_ops", "netfilter", "tcx", "uprobe_multi", "netkit", "sockmap",
)

# map_flags bits (enum in linux/bpf.h)
BPF_F_NO_PREALLOC = 1 << 0
BPF_F_NO_COMMON_LRU = 1 << 1
BPF_F_NUMA_NODE = 1 << 2
BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4
BPF_F_STACK_BUILD_ID = 1 << 5
BPF_F_ZERO_SEED = 1 << 6
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_WRONLY_PROG = 1 << 8
BPF_F_CLONE = 1 << 9
BPF_F_MMAPABLE = 1 << 10
BPF_F_PRESERVE_ELEMS = 1 << 11
BPF_F_INNER_MAP = 1 << 12
BPF_F_LINK = 1 << 13
BPF_F_PATH_FD = 1 << 14

# update flags
BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK = 0, 1, 2, 4

# LIBBPF_PIN_* (map definition "pinning")
LIBBPF_PIN_NONE, LIBBPF_PIN_BY_NAME = 0, 1

PROG_TYPE = {name: i for i, name in enumerate(PROG_TYPES)}
MAP_TYPE = {name: i for i, name in enumerate(MAP_TYPES)}
ATTACH_TYPE = {name: i for i, name in enumerate(ATTACH_TYPES)}

# per-CPU map types: values are one slot per possible CPU
PERCPU_MAP_TYPES = frozenset(
    MAP_TYPE[n] for n in ("percpu_hash", "percpu_array", "lru_percpu_hash", "percpu_cgroup_storage")
)
MAP_IN_MAP_TYPES = frozenset((MAP_TYPE["array_of_maps"], MAP_TYPE["hash_of_maps"]))


def _name(table: tuple[str, ...], value: int) -> str | None:
    return table[value] if 0 <= value < len(table) else None


def prog_type_name(value: int) -> str:
    """bpftool's name of a program type, or ``type N`` style ``"unknown (N)"``."""
    return _name(PROG_TYPES, value) or f"unknown ({value})"


def map_type_name(value: int) -> str:
    return _name(MAP_TYPES, value) or f"unknown ({value})"


def attach_type_name(value: int) -> str:
    return _name(ATTACH_TYPES, value) or f"unknown ({value})"


def link_type_name(value: int) -> str:
    return _name(LINK_TYPES, value) or f"unknown ({value})"
