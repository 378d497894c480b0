"""The small base that generated skeleton modules import.

A generated module defines ctypes types, a maps container, a programs
container and one :class:`Skeleton` subclass; everything with behaviour
lives here so that generated code stays declarative (and cheap to import:
this module imports the loader, maps and programs only when an object is
opened).

Phases follow libbpf's skeletons: ``open()`` (configure: ``.rodata``
values, map sizes, map reuse, pin root), ``load()``, ``attach()``,
``close()``; a skeleton is a context manager.
"""

from __future__ import annotations

import base64
import ctypes
import errno as _errno
import os
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    Self,
    TypeVar,
    overload,
)

from pybpfobj.errors import BpfError, MapError, ProgramError, UnsupportedError

if TYPE_CHECKING:
    from pybpfobj.loader import BpfObject
    from pybpfobj.maps import Map
    from pybpfobj.programs import Program

__all__ = [
    "BYTES",
    "BitField",
    "Codec",
    "InnerSpec",
    "LayoutError",
    "MapInMap",
    "MapSource",
    "Maps",
    "PerCpuMap",
    "ProgArray",
    "ProgramRef",
    "Programs",
    "QueueMap",
    "RawMap",
    "Record",
    "Scalar",
    "Skeleton",
    "Struct",
    "TypedMap",
    "Union",
    "check_byte_order",
    "check_layout",
]

K = TypeVar("K")
V = TypeVar("V")
W = TypeVar("W")
T = TypeVar("T")
S = TypeVar("S", bound="Skeleton")

_BPF_F_INNER_MAP = 1 << 12


if TYPE_CHECKING:
    import _ctypes
    from collections.abc import Sequence

    # What mypy sees as the base of generated structs/unions: ctypes' own
    # classes declare __getattr__/__setattr__ taking any name, which would let
    # a typo (``skel.rodata.verdcit = 1``) type-check.  These declare the same
    # ctypes behaviour without them, so unknown fields are errors.
    class Struct(_ctypes._CData, metaclass=_ctypes._PyCStructType):
        """Base of generated structs (ctypes.Structure without catch-all attributes)."""

        _fields_: ClassVar[Sequence[tuple[Any, ...]]]
        _pack_: ClassVar[int]
        _anonymous_: ClassVar[Sequence[str]]

        def __init__(self, *args: Any, **kw: Any) -> None: ...

    class Union(_ctypes._CData, metaclass=_ctypes._UnionType):
        """Base of generated unions (ctypes.Union without catch-all attributes)."""

        _fields_: ClassVar[Sequence[tuple[Any, ...]]]
        _pack_: ClassVar[int]
        _anonymous_: ClassVar[Sequence[str]]

        def __init__(self, *args: Any, **kw: Any) -> None: ...
else:
    class Struct(ctypes.Structure):
        """Base of generated structs.  No instance ``__dict__`` (here and, through their own
        empty ``__slots__``, in generated classes): writing a misspelt field raises
        AttributeError instead of setting a Python attribute the kernel never sees."""

        # the one instance attribute: a read-only mmap view keeps its mapping
        # there (pybpfobj.maps._on_mapping)
        __slots__ = ("_pybpfobj_mapping",)

    class Union(ctypes.Union):
        """Base of generated unions (no instance ``__dict__``, as :class:`Struct`)."""

        __slots__ = ("_pybpfobj_mapping",)


class LayoutError(BpfError):
    """A generated type's size or offsets differ from what BTF recorded (corrupt or edited module)."""


def check_layout(cls: type[Any], size: int, offsets: tuple[tuple[str, int], ...]) -> None:
    """Import-time check: ``cls`` is ``size`` bytes and its fields sit at ``offsets``."""
    if ctypes.sizeof(cls) != size:
        raise LayoutError(f"{cls.__name__}: ctypes size {ctypes.sizeof(cls)} != BTF size {size}")
    for name, off in offsets:
        got = getattr(cls, name).offset
        if got != off:
            raise LayoutError(f"{cls.__name__}.{name}: ctypes offset {got} != BTF offset {off}")


def check_byte_order(order: str) -> None:
    """Import-time check: a module generated from a ``order``-endian object works on such a host
    only (its ctypes types are native-endian)."""
    if order != sys.byteorder:
        raise LayoutError(f"this skeleton describes a {order}-endian BPF object; on this "
                          f"{sys.byteorder}-endian host its types would read every value byte-swapped")


