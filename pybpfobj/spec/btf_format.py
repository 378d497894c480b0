"""Values formatted by their BTF type, exactly as bpftool's btf_dumper does.

- :func:`format_value` gives the JSON value bpftool puts under
  ``"formatted"`` in ``bpftool -j map dump`` (ints as numbers, char arrays
  holding a printable NUL-terminated string as strings, bools, enums by
  name (the number when no enumerator matches), structs/unions as objects,
  bitfields and 128-bit ints as ``"0x.."`` strings, pointers as numbers,
  arrays as lists, VAR as ``{name: value}``, DATASEC as
  ``{section: [{var: value}, ...]}``).
- :func:`format_value_text` gives the text ``bpftool map dump`` prints for
  a map with BTF: the same tree through bpftool's pretty JSON writer, where
  a few leaves differ (bitfields as bare ``0x..``, pointers as ``%p``,
  unprintable chars as ``0x..``).
- :func:`pretty_json` is bpftool's pretty JSON writer (4-space indent,
  arrays of scalars kept on one line); the map dump frames its entries with it.

Floats (which bpftool 7.1 cannot dump) are given as Python floats.
"""

from __future__ import annotations

import struct
from typing import Any

from pybpfobj.errors import BTFError
from pybpfobj.jsonw import compact, pretty
from pybpfobj.spec.btf import BTF, INT_BOOL, INT_CHAR, INT_SIGNED, BtfKind, BtfType


class Raw(str):
    """A leaf printed verbatim (unquoted) by :func:`pretty_json`."""

    __slots__ = ()


_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\b": "\\b", "\\": "\\\\",
            '"': '\\"'}


def _quote(s: str) -> str:
    # bpftool 7.1's json_writer escapes these, nothing else (not "'"; a backslash it
    # writes as "\n", a bug not copied here)
    return '"' + "".join(_ESCAPES.get(c, c) for c in s) + '"'


