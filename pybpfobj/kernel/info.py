"""Kernel object introspection: ``BPF_OBJ_GET_INFO_BY_FD`` for programs,
maps, BTF objects and links, id iteration, fds by id, pinning, the processes
holding an object (from ``/proc/*/fdinfo``) and the bpffs paths it is pinned
at (bpftool's ``-f``).

The ctypes structures follow ``<linux/bpf.h>``; fields newer than the
installed headers sit at the end (the kernel accepts a longer struct whose
tail is zero and fills what it knows, so older kernels just leave them 0).
Results are plain dataclasses: names decoded, tags as hex strings, arrays
as Python lists.  Variable-length data (instructions, line info, ...) is
fetched only when asked, with a second call sized from the first.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os

# typing imported whole first: @dataclass reads typing from sys.modules, and another
# thread's first import of typing could show it half made (AttributeError: ClassVar)
import typing  # noqa: F401
from collections.abc import Iterable, Iterator
from ctypes import (
    Structure,
    Union,
    c_char,
    c_int,
    c_uint8,
    c_uint32,
    c_uint64,
    sizeof,
)
from dataclasses import dataclass, field
from typing import TypeVar

from pybpfobj.constants import link_type_name, map_type_name, prog_type_name
from pybpfobj.errors import BpfError, LibbpfError, NotFoundError, PinError
from pybpfobj.kernel import libbpf

BPF_TAG_SIZE = 8
BPF_OBJ_NAME_LEN = 16

KINDS = ("prog", "map", "btf", "link")
# What /proc/PID/fd/N links to for each kind (anon inode names).
_ANON_NAMES = {"prog": "anon_inode:bpf-prog", "map": "anon_inode:bpf-map", "link": "anon_inode:bpf_link",
               "btf": "anon_inode:btf"}
# The fdinfo line naming the object's id, per kind.
_FDINFO_KEYS = {"prog": "prog_id:", "map": "map_id:", "link": "link_id:", "btf": "btf_id:"}


# ---------------------------------------------------------------------------
# structures

class bpf_prog_info(Structure):
    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("tag", c_uint8 * BPF_TAG_SIZE),
        ("jited_prog_len", c_uint32),
        ("xlated_prog_len", c_uint32),
        ("jited_prog_insns", c_uint64),
        ("xlated_prog_insns", c_uint64),
        ("load_time", c_uint64),
        ("created_by_uid", c_uint32),
        ("nr_map_ids", c_uint32),
        ("map_ids", c_uint64),
        ("name", c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", c_uint32),
        ("gpl_compatible", c_uint32, 1),
        ("_pad0", c_uint32, 31),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("nr_jited_ksyms", c_uint32),
        ("nr_jited_func_lens", c_uint32),
        ("jited_ksyms", c_uint64),
        ("jited_func_lens", c_uint64),
        ("btf_id", c_uint32),
        ("func_info_rec_size", c_uint32),
        ("func_info", c_uint64),
        ("nr_func_info", c_uint32),
        ("nr_line_info", c_uint32),
        ("line_info", c_uint64),
        ("jited_line_info", c_uint64),
        ("nr_jited_line_info", c_uint32),
        ("line_info_rec_size", c_uint32),
        ("jited_line_info_rec_size", c_uint32),
        ("nr_prog_tags", c_uint32),
        ("prog_tags", c_uint64),
        ("run_time_ns", c_uint64),
        ("run_cnt", c_uint64),
        ("recursion_misses", c_uint64),
        ("verified_insns", c_uint32),
        ("attach_btf_obj_id", c_uint32),
        ("attach_btf_id", c_uint32),
        ("_pad1", c_uint32),
    ]


class bpf_map_info(Structure):
    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("name", c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("btf_id", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("btf_vmlinux_id", c_uint32),   # 6.x: was padding
        ("map_extra", c_uint64),
        # 6.18 (signed programs): SHA-256 of a frozen map's contents, on request.
        ("hash", c_uint64),
        ("hash_size", c_uint32),
        ("_pad0", c_uint32),
    ]


class bpf_btf_info(Structure):
    _fields_ = [
        ("btf", c_uint64),
        ("btf_size", c_uint32),
        ("id", c_uint32),
        ("name", c_uint64),
        ("name_len", c_uint32),
        ("kernel_btf", c_uint32),
    ]


class _link_raw_tp(Structure):
    _fields_ = [("tp_name", c_uint64), ("tp_name_len", c_uint32)]


class _link_tracing(Structure):
    _fields_ = [("attach_type", c_uint32), ("target_obj_id", c_uint32), ("target_btf_id", c_uint32)]


class _link_cgroup(Structure):
    _fields_ = [("cgroup_id", c_uint64), ("attach_type", c_uint32)]


class _link_iter(Structure):
    _fields_ = [("target_name", c_uint64), ("target_name_len", c_uint32), ("map_id", c_uint32),
                ("cgroup_id", c_uint64), ("order", c_uint32)]


class _link_netns(Structure):
    _fields_ = [("netns_ino", c_uint32), ("attach_type", c_uint32)]


class _link_ifindex(Structure):
    # xdp {ifindex}; tcx/netkit {ifindex, attach_type}
    _fields_ = [("ifindex", c_uint32), ("attach_type", c_uint32)]


class _link_netfilter(Structure):
    _fields_ = [("pf", c_uint32), ("hooknum", c_uint32), ("priority", c_int), ("flags", c_uint32)]


class _link_union(Union):
    _fields_ = [
        ("raw_tracepoint", _link_raw_tp),
        ("tracing", _link_tracing),
        ("cgroup", _link_cgroup),
        ("iter", _link_iter),
        ("netns", _link_netns),
        ("xdp", _link_ifindex),
        ("tcx", _link_ifindex),
        ("netkit", _link_ifindex),
        ("netfilter", _link_netfilter),
        # Room for the 6.x members (kprobe_multi, uprobe_multi, perf_event, ...).
        ("_raw", c_uint8 * 64),
    ]


class bpf_link_info(Structure):
    _anonymous_ = ("u",)
    _fields_ = [("type", c_uint32), ("id", c_uint32), ("prog_id", c_uint32), ("_pad0", c_uint32),
                ("u", _link_union)]


class bpf_line_info(Structure):
    _fields_ = [("insn_off", c_uint32), ("file_name_off", c_uint32), ("line_off", c_uint32),
                ("line_col", c_uint32)]


class bpf_func_info(Structure):
    _fields_ = [("insn_off", c_uint32), ("type_id", c_uint32)]


# ---------------------------------------------------------------------------
# prototypes (the id/fd/info calls are declared in libbpf._fd_and_ids)

@libbpf.declares
def _info_protos(lb: ctypes.CDLL) -> None:
    # Nothing beyond libbpf._fd_and_ids is needed; kept as this module's hook.
    return None


# ---------------------------------------------------------------------------
# results

@dataclass
class LineInfoRec:
    """One ``bpf_line_info`` record: offsets are into the program's BTF strings."""

    insn_off: int
    file_name_off: int
    line_off: int
    line_num: int
    line_col: int