class BitField:
    """A C bitfield of a generated struct: ``bits`` bits at bit ``shift`` (from the least
    significant) of the ``nbytes`` bytes at ``byte_offset`` in the struct, read as one
    little-endian integer (big-endian with ``big_endian``, for bpfeb objects)."""

    __slots__ = ("bits", "byte_offset", "mask", "name", "nbytes", "order", "shift", "signed")

    def __init__(self, byte_offset: int, nbytes: int, shift: int, bits: int, signed: bool,
                 big_endian: bool = False) -> None:
        self.order: Literal["little", "big"] = "big" if big_endian else "little"
        self.byte_offset = byte_offset
        self.nbytes = nbytes
        self.shift = shift
        self.bits = bits
        self.signed = signed
        self.mask = (1 << bits) - 1
        self.name = "bitfield"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> BitField: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> int: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> int | BitField:
        if obj is None:
            return self
        raw = ctypes.string_at(ctypes.addressof(obj) + self.byte_offset, self.nbytes)  # type: ignore[arg-type]
        v = (int.from_bytes(raw, self.order) >> self.shift) & self.mask
        if self.signed and v >> (self.bits - 1):
            v -= 1 << self.bits
        return v

    def __set__(self, obj: object, value: int) -> None:
        lo = -(1 << (self.bits - 1)) if self.signed else 0
        hi = (1 << (self.bits - 1)) - 1 if self.signed else self.mask
        if not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"bitfield {self.name} ({self.bits} bits) cannot hold {value!r}")
        addr = ctypes.addressof(obj) + self.byte_offset  # type: ignore[arg-type]
        cur = int.from_bytes(ctypes.string_at(addr, self.nbytes), self.order)
        cur &= ~(self.mask << self.shift)
        cur |= (value & self.mask) << self.shift
        ctypes.memmove(addr, cur.to_bytes(self.nbytes, self.order), self.nbytes)


# ---------------------------------------------------------------------------
# codecs: how a map side's generated type meets the Map handle


class Codec(Generic[T]):
    """A map key or value type: ``ctype`` (None = raw bytes) and whether values are Python scalars."""

    def __init__(self, ctype: type[Any] | None, scalar: bool) -> None:
        self.ctype = ctype
        self.scalar = scalar

    def map_type(self) -> Any:
        """What :class:`pybpfobj.maps.Map` takes as ``key_type``/``value_type``."""
        return bytes if self.ctype is None else self.ctype

    def out(self, v: Any) -> T:
        """Map result -> the generated type (non-int scalars come back as ctypes objects)."""
        if self.scalar and hasattr(v, "value"):
            v = v.value
        return v  # type: ignore[no-any-return]

    def into(self, v: Any) -> Any:
        if self.scalar and self.ctype is not None and (
                not isinstance(v, (int, self.ctype))
                or self.ctype is not ctypes.c_int and isinstance(v, (bool, float))):
            try:
                return self.ctype(v)
            except (TypeError, ValueError, OverflowError):
                return v  # not convertible: the Map refuses it with an error naming the map
        return v


def Scalar(ctype: type[Any]) -> Codec[Any]:
    """An int/char/bool/float side: Python values."""
    return Codec(ctype, True)


def Record(ctype: type[T]) -> Codec[T]:
    """A struct/union/array side: instances of the generated ctypes type."""
    return Codec(ctype, False)


BYTES: Codec[bytes] = Codec(None, False)


class InnerSpec:
    """The inner-map template of a map-in-map, as declared in the object."""

    def __init__(self, type_name: str, key_size: int, value_size: int, max_entries: int, flags: int) -> None:
        self.type_name = type_name
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags


# ---------------------------------------------------------------------------
# maps