def _scalar(v: Any) -> str:
    if isinstance(v, Raw):
        return str(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def pretty_json(value: Any, depth: int = 0) -> str:
    """``value`` as bpftool's pretty JSON writer prints it, starting at nesting ``depth``
    (:func:`pybpfobj.jsonw.pretty` with bpftool's own leaf escaping)."""
    return pretty(value, _scalar, depth)


class _AnonKey(str):
    """The "" key of an anonymous member in the text tree.

    Compared by identity, so a struct with several anonymous members keeps
    them all (bpftool prints each one as ``"": {...}``).
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


class _Dumper:
    def __init__(self, btf: BTF, plain: bool, merge_anonymous: bool = False) -> None:
        self.btf = btf
        self.plain = plain
        self.merge_anonymous = merge_anonymous
        self.le = btf.byte_order == "little"
        self.depth = 0

    def err(self, type_id: int, what: str) -> BTFError:
        return BTFError(f"{self.btf.source}: cannot format a value of type id {type_id}: {what}",
                        obj=self.btf.source)

    def uint(self, data: bytes, off: int, size: int, type_id: int) -> int:
        chunk = data[off:off + size]
        if len(chunk) != size:
            raise self.err(type_id, f"value too short ({len(data)} bytes, need {off + size})")
        return int.from_bytes(chunk, "little" if self.le else "big")

    def hexnum(self, v: int) -> Any:
        s = f"0x{v:x}"
        return Raw(s) if self.plain else s

    def dump(self, type_id: int, bit_offset: int, data: bytes, off: int) -> Any:
        self.depth += 1
        try:
            if self.depth > 64:
                raise self.err(type_id, "types nested too deeply (or a loop)")
            return self._dump(type_id, bit_offset, data, off)
        finally:
            self.depth -= 1

    def _dump(self, type_id: int, bit_offset: int, data: bytes, off: int) -> Any:
        btf = self.btf
        t = btf.type(type_id)
        k = t.kind
        if k in (BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG):
            return self.dump(btf.resolve(type_id).id, bit_offset, data, off)
        if k is BtfKind.INT:
            return self.int_(t, bit_offset, data, off)
        if k is BtfKind.STRUCT or k is BtfKind.UNION:
            return self.struct(t, data, off)
        if k is BtfKind.ARRAY:
            return self.array(t, data, off)
        if k is BtfKind.ENUM or k is BtfKind.ENUM64:
            return self.enum(t, data, off)
        if k is BtfKind.PTR:
            v = self.uint(data, off, 8, type_id)
            if self.plain:
                return Raw(f"0x{v:x}" if v else "(nil)")
            return v
        if k is BtfKind.FLOAT:
            fmt = {4: "f", 8: "d"}.get(t.size)
            if fmt is None:
                raise self.err(type_id, f"float of {t.size} bytes")
            chunk = data[off:off + t.size]
            if len(chunk) != t.size:
                raise self.err(type_id, "value too short")
            return struct.unpack(("<" if self.le else ">") + fmt, chunk)[0]
        if k is BtfKind.VAR:
            return {t.name: self.dump(t.type_id, bit_offset, data, off)}
        if k is BtfKind.DATASEC:
            return {t.name: [self.dump(v.type_id, 0, data, off + v.offset) for v in t.secinfo]}
        if k is BtfKind.UNKN:
            return Raw("(unknown)")
        raise self.err(type_id, f"{k.name} has no value")

    def bits(self, nr_bits: int, bit_offset: int, data: bytes, off: int, type_id: int) -> Any:
        nbytes = (bit_offset + nr_bits + 7) // 8
        v = self.uint(data, off, nbytes, type_id)
        if self.le:
            v >>= bit_offset
        else:
            v >>= nbytes * 8 - bit_offset - nr_bits
        return self.hexnum(v & ((1 << nr_bits) - 1))

    def int_(self, t: BtfType, bit_offset: int, data: bytes, off: int) -> Any:
        nbits = t.int_bits
        if bit_offset or t.int_offset or nbits != t.size * 8:
            total = bit_offset + t.int_offset
            return self.bits(nbits, total % 8, data, off + total // 8, t.id)
        enc = t.int_encoding
        if nbits == 128:
            return self.hexnum(self.uint(data, off, 16, t.id))
        if enc == 0 or enc & INT_SIGNED:
            if nbits not in (8, 16, 32, 64):
                return self.bits(nbits, 0, data, off, t.id)
            v = self.uint(data, off, nbits // 8, t.id)
            if enc & INT_SIGNED and v >= 1 << (nbits - 1):
                v -= 1 << nbits
            return v
        if enc & INT_CHAR:
            c = self.uint(data, off, 1, t.id)
            if 0x20 <= c < 0x7F:
                return chr(c)
            return Raw(f"0x{c:x}") if self.plain else f"\\u00{c:02x}"
        if enc & INT_BOOL:
            return self.uint(data, off, 1, t.id) != 0
        raise self.err(t.id, f"unknown int encoding {enc}")

    def struct(self, t: BtfType, data: bytes, off: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in t.members:
            boff = m.bit_offset
            if m.bitfield_size:
                v = self.bits(m.bitfield_size, boff % 8, data, off + boff // 8, m.type_id)
            else:
                v = self.dump(m.type_id, boff % 8, data, off + boff // 8)
            if m.name:
                out[m.name] = v
            elif self.merge_anonymous and isinstance(v, dict):
                out.update(v)   # C names them as members of the parent: x.a for x.<anon>.a
            elif self.plain:
                out[_AnonKey()] = v   # printed text keeps every one, as bpftool's does
            else:
                out[m.name] = v  # JSON: all named "", a later one wins (as a JSON parser reads bpftool's)
        return out

    def _is_str(self, t: BtfType, data: bytes, off: int) -> bool:
        if not t.nelems:
            return False
        e = self.btf.type(t.elem_type)
        steps = 0
        while e.kind in (BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG):
            steps += 1
            if steps > len(self.btf):
                raise self.err(t.id, "type loop")
            e = self.btf.type(e.type_id)
        if e.kind is not BtfKind.INT or e.size != 1:
            return False
        if e.int_encoding != INT_CHAR and e.name != "char":
            return False
        for c in data[off:off + t.nelems]:
            if c == 0:
                return True
            if c <= 0x1F or c >= 0x7F:
                return False
        return False  # no NUL inside the array (or the data is short)

    def array(self, t: BtfType, data: bytes, off: int) -> Any:
        esize = self.btf.size_of(t.elem_type)
        if self._is_str(t, data, off):
            end = data.index(0, off)
            return data[off:end].decode("ascii")
        if t.nelems * esize > len(data) - off:
            raise self.err(t.id, f"value too short ({len(data)} bytes, need {off + t.nelems * esize})")
        return [self.dump(t.elem_type, 0, data, off + i * esize) for i in range(t.nelems)]

    def enum(self, t: BtfType, data: bytes, off: int) -> Any:
        if t.size not in (1, 2, 4, 8):
            raise self.err(t.id, f"enum of {t.size} bytes")
        raw = self.uint(data, off, t.size, t.id)
        if t.kind is BtfKind.ENUM:
            # bpftool compares the sign-extended value with the 32-bit enumerators
            sv = raw - (1 << (t.size * 8)) if raw >= 1 << (t.size * 8 - 1) else raw
            for e in t.enum_values:
                ev = e.value if e.value < 1 << 31 else e.value - (1 << 32)
                if ev == sv or (sv & 0xFFFFFFFF) == (ev & 0xFFFFFFFF) and t.size == 4:
                    return e.name
            return sv
        for e in t.enum_values:
            if (e.value & ((1 << 64) - 1)) == raw:
                return e.name
        if t.kind_flag and raw >= 1 << (t.size * 8 - 1):
            return raw - (1 << (t.size * 8))
        return raw


def format_value(btf: BTF, type_id: int, data: bytes, *, merge_anonymous: bool = False) -> Any:
    """The JSON value bpftool prints under ``"formatted"`` for ``data`` of type ``type_id``.

    Data shorter than the type raises BTFError.  ``merge_anonymous`` puts the
    members of anonymous struct/union members into their parent (as C names
    them) instead of under ``""`` keys, where only the last one survives.
    """
    return _Dumper(btf, plain=False, merge_anonymous=merge_anonymous).dump(type_id, 0, bytes(data), 0)


def format_tree_text(btf: BTF, type_id: int, data: bytes) -> Any:
    """The value tree of bpftool's plain-text dump (leaves that print bare are :class:`Raw`)."""
    return _Dumper(btf, plain=True).dump(type_id, 0, bytes(data), 0)


def format_value_text(btf: BTF, type_id: int, data: bytes, depth: int = 0) -> str:
    """The text ``bpftool map dump`` prints for ``data`` of type ``type_id`` at nesting ``depth``."""
    return pretty_json(format_tree_text(btf, type_id, data), depth)


def format_value_compact(btf: BTF, type_id: int, data: bytes) -> str:
    """The one-line text ``bpftool prog show`` prints for a metadata variable."""
    return compact(format_tree_text(btf, type_id, data), _scalar)


__all__ = ["Raw", "format_tree_text", "format_value", "format_value_compact", "format_value_text", "pretty_json"]
