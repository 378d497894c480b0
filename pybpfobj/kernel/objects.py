"""libbpf's object-level API: ``bpf_object__*``, ``bpf_program__*`` and
``bpf_map__*`` prototypes, and thin checked wrappers over them.

Pointers to libbpf's ``struct bpf_object`` / ``bpf_program`` / ``bpf_map``
are plain ints here; :mod:`pybpfobj.loader` owns their lifetime.  Every
wrapper that can fail returns a checked value or raises a
:mod:`pybpfobj.errors` exception naming the object, program or map.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
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

from pybpfobj.errors import LibbpfOpenError
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


_load: Any = None  # libbpf's bpf_object__load, set when libbpf is loaded
# bpf_object__open_mem taking the options as an address (an int): the loader's
# hottest call, where converting a byref() argument costs more than the rest
_open_mem_at: Any = None
_open_file_at: Any = None  # bpf_object__open_file likewise (the same open with debug lines read)


class _held:
    """Getters of the load path called without releasing the GIL (``PYFUNCTYPE``).

    They only read libbpf's structures, so releasing and retaking the GIL
    (what plain ctypes calls do, for calls that may block) would cost more
    than the call itself.  Set when libbpf is loaded.
    """

    next_program: Any = None
    next_map: Any = None
    object_name: Any = None
    program_name: Any = None
    program_type: Any = None
    map_name: Any = None
    map_pin_path: Any = None
    map_max_entries: Any = None
    map_value_size: Any = None


@libbpf.declares
def _objects(lb: ctypes.CDLL) -> None:
    vp, ip = c_void_p, c_int
    for attr, sym, restype, *argtypes in (
            ("next_program", "bpf_object__next_program", vp, vp, vp),
            ("next_map", "bpf_object__next_map", vp, vp, vp),
            ("object_name", "bpf_object__name", c_char_p, vp),
            ("program_name", "bpf_program__name", c_char_p, vp),
            ("program_type", "bpf_program__type", ip, vp),
            ("map_name", "bpf_map__name", c_char_p, vp),
            ("map_pin_path", "bpf_map__pin_path", c_char_p, vp),
            ("map_max_entries", "bpf_map__max_entries", c_uint32, vp),
            ("map_value_size", "bpf_map__value_size", c_uint32, vp)):
        setattr(_held, attr, ctypes.PYFUNCTYPE(restype, *argtypes)((sym, lb)))
    _proto(lb, "bpf_object__open_file", vp, c_char_p, POINTER(BpfObjectOpenOpts))
    _proto(lb, "bpf_object__open_mem", vp, c_void_p, c_size_t, POINTER(BpfObjectOpenOpts))
    _proto(lb, "bpf_object__load", ip, vp)
    _proto(lb, "bpf_object__close", None, vp)
    _proto(lb, "bpf_map__map_extra", ctypes.c_uint64, vp)
    _proto(lb, "bpf_map__set_pin_path", ip, vp, c_char_p)
    global _load, _open_mem_at, _open_file_at
    _load = lb.bpf_object__load
    _open_mem_at = ctypes.CFUNCTYPE(vp, c_char_p, c_size_t, vp, use_errno=True)(("bpf_object__open_mem", lb))
    _open_file_at = ctypes.CFUNCTYPE(vp, c_char_p, vp, use_errno=True)(("bpf_object__open_file", lb))
    _proto(lb, "bpf_object__btf", vp, vp)
    _proto(lb, "bpf_object__next_program", vp, vp, vp)
    _proto(lb, "bpf_object__next_map", vp, vp, vp)
    _proto(lb, "btf__raw_data", vp, vp, POINTER(c_uint32))
    _proto(lb, "libbpf_prog_type_by_name", ip, c_char_p, POINTER(c_int), POINTER(c_int))

    _proto(lb, "bpf_program__name", c_char_p, vp)
    _proto(lb, "bpf_program__section_name", c_char_p, vp)
    _proto(lb, "bpf_program__fd", ip, vp)
    _proto(lb, "bpf_program__type", ip, vp)
    _proto(lb, "bpf_program__set_type", ip, vp, ip)
    _proto(lb, "bpf_program__flags", c_uint32, vp)
    _proto(lb, "bpf_program__set_flags", ip, vp, c_uint32)
    _proto(lb, "bpf_program__expected_attach_type", ip, vp)
    _proto(lb, "bpf_program__set_expected_attach_type", ip, vp, ip)
    _proto(lb, "bpf_program__set_ifindex", None, vp, c_uint32)
    _proto(lb, "bpf_program__set_log_buf", ip, vp, c_void_p, c_size_t)
    _proto(lb, "bpf_program__insn_cnt", c_size_t, vp)
    _proto(lb, "bpf_program__set_attach_target", ip, vp, ip, c_char_p)
    _proto(lb, "bpf_program__autoattach", c_bool, vp)
    _proto(lb, "bpf_program__autoload", c_bool, vp)
    _proto(lb, "bpf_program__set_autoload", ip, vp, c_bool)
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
    _proto(lb, "bpf_map__set_ifindex", ip, vp, c_uint32)
    _proto(lb, "bpf_map__initial_value", vp, vp, POINTER(c_size_t))
    _proto(lb, "bpf_map__set_initial_value", ip, vp, c_void_p, c_size_t)


def _s(b: bytes | None) -> str:
    return b.decode("utf-8", "replace") if b else ""


# ---------------------------------------------------------------------------
# objects

# Open options by (name, pin root, relaxed maps, log level, log buffer address):
# libbpf only reads them during the open (it copies the strings it keeps), so
# one struct per configuration serves every open, from any thread.
_OPTS: dict[tuple[Any, ...], Any] = {}


def _open_opts(name: str | bytes | None, pin_root: str | None, relaxed_maps: bool, log_level: int,
               log_buf: LogBuffer | None) -> Any:
    key = (name, pin_root, relaxed_maps, log_level, log_buf.addr if log_buf is not None else 0)
    ref = _OPTS.get(key)
    if ref is None:
        opts = BpfObjectOpenOpts()
        opts.sz = ctypes.sizeof(BpfObjectOpenOpts)
        if name is not None:
            # bytes: the name libbpf itself made from a file's path (open_cached)
            opts.object_name = name if isinstance(name, bytes) else name.encode()
        if pin_root is not None:
            opts.pin_root_path = libbpf.c_path(pin_root)
        opts.relaxed_maps = relaxed_maps
        opts.kernel_log_level = log_level
        if log_buf is not None:
            opts.kernel_log_buf = log_buf.addr
            opts.kernel_log_size = log_buf.size
        ref = ctypes.byref(opts)  # holds the struct, which holds its strings
        if len(_OPTS) >= 64:  # thread churn (one log buffer per thread): start afresh
            _OPTS.clear()
        _OPTS[key] = ref
    return ref


def open_object(source: str | bytes, *, name: str | None, pin_root: str | None,
                relaxed_maps: bool, log_level: int = 0, log_buf: LogBuffer | None = None,
                raw_path: bytes | None = None) -> int:
    """``bpf_object__open_file`` / ``open_mem``; returns the ``struct bpf_object *``.

    ``source`` is a path (str) or the object's bytes; ``raw_path``, when
    given, is the path already as C sees it (:func:`libbpf.c_path`).  ``log_buf`` becomes
    the object's verifier log buffer (libbpf writes a program's log there
    when its load fails): it must outlive the load.  Open failures raise
    :class:`LibbpfOpenError` naming the object, with libbpf's last warning.
    """
    lb = libbpf.lib()
    opts = _open_opts(name, pin_root, relaxed_maps, log_level, log_buf)
    ctypes.set_errno(0)
    if isinstance(source, str):
        ptr, lines = libbpf.captured(lb.bpf_object__open_file, raw_path or libbpf.c_path(source), opts)
        if ptr and ptr < libbpf.ERR_PTR_MIN:
            return int(ptr)
        what, path = source, source
    else:
        # libbpf copies the buffer while opening: it only needs to live until the call returns
        buf = ctypes.create_string_buffer(bytes(source), len(source))
        ptr, lines = libbpf.captured(lb.bpf_object__open_mem, buf, len(source), opts)
        if ptr and ptr < libbpf.ERR_PTR_MIN:
            return int(ptr)
        what, path = name or "<bytes>", None
    raise _open_error(ptr, lines, what, path)


def _open_error(ptr: int | None, lines: list[str], what: str, path: str | None) -> LibbpfOpenError:
    """A failed open: errno from libbpf's encoded pointer or errno, and libbpf's last line."""
    err = ((1 << 64) - ptr) if ptr else (ctypes.get_errno() or _errno.EINVAL)
    detail = next((s for s in map(str.strip, reversed(lines)) if s), "") or os.strerror(err)
    detail = detail.removeprefix("libbpf: ")  # "...: libbpf: elf: ..." would read as two sentences
    return LibbpfOpenError(f"failed to open object file '{what}': {detail}", errno=err, obj=what, path=path)


def open_cached(data: bytes, obj_name: bytes, what: str, pin_root: str | None,
                log_buf: LogBuffer | None) -> int:
    """``bpf_object__open_mem`` of a file's contents read before (``what`` is its path),
    under ``obj_name``, the name ``bpf_object__open_file`` gives that path: the same
    object as opening the file, without the open, mmap, munmap and close."""
    ptr, lines = libbpf.captured(libbpf.lib().bpf_object__open_mem, data, len(data),
                                 _open_opts(obj_name, pin_root, False, 0, log_buf))
    if ptr and ptr < libbpf.ERR_PTR_MIN:
        return int(ptr)
    raise _open_error(ptr, lines, what, what)


def open_load_cached(contents: tuple[bytes, bytes], what: str, log_buf: LogBuffer,
                     owner: Any) -> tuple[int, list[str]]:
    """:func:`open_cached` of ``contents`` (the bytes, the object name; default pin
    root) and :func:`load_object` in one: the object is stored as ``owner._handle``
    before its load starts (its owner frees it, whatever happens)."""
    name = contents[1]
    addr = log_buf.opts.get(name)
    if addr is None:
        if len(log_buf.opts) >= 256:
            log_buf.opts.clear()
            log_buf.kept.clear()
        ref = _open_opts(name, None, False, 0, log_buf)
        log_buf.kept.append(ref)  # the options live as long as their address is kept
        addr = log_buf.opts[name] = ctypes.addressof(ref._obj)
    data = contents[0]
    ptr, ret, lines = libbpf.capture_session(_open_mem_at, (data, len(data), addr), _load, owner,
                                             _open_path_at, (what, addr))
    if ret is None:
        raise _open_error(ptr, lines, what, what)
    return ret, lines


def _open_path_at(path: str, opts_addr: int) -> int:
    return _open_file_at(libbpf.c_path(path), opts_addr)  # type: ignore[no-any-return]


def load_object(obj: int) -> tuple[int, list[str]]:
    """``bpf_object__load``: returns 0 or the negative errno (the caller explains it), and
    the warning and info lines libbpf printed meanwhile."""
    ret, lines = libbpf.captured(libbpf.lib().bpf_object__load, obj)
    return int(ret), lines


def scan_for_load(obj: int) -> tuple[list[int], list[int], list[int]]:
    """One pass over the object before load, pointers only (names cost a call each):
    programs without a type (``BPF_PROG_TYPE_UNSPEC``), maps with a
    ``LIBBPF_PIN_BY_NAME`` path, and maps with a zero max_entries or value_size
    (the caller tells which of those the kernel would refuse)."""
    h = _held
    nxt, ptype = h.next_program, h.program_type
    untyped: list[int] = []
    p = nxt(obj, None)
    while p:
        if not ptype(p):
            untyped.append(p)
        p = nxt(obj, p)
    nxt, pin, maxe, vsize = h.next_map, h.map_pin_path, h.map_max_entries, h.map_value_size
    pinned: list[int] = []
    unsized: list[int] = []
    m = nxt(obj, None)
    while m:
        if pin(m):
            pinned.append(m)
        if not maxe(m) or not vsize(m):
            unsized.append(m)
        m = nxt(obj, m)
    return untyped, pinned, unsized


def bytes_load_as_they_are(data: bytes) -> bool:
    """Whether an object's bytes, opened quietly (default options), need nothing before
    load (:func:`scan_for_load` finds no program without a type, no by-name pin); False
    when libbpf cannot open them."""
    lb = libbpf.lib()
    with libbpf.quiet():
        ptr, _ = libbpf.captured(lb.bpf_object__open_mem, data, len(data), _open_opts(None, None, False, 0, None))
        if not ptr or ptr >= libbpf.ERR_PTR_MIN:
            return False
        try:
            untyped, pinned, _ = scan_for_load(ptr)
        finally:
            lb.bpf_object__close(ptr)
    return not (untyped or pinned)


def close_object(obj: int) -> None:
    libbpf.lib().bpf_object__close(obj)


def object_name(obj: int) -> str:
    return _s(_held.object_name(obj))


def object_name_raw(obj: int) -> bytes:
    name: bytes = _held.object_name(obj) or b""
    return name


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
    nxt, name = _held.next_program, _held.program_name
    out: dict[str, int] = {}
    p = nxt(obj, None)
    while p:
        out[_s(name(p))] = p
        p = nxt(obj, p)
    return out


def map_names(obj: int) -> dict[str, int]:
    """Map name -> ``struct bpf_map *``, in libbpf's (``map idx``) order."""
    nxt, name = _held.next_map, _held.map_name
    out: dict[str, int] = {}
    m = nxt(obj, None)
    while m:
        out[_s(name(m))] = m
        m = nxt(obj, m)
    return out


