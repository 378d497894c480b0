"""BTF and BTF.ext readers (pure Python, no syscalls).

:class:`BTF` reads the ``.BTF`` section of an object file or a raw BTF file
such as ``/sys/kernel/btf/vmlinux`` (and split BTF such as
``/sys/kernel/btf/<module>`` on top of a base).  Both byte orders are read;
the order is taken from the magic.

Opening is one pass over the type section that records where each type
starts (an ``array('I')`` of word offsets; no per-type Python objects).
Types are decoded on demand and cached; the name index (keyed by string
offset, so no string is decoded to build it) is built on the first
:meth:`BTF.find`.

Where validation happens:

- opening (``from_bytes``/``from_file``): header (magic, version, hdr_len,
  section offsets/lengths and alignment), string section shape (leading and
  trailing NUL), every type's kind and that the type section is exactly
  covered by whole type records;
- :meth:`BTF.type`: the type's string offsets and every type id it refers to;
- :meth:`BTF.resolve` / :meth:`BTF.size_of`: modifier/typedef loops, arrays
  whose size overflows 32 bits, types without a size;
- :meth:`BTF.validate`: all of the above for every type, plus members placed
  beyond their struct's size and structs/unions containing themselves by
  value (the checks that need a full walk).

Every problem raises :class:`pybpfobj.errors.BTFError` naming the source.
"""

from __future__ import annotations

import enum
import os
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pybpfobj.errors import BTFError, NotFoundError

BTF_MAGIC = 0xEB9F
_HDR_MIN = 24
_MAX_TYPE = 0x000FFFFF
_U32_MAX = 0xFFFFFFFF


