"""libbpf's object-level API: ``bpf_object__*``, ``bpf_program__*`` and
``bpf_map__*`` prototypes, and thin checked wrappers over them.

Pointers to libbpf's ``struct bpf_object`` / ``bpf_program`` / ``bpf_map``
are plain ints here; :mod:`pybpfobj.loader` owns their lifetime.  Every
wrapper that can fail returns a checked value or raises a
:mod:`pybpfobj.errors` exception naming the object, program or map.
"""

from __future__ import annotations

import ctypes
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_size_t,
    c_uint32,
    c_void_p,
)

from pybpfobj.kernel import libbpf
from pybpfobj.kernel.libbpf import _proto, check, check_ptr

TYPE_CHECKING = False  # typing stays out of start-up (annotations are strings)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


class BpfObjectOpenOpts(Structure):
    """``struct bpf_object_open_opts`` as libbpf 1.1 lays it out."""

    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", c_bool),
        ("pin_root_path", c_char_p),
        ("_attach_prog_fd", c_uint32),  # removed field, kept for layout
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", c_void_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", c_uint32),
    ]


@libbpf.declares
def _objects(lb: ctypes.CDLL) -> None:
    vp, ip = c_void_p, c_int
    _proto(lb, "bpf_object__open_file", vp, c_char_p, POINTER(BpfObjectOpenOpts))
    _proto(lb, "bpf_object__open_mem", vp, c_void_p, c_size_t, POINTER(BpfObjectOpenOpts))
    _proto(lb, "bpf_object__load", ip, vp)
    _proto(lb, "bpf_object__close", None, vp)
    _proto(lb, "bpf_object__name", c_char_p, vp)
    _proto(lb, "bpf_object__btf", vp, vp)
    _proto(lb, "bpf_object__next_program", vp, vp, vp)
    _proto(lb, "bpf_object__next_map", vp, vp, vp)
    _proto(lb, "bpf_object__find_map_by_name", vp, vp, c_char_p)
    _proto(lb, "bpf_object__find_program_by_name", vp, vp, c_char_p)
    _proto(lb, "btf__raw_data", vp, vp, POINTER(c_uint32))
    _proto(lb, "libbpf_prog_type_by_name", ip, c_char_p, POINTER(c_int), POINTER(c_int))

    _proto(lb, "bpf_program__name", c_char_p, vp)
    _proto(lb, "bpf_program__section_name", c_char_p, vp)
    _proto(lb, "bpf_program__fd", ip, vp)
    _proto(lb, "bpf_program__type", ip, vp)
    _proto(lb, "bpf_program__set_type", ip, vp, ip)
    _proto(lb, "bpf_program__expected_attach_type", ip, vp)
    _proto(lb, "bpf_program__set_expected_attach_type", ip, vp, ip)
    _proto(lb, "bpf_program__set_ifindex", None, vp, c_uint32)
    _proto(lb, "bpf_program__autoload", c_bool, vp)
    _proto(lb, "bpf_program__set_autoload", ip, vp, c_bool)
    _proto(lb, "bpf_program__set_log_level", ip, vp, c_uint32)
    _proto(lb, "bpf_program__set_log_buf", ip, vp, c_void_p, c_size_t)
    _proto(lb, "bpf_program__insn_cnt", c_size_t, vp)
    _proto(lb, "bpf_program__set_attach_target", ip, vp, ip, c_char_p)
    _proto(lb, "bpf_program__autoattach", c_bool, vp)
    _proto(lb, "bpf_program__set_autoattach", None, vp, c_bool)
    _proto(lb, "bpf_program__attach", vp, vp)
    _proto(lb, "bpf_link__fd", ip, vp)
    _proto(lb, "bpf_link__destroy", ip, vp)

    _proto(lb, "bpf_map__name", c_char_p, vp)
    _proto(lb, "bpf_map__fd", ip, vp)
    _proto(lb, "bpf_map__type", ip, vp)
    _proto(lb, "bpf_map__key_size", c_uint32, vp)
    _proto(lb, "bpf_map__value_size", c_uint32, vp)
    _proto(lb, "bpf_map__set_value_size", ip, vp, c_uint32)
    _proto(lb, "bpf_map__max_entries", c_uint32, vp)
    _proto(lb, "bpf_map__set_max_entries", ip, vp, c_uint32)
    _proto(lb, "bpf_map__map_flags", c_uint32, vp)
    _proto(lb, "bpf_map__btf_key_type_id", c_uint32, vp)
    _proto(lb, "bpf_map__btf_value_type_id", c_uint32, vp)
    _proto(lb, "bpf_map__is_internal", c_bool, vp)
    _proto(lb, "bpf_map__autocreate", c_bool, vp)
    _proto(lb, "bpf_map__reuse_fd", ip, vp, ip)
    _proto(lb, "bpf_map__pin_path", c_char_p, vp)
    _proto(lb, "bpf_map__is_pinned", c_bool, vp)
    _proto(lb, "bpf_map__unpin", ip, vp, c_char_p)
    _proto(lb, "bpf_map__set_ifindex", ip, vp, c_uint32)
    _proto(lb, "bpf_map__initial_value", vp, vp, POINTER(c_size_t))
    _proto(lb, "bpf_map__set_initial_value", ip, vp, c_void_p, c_size_t)
    _proto(lb, "bpf_map__inner_map", vp, vp)