class MapSource:
    """One map of a skeleton: configuration before load, the kernel map after."""

    def __init__(self, skel: Skeleton | None, name: str, handle: Map | None = None) -> None:
        self.skel = skel
        self.name = name
        self._handle = handle
        self._typed: Map | None = None

    def raw(self) -> Map:
        """The loader's Map handle (after load)."""
        if self._handle is not None:
            return self._handle
        assert self.skel is not None
        return self.skel._loaded_map(self.name)

    def typed(self, key: Codec[Any], value: Codec[Any]) -> Map:
        """A Map handle on the same fd converting with the generated types (made once)."""
        if self._typed is None:
            from pybpfobj.maps import Map

            raw = self.raw()
            self._typed = Map.from_fd(raw.fd, owned=False, name=self.name, key_type=key.map_type(),
                                      value_type=value.map_type())
        return self._typed

    def close(self) -> None:
        if self._typed is not None:
            self._typed.close()
            self._typed = None
        if self._handle is not None and self.skel is None:
            self._handle.close()


class _MapBase:
    """What every typed map has: its name, its handle, and pre-load configuration."""

    def __init__(self, source: MapSource) -> None:
        self._src = source

    @property
    def name(self) -> str:
        """The map's name in the object."""
        return self._src.name

    @property
    def map(self) -> Map:
        """The underlying :class:`pybpfobj.maps.Map` (after load)."""
        return self._src.raw()

    @property
    def fd(self) -> int:
        return self._src.raw().fd

    def _skel(self) -> Skeleton:
        if self._src.skel is None:
            raise MapError(f"map {self.name!r} is not part of a skeleton", map=self.name, errno=_errno.EINVAL)
        return self._src.skel

    def set_max_entries(self, n: int) -> None:
        """Before load: the map's max_entries."""
        self._skel()._configure("set_max_entries", self.name, n)

    def set_value_size(self, n: int) -> None:
        """Before load: the map's value_size (where the map type allows it)."""
        self._skel()._configure("set_value_size", self.name, n)

    def reuse(self, existing: Map | int) -> None:
        """Before load: use ``existing`` (a Map or fd) instead of creating this map."""
        self._skel()._configure("reuse_map", self.name, existing)

    def pin(self, path: str) -> None:
        """Pin the map at ``path`` (a bpffs path)."""
        pin = getattr(self._src.raw(), "pin", None)
        if pin is None:
            raise UnsupportedError(f"map {self.name!r}: the Map handle cannot pin", map=self.name)
        pin(path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class TypedMap(_MapBase, Generic[K, V]):
    """A hash/array/lru/lpm map whose keys and values are the generated types."""

    def __init__(self, source: MapSource, key: Codec[K], value: Codec[V]) -> None:
        super().__init__(source)
        self.key_codec = key
        self.value_codec = value

    def _m(self) -> Map:
        return self._src.typed(self.key_codec, self.value_codec)

    def __getitem__(self, key: K) -> V:
        return self.value_codec.out(self._m().lookup(self.key_codec.into(key)))

    def __setitem__(self, key: K, value: V) -> None:
        self._m().update(self.key_codec.into(key), self.value_codec.into(value))

    def __delitem__(self, key: K) -> None:
        self._m().delete(self.key_codec.into(key))

    def __contains__(self, key: object) -> bool:
        try:
            self._m().lookup(self.key_codec.into(key))
        except KeyError:
            return False
        return True

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value at ``key``, or ``default``."""
        try:
            return self[key]
        except KeyError:
            return default

    def update(self, key: K, value: V, flags: int | str = 0) -> None:
        """Set ``key``; ``flags`` any/noexist/exist."""
        self._m().update(self.key_codec.into(key), self.value_codec.into(value), flags)

    def keys(self) -> list[K]:
        return [self.key_codec.out(k) for k in self._m()]

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def items(self) -> list[tuple[K, V]]:
        out = []
        for k in self.keys():
            try:
                out.append((k, self[k]))
            except KeyError:  # deleted meanwhile
                pass
        return out

    def values(self) -> list[V]:
        return [v for _, v in self.items()]


class PerCpuMap(TypedMap[K, Any], Generic[K, V]):
    """A per-CPU map: a lookup gives one value per possible CPU."""

    value_codec: Codec[Any]

    def __getitem__(self, key: K) -> list[V]:
        return [self.value_codec.out(v) for v in self._m().lookup(self.key_codec.into(key))]

    def __setitem__(self, key: K, value: V | list[V]) -> None:
        """A list sets each CPU's value; a single value is stored on every CPU."""
        vals = value if isinstance(value, list) else [value] * self._m().ncpus
        self._m().update(self.key_codec.into(key), [self.value_codec.into(v) for v in vals])

    def sum(self, key: K) -> int:
        """Sum over CPUs of an integer value."""
        return sum(int(v) for v in self[key])  # type: ignore[call-overload]


class QueueMap(_MapBase, Generic[V]):
    """queue/stack/bloom_filter maps."""

    def __init__(self, source: MapSource, value: Codec[V]) -> None:
        super().__init__(source)
        self.value_codec = value

    def _m(self) -> Map:
        return self._src.typed(BYTES, self.value_codec)

    def push(self, value: V, flags: int | str = 0) -> None:
        self._m().push(self.value_codec.into(value), flags)

    def pop(self) -> V:
        return self.value_codec.out(self._m().pop())

    def peek(self) -> V:
        return self.value_codec.out(self._m().peek())

    def __contains__(self, value: object) -> bool:
        """bloom_filter membership."""
        return bool(self._m().bloom_contains(self.value_codec.into(value)))


class RawMap(_MapBase):
    """A map without typed element access here (ringbuf, perf_event_array, ...): use ``.map``."""


class MapInMap(_MapBase, Generic[K, W]):
    """array_of_maps / hash_of_maps: slots hold inner maps typed like the template."""

    def __init__(self, source: MapSource, key: Codec[K], wrap: Callable[[MapSource], W],
                 inner_name: str, spec: InnerSpec | None = None) -> None:
        super().__init__(source)
        self.key_codec = key
        self._wrap = wrap
        self.inner_name = inner_name
        self.spec = spec

    def _m(self) -> Map:
        return self._src.typed(self.key_codec, BYTES)

    def new_inner(self, max_entries: int | None = None, *, name: str | None = None) -> W:
        """A fresh map of the inner template's spec (``max_entries`` override where allowed)."""
        from pybpfobj.maps import Map

        if self._src.skel is not None:  # a map made now would be left open by a closed skeleton
            self._src.skel._check_open(f"new_inner of map {self.name!r}")
        if max_entries is not None and (not isinstance(max_entries, int) or isinstance(max_entries, bool)):
            raise MapError(f"map {self.name!r}: max_entries must be an int, not {max_entries!r}",
                           map=self.name, errno=_errno.EINVAL)
        spec = self.spec
        if spec is None:
            raise MapError(f"map {self.name!r} declares no inner map template", map=self.name,
                           errno=_errno.EINVAL)
        n = spec.max_entries if max_entries is None else max_entries
        if n != spec.max_entries and spec.type_name in ("array", "percpu_array") \
                and not spec.flags & _BPF_F_INNER_MAP:
            raise MapError(f"map {self.name!r}: inner {spec.type_name} maps must keep max_entries "
                           f"{spec.max_entries} (the template lacks BPF_F_INNER_MAP), not {n}",
                           map=self.name, errno=_errno.EINVAL)
        if n <= 0:
            raise MapError(f"map {self.name!r}: max_entries must be positive, not {n}", map=self.name,
                           errno=_errno.EINVAL)
        handle = Map.create(spec.type_name, spec.key_size, spec.value_size, n, flags=spec.flags,
                            name=name or _short(self.inner_name))
        src = MapSource(None, handle.name, handle)
        if self._src.skel is not None:
            self._src.skel._owned_sources.append(src)
        return self._wrap(src)

    def __setitem__(self, key: K, inner: W | Map | int) -> None:
        """Install ``inner`` (a typed inner map, a Map or an fd) at ``key``."""
        if not isinstance(inner, int) and not hasattr(inner, "fd"):
            raise MapError(f"map {self.name!r}: cannot install {inner!r}: give an inner map, a Map or an fd",
                           map=self.name, errno=_errno.EINVAL)
        fd = inner if isinstance(inner, int) else inner.fd
        self._m().set_inner(self.key_codec.into(key), fd=fd)

    def __delitem__(self, key: K) -> None:
        self._m().delete(self.key_codec.into(key))

    def inner(self, key: K) -> W:
        """The inner map installed at ``key``, opened and typed like the template."""
        handle = self._m().open_inner(self.key_codec.into(key))
        src = MapSource(None, handle.name, handle)
        if self._src.skel is not None:
            self._src.skel._owned_sources.append(src)
        return self._wrap(src)

    def inner_id(self, key: K) -> int:
        """The id of the inner map at ``key``."""
        return int(self._m().inner_map_id(self.key_codec.into(key)))


def _short(name: str) -> str:
    keep = "".join(ch for ch in name if ch.isalnum() or ch in "_.")
    return keep[:15] or "inner"


def _owner_prog_type(fd: int) -> int | None:
    """The program type the kernel bound a prog_array to (fdinfo ``owner_prog_type``), if any."""
    from pybpfobj.kernel.info import fdinfo

    owner = fdinfo(fd).get("owner_prog_type")
    return int(owner) if owner else None


class ProgArray(_MapBase):
    """A prog_array whose slots take the object's programs (by attribute or name)."""

    def __init__(self, source: MapSource, prog_type: str) -> None:
        super().__init__(source)
        self.prog_type = prog_type  # expected program type from the object ("" = unknown)

    def _m(self) -> Map:
        return self._src.typed(Scalar(ctypes.c_uint32), BYTES)

    def _resolve(self, prog: ProgramRef | Program | str) -> tuple[int, str, str]:
        """(fd, name, type name) of what is being installed."""
        from pybpfobj.constants import PROG_TYPES

        if isinstance(prog, str):
            skel = self._src.skel
            ref = skel.progs.get(prog) if skel is not None else None
            if ref is None:
                known = ", ".join(sorted(skel.progs.names())) if skel is not None else ""
                raise ProgramError(f"map {self.name!r}: the object has no program {prog!r} (programs: {known})",
                                   map=self.name, prog=prog, errno=_errno.ENOENT)
            prog = ref
        if isinstance(prog, ProgramRef):
            return prog.fd, prog.name, prog.prog_type
        if not hasattr(prog, "fd"):
            raise ProgramError(f"map {self.name!r}: cannot install {prog!r}: give a program of the object "
                               f"(by name or attribute) or a Program", map=self.name, errno=_errno.EINVAL)
        ptype = getattr(prog, "type", "")
        if isinstance(ptype, int):
            ptype = PROG_TYPES[ptype] if 0 <= ptype < len(PROG_TYPES) else str(ptype)
        return prog.fd, str(getattr(prog, "name", "")), str(ptype)

    def __setitem__(self, key: int, prog: ProgramRef | Program | str) -> None:
        """Install ``prog`` at slot ``key`` after checking its type against the map's owner."""
        from pybpfobj.constants import PROG_TYPES

        fd, pname, ptype = self._resolve(prog)
        want = self.prog_type
        owner = _owner_prog_type(self.fd)
        if owner is not None and 0 <= owner < len(PROG_TYPES) and owner != 0:
            want = PROG_TYPES[owner]
        if want and ptype and ptype != want:
            raise ProgramError(f"program {pname!r} is of type {ptype} but prog_array {self.name!r} holds "
                               f"{want} programs", map=self.name, prog=pname, errno=_errno.EINVAL)
        self._m().set_prog(key, fd=fd)

    def __delitem__(self, key: int) -> None:
        self._m().delete(key)

    def prog_id(self, key: int) -> int:
        """The id of the program at slot ``key`` (KeyError if empty)."""
        return int(self._m().prog_id(key))

    def __contains__(self, key: object) -> bool:
        try:
            self._m().prog_id(key)
        except KeyError:
            return False
        return True


class Maps:
    """Base of a generated maps container: attributes are typed maps."""

    def __init__(self, skel: Skeleton) -> None:
        self.skeleton = skel
        self._by_name: dict[str, _MapBase] = {}

    def _source(self, name: str) -> MapSource:
        return MapSource(self.skeleton, name)

    def _add(self, name: str, wrapper: T) -> T:
        self._by_name[name] = wrapper  # type: ignore[assignment]
        return wrapper

    def get(self, name: str) -> _MapBase | None:
        """The typed map named ``name`` in the object (original name)."""
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return list(self._by_name)

    def items(self) -> list[tuple[str, _MapBase]]:
        return list(self._by_name.items())

    def values(self) -> list[_MapBase]:
        return list(self._by_name.values())


# ---------------------------------------------------------------------------
# programs


class ProgramRef:
    """One program of a skeleton: its spec facts now, its kernel handle after load."""

    def __init__(self, skel: Skeleton, name: str, section: str, prog_type: str) -> None:
        self.skel = skel
        self.name = name
        self.section = section
        self.prog_type = prog_type

    @property
    def program(self) -> Program:
        """The loaded :class:`pybpfobj.programs.Program`."""
        return self.skel._loaded_prog(self.name)

    @property
    def fd(self) -> int:
        return self.program.fd

    def pin(self, path: str) -> None:
        """Pin the program at ``path`` on a bpffs."""
        self.program.pin(path)

    def test_run(self, data_in: bytes = b"", **kw: Any) -> Any:
        """BPF_PROG_TEST_RUN through :func:`pybpfobj.testrun.test_run`."""
        from pybpfobj.testrun import test_run

        return test_run(self.program, data_in, **kw)

    @property
    def autoload(self) -> bool:
        """Whether ``load()`` loads this program (False for a ``SEC("?...")`` program until
        set to True before ``load()``)."""
        self.skel._check_open(f"program {self.name!r}")
        return bool(self.skel.object.autoload(self.name))

    @autoload.setter
    def autoload(self, value: bool) -> None:
        self.skel._check_open(f"program {self.name!r}")
        self.skel.object.set_autoload(self.name, value)

    @property
    def autoattach(self) -> bool:
        """Whether the skeleton's ``attach()`` attaches this program (default True)."""
        return bool(self.skel.object.autoattach(self.name))

    @autoattach.setter
    def autoattach(self, value: bool) -> None:
        self.skel._check_open(f"program {self.name!r}")
        self.skel.object.set_autoattach(self.name, value)

    def attach(self, *args: Any, **kw: Any) -> Any:
        """Attach as the section says (or to what ``args`` name); the link is kept by the skeleton."""
        link = _attach_program(self, *args, **kw)
        self.skel.links.append(link)
        return link

    def __repr__(self) -> str:
        return f"<ProgramRef {self.name!r} {self.prog_type} section {self.section!r}>"


def _attach_program(ref: ProgramRef, *args: Any, **kw: Any) -> Any:
    """Attach: XDP and tc through :mod:`pybpfobj.links` (they need an interface); every
    other program as its section says (:meth:`pybpfobj.loader.BpfObject.attach`)."""
    from pybpfobj import links

    if ref.prog_type == "xdp":
        if not args and "interface" not in kw:
            raise ProgramError(f"program {ref.name!r}: XDP attach needs an interface", prog=ref.name,
                               errno=_errno.EINVAL)
        return links.attach_xdp(ref.program, *args, **kw)
    if ref.prog_type in ("sched_cls", "sched_act"):
        return links.attach_tc(ref.program, *args, **kw)
    if args or kw:
        raise ProgramError(f"program {ref.name!r}: {ref.prog_type} programs attach as their section "
                           f"{ref.section!r} says; no target is taken", prog=ref.name, errno=_errno.EINVAL)
    ref.skel._check_open(f"attach {ref.name!r}")
    return ref.skel.object.attach(ref.name)


class Programs:
    """Base of a generated programs container: attributes are :class:`ProgramRef`."""

    def __init__(self, skel: Skeleton) -> None:
        self.skeleton = skel
        self._by_name: dict[str, ProgramRef] = {}

    def _add(self, name: str, section: str, prog_type: str) -> ProgramRef:
        ref = ProgramRef(self.skeleton, name, section, prog_type)
        self._by_name[name] = ref
        return ref

    def get(self, name: str) -> ProgramRef | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return list(self._by_name)

    def items(self) -> list[tuple[str, ProgramRef]]:
        return list(self._by_name.items())

    def values(self) -> list[ProgramRef]:
        return list(self._by_name.values())


# ---------------------------------------------------------------------------
# the object

class Skeleton:
    """Base of generated skeleton classes."""

    OBJECT_NAME: ClassVar[str] = ""
    OBJECT_SHA256: ClassVar[str] = ""
    OBJECT_EMBEDDED: ClassVar[str | None] = None
    OBJECT_PATH: ClassVar[str | None] = None
    INITIAL_VALUES: ClassVar[Mapping[str, Mapping[int, str]]] = {}

    maps: Maps
    progs: Programs

    def __init__(self, *, pin_root: str | None = None, path: str | None = None,
                 name: str | None = None) -> None:
        from pybpfobj.loader import BpfObject

        self.links: list[Any] = []
        self.loaded = False
        self._closed = False
        self._owned_sources: list[MapSource] = []
        self._views: dict[str, Any] = {}
        self._pending: dict[str, tuple[type[Any], Any]] = {}
        self._mapped: list[Any] = []
        self._map_handles: dict[str, Map] | None = None
        self._prog_handles: dict[str, Program] | None = None
        self.path = path or self.OBJECT_PATH
        source: str | bytes
        if path is None and self.OBJECT_EMBEDDED is not None:
            source = zlib.decompress(base64.b64decode(self.OBJECT_EMBEDDED))
        elif self.path is not None:
            self.path = os.fspath(self.path)
            _check_object_file(type(self), self.path)
            source = self.path
        else:
            raise BpfError(f"skeleton {self.OBJECT_NAME!r} has neither an embedded object nor a path",
                           errno=_errno.EINVAL, obj=self.OBJECT_NAME)
        self.pin_root = pin_root
        kw: dict[str, Any] = {} if pin_root is None else {"pin_root": os.fspath(pin_root)}
        self.object: BpfObject = BpfObject(source, name=name or self.OBJECT_NAME, **kw)
        self.maps = self._make_maps()
        self.progs = self._make_progs()

    def _make_maps(self) -> Maps:
        return Maps(self)

    def _make_progs(self) -> Programs:
        return Programs(self)

    # -- phases --------------------------------------------------------------

    @classmethod
    def open(cls, *, pin_root: str | None = None, path: str | None = None,
             name: str | None = None) -> Self:
        """Open the object (embedded, or the file at ``path``); configure, then :meth:`load`."""
        return cls(pin_root=pin_root, path=path, name=name)

    @classmethod
    def open_and_load(cls, *, pin_root: str | None = None, path: str | None = None,
                      name: str | None = None) -> Self:
        skel = cls.open(pin_root=pin_root, path=path, name=name)
        try:
            skel.load()
        except BaseException:
            skel.close()
            raise
        return skel

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise BpfError(f"{what}: skeleton {self.OBJECT_NAME!r} is closed", errno=_errno.EBADF,
                           obj=self.OBJECT_NAME)

    def _configure(self, method: str, *args: Any) -> None:
        self._check_open(method)
        if self.loaded:
            raise BpfError(f"{method}: object {self.OBJECT_NAME!r} is already loaded", errno=_errno.EBUSY,
                           obj=self.OBJECT_NAME)
        getattr(self.object, method)(*args)

    def load(self) -> None:
        """Create the maps (with the configured section values) and load the programs."""
        self._check_open("load")
        if self.loaded:
            raise BpfError(f"object {self.OBJECT_NAME!r} is already loaded", errno=_errno.EBUSY,
                           obj=self.OBJECT_NAME)
        for map_name, (_cls, view) in self._pending.items():
            self._push_section(map_name, bytes(memoryview(view).cast("B")))
        self.object.load()
        self.loaded = True
        self._views.clear()

    def _push_section(self, section: str, data: bytes) -> None:
        self.object.set_initial_value(section, data)

    def attach(self) -> list[Any]:
        """Attach every program whose section says where (tracepoints, kprobes, ...) and whose
        ``autoattach`` is set; keep the links.  All or nothing: a failure leaves none of this
        call's links."""
        self._check_open("attach")
        if not self.loaded:
            self.load()
        made: list[Any] = self.object.attach_all()
        self.links.extend(made)
        return made

    def detach(self) -> None:
        """Destroy the links made by :meth:`attach`."""
        errors: list[BaseException] = []
        while self.links:
            link = self.links.pop()
            try:
                link.close()
            except BpfError as e:
                errors.append(e)
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Detach, unmap, close every fd. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.detach()
        finally:
            self._views.clear()
            self._pending.clear()
            for mm in self._mapped:
                mm.close()
            self._mapped.clear()
            for src in self._owned_sources:
                src.close()
            for w in self.maps.values():
                w._src.close()
            # the loader's handles outlive its object: the skeleton took them, it closes them
            for handles in (self._map_handles, self._prog_handles):
                for h in (handles or {}).values():
                    h.close()
            self.object.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- handles ---------------------------------------------------------------

    def _loaded_map(self, name: str) -> Map:
        self._check_open(f"map {name!r}")
        if not self.loaded:
            raise MapError(f"map {name!r} of {self.OBJECT_NAME!r} does not exist before load()",
                           map=name, errno=_errno.ENOENT)
        if self._map_handles is None:
            self._map_handles = dict(self.object.maps)
        try:
            return self._map_handles[name]
        except KeyError:
            raise MapError(f"object {self.OBJECT_NAME!r} has no map {name!r}", map=name,
                           errno=_errno.ENOENT) from None

    def _loaded_prog(self, name: str) -> Program:
        self._check_open(f"program {name!r}")
        if not self.loaded:
            raise ProgramError(f"program {name!r} of {self.OBJECT_NAME!r} is not loaded yet",
                               prog=name, errno=_errno.ENOENT)
        if self._prog_handles is None:
            self._prog_handles = dict(self.object.programs)
        try:
            return self._prog_handles[name]
        except KeyError:
            why = ""
            if name in self.object.program_names() and not self.object.autoload(name):
                why = " (its autoload is off: set autoload = True before load())"
            raise ProgramError(f"object {self.OBJECT_NAME!r} has no loaded program {name!r}{why}",
                               prog=name, errno=_errno.ENOENT) from None

    def _section(self, map_name: str, cls: type[T], live_after_load: bool) -> T:
        """Typed view of a data section: a buffer pushed at load, then the map's mmap."""
        self._check_open(f"section {map_name!r}")
        view = self._views.get(map_name)
        if view is not None:
            return view  # type: ignore[no-any-return]
        if not self.loaded:
            pending = self._pending.get(map_name)
            if pending is None:
                buf = bytearray(self._initial_value(map_name, ctypes.sizeof(cls)))  # type: ignore[arg-type]
                pending = (cls, cls.from_buffer(buf))  # type: ignore[attr-defined]
                self._pending[map_name] = pending
            return pending[1]  # type: ignore[no-any-return]
        from pybpfobj.maps import Map

        raw = self._loaded_map(self.object.section_map_name(map_name))
        typed = Map.from_fd(raw.fd, owned=False, name=map_name, key_type=ctypes.c_uint32, value_type=cls)
        view = typed.mmap(writable=live_after_load)
        self._mapped.append(typed)
        self._views[map_name] = view
        return view  # type: ignore[no-any-return]

    def _initial_value(self, section: str, size: int) -> bytes:
        data = self.object.initial_value(section)[:size]
        return data + bytes(size - len(data))

    def __repr__(self) -> str:
        state = "closed" if self._closed else "loaded" if self.loaded else "open"
        return f"<{type(self).__name__} {self.OBJECT_NAME!r} {state}>"


def _check_object_file(skel_cls: type[Skeleton], path: str) -> None:
    """A path-mode skeleton's object must exist and be the object it was generated from:
    a rebuilt object may lay its maps and globals out differently, and the generated
    types would then read and write the wrong bytes."""
    import hashlib

    name = skel_cls.OBJECT_NAME
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        from pybpfobj.errors import NotFoundError

        raise NotFoundError(f"skeleton {name!r}: its object file {path!r} does not exist (moved? pass "
                            f"open(path=...), or regenerate the skeleton)", obj=name, path=path) from None
    except OSError as e:
        raise BpfError(f"skeleton {name!r}: cannot read its object file {path!r}: {e.strerror or e}",
                       errno=e.errno or _errno.EIO, obj=name, path=path) from None
    if skel_cls.OBJECT_SHA256 and hashlib.sha256(data).hexdigest() != skel_cls.OBJECT_SHA256:
        from pybpfobj.errors import ObjectFormatError

        raise ObjectFormatError(f"skeleton {name!r}: object file {path!r} is not the object it was "
                                f"generated from (sha256 differs): regenerate the skeleton", obj=name,
                                path=path)


def object_bytes(skel_cls: type[Skeleton]) -> bytes:
    """The object file a skeleton class embeds (or reads from its path)."""
    if skel_cls.OBJECT_EMBEDDED is not None:
        return zlib.decompress(base64.b64decode(skel_cls.OBJECT_EMBEDDED))
    if skel_cls.OBJECT_PATH is None:
        raise BpfError(f"skeleton {skel_cls.OBJECT_NAME!r} has no object", errno=_errno.EINVAL)
    with open(os.fspath(skel_cls.OBJECT_PATH), "rb") as f:
        return f.read()