@dataclass
class ProgInfo:
    """``bpf_prog_info`` of one program, decoded."""

    id: int
    type: int
    type_name: str
    name: str
    tag: str
    gpl_compatible: bool
    load_time: int               # ns since boot
    created_by_uid: int
    xlated_prog_len: int
    jited_prog_len: int
    map_ids: list[int]
    btf_id: int
    ifindex: int
    netns_dev: int
    netns_ino: int
    run_time_ns: int
    run_cnt: int
    recursion_misses: int
    verified_insns: int
    attach_btf_obj_id: int
    attach_btf_id: int
    nr_func_info: int
    nr_line_info: int
    nr_jited_ksyms: int
    xlated: bytes | None = None
    jited: bytes | None = None
    func_info: list[tuple[int, int]] | None = None   # (insn_off, btf type id)
    line_info: list[LineInfoRec] | None = None
    jited_ksyms: list[int] | None = None
    jited_func_lens: list[int] | None = None
    jited_line_info: list[int] | None = None

    def load_time_epoch(self) -> int:
        """Load time as Unix epoch seconds (bpftool's ``loaded_at``)."""
        return boot_time_to_epoch(self.load_time)


@dataclass
class MapInfo:
    """``bpf_map_info`` of one map, decoded."""

    id: int
    type: int
    type_name: str
    name: str
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    ifindex: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    btf_vmlinux_value_type_id: int
    map_extra: int
    netns_dev: int = 0
    netns_ino: int = 0