def _s(b: bytes | None) -> str:
    return b.decode("utf-8", "replace") if b else ""


# ---------------------------------------------------------------------------
# objects

def open_object(source: str | bytes, *, name: str | None, pin_root: str | None,
                relaxed_maps: bool, log_level: int = 0) -> int:
    """``bpf_object__open_file`` / ``open_mem``; returns the ``struct bpf_object *``.

    ``source`` is a path (str) or the object's bytes.  Open failures raise
    :class:`LibbpfError` naming the object.
    """
    lb = libbpf.lib()
    opts = BpfObjectOpenOpts()
    opts.sz = ctypes.sizeof(BpfObjectOpenOpts)
    keep: list[Any] = []
    if name is not None:
        opts.object_name = name.encode()
    if pin_root is not None:
        opts.pin_root_path = pin_root.encode()
    opts.relaxed_maps = relaxed_maps
    opts.kernel_log_level = log_level
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf = ctypes.create_string_buffer(bytes(source), len(source))
        keep.append(buf)
        what = name or "<bytes>"
        ctypes.set_errno(0)
        ptr = lb.bpf_object__open_mem(buf, len(source), ctypes.byref(opts))
    else:
        what = source
        ctypes.set_errno(0)
        ptr = lb.bpf_object__open_file(source.encode(), ctypes.byref(opts))
    # libbpf copies the buffer while opening; ``keep`` only needs to live until here
    return check_ptr(ptr, f"failed to open object file {what!r}", obj=what,
                     path=None if isinstance(source, (bytes, bytearray, memoryview)) else source)


def load_object(obj: int) -> int:
    """``bpf_object__load``: returns 0 or the negative errno (the caller explains it)."""
    return int(libbpf.lib().bpf_object__load(obj))


def close_object(obj: int) -> None:
    libbpf.lib().bpf_object__close(obj)


def object_name(obj: int) -> str:
    return _s(libbpf.lib().bpf_object__name(obj))


def object_btf_raw(obj: int) -> bytes | None:
    """The object's BTF as libbpf holds it (``btf__raw_data``), or None without BTF."""
    lb = libbpf.lib()
    btf = lb.bpf_object__btf(obj)
    if not btf:
        return None
    size = c_uint32(0)
    ptr = lb.btf__raw_data(btf, ctypes.byref(size))
    if not ptr:
        return None
    return ctypes.string_at(ptr, size.value)


def programs(obj: int) -> Iterator[int]:
    """The object's programs in libbpf's order."""
    lb = libbpf.lib()
    p = lb.bpf_object__next_program(obj, None)
    while p:
        yield p
        p = lb.bpf_object__next_program(obj, p)


