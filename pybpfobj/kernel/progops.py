"""Program-side prototypes beyond id/fd/info: run-time statistics and
fd-by-id with flags.

Test runs and attachment live in :mod:`pybpfobj.kernel.attach`.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
from ctypes import Structure, c_size_t, c_uint32

from pybpfobj.errors import LibbpfError, NotFoundError, UnsupportedError
from pybpfobj.kernel import libbpf

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
    libbpf._proto(lb, "bpf_enable_stats", ctypes.c_int, ctypes.c_int)
    libbpf._proto(lb, "bpf_map_lookup_elem", ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def map_lookup_bytes(map_fd: int, key: bytes, value_size: int) -> bytes:
    """One raw map lookup (for reading a program's ``.rodata`` metadata)."""
    buf = ctypes.create_string_buffer(max(value_size, 1))
    ret = libbpf.lib().bpf_map_lookup_elem(map_fd, key, buf)
    if ret < 0:
        err = -ret
        raise LibbpfError(f"map lookup (fd {map_fd}): {os.strerror(err)}", errno=err)
    return buf.raw[:value_size]


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
__all__ = ["BPF_STATS_RUN_TIME", "enable_stats", "map_lookup_bytes", "probe_fentry", "prog_fd_by_id_flags"]