@dataclass
class BtfInfo:
    """``bpf_btf_info``: id, size, name (for module/vmlinux BTF) and whether it is a kernel BTF."""

    id: int
    btf_size: int
    name: str
    kernel_btf: bool
    data: bytes | None = None


@dataclass
class LinkInfo:
    """``bpf_link_info``: the common fields plus the per-type details as a dict."""

    id: int
    type: int
    type_name: str
    prog_id: int
    details: dict[str, object] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# helpers

def boot_time_to_epoch(ns_since_boot: int) -> int:
    """Convert CLOCK_BOOTTIME nanoseconds into Unix epoch seconds, as bpftool
    does: the clocks' offset taken to the nanosecond, the sum floored once
    (flooring each clock to whole seconds first is one second off about
    half the time)."""
    import time

    real = time.clock_gettime_ns(time.CLOCK_REALTIME)
    boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    return (real - boot + ns_since_boot) // 1_000_000_000


def _get_info(fd: int, struct: Structure, what: str) -> None:
    n = c_uint32(sizeof(struct))
    ret = libbpf.lib().bpf_obj_get_info_by_fd(fd, ctypes.byref(struct), ctypes.byref(n))
    if ret < 0:
        err = -ret
        if err == _errno.EBADF:
            raise BpfError(f"{what}: fd {fd} is not open: {os.strerror(err)}", errno=err)
        if err == _errno.EINVAL:
            raise BpfError(f"{what}: fd {fd} is not a BPF object of that kind: {os.strerror(err)}",
                           errno=err)
        libbpf.check(ret, what)


