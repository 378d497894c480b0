"""The section-name table against libbpf's conventions."""

from __future__ import annotations

import pytest

from pybpfobj import constants
from pybpfobj.spec.sections import (
    BPFTOOL_PROG_TYPES,
    SECTION_DEFS,
    bpftool_prog_type,
    libbpf_knows,
    resolve_section,
)

# libbpf 1.1.2's own list, as it prints it when it cannot guess a type
# ("supported section(type) names are: ...").
LIBBPF_11_NAMES = ["socket", "sk_reuseport/migrate", "sk_reuseport", "kprobe+", "uprobe+", "uprobe.s+", "kretprobe+", "uretprobe+", "uretprobe.s+", "kprobe.multi+", "kretprobe.multi+", "ksyscall+", "kretsyscall+", "usdt+", "tc", "classifier", "action", "tracepoint+", "tp+", "raw_tracepoint+", "raw_tp+", "raw_tracepoint.w+", "raw_tp.w+", "tp_btf+", "fentry+", "fmod_ret+", "fexit+", "fentry.s+", "fmod_ret.s+", "fexit.s+", "freplace+", "lsm+", "lsm.s+", "lsm_cgroup+", "iter+", "iter.s+", "syscall", "xdp.frags/devmap", "xdp/devmap", "xdp.frags/cpumap", "xdp/cpumap", "xdp.frags", "xdp", "perf_event", "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local", "sockops", "sk_skb/stream_parser", "sk_skb/stream_verdict", "sk_skb", "sk_msg", "lirc_mode2", "flow_dissector", "cgroup_skb/ingress", "cgroup_skb/egress", "cgroup/skb", "cgroup/sock_create", "cgroup/sock_release", "cgroup/sock", "cgroup/post_bind4", "cgroup/post_bind6", "cgroup/bind4", "cgroup/bind6", "cgroup/connect4", "cgroup/connect6", "cgroup/sendmsg4", "cgroup/sendmsg6", "cgroup/recvmsg4", "cgroup/recvmsg6", "cgroup/getpeername4", "cgroup/getpeername6", "cgroup/getsockname4", "cgroup/getsockname6", "cgroup/sysctl", "cgroup/getsockopt", "cgroup/setsockopt", "cgroup/dev", "struct_ops+", "sk_lookup"]


def test_libbpf_11_subset_is_exactly_libbpfs_own_list_in_order() -> None:
    ours = [d.pattern for d in SECTION_DEFS if d.since <= (1, 1)]
    assert ours == LIBBPF_11_NAMES


def test_every_def_names_known_prog_and_attach_types() -> None:
    for d in SECTION_DEFS:
        assert d.prog_type in constants.PROG_TYPE, d
        assert d.attach_type is None or d.attach_type in constants.ATTACH_TYPE, d


@pytest.mark.parametrize("sec, prog_type, attach", [
    ("xdp", "xdp", "xdp"),
    ("xdp.frags", "xdp", "xdp"),
    ("xdp/devmap", "xdp", "xdp_devmap"),
    ("tc", "sched_cls", None),
    ("classifier", "sched_cls", None),
    ("socket", "socket_filter", None),
    ("kprobe/do_unlinkat", "kprobe", None),
    ("kprobe", "kprobe", None),
    ("kretprobe/do_unlinkat", "kprobe", None),
    ("kprobe.multi/vfs_*", "kprobe", "trace_kprobe_multi"),
    ("kprobe.session/foo", "kprobe", "trace_kprobe_session"),
    ("uprobe.multi//bin/sh:main", "kprobe", "trace_uprobe_multi"),
    ("tracepoint/syscalls/sys_enter_openat", "tracepoint", None),
    ("tp/sched/sched_switch", "tracepoint", None),
    ("raw_tracepoint/sys_enter", "raw_tracepoint", None),
    ("raw_tp.w/foo", "raw_tracepoint_writable", None),
    ("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"),
    ("sk_msg", "sk_msg", "sk_msg_verdict"),
    ("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser"),
    ("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict"),
    ("flow_dissector", "flow_dissector", "flow_dissector"),
    ("tcx/ingress", "sched_cls", "tcx_ingress"),
    ("tcx/egress", "sched_cls", "tcx_egress"),
    ("tc/ingress", "sched_cls", "tcx_ingress"),
    ("netkit/primary", "sched_cls", "netkit_primary"),
    ("netkit/peer", "sched_cls", "netkit_peer"),
    ("netfilter", "netfilter", "netfilter"),
    ("struct_ops/dummy", "struct_ops", None),
    ("struct_ops.s/dummy", "struct_ops", None),
    ("ksyscall/openat", "kprobe", None),
    ("usdt/libc:probe", "kprobe", None),
    ("fentry/do_unlinkat", "tracing", "trace_fentry"),
    ("lsm/file_open", "lsm", "lsm_mac"),
    ("cgroup/connect_unix", "cgroup_sock_addr", "cgroup_unix_connect"),
])
def test_resolve_section_gives_type_and_attach_type(sec: str, prog_type: str, attach: str | None) -> None:
    d = resolve_section(sec)
    assert d is not None
    assert (d.prog_type, d.attach_type) == (prog_type, attach)