def maps(obj: int) -> Iterator[int]:
    """The object's maps in libbpf's order (``map idx`` order)."""
    lb = libbpf.lib()
    m = lb.bpf_object__next_map(obj, None)
    while m:
        yield m
        m = lb.bpf_object__next_map(obj, m)


# Batch helpers for the load path: one Python call for a whole object keeps
# the per-load overhead over C small (each wrapper call costs about as much
# as the libbpf call it makes).

def program_names(obj: int) -> dict[str, int]:
    """Program name -> ``struct bpf_program *``, in libbpf's order."""
    lb = libbpf.lib()
    nxt, name = lb.bpf_object__next_program, lb.bpf_program__name
    out: dict[str, int] = {}
    p = nxt(obj, None)
    while p:
        out[_s(name(p))] = p
        p = nxt(obj, p)
    return out


def map_names(obj: int) -> dict[str, int]:
    """Map name -> ``struct bpf_map *``, in libbpf's (``map idx``) order."""
    lb = libbpf.lib()
    nxt, name = lb.bpf_object__next_map, lb.bpf_map__name
    out: dict[str, int] = {}
    m = nxt(obj, None)
    while m:
        out[_s(name(m))] = m
        m = nxt(obj, m)
    return out


def untyped_programs(progs: dict[str, int]) -> list[str]:
    """Names of the programs libbpf could not give a type (``BPF_PROG_TYPE_UNSPEC``)."""
    ptype = libbpf.lib().bpf_program__type
    return [n for n, p in progs.items() if ptype(p) == 0]


def map_pin_paths(maps: dict[str, int]) -> dict[str, str | None]:
    """Map name -> its ``LIBBPF_PIN_BY_NAME`` path (None for maps without one)."""
    path = libbpf.lib().bpf_map__pin_path
    out: dict[str, str | None] = {}
    for n, m in maps.items():
        p = path(m)
        out[n] = _s(p) if p else None
    return out


def map_sizes(maps: dict[str, int]) -> dict[str, tuple[int, int, int]]:
    """Map name -> ``(type, max_entries, value_size)`` as libbpf holds them now."""
    lb = libbpf.lib()
    mtype, maxe, vsize = lb.bpf_map__type, lb.bpf_map__max_entries, lb.bpf_map__value_size
    return {n: (mtype(m), maxe(m), vsize(m)) for n, m in maps.items()}


def set_log_bufs(progs: dict[str, int], log: LogBuffer) -> None:
    """Give every program the same verifier log buffer."""
    setbuf = libbpf.lib().bpf_program__set_log_buf
    for p in progs.values():
        setbuf(p, log.buf, log.size)


def prog_type_by_name(section: str) -> tuple[int, int] | None:
    """libbpf's guess ``(prog_type, expected_attach_type)`` for a section name, or None."""
    pt, at = c_int(0), c_int(0)
    ret = libbpf.lib().libbpf_prog_type_by_name(section.encode(), ctypes.byref(pt), ctypes.byref(at))
    if ret < 0:
        return None
    return pt.value, at.value


def probe_prog_type(prog_type: int) -> bool | None:
    """Whether the running kernel supports ``prog_type`` (libbpf's probe); None when libbpf cannot tell."""
    ret = libbpf.lib().libbpf_probe_bpf_prog_type(prog_type, None)
    if ret < 0:
        return None  # a type newer than this libbpf
    return bool(ret == 1)


# ---------------------------------------------------------------------------
# programs

def prog_name(p: int) -> str:
    return _s(libbpf.lib().bpf_program__name(p))


def prog_section(p: int) -> str:
    return _s(libbpf.lib().bpf_program__section_name(p))


def prog_fd(p: int) -> int:
    return int(libbpf.lib().bpf_program__fd(p))


def prog_type(p: int) -> int:
    return int(libbpf.lib().bpf_program__type(p))


