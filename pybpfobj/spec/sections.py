"""libbpf's ELF section-name conventions for programs, as our own table.

A program's section (``SEC("kprobe/do_unlinkat")``) tells libbpf its program
type, its expected attach type and how to auto-attach it.  This module knows
those conventions, including names newer than the system libbpf (1.1), so the
loader can set the type itself where libbpf 1.1 would fail to guess it.

Matching follows libbpf's rules: a plain entry (``"xdp"``) matches only the
exact name; a *prefix* entry (``"kprobe"`` with ``prefix=True``, libbpf's
``kprobe+``) matches the exact name or the name followed by ``/extras``.
The first matching entry wins, so more specific names come first.
"""

from __future__ import annotations

# typing imported whole first: @dataclass reads typing from sys.modules, and another
# thread's first import of typing could show it half made (AttributeError: ClassVar)
import typing  # noqa: F401
from dataclasses import dataclass

__all__ = [
    "BPFTOOL_PROG_TYPES", "LIBBPF_SYSTEM_VERSION", "SECTION_DEFS", "SectionDef", "bpftool_prog_type",
    "libbpf_knows", "resolve_section",
]

#: The libbpf the loader binds to (libbpf1 1.1.2 on the target systems).
LIBBPF_SYSTEM_VERSION: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class SectionDef:
    """One section-name convention.

    ``prog_type`` and ``attach_type`` use the names of
    :mod:`pybpfobj.constants` (``"sched_cls"``, ``"tcx_ingress"``);
    ``attach_type`` is None where libbpf leaves the expected attach type 0.
    ``since`` is the first libbpf version that knows the name.
    """

    sec: str
    prog_type: str
    attach_type: str | None = None
    prefix: bool = False        # libbpf's "name+": exact, or "name/extras"
    attachable: bool = False    # libbpf passes the attach type at load (SEC_ATTACHABLE[_OPT])
    autoattach: bool = False    # bpf_program__attach() can attach it from the section alone
    sleepable: bool = False
    attach_btf: bool = False    # needs a BTF target named by the section (fentry/..., lsm/...)
    xdp_frags: bool = False
    since: tuple[int, int] = (1, 0)

    def matches(self, sec_name: str) -> bool:
        """Whether ``sec_name`` falls under this convention (libbpf's rules)."""
        if not self.prefix:
            return sec_name == self.sec
        if not sec_name.startswith(self.sec):
            return False
        rest = sec_name[len(self.sec):]
        return rest == "" or rest.startswith("/")

    @property
    def pattern(self) -> str:
        """The name as libbpf lists it: ``kprobe+`` for prefix entries."""
        return self.sec + ("+" if self.prefix else "")


def _d(sec: str, prog_type: str, attach_type: str | None = None, /, *, prefix: bool = False,
       attachable: bool = False, autoattach: bool = False, sleepable: bool = False,
       attach_btf: bool = False, xdp_frags: bool = False,
       since: tuple[int, int] = (1, 0)) -> SectionDef:
    return SectionDef(sec, prog_type, attach_type, prefix, attachable, autoattach, sleepable,
                      attach_btf, xdp_frags, since)


_NEW12 = (1, 2)
_NEW13 = (1, 3)
_NEW15 = (1, 5)
_NEW16 = (1, 6)

