"""Map handles: every operation user space can do on a BPF map.

A :class:`Map` owns one map fd.  Keys and values are typed:

- with BTF (the map has a BTF key/value type, or the caller gave ``btf``):
  integer types become Python ints, anything else the ctypes type built by
  :class:`pybpfobj.spec.ctypes_types.CTypesBuilder`;
- with ``key_type=`` / ``value_type=``: that ctypes type (a simple integer
  type such as ``ctypes.c_uint32`` means Python ints), or ``bytes`` for raw
  bytes;
- otherwise raw ``bytes`` of exactly ``key_size`` / ``value_size``.

Per-CPU maps take and return one value per possible CPU (a list); a single
value given to ``update`` is written to every CPU, as bpftool does.

The hot paths (``lookup``, ``update``, ``m[k]``) pack into preallocated
buffers taken from a small per-handle pool for the duration of one call, and
call the libbpf function declared once in :mod:`pybpfobj.kernel.mapops`;
integer keys and values go through ctypes scalars.  One handle may be shared
by any number of threads (see :class:`Map`).  Every failure is a
:mod:`pybpfobj.errors` exception naming the map (``KeyNotFoundError`` is also
a ``KeyError``).
"""

from __future__ import annotations

import ctypes
import errno as _errno
import gc
import mmap as _mmap
import os
import re
import struct
from array import array as _array
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pybpfobj import constants as C
from pybpfobj.errors import BatchError, BpfError, MapError, map_error
from pybpfobj.kernel import info as kinfo
from pybpfobj.kernel import libbpf, mapops

if TYPE_CHECKING:
    from typing import Self

    from pybpfobj.spec.btf import BTF

# Update flags, under the names used by the API.
ANY, NOEXIST, EXIST, LOCK = C.BPF_ANY, C.BPF_NOEXIST, C.BPF_EXIST, C.BPF_F_LOCK
_FLAG_WORDS = {"any": ANY, "noexist": NOEXIST, "exist": EXIST}

ENOTSUPP = 524  # the kernel's internal "operation not supported" leaks to user space

_NAME_RE = re.compile(r"[A-Za-z0-9_.]*\Z")
_STORAGE_TYPES = frozenset(C.MAP_TYPE[n] for n in ("sk_storage", "inode_storage", "task_storage", "cgrp_storage")
                           if n in C.MAP_TYPE)
_ARRAY_TYPES = frozenset(C.MAP_TYPE[n] for n in ("array", "percpu_array"))
_NO_KEY_TYPES = frozenset(C.MAP_TYPE[n] for n in ("queue", "stack", "bloom_filter"))
_PROG_ARRAY = C.MAP_TYPE["prog_array"]
_QUEUE_STACK = frozenset(C.MAP_TYPE[n] for n in ("queue", "stack"))
# Map types whose lookup/update/delete never sleep in the kernel (spin locks, RCU, preallocated or
# non-sleeping allocations): their fast-path syscalls may keep the GIL.  Map-in-map updates wait for
# an RCU grace period, cpumap/devmap/sockmap updates can sleep: those release it as usual.
_NONSLEEPING_TYPES = frozenset(C.MAP_TYPE[n] for n in ("hash", "array", "lru_hash", "lpm_trie"))
_FD_VALUE_TYPES = frozenset(C.MAP_TYPE[n] for n in (
    "prog_array", "perf_event_array", "cgroup_array", "array_of_maps", "hash_of_maps"))

_INT_FORMATS = {(1, False): "<B", (2, False): "<H", (4, False): "<I", (8, False): "<Q",
                (1, True): "<b", (2, True): "<h", (4, True): "<i", (8, True): "<q"}
_CTYPES_INTS: dict[Any, tuple[int, bool]] = {
    ctypes.c_uint8: (1, False), ctypes.c_int8: (1, True), ctypes.c_uint16: (2, False),
    ctypes.c_int16: (2, True), ctypes.c_uint32: (4, False), ctypes.c_int32: (4, True),
    ctypes.c_uint64: (8, False), ctypes.c_int64: (8, True), ctypes.c_bool: (1, False),
}
_CTYPES_INTS.setdefault(ctypes.c_ulong, (ctypes.sizeof(ctypes.c_ulong), False))
_CTYPES_INTS.setdefault(ctypes.c_long, (ctypes.sizeof(ctypes.c_long), True))
_CTYPES_INTS.setdefault(ctypes.c_uint, (4, False))
_CTYPES_INTS.setdefault(ctypes.c_int, (4, True))

_ncpus: int | None = None


class MapClosedError(MapError, ValueError):
    """The map handle was closed (EBADF); also a ValueError, as Map.fd always raised."""


def _flag_value(flags: Any, lock: bool, name: str) -> int:
    """Update flags given as a word or an int, checked (the slow paths only)."""
    if isinstance(flags, str):
        n = _FLAG_WORDS.get(flags)
        if n is None:
            raise MapError(f"unknown update flag {flags!r} for map {name!r} (any, noexist, exist)",
                           errno=_errno.EINVAL, map=name)
    elif isinstance(flags, int) and 0 <= flags < 1 << 64:
        n = flags
    else:
        raise MapError(f"invalid update flags {flags!r} for map {name!r}: a flag word or an int",
                       errno=_errno.EINVAL, map=name)
    return n | LOCK if lock else n


def _as_list(x: Any, what: str, name: str) -> list[Any]:
    try:
        return list(x)
    except TypeError:
        raise MapError(f"{what} on map {name!r}: expected an iterable, got {type(x).__name__}",
                       errno=_errno.EINVAL, map=name) from None


def _check_int_arg(v: Any, what: str, lo: int, hi: int, name: str | None) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise MapError(f"invalid {what} {v!r}" + (f" for map {name!r}" if name else "")
                       + f" (must be an int in {lo}..{hi})", errno=_errno.EINVAL, map=name)


def possible_cpus() -> int:
    """Number of possible CPUs (the number of slots in a per-CPU value)."""
    global _ncpus
    if _ncpus is None:
        _ncpus = libbpf.num_possible_cpus()
    return _ncpus


def _round8(n: int) -> int:
    return (n + 7) & ~7


def map_type_number(t: int | str) -> int:
    """A map type given as number or bpftool name (``"hash"``) as the kernel's number."""
    if isinstance(t, int):
        return t
    try:
        return C.MAP_TYPE[t]
    except KeyError:
        raise MapError(f"unrecognized map type: {t}", errno=_errno.EINVAL) from None


def check_map_name(name: str) -> None:
    """Raise MapError unless ``name`` is a valid kernel object name ([A-Za-z0-9_.], <= 15 chars)."""
    if len(name) > 15:
        raise MapError(f"map name {name!r} is too long: at most 15 characters, got {len(name)}",
                       errno=_errno.EINVAL, map=name)
    if not _NAME_RE.match(name):
        bad = next(ch for ch in name if not _NAME_RE.match(ch))
        raise MapError(f"map name {name!r} has an invalid character {bad!r}: only A-Z, a-z, 0-9, '_' "
                       "and '.' are allowed", errno=_errno.EINVAL, map=name)


# ---------------------------------------------------------------------------
# codecs: Python value <-> bytes in a buffer

class _Codec:
    """How one side (key or value) of a map converts."""

    size: int

    def pack(self, v: Any) -> bytes:
        raise NotImplementedError

    def unpack(self, data: Any, off: int = 0) -> Any:
        raise NotImplementedError

    def unpack_many(self, data: Any, n: int, stride: int) -> list[Any]:
        return [self.unpack(data, i * stride) for i in range(n)]


class _IntCodec(_Codec):
    def __init__(self, size: int, signed: bool) -> None:
        self.size = size
        self.st = struct.Struct(_INT_FORMATS[(size, signed)])
        self.code = self.st.format[-1]

    def pack(self, v: Any) -> bytes:
        return self.st.pack(v)

    def unpack(self, data: Any, off: int = 0) -> Any:
        return self.st.unpack_from(data, off)[0]

    def unpack_many(self, data: Any, n: int, stride: int) -> list[Any]:
        if stride == self.size:
            mv: Any = memoryview(data).cast("B")[:n * stride]
            return list(mv.cast(self.code).tolist())
        return super().unpack_many(data, n, stride)


_SCALARS: dict[tuple[int, bool], Any] = {
    (1, False): ctypes.c_uint8, (1, True): ctypes.c_int8, (2, False): ctypes.c_uint16, (2, True): ctypes.c_int16,
    (4, False): ctypes.c_uint32, (4, True): ctypes.c_int32, (8, False): ctypes.c_uint64, (8, True): ctypes.c_int64,
}


def _bounds(c: _IntCodec) -> tuple[int, int]:
    bits = 8 * c.size
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if c.code.islower() else (0, (1 << bits) - 1)