def fd_kind(fd: int) -> str | None:
    """``prog``, ``map``, ``link`` or ``btf`` for a BPF object fd, None for anything else."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    for kind, anon in _ANON_NAMES.items():
        if target == anon:
            return kind
    # a link fd from BPF_OBJ_GET / BPF_LINK_GET_FD_BY_ID is named "bpf-link"
    # (bpf_link_new_fd), unlike the "bpf_link" of the fd made at attach time
    return "link" if target == "anon_inode:bpf-link" else None


def _require_kind(fd: int, kind: str, what: str) -> None:
    actual = fd_kind(fd)
    if actual is None:
        try:
            os.fstat(fd)
        except OSError:
            raise BpfError(f"{what}: fd {fd} is not open", errno=_errno.EBADF) from None
        raise BpfError(f"{what}: fd {fd} is not a BPF {kind}", errno=_errno.EINVAL)
    if actual != kind:
        raise BpfError(f"{what}: fd {fd} is a BPF {actual}, not a {kind}", errno=_errno.EINVAL)


def _ask(info: Structure, bufs: dict[str, object], key: str, nbytes: int, ptr_field: str,
         **counts: int) -> None:
    """Point ``info.ptr_field`` at a new ``nbytes`` buffer (kept in ``bufs[key]``) and set
    the count/record-size fields that go with it, for a second get-info call."""
    b = ctypes.create_string_buffer(nbytes)
    bufs[key] = b
    for name, value in counts.items():
        setattr(info, name, value)
    setattr(info, ptr_field, ctypes.addressof(b))


# ---------------------------------------------------------------------------
# programs

def prog_info(fd: int, *, xlated: bool = False, jited: bool = False, func_info: bool = False,
              line_info: bool = False, jited_ksyms: bool = False) -> ProgInfo:
    """``bpf_prog_info`` of the program behind ``fd``.

    The keyword flags fetch the variable-length parts with a second call,
    sized from the first (so a program replaced in between is still read
    consistently: the kernel never writes past the sizes we give).
    """
    _require_kind(fd, "prog", "get program info")
    info = bpf_prog_info()
    _get_info(fd, info, "get program info")
    nr_maps = info.nr_map_ids
    want_extra = nr_maps or xlated or jited or func_info or line_info or jited_ksyms
    map_buf = (c_uint32 * max(nr_maps, 1))()
    bufs: dict[str, object] = {}
    if want_extra:
        first = info
        info = bpf_prog_info()
        info.nr_map_ids = nr_maps
        info.map_ids = ctypes.addressof(map_buf)
        if xlated and first.xlated_prog_len:
            _ask(info, bufs, "xlated", first.xlated_prog_len, "xlated_prog_insns",
                 xlated_prog_len=first.xlated_prog_len)
        if jited and first.jited_prog_len:
            _ask(info, bufs, "jited", first.jited_prog_len, "jited_prog_insns",
                 jited_prog_len=first.jited_prog_len)
        if func_info and first.nr_func_info:
            rec = first.func_info_rec_size or sizeof(bpf_func_info)
            _ask(info, bufs, "func_info", rec * first.nr_func_info, "func_info",
                 nr_func_info=first.nr_func_info, func_info_rec_size=rec)
        if line_info and first.nr_line_info:
            rec = first.line_info_rec_size or sizeof(bpf_line_info)
            _ask(info, bufs, "line_info", rec * first.nr_line_info, "line_info",
                 nr_line_info=first.nr_line_info, line_info_rec_size=rec)
            if jited and first.nr_jited_line_info:
                jrec = first.jited_line_info_rec_size or 8
                _ask(info, bufs, "jited_line_info", jrec * first.nr_jited_line_info, "jited_line_info",
                     nr_jited_line_info=first.nr_jited_line_info, jited_line_info_rec_size=jrec)
        if jited_ksyms and first.nr_jited_ksyms:
            ks = (c_uint64 * first.nr_jited_ksyms)()
            fl = (c_uint32 * first.nr_jited_func_lens)()
            bufs["ksyms"] = ks
            bufs["flens"] = fl
            info.nr_jited_ksyms = first.nr_jited_ksyms
            info.jited_ksyms = ctypes.addressof(ks)
            info.nr_jited_func_lens = first.nr_jited_func_lens
            info.jited_func_lens = ctypes.addressof(fl)
        _get_info(fd, info, "get program info")
        # Report the sizes of the first call: the second only echoes what we asked for.
        for name in ("xlated_prog_len", "jited_prog_len", "nr_func_info", "nr_line_info",
                     "nr_jited_ksyms"):
            setattr(info, name, getattr(first, name))
        nr_maps = min(nr_maps, info.nr_map_ids)
    result = ProgInfo(
        id=info.id,
        type=info.type,
        type_name=prog_type_name(info.type),
        name=info.name.decode("utf-8", "replace"),
        tag=bytes(info.tag).hex(),
        gpl_compatible=bool(info.gpl_compatible),
        load_time=info.load_time,
        created_by_uid=info.created_by_uid,
        xlated_prog_len=info.xlated_prog_len,
        jited_prog_len=info.jited_prog_len,
        map_ids=[map_buf[i] for i in range(nr_maps)],
        btf_id=info.btf_id,
        ifindex=info.ifindex,
        netns_dev=info.netns_dev,
        netns_ino=info.netns_ino,
        run_time_ns=info.run_time_ns,
        run_cnt=info.run_cnt,
        recursion_misses=info.recursion_misses,
        verified_insns=info.verified_insns,
        attach_btf_obj_id=info.attach_btf_obj_id,
        attach_btf_id=info.attach_btf_id,
        nr_func_info=info.nr_func_info,
        nr_line_info=info.nr_line_info,
        nr_jited_ksyms=info.nr_jited_ksyms,
    )
    if "xlated" in bufs:
        result.xlated = bytes(bufs["xlated"])  # type: ignore[call-overload]
    elif xlated:
        result.xlated = b""
    if "jited" in bufs:
        result.jited = bytes(bufs["jited"])  # type: ignore[call-overload]
    elif jited:
        result.jited = b""
    if "func_info" in bufs:
        raw = bytes(bufs["func_info"])  # type: ignore[call-overload]
        rec = first.func_info_rec_size or 8
        result.func_info = [
            (int.from_bytes(raw[i:i + 4], "little"), int.from_bytes(raw[i + 4:i + 8], "little"))
            for i in range(0, rec * first.nr_func_info, rec)
        ]
    elif func_info:
        result.func_info = []
    if "line_info" in bufs:
        raw = bytes(bufs["line_info"])  # type: ignore[call-overload]
        rec = first.line_info_rec_size or 16
        recs = []
        for i in range(0, rec * first.nr_line_info, rec):
            li = bpf_line_info.from_buffer_copy(raw[i:i + 16])
            recs.append(LineInfoRec(li.insn_off, li.file_name_off, li.line_off, li.line_col >> 10,
                                    li.line_col & 0x3FF))
        result.line_info = recs
    elif line_info:
        result.line_info = []
    if "jited_line_info" in bufs:
        raw = bytes(bufs["jited_line_info"])  # type: ignore[call-overload]
        result.jited_line_info = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]
    if "ksyms" in bufs:
        result.jited_ksyms = list(bufs["ksyms"])  # type: ignore[call-overload]
        result.jited_func_lens = list(bufs["flens"])  # type: ignore[call-overload]
    elif jited_ksyms:
        result.jited_ksyms = []
        result.jited_func_lens = []
    return result


def prog_full_name(fd: int, pi: ProgInfo | None = None) -> str:
    """The program's name, completed from BTF when the kernel truncated it.

    The kernel keeps 15 characters; like bpftool, a name of exactly that
    length is replaced by the first BTF function's name (a loader may have
    given the kernel another name altogether).
    """
    if pi is None:
        pi = prog_info(fd)
    if len(pi.name) < BPF_OBJ_NAME_LEN - 1 or not pi.btf_id or not pi.nr_func_info:
        return pi.name
    try:
        full = prog_info(fd, func_info=True)
        if not full.func_info:
            return pi.name
        from pybpfobj.spec.btf import BTF

        btf = BTF.from_bytes(btf_data(pi.btf_id), source=f"BTF id {pi.btf_id}")
        name = str(btf.type(full.func_info[0][1]).name)
    except BpfError:
        return pi.name
    return name or pi.name


# ---------------------------------------------------------------------------
# maps, BTF, links

def map_info(fd: int) -> MapInfo:
    """``bpf_map_info`` of the map behind ``fd``."""
    _require_kind(fd, "map", "get map info")
    info = bpf_map_info()
    _get_info(fd, info, "get map info")
    return MapInfo(
        id=info.id, type=info.type, type_name=map_type_name(info.type),
        name=info.name.decode("utf-8", "replace"), key_size=info.key_size,
        value_size=info.value_size, max_entries=info.max_entries, map_flags=info.map_flags,
        ifindex=info.ifindex, btf_id=info.btf_id, btf_key_type_id=info.btf_key_type_id,
        btf_value_type_id=info.btf_value_type_id,
        btf_vmlinux_value_type_id=info.btf_vmlinux_value_type_id, map_extra=info.map_extra,
        netns_dev=info.netns_dev, netns_ino=info.netns_ino,
    )


def btf_info(fd: int, *, data: bool = False) -> BtfInfo:
    """``bpf_btf_info`` of the BTF object behind ``fd``; ``data=True`` also fetches the blob."""
    _require_kind(fd, "btf", "get BTF info")
    name_buf = ctypes.create_string_buffer(256)
    info = bpf_btf_info()
    info.name = ctypes.addressof(name_buf)
    info.name_len = len(name_buf)
    _get_info(fd, info, "get BTF info")
    blob: bytes | None = None
    if data:
        size = info.btf_size
        buf = ctypes.create_string_buffer(max(size, 1))
        info2 = bpf_btf_info()
        info2.btf = ctypes.addressof(buf)
        info2.btf_size = size
        _get_info(fd, info2, "get BTF info")
        blob = buf.raw[:min(size, info2.btf_size)]
    return BtfInfo(id=info.id, btf_size=info.btf_size, name=name_buf.value.decode("utf-8", "replace"),
                   kernel_btf=bool(info.kernel_btf), data=blob)


def btf_data(btf_id: int) -> bytes:
    """The raw BTF blob of loaded BTF object ``btf_id`` (for :class:`pybpfobj.spec.btf.BTF`)."""
    fd = btf_fd_by_id(btf_id)
    try:
        data = btf_info(fd, data=True).data
        assert data is not None
        return data
    finally:
        os.close(fd)


def link_info(fd: int) -> LinkInfo:
    """``bpf_link_info`` of the link behind ``fd``, per-type details in ``details``."""
    _require_kind(fd, "link", "get link info")
    name_buf = ctypes.create_string_buffer(512)
    info = bpf_link_info()
    _get_info(fd, info, "get link info")
    lt = link_type_name(info.type)
    if lt in ("raw_tracepoint", "iter"):
        # Ask again with a buffer for the name (tp_name / target_name).
        kind = info.type
        info = bpf_link_info()
        if lt == "raw_tracepoint":
            info.raw_tracepoint.tp_name = ctypes.addressof(name_buf)
            info.raw_tracepoint.tp_name_len = len(name_buf)
        else:
            info.iter.target_name = ctypes.addressof(name_buf)
            info.iter.target_name_len = len(name_buf)
        _get_info(fd, info, "get link info")
        assert info.type == kind
    details: dict[str, object] = {}
    if lt == "raw_tracepoint":
        details["tp_name"] = name_buf.value.decode("utf-8", "replace")
    elif lt == "tracing":
        details.update(attach_type=info.tracing.attach_type, target_obj_id=info.tracing.target_obj_id,
                       target_btf_id=info.tracing.target_btf_id)
    elif lt == "cgroup":
        details.update(cgroup_id=info.cgroup.cgroup_id, attach_type=info.cgroup.attach_type)
    elif lt == "iter":
        details.update(target_name=name_buf.value.decode("utf-8", "replace"), map_id=info.iter.map_id)
    elif lt == "netns":
        details.update(netns_ino=info.netns.netns_ino, attach_type=info.netns.attach_type)
    elif lt == "xdp":
        details.update(ifindex=info.xdp.ifindex)
    elif lt in ("tcx", "netkit"):
        details.update(ifindex=info.tcx.ifindex, attach_type=info.tcx.attach_type)
    elif lt == "netfilter":
        details.update(pf=info.netfilter.pf, hooknum=info.netfilter.hooknum,
                       priority=info.netfilter.priority, flags=info.netfilter.flags)
    return LinkInfo(id=info.id, type=info.type, type_name=lt, prog_id=info.prog_id, details=details)


# ---------------------------------------------------------------------------
# ids and fds

def _ids(kind: str) -> Iterator[int]:
    fn = getattr(libbpf.lib(), f"bpf_{kind}_get_next_id")
    cur = c_uint32(0)
    nxt = c_uint32(0)
    while True:
        ret = fn(cur.value, ctypes.byref(nxt))
        if ret < 0:
            if -ret == _errno.ENOENT:
                return
            libbpf.check(ret, f"bpf_{kind}_get_next_id")
        yield nxt.value
        cur.value = nxt.value


def prog_ids() -> Iterator[int]:
    """Ids of every loaded program, ascending."""
    return _ids("prog")


def map_ids() -> Iterator[int]:
    """Ids of every map, ascending."""
    return _ids("map")


def btf_ids() -> Iterator[int]:
    """Ids of every loaded BTF object, ascending."""
    return _ids("btf")


def link_ids() -> Iterator[int]:
    """Ids of every link, ascending."""
    return _ids("link")


_KIND_WORDS = {"prog": "program", "map": "map", "btf": "BTF object", "link": "link"}


def _fd_by_id(kind: str, obj_id: int) -> int:
    if obj_id < 0 or obj_id > 0xFFFFFFFF:
        raise NotFoundError(f"invalid {_KIND_WORDS[kind]} id {obj_id}", errno=_errno.EINVAL)
    ret = getattr(libbpf.lib(), f"bpf_{kind}_get_fd_by_id")(obj_id)
    if ret < 0:
        err = -ret
        if err == _errno.ENOENT:
            raise NotFoundError(f"get {_KIND_WORDS[kind]} by id ({obj_id}): {os.strerror(err)}")
        raise LibbpfError(f"get {_KIND_WORDS[kind]} by id ({obj_id}): {os.strerror(err)}", errno=err)
    return int(ret)


def prog_fd_by_id(prog_id: int) -> int:
    """A new fd for program ``prog_id`` (NotFoundError when no such program)."""
    return _fd_by_id("prog", prog_id)


def map_fd_by_id(map_id: int) -> int:
    """A new fd for map ``map_id``."""
    return _fd_by_id("map", map_id)


def btf_fd_by_id(btf_id: int) -> int:
    """A new fd for BTF object ``btf_id``."""
    return _fd_by_id("btf", btf_id)


def link_fd_by_id(link_id: int) -> int:
    """A new fd for link ``link_id``."""
    return _fd_by_id("link", link_id)


def obj_get(path: str, kind: str | None = None) -> int:
    """Open the object pinned at ``path`` (BPF_OBJ_GET); with ``kind``, check it is one.

    Messages follow bpftool's ``bpf obj get (DIR): ...``.
    """
    p = libbpf.c_path(path)
    ret = libbpf.lib().bpf_obj_get(p)
    if ret < 0:
        err = -ret
        parent = os.path.dirname(path) or "."
        if err == _errno.EACCES and not _is_bpffs_dir(parent):
            raise PinError(f"bpf obj get ({parent}): directory not in bpf file system (bpffs)",
                           errno=err, path=path)
        msg = f"bpf obj get ({path}): {os.strerror(err)}"
        if err == _errno.ENOENT:
            raise NotFoundError(msg, path=path)
        raise PinError(msg, errno=err, path=path)
    fd = int(ret)
    if kind is not None:
        actual = fd_kind(fd)
        if actual != kind:
            os.close(fd)
            what = {"prog": "program", "map": "map", "link": "link", "btf": "BTF object"}[kind]
            raise BpfError(f"incorrect object type: {path} is not a {what}"
                           + (f" (it is a {actual})" if actual else ""),
                           errno=_errno.EINVAL, path=path)
    return fd


def obj_pin(fd: int, path: str) -> None:
    """Pin the object behind ``fd`` at ``path`` (BPF_OBJ_PIN); errors name the path
    (:func:`pybpfobj.kernel.bpffs.obj_pin`, imported on first use)."""
    from pybpfobj.kernel import bpffs

    bpffs.obj_pin(fd, path)


# ---------------------------------------------------------------------------
# who holds an object, where it is pinned

def _is_bpffs_dir(directory: str) -> bool:
    try:
        from pybpfobj.kernel import bpffs

        return bpffs.is_bpffs(directory)
    except ImportError:  # pragma: no cover - bpffs.py ships with the package
        return True


def pids_table(kind: str, *, ignore_fds: Iterable[int] = ()) -> dict[int, list[tuple[int, str]]]:
    """Object id -> ``(pid, comm)`` of each process holding it, for every object of
    ``kind``, in one walk of ``/proc/*/fdinfo`` (see :func:`pids_of`)."""
    key = _FDINFO_KEYS[kind]
    anon = _ANON_NAMES[kind]
    me = os.getpid()
    skip = set(ignore_fds)
    table: dict[int, list[tuple[int, str]]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        ids: set[int] = set()
        for fdname in fds:
            if pid == me and int(fdname) in skip:
                continue
            try:
                if os.readlink(f"/proc/{pid}/fd/{fdname}") != anon:
                    continue
                with open(f"/proc/{pid}/fdinfo/{fdname}", "rb") as f:
                    text = f.read().decode("ascii", "replace")
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith(key):
                    try:
                        ids.add(int(line[len(key):].strip()))
                    except ValueError:
                        pass
                    break
        if not ids:
            continue
        try:
            with open(f"/proc/{pid}/comm", "rb") as f:
                comm = f.read().decode("utf-8", "replace").rstrip("\n")
        except OSError:
            continue
        for obj_id in ids:
            table.setdefault(obj_id, []).append((pid, comm))
    for v in table.values():
        v.sort()
    return table


def pids_of(kind: str, obj_id: int, *, ignore_fds: Iterable[int] = ()) -> list[tuple[int, str]]:
    """``(pid, comm)`` of every process holding an fd to object ``obj_id`` of ``kind``.

    Read from ``/proc/*/fdinfo`` (upstream bpftool gets the same through a
    BPF task-file iterator).  ``ignore_fds`` are fds of *this* process not to
    count (the lookup fds a tool opened just to look at the object), so a
    tool does not list itself unless it really holds the object otherwise.
    Sorted by pid; each process once.
    """
    return pids_table(kind, ignore_fds=ignore_fds).get(obj_id, [])


def fdinfo(fd: int) -> dict[str, str]:
    """This process's ``/proc/self/fdinfo/FD`` as a dict (``memlock``, ``prog_id``, ...)."""
    out: dict[str, str] = {}
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k.strip()] = v.strip()
    except OSError:
        pass
    return out