@pytest.mark.parametrize("sec", ["foo/bar", "xdpfoo", "xdp/", "kprobex/foo", "tcx", "tcx/other",
                                 "socket/extra", "", "kprobe.multix", ".text"])
def test_unknown_or_malformed_sections_resolve_to_none(sec: str) -> None:
    assert resolve_section(sec) is None


def test_prefix_entries_need_a_slash_separator() -> None:
    assert resolve_section("kprobe/x") is not None
    assert resolve_section("kprobe_x") is None
    # "kprobe.multi" must not be taken for a "kprobe" prefix match
    d = resolve_section("kprobe.multi/x")
    assert d is not None and d.sec == "kprobe.multi"


@pytest.mark.parametrize("sec, known", [
    ("xdp", True), ("kprobe/do_unlinkat", True), ("sk_lookup", True),
    ("tcx/ingress", False), ("tcx/egress", False), ("netkit/primary", False), ("netfilter", False),
    ("uprobe.multi/x", False), ("kprobe.session/x", False), ("struct_ops.s/x", False),
    ("tc/ingress", False), ("sk_skb/verdict", False), ("foo/bar", False),
])
def test_libbpf_knows_version_11(sec: str, known: bool) -> None:
    assert libbpf_knows(sec, (1, 1)) is known


def test_newer_versions_know_newer_names() -> None:
    assert libbpf_knows("tcx/ingress", (1, 5))
    assert libbpf_knows("kprobe.session/x", (1, 5))
    assert not libbpf_knows("kprobe.session/x", (1, 4))


def test_versioned_resolution_skips_unknown_defs() -> None:
    # with 1.1, "tc/ingress" is not the tcx alias, and nothing else matches
    assert resolve_section("tc/ingress", (1, 1)) is None


def test_bpftool_type_keywords_all_resolve() -> None:
    for kw in BPFTOOL_PROG_TYPES:
        d = bpftool_prog_type(kw)
        assert d is not None, kw


@pytest.mark.parametrize("kw, prog_type, attach", [
    ("socket", "socket_filter", None), ("classifier", "sched_cls", None),
    ("kretprobe", "kprobe", None), ("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create"),
    ("sockops", "sock_ops", "cgroup_sock_ops"), ("fentry", "tracing", "trace_fentry"),
    ("freplace", "ext", None), ("struct_ops", "struct_ops", None),
])
def test_bpftool_type_keyword_mapping(kw: str, prog_type: str, attach: str | None) -> None:
    d = bpftool_prog_type(kw)
    assert d is not None and (d.prog_type, d.attach_type) == (prog_type, attach)


def test_bpftool_type_rejects_non_keywords_unless_extended() -> None:
    assert bpftool_prog_type("tcx/ingress") is None
    assert bpftool_prog_type("bogus") is None
    d = bpftool_prog_type("tcx/ingress", extended=True)
    assert d is not None and d.attach_type == "tcx_ingress"