def prog_expected_attach_type(p: int) -> int:
    return int(libbpf.lib().bpf_program__expected_attach_type(p))


def prog_insn_cnt(p: int) -> int:
    return int(libbpf.lib().bpf_program__insn_cnt(p))


def prog_set_type(p: int, prog_type: int, attach_type: int | None = None) -> None:
    lb = libbpf.lib()
    name = prog_name(p)
    check(lb.bpf_program__set_type(p, prog_type), f"program '{name}': cannot set type", prog=name)
    if attach_type is not None:
        check(lb.bpf_program__set_expected_attach_type(p, attach_type),
              f"program '{name}': cannot set expected attach type", prog=name)


def prog_set_attach_target(p: int, target_fd: int, func_name: str | None) -> None:
    """``bpf_program__set_attach_target`` (before load): what an fentry/fexit/freplace/tp_btf
    program attaches to (``target_fd`` 0 = a kernel function or BTF type)."""
    name = prog_name(p)
    check(libbpf.lib().bpf_program__set_attach_target(p, target_fd, func_name.encode() if func_name else None),
          f"program '{name}': cannot set attach target {func_name!r}", prog=name)


def prog_autoattach(p: int) -> bool:
    return bool(libbpf.lib().bpf_program__autoattach(p))


def prog_set_autoattach(p: int, autoattach: bool) -> None:
    libbpf.lib().bpf_program__set_autoattach(p, bool(autoattach))


def prog_attach(p: int, what: str) -> int:
    """``bpf_program__attach``: attach as the section says; returns the ``struct bpf_link *``.

    The caller owns the link and must :func:`link_destroy` it.  Failures
    raise :class:`LibbpfError` (``what`` says which program of which object).
    """
    ctypes.set_errno(0)
    ptr = libbpf.lib().bpf_program__attach(p)
    return check_ptr(ptr, what, prog=prog_name(p))


def link_fd(link: int) -> int:
    """The fd of a libbpf ``struct bpf_link`` (owned by the link)."""
    return int(libbpf.lib().bpf_link__fd(link))


def link_destroy(link: int) -> None:
    """``bpf_link__destroy``: detach (unless pinned) and free the link and its fds."""
    libbpf.lib().bpf_link__destroy(link)


class LogBuffer:
    """A verifier log buffer handed to libbpf (kept alive by the caller until load returns).

    Anonymous memory: its pages cost nothing until the kernel writes a log
    into them (a zeroed ctypes buffer of the same size costs about a
    millisecond of page faults on every process that loads anything).
    """

    def __init__(self, size: int) -> None:
        import mmap

        self._mem = mmap.mmap(-1, size)
        self.buf = (ctypes.c_char * size).from_buffer(self._mem)
        self.size = size

    def reset(self) -> None:
        """Make the buffer read as empty (libbpf writes a log only when a load fails)."""
        self.buf[0] = b"\0"

    def text(self) -> str:
        return self.buf.value.decode("utf-8", "replace")


def prog_set_log_buf(p: int, log: LogBuffer) -> None:
    """Give program ``p`` a verifier log buffer; libbpf fills it only when a load fails."""
    libbpf.lib().bpf_program__set_log_buf(p, log.buf, log.size)


def prog_set_ifindex(p: int, ifindex: int) -> None:
    libbpf.lib().bpf_program__set_ifindex(p, ifindex)


# ---------------------------------------------------------------------------
# maps

def map_name(m: int) -> str:
    return _s(libbpf.lib().bpf_map__name(m))


def map_fd(m: int) -> int:
    return int(libbpf.lib().bpf_map__fd(m))


def map_type(m: int) -> int:
    return int(libbpf.lib().bpf_map__type(m))


def map_max_entries(m: int) -> int:
    return int(libbpf.lib().bpf_map__max_entries(m))


def map_value_size(m: int) -> int:
    return int(libbpf.lib().bpf_map__value_size(m))