def bpffs_mounts() -> list[str]:
    """Mount points of every bpffs, in ``/proc/mounts`` order (its ``\\NNN`` octal escapes
    decoded as bytes, so a non-ASCII path comes out as the file system has it)."""
    import re

    roots: list[str] = []
    try:
        with open("/proc/mounts", "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2] == b"bpf":
                    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes((int(m.group(1), 8),)), parts[1])
                    mp = os.fsdecode(raw)
                    if mp not in roots:
                        roots.append(mp)
    except OSError:
        pass
    return roots


def pinned_table(kind: str, roots: Iterable[str] | None = None) -> dict[int, list[str]]:
    """Every pinned object of ``kind`` under ``roots`` (default: all bpffs mounts) -> its paths.

    Built in one walk, as bpftool's ``-f`` does before listing: pins only (a
    symbolic link inside a bpffs is none), and each object's paths in the
    order bpftool 7.1 lists them (see :func:`bpftool_multimap_order`).
    """
    entries: list[tuple[int, str]] = []
    for root in (list(roots) if roots is not None else bpffs_mounts()):
        for path in _pins_under(root):
            ret = libbpf.lib().bpf_obj_get(os.fsencode(path))
            if ret < 0:
                continue
            fd = int(ret)
            try:
                if fd_kind(fd) != kind:
                    continue
                obj_id = _id_of(fd, kind)
            except BpfError:
                continue
            finally:
                os.close(fd)
            entries.append((obj_id, path))
    return bpftool_multimap_order(entries)