def set_log_bufs(obj: int, log: LogBuffer) -> None:
    """Give every program of ``obj`` the same verifier log buffer (over the object's own)."""
    lb = libbpf.lib()
    nxt, setbuf = lb.bpf_object__next_program, lb.bpf_program__set_log_buf
    p = nxt(obj, None)
    while p:
        setbuf(p, log.addr, log.size)
        p = nxt(obj, p)


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


BPF_F_SLEEPABLE = 1 << 4


def prog_set_sleepable(p: int) -> None:
    """Add BPF_F_SLEEPABLE to the program's load flags (libbpf does it for ".s" sections it knows)."""
    lb = libbpf.lib()
    check(lb.bpf_program__set_flags(p, lb.bpf_program__flags(p) | BPF_F_SLEEPABLE),
          "bpf_program__set_flags")


def prog_autoload(p: int) -> bool:
    return bool(libbpf.lib().bpf_program__autoload(p))


def prog_set_autoload(p: int, autoload: bool) -> None:
    check(libbpf.lib().bpf_program__set_autoload(p, bool(autoload)), "bpf_program__set_autoload")


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

        # private: a forked child writing its logs must not write into its parent's
        self._mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
        self.buf = (ctypes.c_char * size).from_buffer(self._mem)
        self.addr = ctypes.addressof(self.buf)
        self.size = size
        # the addresses of open options naming this buffer, by object name, and the
        # options themselves (open_load_cached)
        self.opts: dict[bytes, int] = {}
        self.kept: list[Any] = []

    def reset(self) -> None:
        """Make the buffer read as empty (libbpf writes a log only when a load fails)."""
        self.buf[0] = b"\0"

    def text(self) -> str:
        return self.buf.value.decode("utf-8", "replace")