class _BytesCodec(_Codec):
    def __init__(self, size: int) -> None:
        self.size = size

    def pack(self, v: Any) -> bytes:
        if isinstance(v, int) and not isinstance(v, bool) and self.size <= 8 and v >= 0:
            return v.to_bytes(self.size, "little")
        if isinstance(v, (ctypes.Array, ctypes.Structure, ctypes.Union)):
            return bytes(memoryview(v).cast("B"))
        return bytes(v)

    def unpack(self, data: Any, off: int = 0) -> Any:
        return bytes(memoryview(data).cast("B")[off:off + self.size])


class _CTypeCodec(_Codec):
    def __init__(self, ctype: Any) -> None:
        self.ctype = ctype
        self.size = ctypes.sizeof(ctype)

    def pack(self, v: Any) -> bytes:
        if isinstance(v, self.ctype):
            return bytes(memoryview(v).cast("B"))
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v)
        if isinstance(v, dict):
            obj = self.ctype()
            fields = _field_names(self.ctype)
            for k, x in v.items():
                if k not in fields:  # setattr would just add a Python attribute, silently
                    raise ValueError(f"{self.ctype.__name__} has no field {k!r}")
                setattr(obj, k, x)
            return bytes(memoryview(obj).cast("B"))
        if isinstance(v, (tuple, list)) and issubclass(self.ctype, (ctypes.Structure, ctypes.Union)):
            return bytes(memoryview(self.ctype(*v)).cast("B"))
        raise TypeError(f"expected {self.ctype.__name__}, bytes or dict, got {type(v).__name__}")

    def unpack(self, data: Any, off: int = 0) -> Any:
        return self.ctype.from_buffer_copy(data, off)


class _BtfCodec(_CTypeCodec):
    """A value typed by BTF, written from BTF itself (:func:`pybpfobj.spec.values.encode`:
    a dict of members by their C names or a list of them in order, nested alike, members
    left out zero; a list for an array, a string or short bytes for a char array;
    bitfields, enum names; ctypes values and bytes of the exact size as they are) and
    read as ``ctype`` (bytes for a type ctypes cannot lay out, ``ctype`` None)."""

    def __init__(self, ctype: Any, btf: Any, type_id: int, size: int) -> None:
        from pybpfobj.spec.btf import BtfKind

        self.ctype = ctype
        self.size = size
        self.btf = btf
        self.type_id = type_id
        self.is_array = btf.resolve(type_id).kind == BtfKind.ARRAY

    def is_one_value(self, v: Any) -> bool:
        """Whether a list given for a per-CPU map is one array value (for every CPU) rather
        than one value per CPU: its elements are not themselves array values."""
        return self.is_array and not any(isinstance(x, (list, tuple, str)) or _is_buffer(x)
                                         or hasattr(x, "_length_") for x in v)

    def pack(self, v: Any) -> bytes:
        # the update path: values already in the map's layout are taken as they are
        if v.__class__ is bytes and len(v) == self.size:
            return v
        ct = self.ctype
        if ct is not None and isinstance(v, ct):
            return bytes(memoryview(v).cast("B"))
        from pybpfobj.spec.values import encode

        return encode(self.btf, self.type_id, v, bytes(self.size), "")

    def unpack(self, data: Any, off: int = 0) -> Any:
        if self.ctype is None:
            return bytes(data[off:off + self.size])
        return super().unpack(data, off)


def _field_names(ctype: Any) -> set[str]:
    """The fields of a ctypes Structure/Union, anonymous members' fields included."""
    names: set[str] = set()
    anon = set(getattr(ctype, "_anonymous_", ()))
    for f in getattr(ctype, "_fields_", ()):
        names.add(f[0])
        if f[0] in anon:
            names |= _field_names(f[1])
    return names


def _is_buffer(x: Any) -> bool:
    """Packed data (bytes, bytearray, array.array, memoryview, numpy arrays), not a sequence of values."""
    if isinstance(x, (_array, bytes, bytearray, memoryview)):
        return True
    return hasattr(x, "typecode") or hasattr(x, "__array_interface__")


def _codec_for_ctype(t: Any) -> _Codec:
    if t is bytes:
        raise AssertionError("handled by caller")
    if t in _CTYPES_INTS:
        size, signed = _CTYPES_INTS[t]
        return _IntCodec(size, signed)
    if isinstance(t, type) and issubclass(t, ctypes._SimpleCData):  # c_char, floats...
        return _CTypeCodec(t)
    return _CTypeCodec(t)


def _buffer_arg(obj: Any, mv: memoryview) -> Any:
    """A ``c_void_p``-compatible argument for the memory of ``obj`` (viewed by ``mv``), with no copy.

    array.array passes its address; bytes pass as they are (ctypes hands
    over their internal pointer);
    writable buffers as a ctypes array over their memory; other read-only
    buffers (a memoryview of bytes, a read-only mmap) are copied, as ctypes
    has no address for them.
    """
    t = type(obj)
    if t is _array:
        return obj.buffer_info()[0]  # the caller's export of ``mv`` pins this memory for the call
    if t is bytes:
        return obj
    if mv.readonly:
        return mv.tobytes()
    return (ctypes.c_char * mv.nbytes).from_buffer(mv)


_opts_cache: dict[int, mapops.BpfMapBatchOpts] = {}


def _batch_opts_for(elem_flags: int) -> Any:
    """A pointer to read-only batch opts for ``elem_flags`` (libbpf only reads them: shared safely)."""
    p = _opts_cache.get(elem_flags)
    if p is None:
        p = _opts_cache.setdefault(elem_flags, mapops.batch_opts(elem_flags=elem_flags))
    return ctypes.byref(p)


_update_batch_fn: list[Any] = []


def _f_update_batch() -> Any:
    """libbpf's bpf_map_update_batch (declared prototype), looked up once."""
    if not _update_batch_fn:
        _update_batch_fn.append(mapops.fn("bpf_map_update_batch"))
    return _update_batch_fn[0]


# ---------------------------------------------------------------------------
# info

@dataclass
class MapInfo(kinfo.MapInfo):
    """What the kernel says about a map: ``bpf_map_info`` (:class:`kernel.info.MapInfo`) and fdinfo."""

    frozen: bool = False
    memlock: int | None = None
    owner_prog_type: int | None = None
    owner_jited: bool | None = None
    pinned: list[str] = field(default_factory=list)
    pids: list[tuple[int, str]] = field(default_factory=list)

    @property
    def flags(self) -> int:
        """``map_flags`` (BPF_F_*), under the name :class:`Map` uses."""
        return self.map_flags


# ---------------------------------------------------------------------------
# the handle