_K = TypeVar("_K")
_V = TypeVar("_V")


def bpftool_multimap_order(pairs: Iterable[tuple[_K, _V]]) -> dict[_K, list[_V]]:
    """Each key's values, from ``(key, value)`` pairs in insertion order, in the order
    bpftool 7.1 lists them from its tables (libbpf's hashmap used as a multimap: pinned
    paths by object id, program and map ids by BTF id).

    A new entry goes in at the head of its bucket's chain, so a key's values come
    newest first; and each time the table grows (before an insert that would pass 3/4
    of its capacity, doubling from 4 buckets) every chain is moved head first into its
    new bucket, which reverses the values of each key.  The order thus depends on how
    many entries the whole table holds, not only on the key's own.
    """
    table: dict[_K, list[_V]] = {}
    cap = 0
    for n, (key, value) in enumerate(pairs):
        if cap == 0 or (n + 1) * 4 // 3 > cap:
            cap = max(cap * 2, 4)
            for values in table.values():
                values.reverse()
        table.setdefault(key, []).insert(0, value)
    return table


def _pins_under(d: str) -> Iterator[str]:
    """Every entry under ``d`` but directories and symbolic links, depth first in directory
    order (a subdirectory's entries where the subdirectory comes), as bpftool's nftw walk."""
    try:
        entries = list(os.scandir(d))
    except OSError:
        return
    for e in entries:
        try:
            if e.is_symlink():
                continue
            if e.is_dir():
                yield from _pins_under(e.path)
                continue
        except OSError:
            continue
        yield e.path