def map_extra(m: int) -> int:
    return int(libbpf.lib().bpf_map__map_extra(m))


def map_clear_pin_path(m: int, name: str) -> None:
    """Forget the map's by-name pin path (it was reused from there)."""
    check(libbpf.lib().bpf_map__set_pin_path(m, None), f"map '{name}': clearing its pin path", map=name)


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


def map_set_max_entries(m: int, n: int) -> None:
    name = map_name(m)
    check(libbpf.lib().bpf_map__set_max_entries(m, n), f"map '{name}': cannot set max_entries", map=name)


def map_set_value_size(m: int, n: int) -> None:
    name = map_name(m)
    check(libbpf.lib().bpf_map__set_value_size(m, n), f"map '{name}': cannot set value_size", map=name)


def map_set_ifindex(m: int, ifindex: int) -> None:
    name = map_name(m)
    check(libbpf.lib().bpf_map__set_ifindex(m, ifindex), f"map '{name}': cannot set ifindex", map=name)


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
    "LogBuffer",
    "bytes_load_as_they_are",
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
    "map_reuse_fd",
    "map_set_ifindex",
    "map_set_initial_value",
    "map_set_max_entries",
    "map_set_value_size",
    "map_type",
    "map_value_size",
    "maps",
    "object_btf_raw",
    "object_name",
    "open_object",
    "probe_prog_type",
    "prog_attach",
    "prog_autoattach",
    "prog_autoload",
    "prog_expected_attach_type",
    "prog_fd",
    "prog_insn_cnt",
    "prog_name",
    "prog_section",
    "prog_set_attach_target",
    "prog_set_autoattach",
    "prog_set_autoload",
    "prog_set_ifindex",
    "prog_set_type",
    "prog_type",
    "prog_type_by_name",
    "program_names",
    "programs",
    "read_memory",
    "scan_for_load",
    "set_log_bufs",
    "write_memory",
]
