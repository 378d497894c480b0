"""Python values as the bytes a BTF type lays out (for global variables' initial values).

:func:`encode` writes ``value`` over ``base`` (the variable's current bytes) as
C would store it, from BTF alone: member offsets, bitfields, signedness,
enums, the object's byte order.  Integers and enums take ints (enums also
their names), bools true/false (or 0/1), floats numbers, pointers ints; a
struct or union takes a dict of its members by their C names (anonymous
members' members included), an array a list (shorter: the rest is kept), a
byte array (``char``, ``signed``/``unsigned char``) also a ``str`` (UTF-8,
with room for its NUL) or ``bytes``, which replace the whole array.  Members
and elements left out keep their bytes in ``base``.  At the top (a word from
a command line) a number may also be given as a string.

A value of the wrong type raises :class:`TypeError`, one that is not among a
type's values (a bool's, an enum's names) :class:`ValueError`, one that does
not fit :class:`ValueRangeError`; each names the path to the value
(``cfg.ports[2]``).  Nothing is written unless the whole value encodes.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Sequence
from typing import Any

from pybpfobj.spec.btf import BTF, INT_BOOL, INT_SIGNED, BtfKind, BtfMember


def _at(what: str) -> str:
    """The start of a message about the value at path ``what`` (none at the top of a map's
    value: the caller names it)."""
    return f"{what}: " if what else ""


def _raw(v: Any) -> bytes | None:
    """The bytes of ``v`` when it is bytes or a ctypes value (else None)."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(memoryview(v).cast("B"))
    if hasattr(v, "_b_base_"):  # a ctypes instance
        return bytes(memoryview(v).cast("B"))
    return None


class ValueRangeError(ValueError):
    """A value of the right shape that does not fit its type."""


def encode(btf: BTF, type_id: int, value: Any, base: bytes, what: str) -> bytes:
    """``base`` with ``value`` written over it as BTF type ``type_id`` lays it out."""
    buf = bytearray(base)
    _Writer(btf, buf).put(type_id, value, 0, what, top=True)
    return bytes(buf)