#: The table, in matching order (first match wins).
SECTION_DEFS: tuple[SectionDef, ...] = (
    _d("socket", "socket_filter"),
    _d("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate", attachable=True),
    _d("sk_reuseport", "sk_reuseport", "sk_reuseport_select", attachable=True),
    _d("kprobe", "kprobe", prefix=True, autoattach=True),
    _d("uprobe", "kprobe", prefix=True, autoattach=True),
    _d("uprobe.s", "kprobe", sleepable=True, prefix=True, autoattach=True),
    _d("kretprobe", "kprobe", prefix=True, autoattach=True),
    _d("uretprobe", "kprobe", prefix=True, autoattach=True),
    _d("uretprobe.s", "kprobe", sleepable=True, prefix=True, autoattach=True),
    _d("kprobe.multi", "kprobe", "trace_kprobe_multi", prefix=True, autoattach=True),
    _d("kretprobe.multi", "kprobe", "trace_kprobe_multi", prefix=True, autoattach=True),
    _d("kprobe.session", "kprobe", "trace_kprobe_session", since=_NEW15, prefix=True, autoattach=True),
    _d("uprobe.multi", "kprobe", "trace_uprobe_multi", since=_NEW13, prefix=True, autoattach=True),
    _d("uretprobe.multi", "kprobe", "trace_uprobe_multi", since=_NEW13, prefix=True, autoattach=True),
    _d("uprobe.multi.s", "kprobe", "trace_uprobe_multi", sleepable=True, since=_NEW13, prefix=True, autoattach=True),
    _d("uretprobe.multi.s", "kprobe", "trace_uprobe_multi", sleepable=True, since=_NEW13, prefix=True,
       autoattach=True),
    _d("uprobe.session", "kprobe", "trace_uprobe_session", since=_NEW16, prefix=True, autoattach=True),
    _d("uprobe.session.s", "kprobe", "trace_uprobe_session", sleepable=True, since=_NEW16, prefix=True,
       autoattach=True),
    _d("ksyscall", "kprobe", prefix=True, autoattach=True),
    _d("kretsyscall", "kprobe", prefix=True, autoattach=True),
    _d("usdt", "kprobe", prefix=True, autoattach=True),
    _d("usdt.s", "kprobe", sleepable=True, since=_NEW15, prefix=True, autoattach=True),
    # tc/ingress and tc/egress are libbpf's aliases of tcx/*
    _d("tc/ingress", "sched_cls", "tcx_ingress", since=_NEW13),
    _d("tc/egress", "sched_cls", "tcx_egress", since=_NEW13),
    _d("tcx/ingress", "sched_cls", "tcx_ingress", since=_NEW13),
    _d("tcx/egress", "sched_cls", "tcx_egress", since=_NEW13),
    _d("netkit/primary", "sched_cls", "netkit_primary", since=_NEW13),
    _d("netkit/peer", "sched_cls", "netkit_peer", since=_NEW13),
    _d("tc", "sched_cls"),
    _d("classifier", "sched_cls"),
    _d("action", "sched_act"),
    _d("tracepoint", "tracepoint", prefix=True, autoattach=True),
    _d("tp", "tracepoint", prefix=True, autoattach=True),
    _d("raw_tracepoint", "raw_tracepoint", prefix=True, autoattach=True),
    _d("raw_tp", "raw_tracepoint", prefix=True, autoattach=True),
    _d("raw_tracepoint.w", "raw_tracepoint_writable", prefix=True, autoattach=True),
    _d("raw_tp.w", "raw_tracepoint_writable", prefix=True, autoattach=True),
    _d("tp_btf", "tracing", "trace_raw_tp", attach_btf=True, prefix=True, autoattach=True),
    _d("fentry", "tracing", "trace_fentry", attach_btf=True, prefix=True, autoattach=True),
    _d("fmod_ret", "tracing", "modify_return", attach_btf=True, prefix=True, autoattach=True),
    _d("fexit", "tracing", "trace_fexit", attach_btf=True, prefix=True, autoattach=True),
    _d("fentry.s", "tracing", "trace_fentry", attach_btf=True, sleepable=True, prefix=True, autoattach=True),
    _d("fmod_ret.s", "tracing", "modify_return", attach_btf=True, sleepable=True, prefix=True, autoattach=True),
    _d("fexit.s", "tracing", "trace_fexit", attach_btf=True, sleepable=True, prefix=True, autoattach=True),
    _d("freplace", "ext", attach_btf=True, prefix=True, autoattach=True),
    _d("lsm", "lsm", "lsm_mac", attach_btf=True, prefix=True, autoattach=True),
    _d("lsm.s", "lsm", "lsm_mac", attach_btf=True, sleepable=True, prefix=True, autoattach=True),
    _d("lsm_cgroup", "lsm", "lsm_cgroup", attach_btf=True, prefix=True),
    _d("iter", "tracing", "trace_iter", attach_btf=True, prefix=True, autoattach=True),
    _d("iter.s", "tracing", "trace_iter", attach_btf=True, sleepable=True, prefix=True, autoattach=True),
    _d("syscall", "syscall", sleepable=True),
    _d("xdp.frags/devmap", "xdp", "xdp_devmap", xdp_frags=True, attachable=True),
    _d("xdp/devmap", "xdp", "xdp_devmap", attachable=True),
    _d("xdp.frags/cpumap", "xdp", "xdp_cpumap", xdp_frags=True, attachable=True),
    _d("xdp/cpumap", "xdp", "xdp_cpumap", attachable=True),
    _d("xdp.frags", "xdp", "xdp", xdp_frags=True, attachable=True),
    _d("xdp", "xdp", "xdp", attachable=True),
    _d("perf_event", "perf_event"),
    _d("lwt_in", "lwt_in"),
    _d("lwt_out", "lwt_out"),
    _d("lwt_xmit", "lwt_xmit"),
    _d("lwt_seg6local", "lwt_seg6local"),
    _d("sockops", "sock_ops", "cgroup_sock_ops", attachable=True),
    _d("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser", attachable=True),
    _d("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict", attachable=True),
    _d("sk_skb/verdict", "sk_skb", "sk_skb_verdict", since=_NEW12, attachable=True),
    _d("sk_skb", "sk_skb"),
    _d("sk_msg", "sk_msg", "sk_msg_verdict", attachable=True),
    _d("lirc_mode2", "lirc_mode2", "lirc_mode2", attachable=True),
    _d("flow_dissector", "flow_dissector", "flow_dissector", attachable=True),
    _d("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress", attachable=True),
    _d("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress", attachable=True),
    _d("cgroup/skb", "cgroup_skb"),
    _d("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create", attachable=True),
    _d("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release", attachable=True),
    _d("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create", attachable=True),
    _d("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind", attachable=True),
    _d("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind", attachable=True),
    _d("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind", attachable=True),
    _d("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind", attachable=True),
    _d("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect", attachable=True),
    _d("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect", attachable=True),
    _d("cgroup/connect_unix", "cgroup_sock_addr", "cgroup_unix_connect", since=_NEW13, attachable=True),
    _d("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg", attachable=True),
    _d("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg", attachable=True),
    _d("cgroup/sendmsg_unix", "cgroup_sock_addr", "cgroup_unix_sendmsg", since=_NEW13, attachable=True),
    _d("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg", attachable=True),
    _d("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg", attachable=True),
    _d("cgroup/recvmsg_unix", "cgroup_sock_addr", "cgroup_unix_recvmsg", since=_NEW13, attachable=True),
    _d("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername", attachable=True),
    _d("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername", attachable=True),
    _d("cgroup/getpeername_unix", "cgroup_sock_addr", "cgroup_unix_getpeername", since=_NEW13,
       attachable=True),
    _d("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname", attachable=True),
    _d("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname", attachable=True),
    _d("cgroup/getsockname_unix", "cgroup_sock_addr", "cgroup_unix_getsockname", since=_NEW13,
       attachable=True),
    _d("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl", attachable=True),
    _d("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt", attachable=True),
    _d("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt", attachable=True),
    _d("cgroup/dev", "cgroup_device", "cgroup_device", attachable=True),
    _d("struct_ops", "struct_ops", prefix=True),
    _d("struct_ops.s", "struct_ops", sleepable=True, since=_NEW13, prefix=True),
    _d("sk_lookup", "sk_lookup", "sk_lookup", attachable=True),
    _d("netfilter", "netfilter", "netfilter", since=_NEW12),
)

