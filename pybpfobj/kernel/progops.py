"""Program-side prototypes beyond id/fd/info: run-time statistics and
fd-by-id with flags.

Test runs and attachment live in :mod:`pybpfobj.kernel.attach`; the map
element calls used here are declared in :mod:`pybpfobj.kernel.mapops`,
``bpf_enable_stats`` in :mod:`pybpfobj.kernel.libbpf` and
``bpf_program__set_attach_target`` in :mod:`pybpfobj.kernel.objects`.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
from ctypes import Structure, c_size_t, c_uint32

from pybpfobj.errors import LibbpfError, NotFoundError, UnsupportedError
from pybpfobj.kernel import libbpf, mapops

# enum bpf_stats_type
BPF_STATS_RUN_TIME = 0

# open_flags for *_get_fd_by_id_opts
BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4


class bpf_get_fd_by_id_opts(Structure):
    _fields_ = [("sz", c_size_t), ("open_flags", c_uint32), ("token_fd", c_uint32)]


@libbpf.declares
def _progops(lb: ctypes.CDLL) -> None:
    libbpf._proto(lb, "bpf_prog_get_fd_by_id_opts", ctypes.c_int, c_uint32,
                  ctypes.POINTER(bpf_get_fd_by_id_opts))


def map_lookup_bytes(map_fd: int, key: bytes, value_size: int) -> bytes:
    """One raw map lookup (for reading a program's ``.rodata`` metadata)."""
    buf = ctypes.create_string_buffer(max(value_size, 1))
    ret = mapops.fn("bpf_map_lookup_elem")(map_fd, key, buf)
    if ret < 0:
        err = -ret
        raise LibbpfError(f"map lookup (fd {map_fd}): {os.strerror(err)}", errno=err)
    return buf.raw[:value_size]


def map_update_bytes(map_fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    """One raw map update (the profiler's perf event array slots)."""
    ret = mapops.fn("bpf_map_update_elem")(map_fd, key, value, flags)
    if ret < 0:
        err = -ret
        raise LibbpfError(f"map update (fd {map_fd}): {os.strerror(err)}", errno=err)


def enable_stats(stats_type: int = BPF_STATS_RUN_TIME) -> int:
    """Turn on run-time statistics (``run_time_ns``/``run_cnt``) while the returned fd is open."""
    ret = libbpf.lib().bpf_enable_stats(stats_type)
    if ret < 0:
        err = -ret
        cls = UnsupportedError if err in (_errno.EINVAL, _errno.EOPNOTSUPP) else LibbpfError
        raise cls(f"enable BPF run-time stats: {os.strerror(err)}", errno=err)
    return int(ret)


def prog_fd_by_id_flags(prog_id: int, open_flags: int = 0) -> int:
    """``bpf_prog_get_fd_by_id_opts``: a program fd by id with open flags (libbpf >= 1.0)."""
    if not libbpf.has("bpf_prog_get_fd_by_id_opts"):
        raise UnsupportedError("this libbpf lacks bpf_prog_get_fd_by_id_opts")
    # token_fd stays 0, so older libbpfs (which check that unknown tail bytes are zero) accept it.
    opts = bpf_get_fd_by_id_opts(sz=ctypes.sizeof(bpf_get_fd_by_id_opts), open_flags=open_flags)
    ret = libbpf.lib().bpf_prog_get_fd_by_id_opts(prog_id, ctypes.byref(opts))
    if ret < 0:
        err = -ret
        msg = f"get program by id ({prog_id}): {os.strerror(err)}"
        if err == _errno.ENOENT:
            raise NotFoundError(msg)
        raise LibbpfError(msg, errno=err)
    return int(ret)


class bpf_prog_load_opts(Structure):
    _fields_ = [
        ("sz", c_size_t), ("attempts", ctypes.c_int), ("expected_attach_type", c_uint32),
        ("prog_btf_fd", c_uint32), ("prog_flags", c_uint32), ("prog_ifindex", c_uint32),
        ("kern_version", c_uint32), ("attach_btf_id", c_uint32), ("attach_prog_fd", c_uint32),
        ("attach_btf_obj_fd", c_uint32), ("fd_array", ctypes.c_void_p), ("func_info", ctypes.c_void_p),
        ("func_info_cnt", c_uint32), ("func_info_rec_size", c_uint32), ("line_info", ctypes.c_void_p),
        ("line_info_cnt", c_uint32), ("line_info_rec_size", c_uint32), ("log_level", c_uint32),
        ("log_size", c_uint32), ("log_buf", ctypes.c_void_p),
    ]


BPF_PROG_TYPE_TRACING = 26
BPF_TRACE_FENTRY = 24
BPF_TRACE_FEXIT = 25


@libbpf.declares
def _load_protos(lb: ctypes.CDLL) -> None:
    libbpf._proto(lb, "bpf_prog_load", ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                  ctypes.c_void_p, c_size_t, ctypes.POINTER(bpf_prog_load_opts))


def probe_fentry(target_prog_fd: int) -> None:
    """Load (and close) a do-nothing fentry program on the target program's main
    function, as ``prog profile`` must; raises when the kernel refuses it."""
    from pybpfobj.kernel import info as kinfo

    pi = kinfo.prog_info(target_prog_fd, func_info=True)
    if not pi.btf_id or not pi.func_info:
        raise UnsupportedError(f"program {pi.name or pi.id} has no BTF function info, "
                               "which fentry programs need", errno=_errno.EINVAL)
    insns = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit
    opts = bpf_prog_load_opts(sz=ctypes.sizeof(bpf_prog_load_opts))
    opts.expected_attach_type = BPF_TRACE_FENTRY
    opts.attach_prog_fd = target_prog_fd
    opts.attach_btf_id = pi.func_info[0][1]
    buf = ctypes.create_string_buffer(insns, len(insns))
    ret = libbpf.lib().bpf_prog_load(BPF_PROG_TYPE_TRACING, b"fentry_probe", b"GPL", buf, 2,
                                     ctypes.byref(opts))
    if ret < 0:
        err = -ret
        raise UnsupportedError(f"loading an fentry program on {pi.name or pi.id} failed: "
                               f"{os.strerror(err)}", errno=err)
    os.close(ret)


# -- perf counters (prog profile) ----------------------------------------------

PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE, PERF_TYPE_HW_CACHE = 0, 1, 3
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
_PERF_ATTR_SIZE = 136           # PERF_ATTR_SIZE_VER8
_READ_FORMAT = 1 | 2            # TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING
_EXCLUDE_USER = 1 << 4
_DISABLED = 1 << 0
_NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "ppc64le": 319, "s390x": 331}


def perf_event_open(ev_type: int, config: int, cpu: int, *, pid: int = -1, exclude_user: bool = True,
                    disabled: bool = False) -> int:
    """``perf_event_open(2)`` of one counter on ``cpu`` (all processes when ``pid`` is -1);
    reads give value, time enabled and time running.  Returns the fd."""
    import platform
    import struct

    nr = _NR_PERF_EVENT_OPEN.get(platform.machine())
    if nr is None:
        raise UnsupportedError(f"perf_event_open: unknown system call number on {platform.machine()}")
    attr = bytearray(_PERF_ATTR_SIZE)
    struct.pack_into("<IIQ", attr, 0, ev_type, _PERF_ATTR_SIZE, config)
    struct.pack_into("<Q", attr, 32, _READ_FORMAT)
    struct.pack_into("<Q", attr, 40, (_EXCLUDE_USER if exclude_user else 0) | (_DISABLED if disabled else 0))
    buf = ctypes.create_string_buffer(bytes(attr), _PERF_ATTR_SIZE)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(ctypes.c_long(nr), buf, ctypes.c_int(pid), ctypes.c_int(cpu), ctypes.c_int(-1),
                      ctypes.c_ulong(0))
    if fd < 0:
        err = ctypes.get_errno()
        cls = UnsupportedError if err in (_errno.ENOENT, _errno.EOPNOTSUPP, _errno.ENODEV) else LibbpfError
        raise cls(f"perf_event_open (type {ev_type}, config {config:#x}, cpu {cpu}): {os.strerror(err)}",
                  errno=err)
    return int(fd)


def perf_event_enable(fd: int, enable: bool = True) -> None:
    """``PERF_EVENT_IOC_ENABLE``/``_DISABLE`` on a counter fd."""
    import fcntl

    fcntl.ioctl(fd, PERF_EVENT_IOC_ENABLE if enable else PERF_EVENT_IOC_DISABLE, 0)


def perf_event_read(fd: int) -> tuple[int, int, int]:
    """``(value, time enabled, time running)`` of a counter opened by :func:`perf_event_open`."""
    import struct

    data = os.read(fd, 24)
    if len(data) != 24:
        raise LibbpfError(f"perf counter read (fd {fd}): short read of {len(data)} bytes")
    v, e, r = struct.unpack("<QQQ", data)
    return v, e, r


__all__ = [
    "BPF_STATS_RUN_TIME",
    "BPF_TRACE_FENTRY",
    "BPF_TRACE_FEXIT",
    "PERF_TYPE_HARDWARE",
    "PERF_TYPE_HW_CACHE",
    "PERF_TYPE_SOFTWARE",
    "enable_stats",
    "map_lookup_bytes",
    "map_update_bytes",
    "perf_event_enable",
    "perf_event_open",
    "perf_event_read",
    "probe_fentry",
    "prog_fd_by_id_flags",
]