class _Writer:
    def __init__(self, btf: BTF, buf: bytearray) -> None:
        self.btf = btf
        self.buf = buf
        self.order: Any = "little" if btf.byte_order == "little" else "big"

    # -- bits and bytes ---------------------------------------------------

    def bits(self, bit_off: int, nbits: int, v: int) -> None:
        """Store the low ``nbits`` of ``v`` at bit ``bit_off`` (BTF's numbering: from the
        least significant bit of the first byte on little-endian, the most on big)."""
        start, end = bit_off // 8, (bit_off + nbits + 7) // 8
        cur = int.from_bytes(self.buf[start:end], self.order)
        width = (end - start) * 8
        shift = bit_off - start * 8 if self.order == "little" else width - (bit_off - start * 8) - nbits
        mask = ((1 << nbits) - 1) << shift
        cur = (cur & ~mask) | ((v & ((1 << nbits) - 1)) << shift)
        self.buf[start:end] = cur.to_bytes(end - start, self.order)

    # -- values -------------------------------------------------------------

    def put(self, type_id: int, v: Any, off: int, what: str, top: bool = False,
            bitfield: tuple[int, int] | None = None) -> None:
        """Write ``v`` as ``type_id`` at byte ``off`` (or, for a bitfield, at ``(bit offset,
        width)``)."""
        btf = self.btf
        t = btf.resolve(type_id)
        k = t.kind
        if not bitfield and not self.is_byte_array(t):
            raw = _raw(v)
            if raw is not None:  # bytes, or a ctypes value (as a map's read gives it back)
                size = btf.size_of(t.id)
                if len(raw) != size:
                    raise ValueRangeError(f"{_at(what)}{len(raw)} bytes given for a {size}-byte value")
                self.buf[off:off + size] = raw
                return
        if k in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.PTR):
            size = btf.size_of(t.id)
            if bitfield:
                nbits = bitfield[1]
            elif k == BtfKind.INT and 0 < t.int_bits < size * 8:
                nbits = t.int_bits  # an INT narrower than its storage
            else:
                nbits = size * 8
            n = self.integer(t, v, what, top, nbits)
            if bitfield:
                self.bits(bitfield[0], nbits, n)
            else:
                self.buf[off:off + size] = (n & ((1 << (size * 8)) - 1)).to_bytes(size, self.order)
            return
        if bitfield:
            raise ValueError(f"{_at(what)}a bitfield of a {k.name.lower()} type")
        if k == BtfKind.FLOAT:
            self.buf[off:off + t.size] = self.float_bytes(t.size, v, what, top)
        elif k == BtfKind.ARRAY:
            self.array(t.elem_type, t.nelems, v, off, what, top)
        elif k in (BtfKind.STRUCT, BtfKind.UNION):
            self.record(t.members, v, off, what, k == BtfKind.UNION)
        else:
            raise ValueError(f"{_at(what)}a {k.name.lower()} has no value to set")

    def is_byte_array(self, t: Any) -> bool:
        if t.kind != BtfKind.ARRAY:
            return False
        elem = self.btf.resolve(t.elem_type)
        return bool(elem.kind == BtfKind.INT and elem.size == 1 and not elem.int_encoding & INT_BOOL)

    def integer(self, t: Any, v: Any, what: str, top: bool, nbits: int) -> int:
        k = t.kind
        if k == BtfKind.PTR:
            signed, kind = False, "pointer"
        elif k == BtfKind.INT:
            signed, kind = bool(t.int_encoding & INT_SIGNED), "integer"
            if t.int_encoding & INT_BOOL:
                if top and isinstance(v, str) and v.lower() in ("true", "false", "0", "1"):
                    v = v.lower() in ("true", "1")
                if not isinstance(v, (bool, int)) or v not in (0, 1):
                    raise ValueError(f"{_at(what)}a bool needs true or false (or 0, 1), got {v!r}")
                return int(v)
        else:
            signed, kind = bool(t.kind_flag), "enum"
            if isinstance(v, str):
                named = next((e.value for e in t.enum_values if e.name == v), None)
                if named is not None:
                    v = named
                elif not top:
                    names = ", ".join(e.name for e in t.enum_values)
                    raise ValueError(f"{_at(what)}{v!r} is none of {names}")
        if isinstance(v, str) and len(v) == 1 and ord(v) < 256 and k == BtfKind.INT \
                and t.name in ("char", "signed char", "unsigned char") and not (top and v.isdigit()):
            v = ord(v) - (256 if signed and ord(v) > 127 else 0)  # a char given as one
        if top and isinstance(v, str):
            try:
                v = int(v, 0)
            except ValueError:
                names = ", ".join(e.name for e in t.enum_values) if kind == "enum" else ""
                raise ValueError(f"{_at(what)}needs an integer" + (f" or one of {names}" if names else "")
                                 + f", got {v!r}") from None
        if not isinstance(v, int) and hasattr(v, "__index__"):
            v = operator.index(v)  # numpy integers and such
        if not isinstance(v, int):
            raise TypeError(f"{_at(what)}{'an' if kind[0] in 'aei' else 'a'} {kind} needs an int, got {v!r}")
        lo, hi = (-(1 << (nbits - 1)), (1 << (nbits - 1)) - 1) if signed else (0, (1 << nbits) - 1)
        if k == BtfKind.ENUM and not signed and v < 0:
            lo = -(1 << (nbits - 1))  # C enums with negative values set no sign flag in older BTF
        if not lo <= v <= hi:
            raise ValueRangeError(f"{_at(what)}{v} does not fit {'a signed' if signed else 'an unsigned'} "
                                  f"{nbits}-bit {kind}")
        return int(v)

    def float_bytes(self, size: int, v: Any, what: str, top: bool) -> bytes:
        if top and isinstance(v, str):
            text = v
            try:
                v = float(text)
            except ValueError:
                raise ValueError(f"{_at(what)}needs a number, got {v!r}") from None
            if math.isinf(v) and "inf" not in text.lower():  # 1e400 is no infinity
                raise ValueRangeError(f"{_at(what)}{text} does not fit a {size * 8}-bit float")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{_at(what)}a float needs a number, got {v!r}")
        fmt = {4: "f", 8: "d"}.get(size)
        if fmt is None:
            raise ValueError(f"{_at(what)}{size}-byte floats are not supported")
        try:
            return struct.pack(("<" if self.order == "little" else ">") + fmt, v)
        except (OverflowError, struct.error):
            raise ValueRangeError(f"{_at(what)}{v} does not fit a {size * 8}-bit float") from None

    def array(self, elem_id: int, n: int, v: Any, off: int, what: str, top: bool) -> None:
        btf = self.btf
        elem = btf.resolve(elem_id)
        esize = btf.size_of(elem_id)
        is_bytes = elem.kind == BtfKind.INT and esize == 1 and not elem.int_encoding & INT_BOOL
        if is_bytes and (isinstance(v, str) or _raw(v) is not None):
            if isinstance(v, str):
                try:
                    data = v.encode("utf-8", "surrogateescape")  # a command line's undecodable bytes kept
                except UnicodeEncodeError as e:
                    raise ValueError(f"{_at(what)}{e.reason} in {v!r}") from None
                if len(data) >= n:
                    raise ValueRangeError(f"{_at(what)}a string of {len(data)} bytes does not fit char[{n}] "
                                          f"with its NUL")
            else:
                data = _raw(v) or b""  # bytes, or a ctypes array as a map's read gives it
                if len(data) > n:
                    raise ValueRangeError(f"{_at(what)}{len(data)} bytes do not fit char[{n}]")
            self.buf[off:off + n] = data.ljust(n, b"\0")
            return
        if not isinstance(v, (list, tuple)):
            raise TypeError(f"{_at(what)}an array needs a list"
                             + (", a string or bytes" if is_bytes else "") + f", got {type(v).__name__}")
        if len(v) > n:
            raise ValueRangeError(f"{_at(what)}{len(v)} elements do not fit [{n}]")
        for i, x in enumerate(v):
            self.put(elem_id, x, off + i * esize, f"{what}[{i}]")

    def record(self, members: Sequence[BtfMember], v: Any, off: int, what: str, union: bool) -> None:
        if isinstance(v, (list, tuple)) and not union:  # positionally, as C's { a, b } (and ctypes)
            if len(v) > len(members):
                raise ValueRangeError(f"{_at(what)}{len(v)} values for {len(members)} members")
            for i, (m, x) in enumerate(zip(members, v)):
                self.member(m, off * 8 + m.bit_offset, x, f"{what}.{m.name or f'<anon {i}>'}".lstrip("."))
            return
        if not isinstance(v, dict):
            raise TypeError(f"{_at(what)}a {'union' if union else 'struct'} needs a dict of members"
                            + ("" if union else " or a list of them in order") + f", got {type(v).__name__}")
        named = self.members(members, off * 8)
        for key, x in v.items():
            hit = named.get(key) if isinstance(key, str) else None
            if hit is None:
                raise ValueError(f"{_at(what)}no member {key!r} (members: {', '.join(named)})")
            self.member(hit[0], hit[1], x, f"{what}.{key}" if what else key)

    def member(self, m: BtfMember, bit_off: int, x: Any, what: str) -> None:
        """Write member ``m`` at absolute bit ``bit_off``: a bitfield (BTF's, or an INT
        narrower than its size, as older BTF encodes one) at its bits, else at its byte."""
        if m.bitfield_size:
            self.put(m.type_id, x, 0, what, bitfield=(bit_off, m.bitfield_size))
            return
        t = self.btf.resolve(m.type_id)
        if t.kind == BtfKind.INT and 0 < t.int_bits < t.size * 8:
            self.put(m.type_id, x, 0, what, bitfield=(bit_off + t.int_offset, t.int_bits))
        elif not m.name and t.kind in (BtfKind.STRUCT, BtfKind.UNION):
            self.record(t.members, x, bit_off // 8, what, t.kind == BtfKind.UNION)
        else:
            self.put(m.type_id, x, bit_off // 8, what)

    def members(self, members: Sequence[BtfMember], base_bit: int) -> dict[str, tuple[BtfMember, int]]:
        """C member name -> (member, absolute bit offset); anonymous members' members too."""
        out: dict[str, tuple[BtfMember, int]] = {}
        for m in members:
            bit = base_bit + m.bit_offset
            if not m.name:
                inner = self.btf.resolve(m.type_id)
                if inner.kind in (BtfKind.STRUCT, BtfKind.UNION) and not m.bitfield_size:
                    for name, hit in self.members(inner.members, bit).items():
                        out.setdefault(name, hit)
                continue
            out.setdefault(m.name, (m, bit))
        return out


__all__ = ["ValueRangeError", "encode"]