#: bpftool 7.1's ``prog load ... type TYPE`` keywords (``bpftool prog help``).
BPFTOOL_PROG_TYPES: tuple[str, ...] = (
    "socket", "kprobe", "kretprobe", "classifier", "action", "tracepoint", "raw_tracepoint",
    "xdp", "perf_event", "cgroup/skb", "cgroup/sock", "cgroup/dev", "lwt_in", "lwt_out",
    "lwt_xmit", "lwt_seg6local", "sockops", "sk_skb", "sk_msg", "lirc_mode2", "sk_reuseport",
    "flow_dissector", "cgroup/sysctl", "cgroup/bind4", "cgroup/bind6", "cgroup/post_bind4",
    "cgroup/post_bind6", "cgroup/connect4", "cgroup/connect6", "cgroup/getpeername4",
    "cgroup/getpeername6", "cgroup/getsockname4", "cgroup/getsockname6", "cgroup/sendmsg4",
    "cgroup/sendmsg6", "cgroup/recvmsg4", "cgroup/recvmsg6", "cgroup/getsockopt",
    "cgroup/setsockopt", "cgroup/sock_release", "struct_ops", "fentry", "fexit", "freplace",
    "sk_lookup",
)


def resolve_section(sec_name: str, version: tuple[int, int] | None = None) -> SectionDef | None:
    """The convention ``sec_name`` falls under, or None if no libbpf knows it.

    With ``version``, only names known to that libbpf version count.
    """
    for d in SECTION_DEFS:
        if version is not None and d.since > version:
            continue
        if d.matches(sec_name):
            return d
    return None


def libbpf_knows(sec_name: str, version: tuple[int, int] = LIBBPF_SYSTEM_VERSION) -> bool:
    """Whether libbpf ``version`` can guess the program type from ``sec_name``.

    When it cannot but :func:`resolve_section` can, the loader sets the type
    and expected attach type itself before load.
    """
    return resolve_section(sec_name, version) is not None


def bpftool_prog_type(keyword: str, *, extended: bool = False) -> SectionDef | None:
    """The program type and attach type for bpftool's ``type TYPE`` keyword.

    Only bpftool 7.1's keywords are accepted unless ``extended``, which
    admits any section name of our table (``tcx/ingress``, ``netfilter``...).
    """
    if keyword in BPFTOOL_PROG_TYPES or extended:
        return resolve_section(keyword)
    return None