class Map:
    """A BPF map, held by an fd this object owns (unless ``owned=False``).

    Threads: one handle may be used by many threads at once.  Every element
    operation (lookup, update, delete, lookup_and_delete, get_next_key,
    push/pop/peek, ``in``, per-CPU and struct-typed values alike) is
    atomic as the kernel makes it, and returns its own result: keys are
    passed to the kernel as immutable bytes or in a buffer the call alone
    holds, and output buffers come from a per-handle pool (a buffer is never
    in two calls at once; a new one is made when all are busy), so this does
    not depend on the GIL, on which calls keep it, or on where CPython
    switches threads; a signal handler using the same handle is safe too.
    Iteration and batch operations use buffers of their own.  Calls are not
    serialised: a read-modify-write of one key by two threads still needs a
    lock of the caller's (or BPF_F_LOCK).  ``close()`` while another thread
    is in a call on the handle is the caller's error, as with any fd.
    """

    _fd: int

    def __init__(self, fd: int, *, owned: bool = True, name: str | None = None,
                 btf: BTF | None = None, key_type: Any = None, value_type: Any = None,
                 pinned_path: str | None = None) -> None:
        self._fd = -1
        self._owned = owned
        _check_int_arg(fd, "map fd", 0, 0x7FFFFFFF, name)
        ki = kinfo.map_info(fd)
        # _fd is set last: a failure below leaves the fd to the caller, and __del__ must not close it too
        self.id: int = ki.id
        self.type: int = ki.type
        self.type_name: str = ki.type_name
        self.name: str = name if name is not None else ki.name
        self.key_size: int = ki.key_size
        self.value_size: int = ki.value_size
        self.max_entries: int = ki.max_entries
        self.flags: int = ki.map_flags
        self.btf_id: int = ki.btf_id
        self.btf_key_type_id: int = ki.btf_key_type_id
        self.btf_value_type_id: int = ki.btf_value_type_id
        self.map_extra: int = ki.map_extra
        self.pinned_path = pinned_path
        self.percpu: bool = self.type in C.PERCPU_MAP_TYPES
        self.ncpus: int = possible_cpus() if self.percpu else 1
        self.value_stride: int = _round8(self.value_size) if self.percpu else self.value_size
        self._btf = btf
        self._mmaps: list[Any] = []

        if (key_type is None or value_type is None) and btf is None and self.btf_id and (
                self.btf_value_type_id or self.btf_key_type_id):
            try:
                from pybpfobj.spec.btf import BTF as _BTF

                self._btf = _BTF.from_bytes(kinfo.btf_data(self.btf_id), source=f"map {self.name!r} BTF")
            except (ImportError, BpfError):
                self._btf = None  # typed access is a nicety; raw bytes still work
        self.key_codec = self._side_codec(key_type, self.key_size, self.btf_key_type_id)
        self.value_codec = self._side_codec(value_type, self.value_size, self.btf_value_type_id)

        # Output buffers (a key for get_next_key, a value) are taken from a pool for the
        # duration of one call and given back: see "Threads" in the class docstring.
        self._out_ksz = max(self.key_size, 8)
        self._out_vsz = max(self.value_stride * self.ncpus, 8)
        self._pool: list[tuple[Any, Any]] = [self._new_out_bufs()]
        self._f_lookup = mapops.fn("bpf_map_lookup_elem")
        self._f_lookup_flags = mapops.fn("bpf_map_lookup_elem_flags")
        self._f_update = mapops.fn("bpf_map_update_elem")
        self._f_delete = mapops.fn("bpf_map_delete_elem")
        self._f_lad = mapops.fn("bpf_map_lookup_and_delete_elem")
        self._f_next = mapops.fn("bpf_map_get_next_key")
        self._fd = fd
        self._setup_fast_paths()

    # -- construction ------------------------------------------------------

    def _side_codec(self, given: Any, size: int, btf_type_id: int) -> _Codec:
        if given is bytes:
            return _BytesCodec(size)
        if given is not None:
            try:
                c = _codec_for_ctype(given)
            except TypeError as e:
                raise MapError(f"{given!r} is not a ctypes type (or bytes) for map {self.name!r}: {e}",
                               errno=_errno.EINVAL, map=self.name) from None
            if c.size != size:
                raise MapError(f"type {getattr(given, '__name__', given)} is {c.size} bytes but map "
                               f"{self.name!r} has size {size}", errno=_errno.EINVAL, map=self.name)
            return c
        if self._btf is not None and btf_type_id and size:
            try:
                return self._btf_codec(btf_type_id, size)
            except (ImportError, BpfError):
                pass
        if self.type in _FD_VALUE_TYPES and size == 4 and btf_type_id == 0 and given is None \
                and size == self.value_size and self.key_size == 4:
            return _IntCodec(4, False)
        return _BytesCodec(size)

    def _btf_codec(self, type_id: int, size: int) -> _Codec:
        from pybpfobj.spec.btf import BtfKind

        assert self._btf is not None
        btf = self._btf
        t = btf.resolve(type_id)
        if t.kind == BtfKind.INT and t.int_bits in (8, 16, 32, 64) and t.int_offset == 0 \
                and t.size == size and not (t.int_encoding & 4 and False):
            return _IntCodec(size, bool(t.int_encoding & 1))
        if t.kind in (BtfKind.ENUM, BtfKind.ENUM64) and size in (1, 2, 4, 8):
            return _IntCodec(size, bool(t.kind_flag))
        if t.kind == BtfKind.DATASEC:
            return _CTypeCodec(datasec_ctype(btf, t.id))
        from pybpfobj.errors import BTFError
        from pybpfobj.spec.ctypes_types import CTypesBuilder

        if btf.size_of(type_id) != size:
            raise MapError(f"BTF type of map {self.name!r} is {btf.size_of(type_id)} bytes, map has {size}",
                           errno=_errno.EINVAL, map=self.name)
        try:
            ct = CTypesBuilder(btf).build(type_id)
        except BTFError:  # a layout ctypes cannot reproduce: values read as bytes, written from dicts too
            return _BtfCodec(None, btf, type_id, size)
        return _BtfCodec(ct, btf, type_id, size)

    @classmethod
    def from_fd(cls, fd: int, *, owned: bool = True, name: str | None = None, btf: BTF | None = None,
                key_type: Any = None, value_type: Any = None, pinned_path: str | None = None) -> Map:
        """Wrap map ``fd``; with ``owned`` (default) the Map closes it."""
        return cls(fd, owned=owned, name=name, btf=btf, key_type=key_type, value_type=value_type,
                   pinned_path=pinned_path)

    @classmethod
    def from_id(cls, map_id: int, **kw: Any) -> Map:
        """Open map ``map_id`` (NotFoundError when there is none)."""
        if not isinstance(map_id, int) or isinstance(map_id, bool):  # a bad int: NotFoundError below
            _check_int_arg(map_id, "map id", 0, 0xFFFFFFFF, None)
        fd = kinfo.map_fd_by_id(map_id)
        try:
            return cls(fd, **kw)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def from_pinned(cls, path: str, **kw: Any) -> Map:
        """Open the map pinned at ``path`` (BPF_OBJ_GET)."""
        if not isinstance(path, (str, os.PathLike)):
            raise MapError(f"pinned map path must be a path, not {type(path).__name__}", errno=_errno.EINVAL)
        path = os.fspath(path)
        fd = kinfo.obj_get(str(path), "map")
        try:
            return cls(fd, pinned_path=str(path), **kw)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def by_name(cls, name: str, **kw: Any) -> list[Map]:
        """Every map whose kernel name is ``name`` (possibly none), by ascending id."""
        out: list[Map] = []
        for mid in kinfo.map_ids():
            try:
                fd = kinfo.map_fd_by_id(mid)
            except BpfError:
                continue
            try:
                if kinfo.map_info(fd).name != name:
                    os.close(fd)
                    continue
                out.append(cls(fd, **kw))
            except BaseException:
                os.close(fd)
                for m in out:
                    m.close()
                raise
        return out

    @classmethod
    def create(cls, map_type: int | str, key_size: int, value_size: int, max_entries: int, *,
               name: str | None = None, flags: int = 0, inner_map: Map | int | None = None,
               numa_node: int | None = None, map_extra: int = 0, btf_fd: int = 0,
               btf_key_type_id: int = 0, btf_value_type_id: int = 0, btf_vmlinux_value_type_id: int = 0,
               ifindex: int = 0, btf: BTF | None = None, key_type: Any = None,
               value_type: Any = None) -> Map:
        """BPF_MAP_CREATE a new map of any type the kernel can create.

        ``name`` must match ``[A-Za-z0-9_.]`` and have at most 15 characters.
        ``inner_map`` (a Map or fd) is the template of array_of_maps /
        hash_of_maps.  ``numa_node`` sets BPF_F_NUMA_NODE.  ``btf_fd`` with
        the type ids attaches BTF; ``btf`` (a parsed BTF) is used for typing.
        """
        t = map_type_number(map_type)
        if name is not None and not isinstance(name, str):
            raise MapError(f"map name must be a str, not {type(name).__name__}", errno=_errno.EINVAL)
        if name:
            check_map_name(name)
        _check_int_arg(t, "map type", 0, 0xFFFFFFFF, name)
        for what, v in (("key_size", key_size), ("value_size", value_size), ("max_entries", max_entries),
                        ("flags", flags), ("map_extra", map_extra), ("btf_fd", btf_fd),
                        ("ifindex", ifindex)):
            _check_int_arg(v, what, 0, (1 << 64) - 1 if what == "map_extra" else 0xFFFFFFFF, name)
        if numa_node is not None:
            _check_int_arg(numa_node, "numa_node", 0, 0xFFFFFFFF, name)
        if inner_map is not None and not isinstance(inner_map, Map):
            _check_int_arg(inner_map, "inner_map fd", 0, 0x7FFFFFFF, name)
        if numa_node is not None:
            flags |= C.BPF_F_NUMA_NODE
        inner_fd = inner_map.fd if isinstance(inner_map, Map) else (inner_map or 0)
        if t in C.MAP_IN_MAP_TYPES and not inner_fd:
            raise MapError(f"map {name or ''!r} of type {C.map_type_name(t)} needs an inner_map template",
                           errno=_errno.EINVAL, map=name)
        own_btf = 0
        if t in _STORAGE_TYPES and not btf_fd and key_size == 4 and value_size > 0:
            # the kernel insists on BTF for these; describe the value as bytes
            own_btf, btf_key_type_id, btf_value_type_id = mapops.storage_btf(value_size)
            btf_fd = own_btf
        try:
            fd = mapops.create(t, name, key_size, value_size, max_entries, flags=flags, btf_fd=btf_fd,
                               btf_key_type_id=btf_key_type_id, btf_value_type_id=btf_value_type_id,
                               btf_vmlinux_value_type_id=btf_vmlinux_value_type_id, inner_map_fd=inner_fd,
                               map_extra=map_extra, numa_node=numa_node or 0, ifindex=ifindex)
        except BpfError as e:
            raise MapError(f"map create failed for {name or C.map_type_name(t)!r} (type "
                           f"{C.map_type_name(t)}, key {key_size}, value {value_size}, max_entries "
                           f"{max_entries}, flags {flags:#x}): {os.strerror(e.errno or 22)}",
                           errno=e.errno or 0, map=name) from None
        finally:
            if own_btf:
                os.close(own_btf)
        if own_btf:  # the map's BTF only says "bytes": don't let it type the values
            key_type = ctypes.c_int32 if key_type is None else key_type
            value_type = bytes if value_type is None else value_type
        try:
            return cls(fd, btf=btf, key_type=key_type, value_type=value_type)
        except BaseException:
            os.close(fd)
            raise

    # -- lifetime ----------------------------------------------------------

    @property
    def fd(self) -> int:
        """The map's fd (ValueError once closed)."""
        if self._fd < 0:
            raise MapClosedError(f"map {self.name!r} is closed", errno=_errno.EBADF, map=self.name)
        return self._fd

    @property
    def btf(self) -> BTF | None:
        """The map's BTF, when it has one (or was given one)."""
        return self._btf

    def close(self) -> None:
        """Close the fd (if owned).  mmap views stay valid until dropped."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            if self._owned:
                os.close(fd)
            self._setup_fast_paths()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0 and getattr(self, "_owned", False):
            os.close(self._fd)  # interpreter shutdown: no fast-path rebinding
            self._fd = -1

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd {self._fd}"
        return (f"<Map {self.name!r} id {self.id} {self.type_name} key {self.key_size} value "
                f"{self.value_size} max_entries {self.max_entries} ({state})>")

    def info(self, *, pinned: bool = False, pids: bool = False) -> MapInfo:
        """Fresh info from the kernel; ``pinned``/``pids`` also scan bpffs mounts and /proc."""
        ki = kinfo.map_info(self.fd)
        fdi = kinfo.fdinfo(self.fd)
        mi = MapInfo(
            **vars(ki), frozen=fdi.get("frozen", "0") not in ("0", ""),
            memlock=int(fdi["memlock"]) if fdi.get("memlock", "").isdigit() else None,
        )
        if "owner_prog_type" in fdi:
            mi.owner_prog_type = int(fdi["owner_prog_type"])
        if "owner_jited" in fdi:
            mi.owner_jited = fdi["owner_jited"] not in ("0", "")
        if pinned:
            mi.pinned = kinfo.pinned_paths("map", ki.id)
        if pids:
            mi.pids = kinfo.pids_of("map", ki.id, ignore_fds=[self.fd])
        return mi

    # -- element buffers -----------------------------------------------------

    def _setup_fast_paths(self) -> None:
        """Bind closures for the common cases so each call is one pack + one foreign call.

        Integer keys and values (not per-CPU): the key and value buffers are
        ctypes scalars (their ``.value`` setter/getter is the cheapest
        conversion there is) whose addresses are prebuilt ``c_void_p``
        objects, and the libbpf functions are called without argtypes and
        without errno saving (:func:`mapops.raw_fn`), so ctypes converts
        nothing per call.  Each call takes one scalar pair from a pool and
        gives it back (see "Threads" in the class docstring); for map types
        whose element operations never sleep the call keeps the GIL
        (:func:`mapops.raw_fn` ``hold_gil``), which saves the GIL hand-off
        around a syscall of about a microsecond.
        """
        fd = self._fd
        kc, vc = self.key_codec, self.value_codec
        if isinstance(kc, _IntCodec) and isinstance(vc, _IntCodec) and not self.percpu and fd >= 0:
            ktype, vtype = _SCALARS[(kc.size, kc.code.islower())], _SCALARS[(vc.size, vc.code.islower())]
            klo, khi = _bounds(kc)
            vlo, vhi = _bounds(vc)
            vp = ctypes.c_void_p
            addr = ctypes.addressof

            def new_pair() -> tuple[Any, Any, Any, Any]:
                kval, vval = ktype(), vtype()
                return kval, vval, vp(addr(kval)), vp(addr(vval))

            pool = [new_pair()]
            take, give = pool.pop, pool.append
            hold = self.type in _NONSLEEPING_TYPES
            f_lookup = mapops.raw_fn("bpf_map_lookup_elem", hold_gil=hold)
            f_update = mapops.raw_fn("bpf_map_update_elem", hold_gil=hold)
            flag_objs: dict[Any, Any] = {f: ctypes.c_uint64(f) for f in (ANY, NOEXIST, EXIST)}
            name = self.name
            pack_error = self._pack_error

            def lookup(key: Any, *, lock: bool = False) -> Any:
                if lock:
                    return Map.lookup(self, key, lock=True)
                try:
                    pair = take()
                except IndexError:  # every pooled pair is in use by another call right now
                    pair = new_pair()
                kval, vval, kptr, vptr = pair
                try:
                    if not klo <= key <= khi:
                        raise OverflowError(f"out of range [{klo}, {khi}]")
                    kval.value = key
                except (TypeError, OverflowError) as e:
                    give(pair)
                    raise pack_error("key", key, e) from None
                r = f_lookup(fd, kptr, vptr)
                v = vval.value
                give(pair)
                if r:
                    raise map_error(-r, f"lookup of key {key!r}", name)
                return v

            def update(key: Any, value: Any, flags: int | str = 0, *, lock: bool = False) -> None:
                try:
                    fl = flag_objs[flags]
                except (KeyError, TypeError):  # a word, other bits, or not a flag at all
                    fl = None
                if fl is None or lock:
                    fl = ctypes.c_uint64(_flag_value(flags, lock, name))
                try:
                    pair = take()
                except IndexError:
                    pair = new_pair()
                kval, vval, kptr, vptr = pair
                try:
                    if not klo <= key <= khi:
                        raise OverflowError(f"out of range [{klo}, {khi}]")
                    kval.value = key
                except (TypeError, OverflowError) as e:
                    give(pair)
                    raise pack_error("key", key, e) from None
                try:
                    if not vlo <= value <= vhi:
                        raise OverflowError(f"out of range [{vlo}, {vhi}]")
                    vval.value = value
                except (TypeError, OverflowError) as e:
                    give(pair)
                    raise pack_error("value", value, e) from None
                r = f_update(fd, kptr, vptr, fl)
                give(pair)
                if r:
                    raise map_error(-r, f"update of key {key!r}", name)

            self.lookup = lookup  # type: ignore[method-assign,assignment]
            self.update = update  # type: ignore[method-assign]
        else:
            self.__dict__.pop("lookup", None)
            self.__dict__.pop("update", None)

    def _pack_error(self, side: str, v: Any, e: Exception) -> MapError:
        size = self.key_size if side == "key" else self.value_size
        return MapError(f"{side} {v!r} does not fit the {size}-byte {side} of map {self.name!r}: {e}",
                        errno=_errno.EINVAL, map=self.name)

    def _new_out_bufs(self) -> tuple[Any, Any]:
        return ctypes.create_string_buffer(self._out_ksz), ctypes.create_string_buffer(self._out_vsz)

    def _take(self) -> tuple[Any, Any]:
        """An output buffer pair (key, value) this call alone uses until :meth:`_give`.

        ``list.pop``/``append`` are atomic (the GIL, or the list's own lock
        without one), so two threads never get the same pair; a new pair is
        made only when every pooled one is in use, which bounds the pool by
        the number of calls in flight at once.  A pair lost to an exception
        between take and give is simply garbage.
        """
        try:
            return self._pool.pop()
        except IndexError:
            return self._new_out_bufs()

    def _give(self, bufs: tuple[Any, Any]) -> None:
        self._pool.append(bufs)

    def _key(self, key: Any) -> bytes | None:
        """``key`` packed as bytes of exactly ``key_size`` (None for key-less maps).

        Keys are only read by the kernel, so the immutable bytes object itself
        is passed: nothing shared between threads is written.
        """
        if self.key_size == 0:
            return None
        try:
            data = self.key_codec.pack(key)
        except (struct.error, TypeError, ValueError, OverflowError) as e:
            raise self._pack_error("key", key, e) from None
        if len(data) != self.key_size:
            raise MapError(f"key for map {self.name!r} must be {self.key_size} bytes, got {len(data)}",
                           errno=_errno.EINVAL, map=self.name)
        return data

    def _value_bytes(self, value: Any) -> bytes:
        try:
            if self.type in _FD_VALUE_TYPES and hasattr(value, "fd"):
                value = value.fd
            if self.percpu:
                one = not isinstance(value, (list, tuple)) or (
                    isinstance(self.value_codec, _BtfCodec) and self.value_codec.is_one_value(value))
                vals = [value] * self.ncpus if one else list(value)
                if len(vals) != self.ncpus:
                    raise MapError(f"per-CPU map {self.name!r} needs {self.ncpus} values (one per "
                                   f"possible CPU) or one for all, got {len(vals)}",
                                   errno=_errno.EINVAL, map=self.name)
                pad = b"\0" * (self.value_stride - self.value_size)
                parts = []
                for v in vals:
                    d = self.value_codec.pack(v)
                    self._check_value_len(d)
                    parts.append(d + pad)
                return b"".join(parts)
            d = self.value_codec.pack(value)
        except (struct.error, TypeError, ValueError, OverflowError) as e:
            raise self._pack_error("value", value, e) from None
        self._check_value_len(d)
        return d

    def _check_value_len(self, d: bytes) -> None:
        if len(d) != self.value_size:
            what = "too long" if len(d) > self.value_size else "too short"
            raise MapError(f"value for map {self.name!r} is {what}: must be {self.value_size} bytes, "
                           f"got {len(d)}", errno=_errno.EINVAL, map=self.name)

    def _value_out(self, vbuf: Any) -> Any:
        if self.percpu:
            return self.value_codec.unpack_many(vbuf, self.ncpus, self.value_stride)
        return self.value_codec.unpack(vbuf)

    def _value_call(self, f: Any, kdata: bytes | None, *extra: Any) -> tuple[int, Any]:
        """``f(fd, key, value_buffer, *extra)`` on a buffer of this call's own: (ret, decoded value)."""
        fd = self.fd
        bufs = self._take()
        r = f(fd, kdata, bufs[1], *extra)
        v = None if r else self._value_out(bufs[1])
        self._give(bufs)
        return r, v

    def _raw_value(self, kdata: bytes | None, *, delete: bool = False) -> tuple[int, bytes]:
        """Lookup (or lookup-and-delete) of packed ``kdata``: (ret, the raw value bytes, every CPU's slot)."""
        fd = self.fd
        bufs = self._take()
        r = (self._f_lad if delete else self._f_lookup)(fd, kdata, bufs[1])
        raw = b"" if r else bufs[1].raw[:self.value_stride * self.ncpus if self.percpu else self.value_size]
        self._give(bufs)
        return r, raw

    def _raw_next_key(self, kdata: bytes | None) -> tuple[int, bytes]:
        """get_next_key after packed ``kdata`` (None: the first key): (ret, the next key's bytes)."""
        fd = self.fd
        bufs = self._take()
        r = self._f_next(fd, kdata, bufs[0])
        raw = b"" if r else bufs[0].raw[:self.key_size]
        self._give(bufs)
        return r, raw

    # -- element operations ------------------------------------------------

    def lookup(self, key: Any = None, *, lock: bool = False) -> Any:
        """The value at ``key`` (KeyNotFoundError if absent); ``lock`` takes the value's spin lock."""
        kdata = self._key(key)
        if lock:
            r, v = self._value_call(self._f_lookup_flags, kdata, LOCK)
        else:
            r, v = self._value_call(self._f_lookup, kdata)
        if r:
            raise map_error(-r, f"lookup of key {key!r}", self.name)
        return v

    def get(self, key: Any, default: Any = None) -> Any:
        """The value at ``key``, or ``default``."""
        try:
            return self.lookup(key)
        except KeyError:
            return default

    def update(self, key: Any, value: Any, flags: int | str = ANY, *, lock: bool = False) -> None:
        """Set ``key`` to ``value``; ``flags`` any/noexist/exist (ints or words), ``lock`` BPF_F_LOCK."""
        fl = flags if flags.__class__ is int and 0 <= flags < 1 << 64 and not lock \
            else _flag_value(flags, lock, self.name)
        kdata = self._key(key)
        data = self._value_bytes(value)
        r = self._f_update(self.fd, kdata, data, fl)
        if r:
            raise map_error(-r, f"update of key {key!r}", self.name)

    def delete(self, key: Any) -> None:
        """Delete ``key`` (KeyNotFoundError if absent)."""
        r = self._f_delete(self.fd, self._key(key))
        if r:
            raise map_error(-r, f"delete of key {key!r}", self.name)

    def lookup_and_delete(self, key: Any = None) -> Any:
        """Return the value at ``key`` and delete it in one step."""
        r, v = self._value_call(self._f_lad, self._key(key))
        if r:
            raise map_error(-r, f"lookup_and_delete of key {key!r}", self.name)
        return v

    def get_next_key(self, key: Any = None) -> Any:
        """The key after ``key`` (the first key when None); KeyNotFoundError at the end."""
        r, raw = self._raw_next_key(self._key(key) if key is not None else None)
        if r:
            raise map_error(-r, "get_next_key" + (f" after {key!r}" if key is not None else ""), self.name)
        return self.key_codec.unpack(raw)

    def freeze(self) -> None:
        """Make the map read-only for user space (BPF_MAP_FREEZE)."""
        mapops.freeze(self.fd, self.name)

    # -- queue / stack / bloom filter ----------------------------------------

    def push(self, value: Any, flags: int | str = ANY) -> None:
        """queue/stack/bloom_filter: add ``value`` (``exist`` on a full queue overwrites the oldest)."""
        self._need_type(_NO_KEY_TYPES, "push", "update(key, value)")
        fl = _flag_value(flags, False, self.name)
        r = self._f_update(self.fd, None, self._value_bytes(value), fl)
        if r:
            raise map_error(-r, "push", self.name)

    def pop(self) -> Any:
        """queue/stack: remove and return the next value (KeyNotFoundError when empty)."""
        self._need_type(_QUEUE_STACK, "pop", self._keyed_instead("lookup_and_delete(key)"))
        r, v = self._value_call(self._f_lad, None)
        if r:
            raise map_error(-r, "pop (map empty?)" if -r == _errno.ENOENT else "pop", self.name)
        return v

    def peek(self) -> Any:
        """queue/stack: the next value without removing it (KeyNotFoundError when empty)."""
        self._need_type(_QUEUE_STACK, "peek", self._keyed_instead("lookup(key)"))
        r, v = self._value_call(self._f_lookup, None)
        if r:
            raise map_error(-r, "peek (map empty?)" if -r == _errno.ENOENT else "peek", self.name)
        return v

    def bloom_contains(self, value: Any) -> bool:
        """bloom_filter: whether ``value`` may be in the set."""
        r = self._f_lookup(self.fd, None, self._value_bytes(value))
        if r == -_errno.ENOENT:
            return False
        if r:
            raise map_error(-r, "bloom filter lookup", self.name)
        return True

    # -- fd-valued maps ------------------------------------------------------

    def set_prog(self, key: Any, prog: Any = None, *, fd: int | None = None, id: int | None = None,
                 pinned: str | None = None) -> None:
        """prog_array: put a program (a Program handle, or by ``fd``, ``id`` or ``pinned`` path) at ``key``."""
        self._set_fd_slot(key, prog, fd, id, pinned, "prog")

    def set_inner(self, key: Any, inner: Any = None, *, fd: int | None = None, id: int | None = None,
                  pinned: str | None = None) -> None:
        """array_of_maps/hash_of_maps: put a map (Map handle, ``fd``, ``id`` or ``pinned``) at ``key``."""
        self._set_fd_slot(key, inner, fd, id, pinned, "map")

    def _set_fd_slot(self, key: Any, handle: Any, fd: int | None, obj_id: int | None,
                     pinned: str | None, kind: str) -> None:
        want = (_PROG_ARRAY,) if kind == "prog" else tuple(C.MAP_IN_MAP_TYPES)
        if self.type not in want:
            raise MapError(f"map {self.name!r} is a {self.type_name} map: it holds no {kind} fds",
                           errno=_errno.EINVAL, map=self.name)
        close_fd = -1
        if handle is not None:
            if not isinstance(handle, int) and not hasattr(handle, "fd"):
                raise MapError(f"cannot put {handle!r} in slot {key!r} of map {self.name!r}: give a "
                               f"{kind} handle or fd", errno=_errno.EINVAL, map=self.name)
            fd = handle if isinstance(handle, int) else handle.fd
        elif obj_id is not None:
            _check_int_arg(obj_id, f"{kind} id", 0, 0xFFFFFFFF, self.name)
            fd = close_fd = kinfo.prog_fd_by_id(obj_id) if kind == "prog" else kinfo.map_fd_by_id(obj_id)
        elif pinned is not None:
            fd = close_fd = kinfo.obj_get(pinned, kind)
        if fd is None:
            raise MapError(f"no {kind} given for slot {key!r} of map {self.name!r}", errno=_errno.EINVAL,
                           map=self.name)
        _check_int_arg(fd, f"{kind} fd", 0, 0x7FFFFFFF, self.name)
        try:
            r = self._f_update(self.fd, self._key(key), struct.pack("<I", fd), ANY)
            if r:
                e = map_error(-r, f"update of key {key!r}", self.name)
                if kind == "prog" and -r == _errno.EINVAL:
                    # the kernel matches every program against the table's owner
                    e = MapError(f"{e.message} (a prog_array takes only programs with its owner "
                                 "program's type, expected attach type, JIT and XDP frags setting; "
                                 "the first program put in it, or the program using it, is the owner)",
                                 errno=_errno.EINVAL, map=self.name)
                raise e
        finally:
            if close_fd >= 0:
                os.close(close_fd)

    def inner_map_id(self, key: Any) -> int:
        """array_of_maps/hash_of_maps: the id of the map at ``key``."""
        self._need_type(tuple(C.MAP_IN_MAP_TYPES), "inner_map_id")
        return int(struct.unpack("<I", self._raw_lookup(key))[0])

    def prog_id(self, key: Any) -> int:
        """prog_array: the id of the program at ``key``."""
        self._need_type((_PROG_ARRAY,), "prog_id")
        return int(struct.unpack("<I", self._raw_lookup(key))[0])

    def open_inner(self, key: Any, **kw: Any) -> Map:
        """array_of_maps/hash_of_maps: a new Map handle on the inner map at ``key``."""
        return Map.from_id(self.inner_map_id(key), **kw)

    def _need_type(self, types: Collection[int], what: str, instead: str | None = None) -> None:
        """Refuse ``what`` unless the map is of one of ``types``; ``instead`` names the call
        to use on other maps."""
        if self.type not in types:
            names = " or ".join(C.map_type_name(t) for t in sorted(types))
            raise MapError(f"{what}: map {self.name!r} is a {self.type_name} map; it is not {names}"
                           + (f" (use {instead})" if instead else ""),
                           errno=_errno.EINVAL, map=self.name)

    def _raw_lookup(self, key: Any) -> bytes:
        r, raw = self._raw_value(self._key(key))
        if r:
            raise map_error(-r, f"lookup of key {key!r}", self.name)
        return raw[:self.value_size]

    # -- batches ---------------------------------------------------------------

    def _batch_chunk(self) -> int:
        return max(1, min(self.max_entries, 1 << 17, max(1, (64 << 20) // max(1, self.key_size
                                                                              + self.value_stride
                                                                              * self.ncpus))))

    def _batch_read(self, delete: bool, decode: bool = True) -> tuple[list[Any], list[Any]]:
        """Whole map through BPF_MAP_LOOKUP(_AND_DELETE)_BATCH, or element by element where refused."""
        # Decoding makes hundreds of thousands of objects at once: the cyclic GC would run
        # dozens of times over them for nothing (ints and tuples of ints hold no cycles).
        if not gc.isenabled():
            return self._batch_read_gc(delete, decode)
        gc.disable()
        try:
            return self._batch_read_gc(delete, decode)
        finally:
            gc.enable()

    def _keyed_instead(self, call: str) -> str:
        """What to call instead of pop/peek: ``call`` on keyed maps; a bloom filter has only
        bloom_contains."""
        return "bloom_contains(value)" if self.type == C.MAP_TYPE["bloom_filter"] else call

    def _no_keys(self, what: str) -> MapError:
        return MapError(f"{what}: map {self.name!r} is a {self.type_name} map: it has no keys to list "
                        "(use pop()/peek())", errno=_errno.EOPNOTSUPP, map=self.name)

    def _batch_read_gc(self, delete: bool, decode: bool = True) -> tuple[list[Any], list[Any]]:
        if self.type in _NO_KEY_TYPES:
            raise self._no_keys("lookup_and_delete_batch" if delete else "batch lookup")
        fname = "bpf_map_lookup_and_delete_batch" if delete else "bpf_map_lookup_batch"
        f = mapops.fn(fname)
        chunk = self._batch_chunk()
        vstride = self.value_stride * self.ncpus
        bufs = self._take_batch_bufs(chunk, vstride)
        kbuf, vbuf = bufs
        tok_in = ctypes.create_string_buffer(max(self.key_size, 8))
        tok_out = ctypes.create_string_buffer(max(self.key_size, 8))
        try:
            return self._batch_loop(f, delete, decode, chunk, vstride, kbuf, vbuf, tok_in, tok_out)
        finally:
            self._give_batch_bufs(bufs)

    _BATCH_BUF_KEEP = 4 << 20  # batch buffers up to this size are kept for the next whole-map read

    def _take_batch_bufs(self, chunk: int, vstride: int) -> tuple[Any, Any]:
        """Key and value buffers for ``chunk`` elements, this call's alone until given back.

        Small enough ones are kept on the handle: a fresh 1 MiB buffer is
        page-faulted in by the kernel's first write, inside every read.
        """
        ksz, vsz = max(1, chunk * self.key_size), max(1, chunk * vstride)
        pool: list[tuple[Any, Any]] = self.__dict__.setdefault("_batch_pool", [])
        try:
            kb, vb = pool.pop()
        except IndexError:
            return ctypes.create_string_buffer(ksz), ctypes.create_string_buffer(vsz)
        if len(kb) == ksz and len(vb) == vsz:
            return kb, vb
        return ctypes.create_string_buffer(ksz), ctypes.create_string_buffer(vsz)

    def _give_batch_bufs(self, bufs: tuple[Any, Any]) -> None:
        if len(bufs[0]) + len(bufs[1]) <= self._BATCH_BUF_KEEP:
            pool: list[tuple[Any, Any]] = self.__dict__.setdefault("_batch_pool", [])
            if len(pool) < 2:
                pool.append(bufs)

    def _batch_loop(self, f: Any, delete: bool, decode: bool, chunk: int, vstride: int, kbuf: Any,
                    vbuf: Any, tok_in: Any, tok_out: Any) -> tuple[list[Any], list[Any]]:
        opts = mapops.batch_opts()
        count = ctypes.c_uint32()
        keys: list[Any] = []
        values: list[Any] = []
        first = True
        in_ptr: int | None = None
        while True:
            count.value = chunk
            r = f(self.fd, in_ptr, tok_out, kbuf, vbuf, ctypes.byref(count), ctypes.byref(opts))
            n = count.value
            if r and -r != _errno.ENOENT:
                # a refused call leaves count as it was given (libbpf copies it back)
                if first and n in (0, chunk) and -r in (_errno.EINVAL, ENOTSUPP, _errno.EOPNOTSUPP):
                    if not decode:
                        raise MapError(f"map {self.name!r} refuses batch lookups", errno=-r, map=self.name)
                    return self._elementwise_read(delete)
                if -r == _errno.ENOSPC and n == 0 and chunk < self.max_entries:
                    chunk = min(self.max_entries, chunk * 4)  # a hash bucket bigger than the chunk
                    kbuf = ctypes.create_string_buffer(chunk * self.key_size)
                    vbuf = ctypes.create_string_buffer(chunk * vstride)
                    continue
                raise BatchError(f"batch {'lookup_and_delete' if delete else 'lookup'} on map "
                                 f"{self.name!r} failed after {len(keys) + n} elements: {os.strerror(-r)}",
                                 applied=len(keys) + n, errno=-r, map=self.name)
            if not decode:  # raw: one bytes object per batch, keys and values packed
                if n:
                    keys.append(kbuf.raw[:n * self.key_size])
                    values.append(vbuf.raw[:n * vstride])
            elif n and r and first and not self.percpu:
                # the whole map in one batch (the common case): no list copies
                return (self.key_codec.unpack_many(kbuf, n, self.key_size),
                        self.value_codec.unpack_many(vbuf, n, self.value_size))
            elif n:
                keys.extend(self.key_codec.unpack_many(kbuf, n, self.key_size))
                if self.percpu:
                    vc = self.value_codec
                    for i in range(n):
                        base = i * vstride
                        values.append([vc.unpack(vbuf, base + c * self.value_stride)
                                       for c in range(self.ncpus)])
                else:
                    values.extend(self.value_codec.unpack_many(vbuf, n, self.value_size))
            first = False
            if r:  # ENOENT: that was the last batch
                break
            ctypes.memmove(tok_in, tok_out, len(tok_in))
            in_ptr = ctypes.addressof(tok_in)
        return keys, values

    def _elementwise_read(self, delete: bool) -> tuple[list[Any], list[Any]]:
        keys: list[Any] = []
        values: list[Any] = []
        for k in list(self._iter_keys()):
            try:
                v = self.lookup_and_delete(k) if delete else self.lookup(k)
            except KeyError:
                continue
            keys.append(k)
            values.append(v)
        return keys, values

    def lookup_batch(self) -> list[tuple[Any, Any]]:
        """Every (key, value) of the map, read with batch lookups (element-wise where refused)."""
        k, v = self._batch_read(False)
        if not gc.isenabled():
            return list(zip(k, v))
        gc.disable()  # see _batch_read
        try:
            return list(zip(k, v))
        finally:
            gc.enable()

    def lookup_and_delete_batch(self) -> list[tuple[Any, Any]]:
        """Read and delete every element (batched where the map type allows)."""
        k, v = self._batch_read(True)
        return list(zip(k, v))

    def _pack_keys(self, keys: list[Any]) -> bytes:
        kc = self.key_codec
        if isinstance(kc, _IntCodec):
            try:
                return struct.pack(f"<{len(keys)}{kc.code}", *keys)
            except struct.error:
                pass  # fall through for the precise error
        parts = []
        for k in keys:
            try:
                d = kc.pack(k)
            except (struct.error, TypeError, ValueError, OverflowError) as e:
                raise self._pack_error("key", k, e) from None
            if len(d) != self.key_size:
                raise MapError(f"key for map {self.name!r} must be {self.key_size} bytes, got {len(d)}",
                               errno=_errno.EINVAL, map=self.name)
            parts.append(d)
        return b"".join(parts)

    def _pack_values(self, values: list[Any]) -> bytes:
        vc = self.value_codec
        if isinstance(vc, _IntCodec) and not self.percpu:
            try:
                return struct.pack(f"<{len(values)}{vc.code}", *values)
            except struct.error:
                pass
        return b"".join(self._value_bytes(v) for v in values)

    def update_batch(self, items: Iterable[tuple[Any, Any]] | dict[Any, Any] | Iterable[Any] | None = None,
                     values: Iterable[Any] | None = None, *, keys: Iterable[Any] | None = None,
                     flags: int | str = ANY) -> int:
        """Update many elements in one BPF_MAP_UPDATE_BATCH (element-wise where refused).

        ``m.update_batch(keys, values)`` (or ``keys=``/``values=``) with two
        sequences of the same length, or ``m.update_batch(items)`` with
        (key, value) pairs or a dict.  Packed buffers for keys and values
        (``array.array("I")``, bytearray, numpy arrays: ``key_size`` and
        ``value_size`` bytes per element) go to the kernel as they are,
        without a copy; bytes are passed as they are too.  Returns the count;
        a failure raises BatchError whose ``applied`` says how many took
        effect.
        """
        if values is not None and keys is None:
            keys, items = items, None  # positional form: update_batch(keys, values)
            if keys is None:
                raise MapError(f"update_batch on map {self.name!r}: values without keys",
                               errno=_errno.EINVAL, map=self.name)
        elif keys is not None and items is not None:
            raise MapError(f"update_batch on map {self.name!r}: give items or keys and values, not both",
                           errno=_errno.EINVAL, map=self.name)
        fl = _flag_value(flags, False, self.name)
        if keys is not None and _is_buffer(keys) and _is_buffer(values) and not self.percpu:
            return self._update_batch_buffers(keys, values, fl)
        if keys is not None:
            kl = _as_list(keys, "update_batch keys", self.name)
            vl = _as_list(values or (), "update_batch values", self.name)
        else:
            pairs = list(items.items()) if isinstance(items, dict) else _as_list(items or (), "update_batch",
                                                                                  self.name)
            try:
                kl = [k for k, _v in pairs]
                vl = [v for _k, v in pairs]
            except (TypeError, ValueError):
                raise MapError(f"update_batch on map {self.name!r}: items must be (key, value) pairs",
                               errno=_errno.EINVAL, map=self.name) from None
        if len(kl) != len(vl):
            raise MapError(f"update_batch on map {self.name!r}: {len(kl)} keys but {len(vl)} values",
                           errno=_errno.EINVAL, map=self.name)
        if not kl:
            return 0
        kdata = self._pack_keys(kl)
        vdata = self._pack_values(vl)
        count = ctypes.c_uint32(len(kl))
        r = _f_update_batch()(self.fd, kdata, vdata, ctypes.byref(count), _batch_opts_for(fl))
        if r:
            n = count.value if count.value != len(kl) else 0
            if n == 0 and -r in (_errno.EINVAL, ENOTSUPP, _errno.EOPNOTSUPP):
                return self._elementwise(kl, vl, fl)
            raise BatchError(f"batch update on map {self.name!r} failed after {n} of {len(kl)} elements: "
                             f"{os.strerror(-r)}", applied=n, errno=-r, map=self.name)
        return len(kl)

    def _update_batch_buffers(self, keys: Any, values: Any, fl: int) -> int:
        """Keys and values already packed: their memory goes to the kernel without a copy.

        The buffers stay exported (so neither can be resized or freed) for
        the duration of the call, which releases the GIL.
        """
        ks, vs = self.key_size, self.value_size
        kmv, vmv = memoryview(keys), memoryview(values)
        kn, vn = kmv.nbytes, vmv.nbytes
        n = kn // ks if ks else 0
        if not ks or kn != n * ks or vn != n * vs or not kmv.c_contiguous or not vmv.c_contiguous:
            raise MapError(f"update_batch on map {self.name!r}: {kn} key bytes and {vn} value "
                           f"bytes are not a whole number of {ks}/{vs}-byte elements "
                           "of the same count in contiguous buffers", errno=_errno.EINVAL, map=self.name)
        if n == 0:
            return 0
        count = ctypes.c_uint32(n)
        r = _f_update_batch()(self.fd, _buffer_arg(keys, kmv), _buffer_arg(values, vmv),
                              ctypes.byref(count), _batch_opts_for(fl))
        if r:
            done = count.value if count.value != n else 0
            if done == 0 and -r in (_errno.EINVAL, ENOTSUPP, _errno.EOPNOTSUPP):
                kb, vb = kmv.cast("B"), vmv.cast("B")
                return self._elementwise([bytes(kb[i * ks:(i + 1) * ks]) for i in range(n)],
                                         [bytes(vb[i * vs:(i + 1) * vs]) for i in range(n)], fl)
            raise BatchError(f"batch update on map {self.name!r} failed after {done} of {n} elements: "
                             f"{os.strerror(-r)}", applied=done, errno=-r, map=self.name)
        return n

    def _elementwise(self, kl: list[Any], vl: list[Any] | None, fl: int) -> int:
        for i, k in enumerate(kl):
            try:
                if vl is None:
                    self.delete(k)
                else:
                    self.update(k, vl[i], fl)
            except MapError as e:
                raise BatchError(f"batch {'delete' if vl is None else 'update'} on map {self.name!r} "
                                 f"failed after {i} of {len(kl)} elements: {e.message}", applied=i,
                                 errno=e.errno, map=self.name) from None
        return len(kl)

    def delete_batch(self, keys: Iterable[Any]) -> int:
        """Delete many keys in one BPF_MAP_DELETE_BATCH (element-wise where refused)."""
        kl = _as_list(keys, "delete_batch", self.name)
        if not kl:
            return 0
        kdata = self._pack_keys(kl)
        count = ctypes.c_uint32(len(kl))
        opts = mapops.batch_opts()
        r = mapops.fn("bpf_map_delete_batch")(self.fd, kdata, ctypes.byref(count), ctypes.byref(opts))
        if r:
            n = count.value if count.value != len(kl) else 0
            if n == 0 and -r in (_errno.EINVAL, ENOTSUPP, _errno.EOPNOTSUPP):
                return self._elementwise(kl, None, 0)
            raise BatchError(f"batch delete on map {self.name!r} failed after {n} of {len(kl)} elements: "
                             f"{os.strerror(-r)}", applied=n, errno=-r, map=self.name)
        return len(kl)

    def clear(self) -> None:
        """Delete every element (arrays cannot be cleared: MapError)."""
        self.delete_batch(self.keys())

    # -- Python protocols ---------------------------------------------------------

    def _iter_keys(self) -> Iterator[Any]:
        if self.type in _NO_KEY_TYPES:
            raise self._no_keys("iteration")
        f = self._f_next
        prev: int | None = None
        buf_a, buf_b = ctypes.create_string_buffer(max(self.key_size, 1)), ctypes.create_string_buffer(
            max(self.key_size, 1))
        fd = self.fd
        while True:
            r = f(fd, prev, buf_b)
            if r:
                if -r == _errno.ENOENT:
                    return
                raise map_error(-r, "get_next_key", self.name)
            yield self.key_codec.unpack(buf_b)
            ctypes.memmove(buf_a, buf_b, self.key_size)
            prev = ctypes.addressof(buf_a)

    def __iter__(self) -> Iterator[Any]:
        """Keys, by get_next_key (live iteration)."""
        return self._iter_keys()

    def keys(self) -> list[Any]:
        """Every key (batch lookup)."""
        return self._batch_read(False)[0]

    def values(self) -> list[Any]:
        """Every value (batch lookup)."""
        return self._batch_read(False)[1]

    def items(self) -> list[tuple[Any, Any]]:
        """Every (key, value) (batch lookup)."""
        return self.lookup_batch()

    def __getitem__(self, key: Any) -> Any:
        return self.lookup(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        if (self.type == _PROG_ARRAY or self.type in C.MAP_IN_MAP_TYPES) and hasattr(value, "fd"):
            value = value.fd
        self.update(key, value)

    def __delitem__(self, key: Any) -> None:
        self.delete(key)

    def __contains__(self, key: Any) -> bool:
        try:
            self._raw_lookup(key)
        except KeyError:
            return False
        return True

    def __len__(self) -> int:
        if self.type in _ARRAY_TYPES:
            return self.max_entries
        raise TypeError(f"len() of map {self.name!r}: a {self.type_name} map has no exact cheap element count "
                        "(use len(m.keys()))")

    # -- pinning -------------------------------------------------------------------

    def pin(self, path: str) -> None:
        """Pin the map at ``path`` on a bpffs."""
        kinfo.obj_pin(self.fd, str(path))
        self.pinned_path = str(path)

    def unpin(self, path: str | None = None) -> None:
        """Remove the pin at ``path`` (default: where this handle pinned or opened it)."""
        p = path or self.pinned_path
        if not p:
            raise MapError(f"map {self.name!r} has no known pin path", errno=_errno.EINVAL, map=self.name)
        try:
            os.unlink(p)
        except OSError as e:
            from pybpfobj.errors import PinError

            raise PinError(f"can't unpin map {self.name!r} at {p}: {e.strerror}", errno=e.errno or 0,
                           path=p, map=self.name) from None
        if p == self.pinned_path:
            self.pinned_path = None

    # -- mmap ------------------------------------------------------------------------

    def mmap(self, *, writable: bool | None = None) -> Any:
        """A typed view of an mmapable array's memory: reads and writes need no syscall.

        For a one-entry map (global .data/.bss/.rodata) the view is the value
        itself (a ctypes structure whose attributes are the variables);
        otherwise a sequence of ``max_entries`` values.  Frozen or
        BPF_F_RDONLY_PROG-less read-only maps (.rodata after load) are mapped
        read-only and the view refuses writes.
        """
        if self.type != C.MAP_TYPE["array"] or not (self.flags & C.BPF_F_MMAPABLE):
            raise MapError(f"map {self.name!r} is not an mmapable array (type {self.type_name}, "
                                   f"flags {self.flags:#x})", errno=_errno.EINVAL, map=self.name)
        if writable is None:
            writable = not self.info().frozen and not (self.flags & C.BPF_F_RDONLY)
        stride = _round8(self.value_size)
        size = stride * self.max_entries
        page = _mmap.PAGESIZE
        length = max(page, (size + page - 1) // page * page)
        try:
            mm: Any = (_mmap.mmap(self.fd, length, _mmap.MAP_SHARED, _mmap.PROT_READ | _mmap.PROT_WRITE)
                       if writable else mapops.ReadOnlyMapping(self.fd, length))
        except OSError as e:
            raise map_error(e.errno or _errno.EINVAL, "mmap", self.name) from None
        return _make_view(self, mm, stride, writable)


# ---------------------------------------------------------------------------
# mmap views

class _SlotView:
    """Elements of an array whose value size is not a multiple of 8 (each slot is padded)."""

    def __init__(self, arr: Any, mm: Any) -> None:
        self._arr = arr
        self._mm = mm

    def __getitem__(self, i: int) -> Any:
        return self._arr[i].value

    def __setitem__(self, i: int, v: Any) -> None:
        self._arr[i].value = v

    def __len__(self) -> int:
        return len(self._arr)


class _ReadOnlyView:
    """Wraps a ctypes object on read-only pages: attribute reads pass through, writes raise."""

    __slots__ = ("_map_name", "_mm", "_obj")

    def __init__(self, obj: Any, mm: Any, map_name: str) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_mm", mm)
        object.__setattr__(self, "_map_name", map_name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._obj, name)

    def __setattr__(self, name: str, value: Any) -> None:
        from pybpfobj.errors import MapFrozenError

        raise MapFrozenError(f"map {self._map_name!r} is mapped read-only (frozen): cannot set {name}",
                             errno=_errno.EPERM, map=self._map_name)

    def __getitem__(self, i: Any) -> Any:
        return self._obj[i]

    def __setitem__(self, i: Any, v: Any) -> None:
        self.__setattr__(str(i), v)

    def __len__(self) -> int:
        return len(self._obj)

    def __bytes__(self) -> bytes:
        return bytes(memoryview(self._obj).cast("B"))


def _make_view(m: Map, mm: Any, stride: int, writable: bool) -> Any:
    vc = m.value_codec
    if isinstance(vc, _CTypeCodec) and vc.ctype is not None:
        elem: Any = vc.ctype
    elif isinstance(vc, _IntCodec):
        elem = {"<B": ctypes.c_uint8, "<H": ctypes.c_uint16, "<I": ctypes.c_uint32, "<Q": ctypes.c_uint64,
                "<b": ctypes.c_int8, "<h": ctypes.c_int16, "<i": ctypes.c_int32,
                "<q": ctypes.c_int64}[vc.st.format]
    else:
        elem = ctypes.c_uint8 * m.value_size
    if m.max_entries == 1:
        t: Any = elem
    elif stride == ctypes.sizeof(elem):
        t = elem * m.max_entries
    else:
        # Array elements are 8-byte aligned in the kernel.
        padded = type(f"{getattr(elem, '__name__', 'elem')}_slot", (ctypes.Structure,),
                      {"_fields_": [("value", elem), ("_pad", ctypes.c_uint8 * (stride - ctypes.sizeof(elem)))]})
        t = padded * m.max_entries  # type: ignore[operator]
        if writable:
            return _SlotView(t.from_buffer(mm), mm)
        return _ReadOnlyView(_SlotView(_on_mapping(t, mm), mm), mm, m.name)
    if writable:
        obj = t.from_buffer(mm)
        return obj
    return _ReadOnlyView(_on_mapping(t, mm), mm, m.name)


def _on_mapping(t: Any, mm: Any) -> Any:
    """A ``t`` over read-only mapped pages that keeps the mapping alive.

    ``from_address`` holds no reference to the memory: a field taken from the
    view (``view.cfg``, a nested structure sharing its memory) would outlive
    the view and read unmapped pages once the mapping is dropped (a crash).
    Fields keep their root object alive, and the root now keeps the mapping.
    """
    obj = t.from_address(mm.address)
    obj._pybpfobj_mapping = mm
    return obj


def datasec_ctype(btf: BTF, datasec_id: int) -> Any:
    """A ctypes Structure laying out a DATASEC's variables at their offsets (padding in between)."""
    from pybpfobj.spec.ctypes_types import _CTYPES_SPECIAL, CTypesBuilder

    ds = btf.type(datasec_id)
    builder = CTypesBuilder(btf)
    fields: list[tuple[str, Any]] = []
    used: set[str] = set()
    pos = 0
    for i, si in enumerate(sorted(ds.secinfo, key=lambda s: s.offset)):
        var = btf.type(si.type_id)
        if si.offset > pos:
            # padding gets names no C variable can have
            fields.append((f"<pad {i}>", ctypes.c_uint8 * (si.offset - pos)))
            pos = si.offset
        if si.offset < pos:
            continue
        ct = builder.build(var.type_id)
        name = var.name or f"<anon {i}>"
        # ctypes' own class attributes (_fields_, _pack_...) cannot be fields: a C global
        # named so is reached as name + "_"
        while name in _CTYPES_SPECIAL or name in used:
            name += "_"
        used.add(name)
        fields.append((name, ct))
        pos += ctypes.sizeof(ct)
    if ds.size > pos:
        fields.append(("<tail>", ctypes.c_uint8 * (ds.size - pos)))
    name = ds.name.lstrip(".").replace(".", "_") or "datasec"
    return type(name, (ctypes.Structure,), {"_pack_": 1, "_fields_": fields})


__all__ = [
    "ANY",
    "EXIST",
    "LOCK",
    "NOEXIST",
    "Map",
    "MapClosedError",
    "MapInfo",
    "check_map_name",
    "datasec_ctype",
    "map_type_number",
    "possible_cpus",
]