class BtfKind(enum.IntEnum):
    """BTF type kinds, numbered as the kernel does."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


_KINDS = tuple(BtfKind)
_NR_KINDS = len(_KINDS)

# Per kind: 32-bit words of the record (header included) and words per vlen item.
_FIXED_WORDS = (0, 4, 3, 6, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3, 4, 3, 3)
_VLEN_WORDS = (0, 0, 0, 0, 3, 3, 2, 0, 0, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 3)

INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4

_MODIFIERS = frozenset({BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT,
                        BtfKind.TYPE_TAG})
_SIZED = frozenset({BtfKind.INT, BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64,
                    BtfKind.DATASEC, BtfKind.FLOAT})


@dataclass(frozen=True)
class BtfMember:
    """A STRUCT/UNION member; ``bitfield_size`` 0 means not a bitfield."""

    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int


@dataclass(frozen=True)
class BtfParam:
    """A FUNC_PROTO parameter."""

    name: str
    type_id: int


@dataclass(frozen=True)
class BtfEnumValue:
    """An ENUM/ENUM64 enumerator (value signed when the enum's kind_flag is set)."""

    name: str
    value: int


@dataclass(frozen=True)
class BtfVarSecinfo:
    """A DATASEC entry: a VAR (or FUNC) at ``offset`` of ``size`` bytes."""

    type_id: int
    offset: int
    size: int


@dataclass(frozen=True)
class BtfType:
    """One decoded BTF type; fields not used by the kind keep their default."""

    id: int
    kind: BtfKind
    name: str
    size: int = 0
    type_id: int = 0
    vlen: int = 0
    kind_flag: bool = False
    int_encoding: int = 0
    int_offset: int = 0
    int_bits: int = 0
    elem_type: int = 0
    index_type: int = 0
    nelems: int = 0
    members: tuple[BtfMember, ...] = ()
    enum_values: tuple[BtfEnumValue, ...] = ()
    params: tuple[BtfParam, ...] = ()
    linkage: int = 0
    secinfo: tuple[BtfVarSecinfo, ...] = ()
    component_idx: int = -1


_VOID = BtfType(0, BtfKind.UNKN, "")

# Decoding builds many small frozen dataclasses; their generated __init__
# goes through object.__setattr__ per field.  Setting __dict__ directly is
# several times faster and gives identical objects (eq/hash/repr use fields).
_new = object.__new__


_setattr = object.__setattr__


def _s32(v: int) -> int:
    return v - 0x100000000 if v & 0x80000000 else v


class BTF:
    """Parsed BTF data; see the module docstring for what is checked when."""

    source: str
    byte_order: str
    raw: bytes
    _strs: bytes
    _str_base: int

    def __init__(self, data: bytes, source: str, base: BTF | None) -> None:
        self.source = source
        self.raw = bytes(data)
        self.base = base
        self._parse_header()
        self._index_types()
        self._cache: dict[int, BtfType] = {}
        self._strcache: dict[int, str] = {0: ""}
        self._strings_loaded = False
        self._name_index: dict[int, list[int]] | None = None

    # -- construction -------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "<bytes>", base: BTF | None = None) -> BTF:
        """Parse BTF bytes (a ``.BTF`` section or a raw BTF file's content)."""
        return cls(data, source, base)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, base: BTF | None = None) -> BTF:
        """Parse a raw BTF file (``/sys/kernel/btf/vmlinux``, a module's split BTF)."""
        p = os.fspath(path)
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError as e:
            raise BTFError(f"{p}: cannot read BTF: {e.strerror}", errno=e.errno or 0, path=p) from None
        return cls(data, p, base)

    def _err(self, what: str) -> BTFError:
        return BTFError(f"{self.source}: invalid BTF: {what}", obj=self.source)

    def _parse_header(self) -> None:
        data = self.raw
        if len(data) < 8:
            raise self._err(f"truncated header ({len(data)} bytes, need at least {_HDR_MIN})")
        if data[0] == 0x9F and data[1] == 0xEB:
            order = "little"
        elif data[0] == 0xEB and data[1] == 0x9F:
            order = "big"
        else:
            raise self._err(f"bad magic 0x{data[0]:02x}{data[1]:02x} (expected 0xeb9f)")
        self.byte_order = order
        self._swap = order != sys.byteorder
        fmt = "<" if order == "little" else ">"
        import struct

        version, flags, hdr_len = data[2], data[3], struct.unpack_from(fmt + "I", data, 4)[0]
        if version != 1:
            raise self._err(f"unsupported version {version}")
        if flags != 0:
            raise self._err(f"unsupported flags 0x{flags:x}")
        if hdr_len < _HDR_MIN:
            raise self._err(f"bad hdr_len {hdr_len} (less than {_HDR_MIN})")
        if hdr_len > len(data):
            raise self._err(f"truncated header (hdr_len {hdr_len} but only {len(data)} bytes)")
        if hdr_len > _HDR_MIN and any(data[_HDR_MIN:hdr_len]):
            raise self._err(f"hdr_len {hdr_len} has unknown non-zero header fields")
        type_off, type_len, str_off, str_len = struct.unpack_from(fmt + "4I", data, 8)
        body = len(data) - hdr_len
        if type_off > body or type_len > body - type_off:
            raise self._err(f"type section (off {type_off}, len {type_len}) is out of bounds "
                            f"({body} bytes after the header)")
        if str_off > body or str_len > body - str_off:
            raise self._err(f"string section (off {str_off}, len {str_len}) is out of bounds "
                            f"({body} bytes after the header)")
        if type_off % 4 or type_len % 4:
            raise self._err(f"type section (off {type_off}, len {type_len}) is not 4-byte aligned")
        if type_off < str_off + str_len and str_off < type_off + type_len:
            raise self._err("type and string sections overlap")
        self.hdr_len = hdr_len
        self._type_start = hdr_len + type_off
        self._type_end = self._type_start + type_len
        strs = data[hdr_len + str_off:hdr_len + str_off + str_len]
        base = self.base
        if base is None:
            if not strs or strs[0] != 0:
                raise self._err("string section must start with a NUL byte")
            self._str_base = 0
        else:
            if base.byte_order != order:
                raise self._err(f"byte order {order} differs from base BTF {base.source}")
            self._str_base = base._str_base + len(base._strs)
        if strs and strs[-1] != 0:
            raise self._err("string section is not NUL-terminated")
        self._strs = strs

    def _index_types(self) -> None:
        words = array("I")
        words.frombytes(self.raw[self._type_start:self._type_end])
        if self._swap:
            words.byteswap()
        self._words = words
        fixed, per = _FIXED_WORDS, _VLEN_WORDS
        offs: list[int] = []
        app = offs.append
        n = len(words)
        i = 0
        try:
            while i < n:
                app(i)
                info = words[i + 1]
                k = (info >> 24) & 0x1F
                if not 0 < k < 20:
                    raise self._err(f"type id {len(offs) + self._first_id() - 1}: unknown kind {k}")
                i += fixed[k] + per[k] * (info & 0xFFFF)
        except IndexError:
            i = n + 1
        if i != n:
            raise self._err(f"type section truncated in type id {len(offs) + self._first_id() - 1}")
        self._offs = array("I", offs)
        self.start_id = self._first_id()
        self._n = self.start_id - 1 + len(offs)
        if self._n > _MAX_TYPE:
            raise self._err(f"too many types ({self._n}, max {_MAX_TYPE})")

    def _first_id(self) -> int:
        return 1 if self.base is None else self.base._n + 1

    # -- basic access -------------------------------------------------

    def __len__(self) -> int:
        """Number of types, void excluded: valid ids are ``1..len(btf)``.

        For split BTF this counts the base's types too; the split's own
        types are ``start_id..len(btf)``.
        """
        return self._n

    def __repr__(self) -> str:
        return f"<BTF {self.source!r}: {self._n} types>"

    def string(self, offset: int) -> str:
        """The NUL-terminated string at ``offset`` of the string section."""
        if offset < self._str_base:
            assert self.base is not None
            return self.base.string(offset)
        local = offset - self._str_base
        strs = self._strs
        if local >= len(strs):
            raise self._err(f"string offset {offset} past the end of the string section "
                            f"({self._str_base + len(strs)} bytes)")
        end = strs.index(0, local)
        return strs[local:end].decode("utf-8", "replace")

    def type(self, type_id: int) -> BtfType:
        """The type with id ``type_id`` (0 is void); out of range raises BTFError."""
        t = self._cache.get(type_id)
        if t is not None:
            return t
        if type_id == 0:
            return _VOID
        if type_id < 0 or type_id > self._n:
            raise self._err(f"type id {type_id} out of range (1..{self._n})")
        if type_id < self.start_id:
            assert self.base is not None
            return self.base.type(type_id)
        t = self._decode(type_id)
        self._cache[type_id] = t
        return t

    def _name(self, off: int) -> str:
        """string() with a cache: member, param and type names repeat a lot."""
        v = self._strcache.get(off)
        if v is None:
            v = self._strcache[off] = self.string(off) if off else ""
        return v

    def _load_all_strings(self) -> None:
        """Decode the whole string section into the cache at once (for full walks)."""
        if self._strings_loaded:
            return
        cache = self._strcache
        off = self._str_base
        for piece in self._strs.split(b"\0"):
            if off not in cache:
                cache[off] = piece.decode("utf-8", "replace")
            off += len(piece) + 1
        self._strings_loaded = True

    def _decode(self, tid: int) -> BtfType:
        # Hot path of a full parse: no closures, no per-field setattr, names cached.
        w = self._words
        o = self._offs[tid - self.start_id]
        name_off, info, su = w[o], w[o + 1], w[o + 2]
        k = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kflag = info >= 0x80000000
        sget = self._strcache.get
        s = self._name
        n = self._n
        # Only non-default fields go in the instance dict: the dataclass keeps
        # each field's default as a class attribute, so the rest reads fine.
        d: dict[str, Any] = {"id": tid, "kind": _KINDS[k], "name": sget(name_off) or s(name_off),
                             "vlen": vlen, "kind_flag": kflag}
        bad = 0  # first out-of-range type id referenced
        if k == 4 or k == 5:  # STRUCT, UNION
            d["size"] = su
            mem: list[BtfMember] = []
            app = mem.append
            p = o + 3
            for _ in range(vlen):
                mt, moff = w[p + 1], w[p + 2]
                if mt > n:
                    bad = mt
                m = _new(BtfMember)
                nm = sget(w[p]) or s(w[p])
                if kflag:
                    _setattr(m, "__dict__", {"name": nm, "type_id": mt, "bit_offset": moff & 0xFFFFFF,
                                             "bitfield_size": moff >> 24})
                else:
                    _setattr(m, "__dict__", {"name": nm, "type_id": mt, "bit_offset": moff,
                                             "bitfield_size": 0})
                app(m)
                p += 3
            d["members"] = tuple(mem)
        elif k == 13:  # FUNC_PROTO
            if su > n:
                bad = su
            d["type_id"] = su
            params: list[BtfParam] = []
            p = o + 3
            for _ in range(vlen):
                pt = w[p + 1]
                if pt > n:
                    bad = pt
                prm = _new(BtfParam)
                _setattr(prm, "__dict__", {"name": sget(w[p]) or s(w[p]), "type_id": pt})
                params.append(prm)
                p += 2
            d["params"] = tuple(params)
        elif k == 1:  # INT
            v = w[o + 3]
            d["size"] = su
            d["int_encoding"] = (v >> 24) & 0x0F
            d["int_offset"] = (v >> 16) & 0xFF
            d["int_bits"] = v & 0xFF
        elif k == 3:  # ARRAY
            et, it = w[o + 3], w[o + 4]
            if et > n or it > n:
                bad = max(et, it)
            d["elem_type"] = et
            d["index_type"] = it
            d["nelems"] = w[o + 5]
        elif k == 6:  # ENUM
            d["size"] = su
            p = o + 3
            vals = []
            for _ in range(vlen):
                v = w[p + 1]
                vals.append(BtfEnumValue(s(w[p]), _s32(v) if kflag else v))
                p += 2
            d["enum_values"] = tuple(vals)
        elif k == 19:  # ENUM64
            d["size"] = su
            p = o + 3
            vals = []
            for _ in range(vlen):
                v = w[p + 1] | (w[p + 2] << 32)
                if kflag and v >= 1 << 63:
                    v -= 1 << 64
                vals.append(BtfEnumValue(s(w[p]), v))
                p += 3
            d["enum_values"] = tuple(vals)
        elif k == 12:  # FUNC
            if su > n:
                bad = su
            d["type_id"] = su
            d["linkage"] = vlen
        elif k == 14:  # VAR
            if su > n:
                bad = su
            d["type_id"] = su
            d["linkage"] = w[o + 3]
        elif k == 15:  # DATASEC
            d["size"] = su
            p = o + 3
            sec = []
            for _ in range(vlen):
                if w[p] > n:
                    bad = w[p]
                sec.append(BtfVarSecinfo(w[p], w[p + 1], w[p + 2]))
                p += 3
            d["secinfo"] = tuple(sec)
        elif k == 16:  # FLOAT
            d["size"] = su
        elif k == 17:  # DECL_TAG
            if su > n:
                bad = su
            d["type_id"] = su
            d["component_idx"] = _s32(w[o + 3])
        elif k != 7:  # PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG (FWD has nothing)
            if su > n:
                bad = su
            d["type_id"] = su
        if bad:
            raise self._err(f"type id {tid} refers to type id {bad} out of range (max {n})")
        t = _new(BtfType)
        _setattr(t, "__dict__", d)
        return t

    def types(self) -> Iterator[BtfType]:
        """All types, ids ``1..len(btf)`` in order (base types first for split BTF)."""
        if self.base is not None:
            yield from self.base.types()
        yield from self.own_types()

    def own_types(self) -> Iterator[BtfType]:
        """This BTF's own types (``start_id..len``): all of them unless split."""
        self._load_all_strings()  # a full walk: one split() beats 100k lookups
        cache = self._cache
        decode = self._decode
        for i in range(self.start_id, self._n + 1):
            t = cache.get(i)
            if t is None:
                t = cache[i] = decode(i)
            yield t

    def kind_of(self, type_id: int) -> BtfKind:
        """The kind of ``type_id`` without decoding the type."""
        if type_id == 0:
            return BtfKind.UNKN
        if type_id < 0 or type_id > self._n:
            raise self._err(f"type id {type_id} out of range (1..{self._n})")
        if type_id < self.start_id:
            assert self.base is not None
            return self.base.kind_of(type_id)
        return _KINDS[(self._words[self._offs[type_id - self.start_id] + 1] >> 24) & 0x1F]

    def name_of(self, type_id: int) -> str:
        """The name of ``type_id`` ("" if anonymous) without decoding the type."""
        if type_id == 0:
            return ""
        if type_id < 0 or type_id > self._n:
            raise self._err(f"type id {type_id} out of range (1..{self._n})")
        if type_id < self.start_id:
            assert self.base is not None
            return self.base.name_of(type_id)
        off = self._words[self._offs[type_id - self.start_id]]
        return self.string(off) if off else ""

    # -- lookup by name -----------------------------------------------

    def _own_ids_named(self, name: str) -> list[int]:
        idx = self._name_index
        if idx is None:
            idx = {}
            w = self._words
            for k, o in enumerate(self._offs):
                no = w[o]
                lst = idx.get(no)
                if lst is None:
                    idx[no] = [k]
                else:
                    lst.append(k)
            self._name_index = idx
        # Candidate string offsets: every place the name occurs followed by a
        # NUL (string offsets may point into the middle of a longer string).
        needle = name.encode("utf-8") + b"\0"
        strs = self._strs
        base = self._str_base
        ids: list[int] = []
        if not name:
            # offset 0 is "" in a base BTF; in split BTF "" may be any NUL.
            ids.extend(idx.get(0, ()))
        pos = strs.find(needle)
        while pos >= 0:
            ids.extend(idx.get(base + pos, ()))
            pos = strs.find(needle, pos + 1)
        if self.base is not None and name:
            # split BTF may name its types with strings of the base's section
            for off in self.base._str_offsets(needle):
                ids.extend(idx.get(off, ()))
        start = self.start_id
        return sorted({start + k for k in ids})

    def _str_offsets(self, needle: bytes) -> list[int]:
        out: list[int] = []
        pos = self._strs.find(needle)
        while pos >= 0:
            out.append(self._str_base + pos)
            pos = self._strs.find(needle, pos + 1)
        if self.base is not None:
            out.extend(self.base._str_offsets(needle))
        return out

    def _ids_named(self, name: str) -> list[int]:
        ids: list[int] = []
        if self.base is not None:
            ids.extend(self.base._ids_named(name))
        ids.extend(self._own_ids_named(name))
        return ids

    def find_all(self, name: str, kind: BtfKind | None = None) -> list[BtfType]:
        """Every type named ``name`` (of ``kind`` if given), in id order."""
        out = []
        for i in self._ids_named(name):
            if kind is not None and self.kind_of(i) != kind:
                continue
            out.append(self.type(i))
        return out

    def find(self, name: str, kind: BtfKind | None = None) -> BtfType:
        """The first type named ``name`` (of ``kind`` if given); NotFoundError if none."""
        for i in self._ids_named(name):
            if kind is None or self.kind_of(i) == kind:
                return self.type(i)
        what = f"{kind.name} " if kind is not None else ""
        raise NotFoundError(f"{self.source}: no BTF type {what}named {name!r}", obj=self.source)

    def datasec(self, name: str) -> BtfType | None:
        """The DATASEC describing section ``name`` (".rodata", ".maps"...), or None."""
        try:
            return self.find(name, BtfKind.DATASEC)
        except NotFoundError:
            return None

    # -- resolution ---------------------------------------------------

    def resolve(self, type_id: int) -> BtfType:
        """Skip TYPEDEF/VOLATILE/CONST/RESTRICT/TYPE_TAG; a loop raises BTFError."""
        t = self.type(type_id)
        steps = 0
        while t.kind in _MODIFIERS:
            steps += 1
            if steps > self._n:
                raise self._err(f"type loop through modifiers/typedefs starting at type id {type_id}")
            t = self.type(t.type_id)
        return t

    def size_of(self, type_id: int) -> int:
        """Byte size of ``type_id``; types without a size, loops and overflow raise BTFError."""
        mult = 1
        tid = type_id
        steps = 0
        while True:
            t = self.resolve(tid)
            k = t.kind
            if k in _SIZED:
                size = mult * t.size
                break
            if k is BtfKind.PTR:
                size = mult * 8
                break
            if k is BtfKind.ARRAY:
                mult *= t.nelems
                tid = t.elem_type
            elif k is BtfKind.VAR:
                tid = t.type_id
            else:
                raise self._err(f"type id {type_id} ({self._kind_desc(t)}) has no size")
            steps += 1
            if steps > self._n:
                raise self._err(f"type loop through arrays starting at type id {type_id}")
        if size > _U32_MAX:
            raise self._err(f"type id {type_id}: impossible size {size} (overflows 32 bits)")
        return size

    def _kind_desc(self, t: BtfType) -> str:
        return f"{t.kind.name} '{t.name}'" if t.name else f"{t.kind.name} (anon)"

    # -- names --------------------------------------------------------

    def type_name(self, type_id: int) -> str:
        """C spelling of a type: "struct stats", "__u32", "char[16]", "void *"."""
        return self._type_name(type_id, 0)

    def _type_name(self, type_id: int, depth: int) -> str:
        if depth > 64:
            raise self._err(f"type loop (or nesting too deep) naming type id {type_id}")
        t = self.type(type_id)
        k = t.kind
        if k is BtfKind.UNKN:
            return "void"
        if k in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64):
            kw = "union" if k is BtfKind.UNION else "struct" if k is BtfKind.STRUCT else "enum"
            return f"{kw} {t.name}" if t.name else f"{kw} (anon)"
        if k is BtfKind.FWD:
            return f"{'union' if t.kind_flag else 'struct'} {t.name}"
        if k is BtfKind.PTR:
            inner = self.type(t.type_id)
            if inner.kind is BtfKind.FUNC_PROTO:
                return self._proto_name(inner, "(*)", depth)
            s = self._type_name(t.type_id, depth + 1)
            return s + "*" if s.endswith("*") else s + " *"
        if k in (BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT):
            q = {BtfKind.CONST: "const", BtfKind.VOLATILE: "volatile", BtfKind.RESTRICT: "restrict"}[k]
            iname = self._type_name(t.type_id, depth + 1)
            if iname.endswith("*"):
                return f"{iname} {q}"
            return f"{q} {iname}"
        if k is BtfKind.TYPE_TAG:
            return self._type_name(t.type_id, depth + 1)
        if k is BtfKind.ARRAY:
            dims = ""
            while t.kind is BtfKind.ARRAY:
                dims += f"[{t.nelems}]"
                depth += 1
                if depth > 64:
                    raise self._err(f"type loop naming type id {type_id}")
                t = self.type(t.elem_type)
            return self._type_name(t.id, depth + 1) + dims
        if k is BtfKind.FUNC_PROTO:
            return self._proto_name(t, "", depth)
        if k is BtfKind.FUNC:
            proto = self.type(t.type_id)
            if proto.kind is BtfKind.FUNC_PROTO:
                return self._proto_name(proto, t.name, depth)
            return t.name
        if k is BtfKind.VAR:
            return self._type_name(t.type_id, depth + 1)
        return t.name or f"({k.name.lower()})"

    def _proto_name(self, proto: BtfType, inner: str, depth: int) -> str:
        ret = self._type_name(proto.type_id, depth + 1)
        params = []
        for p in proto.params:
            params.append("..." if p.type_id == 0 else self._type_name(p.type_id, depth + 1))
        return f"{ret} {inner}({', '.join(params) or 'void'})"

    def fixup_datasec(self, name: str, size: int, var_offsets: dict[str, int]) -> BTF:
        """A copy with DATASEC ``name``'s size and variable offsets set, as libbpf does at load.

        clang leaves DATASEC size and offsets 0 in object files; the real
        values come from the ELF section size and symbol values.  Variables
        missing from ``var_offsets`` keep their offset.
        """
        import struct

        t = self.find(name, BtfKind.DATASEC)
        if t.id < self.start_id:
            raise self._err(f"DATASEC '{name}' is in the base BTF")
        buf = bytearray(self.raw)
        fmt = "<I" if self.byte_order == "little" else ">I"
        rec = self._type_start + 4 * self._offs[t.id - self.start_id]
        struct.pack_into(fmt, buf, rec + 8, size)
        for i, v in enumerate(t.secinfo):
            vname = self.name_of(v.type_id)
            if vname in var_offsets:
                struct.pack_into(fmt, buf, rec + 12 + 12 * i + 4, var_offsets[vname])
        return BTF(bytes(buf), self.source, self.base)

    # -- full validation ----------------------------------------------

    def validate(self) -> None:
        """Check every type: decoding, loops, sizes, member placement, self-containment.

        Raises BTFError on the first problem; returns None when the BTF is sound.
        """
        for t in self.own_types():
            k = t.kind
            if k in _MODIFIERS:
                self.resolve(t.id)
            elif k is BtfKind.ARRAY:
                self.size_of(t.id)
            elif k is BtfKind.STRUCT or k is BtfKind.UNION:
                limit = t.size * 8
                for m in t.members:
                    mt = self.resolve(m.type_id)
                    if m.bitfield_size:
                        bits = m.bitfield_size
                    elif mt.kind is BtfKind.ARRAY and mt.nelems == 0:
                        bits = 0  # flexible array member
                    elif mt.kind in (BtfKind.FWD, BtfKind.FUNC_PROTO, BtfKind.UNKN):
                        raise self._err(f"type id {t.id} ({self._kind_desc(t)}): member "
                                        f"'{m.name}' has incomplete type {self._kind_desc(mt)}")
                    else:
                        bits = self.size_of(m.type_id) * 8
                    if m.bit_offset + bits > limit:
                        raise self._err(f"type id {t.id} ({self._kind_desc(t)}): member '{m.name}' "
                                        f"(bits {m.bit_offset}..{m.bit_offset + bits}) is beyond "
                                        f"the size {t.size}")
            elif k is BtfKind.DATASEC:
                for v in t.secinfo:
                    if t.size and v.offset + v.size > t.size:
                        raise self._err(f"type id {t.id} (DATASEC '{t.name}'): variable type id "
                                        f"{v.type_id} at {v.offset}+{v.size} is beyond the size {t.size}")
        self._check_containment()

    def by_value_refs(self, t: BtfType) -> list[int]:
        """Type ids ``t`` contains by value (not through pointers)."""
        k = t.kind
        if k is BtfKind.STRUCT or k is BtfKind.UNION:
            return [m.type_id for m in t.members]
        if k is BtfKind.ARRAY:
            return [t.elem_type]
        if k in _MODIFIERS or k is BtfKind.VAR:
            return [t.type_id]
        if k is BtfKind.DATASEC:
            return [v.type_id for v in t.secinfo]
        return []

    def _check_containment(self) -> None:
        # Iterative DFS with colours over by-value edges: a grey node seen
        # again is a type that contains itself.
        state = bytearray(self._n + 1)  # 0 new, 1 on stack, 2 done
        for root in range(self.start_id, self._n + 1):
            if state[root]:
                continue
            stack = [(root, iter(self.by_value_refs(self.type(root))))]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                    continue
                if nxt == 0 or nxt < self.start_id:
                    continue
                if state[nxt] == 1:
                    raise self._err(f"type loop: type id {nxt} ({self._kind_desc(self.type(nxt))}) "
                                    f"contains itself")
                if state[nxt] == 0:
                    state[nxt] = 1
                    stack.append((nxt, iter(self.by_value_refs(self.type(nxt)))))