def map_def(m: int) -> dict[str, int]:
    """The map's definition as libbpf holds it (before or after load)."""
    lb = libbpf.lib()
    return {
        "type": int(lb.bpf_map__type(m)),
        "key_size": int(lb.bpf_map__key_size(m)),
        "value_size": int(lb.bpf_map__value_size(m)),
        "max_entries": int(lb.bpf_map__max_entries(m)),
        "map_flags": int(lb.bpf_map__map_flags(m)),
        "btf_key_type_id": int(lb.bpf_map__btf_key_type_id(m)),
        "btf_value_type_id": int(lb.bpf_map__btf_value_type_id(m)),
    }


def map_is_internal(m: int) -> bool:
    return bool(libbpf.lib().bpf_map__is_internal(m))


def map_autocreate(m: int) -> bool:
    return bool(libbpf.lib().bpf_map__autocreate(m))


def map_pin_path(m: int) -> str | None:
    p = libbpf.lib().bpf_map__pin_path(m)
    return _s(p) if p else None


def map_is_pinned(m: int) -> bool:
    return bool(libbpf.lib().bpf_map__is_pinned(m))


def map_unpin(m: int) -> None:
    libbpf.lib().bpf_map__unpin(m, None)


def map_set_max_entries(m: int, n: int) -> None:
    name = map_name(m)
    check(libbpf.lib().bpf_map__set_max_entries(m, n), f"map '{name}': cannot set max_entries", map=name)


def map_set_value_size(m: int, n: int) -> None:
    name = map_name(m)
    check(libbpf.lib().bpf_map__set_value_size(m, n), f"map '{name}': cannot set value_size", map=name)


def map_set_ifindex(m: int, ifindex: int) -> None:
    libbpf.lib().bpf_map__set_ifindex(m, ifindex)


def map_reuse_fd(m: int, fd: int) -> None:
    name = map_name(m)
    check(libbpf.lib().bpf_map__reuse_fd(m, fd), f"map '{name}': cannot reuse fd {fd}", map=name)


def map_initial_value(m: int) -> tuple[int, int]:
    """``(address, size)`` of the map's initial value buffer (global-data maps), or (0, 0)."""
    size = c_size_t(0)
    ptr = libbpf.lib().bpf_map__initial_value(m, ctypes.byref(size))
    return (int(ptr or 0), int(size.value))


def map_set_initial_value(m: int, data: bytes) -> None:
    name = map_name(m)
    buf = ctypes.create_string_buffer(data, len(data))
    check(libbpf.lib().bpf_map__set_initial_value(m, buf, len(data)),
          f"map '{name}': cannot set initial value", map=name)


def read_memory(addr: int, size: int) -> bytes:
    return ctypes.string_at(addr, size)


def write_memory(addr: int, offset: int, data: bytes) -> None:
    ctypes.memmove(addr + offset, data, len(data))


__all__ = [
    "BpfObjectOpenOpts",
    "close_object",
    "link_destroy",
    "link_fd",
    "load_object",
    "map_autocreate",
    "map_def",
    "map_fd",
    "map_initial_value",
    "map_is_internal",
    "map_is_pinned",
    "map_max_entries",
    "map_name",
    "map_names",
    "map_pin_path",
    "map_pin_paths",
    "map_reuse_fd",
    "map_set_ifindex",
    "map_set_initial_value",
    "map_set_max_entries",
    "map_set_value_size",
    "map_sizes",
    "map_type",
    "map_unpin",
    "map_value_size",
    "maps",
    "object_btf_raw",
    "object_name",
    "open_object",
    "probe_prog_type",
    "prog_attach",
    "prog_autoattach",
    "prog_expected_attach_type",
    "prog_fd",
    "prog_insn_cnt",
    "prog_name",
    "prog_section",
    "prog_set_attach_target",
    "prog_set_autoattach",
    "prog_set_ifindex",
    "prog_set_type",
    "prog_type",
    "prog_type_by_name",
    "program_names",
    "programs",
    "read_memory",
    "set_log_bufs",
    "untyped_programs",
    "write_memory",
]
