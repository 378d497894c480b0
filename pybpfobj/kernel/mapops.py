"""libbpf's low-level map calls: element operations, batches, freeze,
BPF_MAP_CREATE, BPF_OBJ_PIN/GET, and the map/BTF info structures.

The element calls are exposed two ways: checked wrappers (``create``,
``obj_get``, ``freeze``, ...) for cold paths, and :func:`fn` returning the
declared ctypes function itself so that :mod:`pybpfobj.maps` can keep the
hot path (one lookup or update) to a single foreign call on preallocated
buffers.  libbpf 1.x returns ``-errno`` from every one of these calls.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, Structure, c_char_p, c_int, c_size_t, c_uint32, c_uint64, c_void_p
from typing import Any

from pybpfobj.kernel import libbpf


class BpfMapBatchOpts(Structure):
    """struct bpf_map_batch_opts."""

    _fields_ = [("sz", c_size_t), ("elem_flags", c_uint64), ("flags", c_uint64)]


class BpfMapCreateOpts(Structure):
    """struct bpf_map_create_opts (libbpf 1.1 layout; ``sz`` tells libbpf which fields exist)."""

    _fields_ = [
        ("sz", c_size_t),
        ("btf_fd", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("inner_map_fd", c_uint32),
        ("map_flags", c_uint32),
        ("map_extra", c_uint64),
        ("numa_node", c_uint32),
        ("map_ifindex", c_uint32),
    ]


@libbpf.declares
def _map_protos(lb: ctypes.CDLL) -> None:
    p = libbpf._proto
    p(lb, "bpf_map_lookup_elem", c_int, c_int, c_void_p, c_void_p)
    p(lb, "bpf_map_lookup_elem_flags", c_int, c_int, c_void_p, c_void_p, c_uint64)
    p(lb, "bpf_map_update_elem", c_int, c_int, c_void_p, c_void_p, c_uint64)
    p(lb, "bpf_map_delete_elem", c_int, c_int, c_void_p)
    p(lb, "bpf_map_delete_elem_flags", c_int, c_int, c_void_p, c_uint64)
    p(lb, "bpf_map_lookup_and_delete_elem", c_int, c_int, c_void_p, c_void_p)
    p(lb, "bpf_map_lookup_and_delete_elem_flags", c_int, c_int, c_void_p, c_void_p, c_uint64)
    p(lb, "bpf_map_get_next_key", c_int, c_int, c_void_p, c_void_p)
    p(lb, "bpf_map_freeze", c_int, c_int)
    p(lb, "bpf_map_lookup_batch", c_int, c_int, c_void_p, c_void_p, c_void_p, c_void_p,
      POINTER(c_uint32), POINTER(BpfMapBatchOpts))
    p(lb, "bpf_map_lookup_and_delete_batch", c_int, c_int, c_void_p, c_void_p, c_void_p, c_void_p,
      POINTER(c_uint32), POINTER(BpfMapBatchOpts))
    p(lb, "bpf_map_update_batch", c_int, c_int, c_void_p, c_void_p, POINTER(c_uint32),
      POINTER(BpfMapBatchOpts))
    p(lb, "bpf_map_delete_batch", c_int, c_int, c_void_p, POINTER(c_uint32), POINTER(BpfMapBatchOpts))
    p(lb, "bpf_map_create", c_int, c_int, c_char_p, c_uint32, c_uint32, c_uint32,
      POINTER(BpfMapCreateOpts))
    p(lb, "bpf_btf_load", c_int, c_void_p, c_size_t, c_void_p)


def fn(name: str) -> Any:
    """The declared ctypes function ``name`` (for hot paths that call it directly)."""
    return getattr(libbpf.lib(), name)


_raw_libs: dict[bool, ctypes.CDLL] = {}


def raw_fn(name: str, *, hold_gil: bool = False) -> Any:
    """``name`` from a second handle on libbpf, without argtypes and without errno saving.

    For the per-element hot paths: every argument must already be a ctypes
    object of the right width (``c_void_p`` addresses, ``c_uint64`` flags) or
    a Python int for a C ``int``; nothing is converted or checked per call,
    and no errno is swapped in and out (libbpf 1.x returns ``-errno``).

    ``hold_gil``: the function comes from a :class:`ctypes.PyDLL` handle, so
    the call keeps the GIL instead of releasing and retaking it.  Only for
    calls that return at once (element operations on map types that never
    sleep): a blocking call would stop every Python thread.  It is a speed
    choice, not a thread-safety one: the caller's buffers must still be its
    own (CPython may switch threads as soon as the call returns).
    """
    h = _raw_libs.get(hold_gil)
    if h is None:
        # same library (dlopen refcount), own function objects
        path = libbpf.lib()._name
        h = _raw_libs.setdefault(hold_gil, ctypes.PyDLL(path) if hold_gil else ctypes.CDLL(path))
    f = getattr(h, name)
    f.restype = c_int
    return f


def batch_opts(elem_flags: int = 0, flags: int = 0) -> BpfMapBatchOpts:
    return BpfMapBatchOpts(ctypes.sizeof(BpfMapBatchOpts), elem_flags, flags)


def create(map_type: int, name: str | None, key_size: int, value_size: int, max_entries: int, *,
           flags: int = 0, btf_fd: int = 0, btf_key_type_id: int = 0, btf_value_type_id: int = 0,
           btf_vmlinux_value_type_id: int = 0, inner_map_fd: int = 0, map_extra: int = 0,
           numa_node: int = 0, ifindex: int = 0) -> int:
    """BPF_MAP_CREATE; returns the new fd or raises :class:`LibbpfError` (errno set)."""
    opts = BpfMapCreateOpts(ctypes.sizeof(BpfMapCreateOpts), btf_fd, btf_key_type_id, btf_value_type_id,
                            btf_vmlinux_value_type_id, inner_map_fd, flags, map_extra, numa_node, ifindex)
    raw = name.encode() if name else None
    ret = libbpf.lib().bpf_map_create(map_type, raw, key_size, value_size, max_entries, ctypes.byref(opts))
    return libbpf.check(ret, f"creating map {name!r}" if name else "creating map", map=name)


def storage_btf(value_size: int) -> tuple[int, int, int]:
    """Load a tiny BTF for a local-storage map: ``(btf_fd, key_type_id, value_type_id)``.

    sk/inode/task/cgrp storage maps must carry BTF: an ``int`` key (the fd
    of the owner) and any value; the value is described as ``unsigned
    char[value_size]``.  The caller closes the fd once the map exists.
    """
    import struct

    strings = b"\0int\0unsigned char\0"
    types = b"".join([
        # 1: int, 4 bytes, signed
        struct.pack("<III", 1, 1 << 24, 4), struct.pack("<I", (1 << 24) | 32),
        # 2: unsigned char, 1 byte
        struct.pack("<III", 5, 1 << 24, 1), struct.pack("<I", 8),
        # 3: unsigned char[value_size], indexed by int
        struct.pack("<III", 0, 3 << 24, 0), struct.pack("<III", 2, 1, value_size),
    ])
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    blob = hdr + types + strings
    buf = ctypes.create_string_buffer(blob, len(blob))
    fd = libbpf.lib().bpf_btf_load(buf, len(blob), None)
    return libbpf.check(fd, "loading BTF for a storage map"), 1, 3


def freeze(fd: int, name: str | None = None) -> None:
    ret = libbpf.lib().bpf_map_freeze(fd)
    if ret < 0:
        from pybpfobj.errors import map_error

        raise map_error(-ret, "freeze", name)


class ReadOnlyMapping:
    """A read-only MAP_SHARED mapping of a map fd made with libc's mmap.

    Python's :mod:`mmap` objects give ctypes no address for read-only pages,
    and frozen maps (``.rodata``) refuse writable mappings; this keeps the
    address and unmaps when dropped.
    """

    def __init__(self, fd: int, length: int) -> None:
        libc = libbpf.libc()
        libc.mmap.restype = c_void_p
        libc.mmap.argtypes = [c_void_p, c_size_t, c_int, c_int, c_int, ctypes.c_long]
        libc.munmap.restype = c_int
        libc.munmap.argtypes = [c_void_p, c_size_t]
        addr = libc.mmap(None, length, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
        if addr is None or addr == ctypes.c_void_p(-1).value:
            err = ctypes.get_errno() or 22
            raise OSError(err, os.strerror(err))
        self.address: int = int(addr)
        self.length = length
        self._munmap = libc.munmap

    def close(self) -> None:
        if self.address:
            self._munmap(self.address, self.length)
            self.address = 0

    def __del__(self) -> None:
        self.close()


__all__ = ["BpfMapBatchOpts", "BpfMapCreateOpts", "ReadOnlyMapping", "batch_opts", "create", "fn", "freeze", "raw_fn", "storage_btf"]