def pinned_paths(kind: str, obj_id: int, roots: Iterable[str] | None = None) -> list[str]:
    """The bpffs paths where object ``obj_id`` of ``kind`` is pinned (sorted)."""
    return sorted(pinned_table(kind, roots).get(obj_id, []))


def _id_of(fd: int, kind: str) -> int:
    if kind == "prog":
        pi = bpf_prog_info()
        _get_info(fd, pi, "get program info")
        return int(pi.id)
    if kind == "map":
        mi = bpf_map_info()
        _get_info(fd, mi, "get map info")
        return int(mi.id)
    if kind == "link":
        li = bpf_link_info()
        _get_info(fd, li, "get link info")
        return int(li.id)
    bi = bpf_btf_info()
    _get_info(fd, bi, "get BTF info")
    return int(bi.id)


__all__ = [
    "BtfInfo",
    "LineInfoRec",
    "LinkInfo",
    "MapInfo",
    "ProgInfo",
    "boot_time_to_epoch",
    "bpf_btf_info",
    "bpf_link_info",
    "bpf_map_info",
    "bpf_prog_info",
    "bpffs_mounts",
    "btf_data",
    "btf_fd_by_id",
    "btf_ids",
    "btf_info",
    "fd_kind",
    "fdinfo",
    "link_fd_by_id",
    "link_ids",
    "link_info",
    "map_fd_by_id",
    "map_ids",
    "map_info",
    "obj_get",
    "obj_pin",
    "pids_of",
    "pids_table",
    "pinned_paths",
    "pinned_table",
    "prog_fd_by_id",
    "prog_full_name",
    "prog_ids",
    "prog_info",
]