# -- BTF.ext -----------------------------------------------------------


@dataclass(frozen=True)
class LineInfo:
    """One line_info record: instruction index within its section and source position."""

    insn_off: int
    file_name: str
    line: str
    line_num: int
    line_col: int


class BTFExt:
    """``.BTF.ext``: func_info and line_info per section (core_relo is tolerated, not decoded)."""

    func_info: dict[str, list[tuple[int, int]]]
    line_info: dict[str, list[LineInfo]]

    def __init__(self, data: bytes, btf: BTF, source: str) -> None:
        import struct

        self.source = source
        self.btf = btf
        self.func_info = {}
        self.line_info = {}
        if len(data) < 8:
            raise self._err(f"truncated header ({len(data)} bytes)")
        if data[0] == 0x9F and data[1] == 0xEB:
            fmt = "<"
        elif data[0] == 0xEB and data[1] == 0x9F:
            fmt = ">"
        else:
            raise self._err(f"bad magic 0x{data[0]:02x}{data[1]:02x} (expected 0xeb9f)")
        self._fmt = fmt
        if data[2] != 1:
            raise self._err(f"unsupported version {data[2]}")
        hdr_len = struct.unpack_from(fmt + "I", data, 4)[0]
        if hdr_len < 24:
            raise self._err(f"bad hdr_len {hdr_len} (less than 24)")
        if hdr_len > len(data):
            raise self._err(f"truncated header (hdr_len {hdr_len} but only {len(data)} bytes)")
        fi_off, fi_len, li_off, li_len = struct.unpack_from(fmt + "4I", data, 8)
        body = data[hdr_len:]
        self.core_relo_len = 0
        if hdr_len >= 32:
            cr_off, cr_len = struct.unpack_from(fmt + "2I", data, 24)
            self._bounds("core_relo", cr_off, cr_len, len(body))
            self.core_relo_len = cr_len
        self._bounds("func_info", fi_off, fi_len, len(body))
        self._bounds("line_info", li_off, li_len, len(body))
        for sec, recs in self._sections("func_info", body[fi_off:fi_off + fi_len], 8):
            self.func_info[sec] = [(off // 8, self._ref(tid)) for off, tid, *_ in recs]
        for sec, recs in self._sections("line_info", body[li_off:li_off + li_len], 16):
            lst = []
            for off, fname, lname, lc, *_ in recs:
                lst.append(LineInfo(off // 8, self._str(fname), self._str(lname), lc >> 10, lc & 0x3FF))
            lst.sort(key=lambda li: li.insn_off)
            self.line_info[sec] = lst

    @classmethod
    def from_bytes(cls, data: bytes, btf: BTF, *, source: str = "<bytes>") -> BTFExt:
        """Parse ``.BTF.ext`` bytes; strings come from ``btf``'s string section."""
        return cls(bytes(data), btf, source)

    def _err(self, what: str) -> BTFError:
        return BTFError(f"{self.source}: invalid BTF.ext: {what}", obj=self.source)

    def _bounds(self, what: str, off: int, ln: int, body: int) -> None:
        if off > body or ln > body - off:
            raise self._err(f"{what} section (off {off}, len {ln}) is out of bounds ({body} bytes)")

    def _str(self, off: int) -> str:
        try:
            return self.btf.string(off)
        except BTFError as e:
            raise self._err(f"string offset {off} past the end of the BTF string section") from e

    def _ref(self, tid: int) -> int:
        if tid > len(self.btf):
            raise self._err(f"func_info refers to type id {tid} out of range (max {len(self.btf)})")
        return tid

    def _sections(self, what: str, sec: bytes, min_rec: int) -> Iterator[tuple[str, list[tuple[int, ...]]]]:
        import struct

        if not sec:
            return
        fmt = self._fmt
        if len(sec) < 4:
            raise self._err(f"{what} truncated (no record size)")
        rec_size = struct.unpack_from(fmt + "I", sec, 0)[0]
        if rec_size < min_rec or rec_size % 4:
            raise self._err(f"{what} record size {rec_size} is invalid (need a multiple of 4, >= {min_rec})")
        nwords = rec_size // 4
        pos = 4
        while pos < len(sec):
            if len(sec) - pos < 8:
                raise self._err(f"{what} truncated at offset {pos} (section header)")
            name_off, num = struct.unpack_from(fmt + "2I", sec, pos)
            pos += 8
            if num == 0:
                raise self._err(f"{what} has a section with no records at offset {pos - 8}")
            if num * rec_size > len(sec) - pos:
                raise self._err(f"{what} truncated: {num} records of {rec_size} bytes at offset {pos}")
            name = self._str(name_off)
            recs = list(struct.iter_unpack(f"{fmt}{nwords}I", sec[pos:pos + num * rec_size]))
            pos += num * rec_size
            yield name, recs


def read_elf_btf(path: str | os.PathLike[str]) -> tuple[BTF, BTFExt | None]:
    """The ``.BTF`` (and ``.BTF.ext`` if present) of an ELF object file.

    A missing ``.BTF`` section or a file that is not ELF raises BTFError.
    pyelftools is imported here only, so plain BTF users never pay for it.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            elf = ELFFile(f)
            sec = elf.get_section_by_name(".BTF")
            if sec is None:
                raise BTFError(f"{p}: no .BTF section", obj=p, path=p)
            data = sec.data()
            ext_sec = elf.get_section_by_name(".BTF.ext")
            ext_data = ext_sec.data() if ext_sec is not None else None
    except OSError as e:
        raise BTFError(f"{p}: cannot read: {e.strerror}", errno=e.errno or 0, path=p) from None
    except ELFError as e:
        raise BTFError(f"{p}: not an ELF file: {e}", obj=p, path=p) from None
    btf = BTF.from_bytes(data, source=p)
    ext = BTFExt.from_bytes(ext_data, btf, source=p) if ext_data is not None else None
    return btf, ext


__all__ = [
    "BTF",
    "BTF_MAGIC",
    "INT_BOOL",
    "INT_CHAR",
    "INT_SIGNED",
    "BTFExt",
    "BtfEnumValue",
    "BtfKind",
    "BtfMember",
    "BtfParam",
    "BtfType",
    "BtfVarSecinfo",
    "LineInfo",
    "read_elf_btf",
]
