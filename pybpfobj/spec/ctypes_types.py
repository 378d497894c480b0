"""ctypes types from BTF, with their layout checked against BTF.

:class:`CTypesBuilder` turns a BTF type id into a ctypes type: structs and
unions (bitfields, anonymous members through ``_anonymous_``, packed
layouts), arrays, enums (an int of the enum's size and signedness), ints,
floats, and pointers as ``c_uint64`` (BPF pointers are 64-bit).  Typedefs
and modifiers are resolved.

Structs are first built the natural way (ctypes' own alignment, which is
the C ABI's).  If the resulting offsets or size differ from BTF (packed
structs, bitfields ctypes places differently), the struct is rebuilt with
``_pack_ = 1`` and explicit padding so every member sits where BTF says.
Whatever cannot be laid out exactly raises :class:`BTFError`.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from pybpfobj.errors import BTFError
from pybpfobj.spec.btf import BTF, INT_BOOL, INT_CHAR, INT_SIGNED, BtfKind, BtfMember, BtfType

CType = type[Any]  # a ctypes type (type[ctypes._CData] is not spelled portably)

_UNSIGNED = {1: ctypes.c_uint8, 2: ctypes.c_uint16, 4: ctypes.c_uint32, 8: ctypes.c_uint64}
_SIGNED = {1: ctypes.c_int8, 2: ctypes.c_int16, 4: ctypes.c_int32, 8: ctypes.c_int64}
_FLOATS = {4: ctypes.c_float, 8: ctypes.c_double}
if ctypes.sizeof(ctypes.c_longdouble) == 16:
    _FLOATS[16] = ctypes.c_longdouble


# ctypes' class attributes: a field of that name would replace them
_CTYPES_SPECIAL = frozenset(("_fields_", "_pack_", "_anonymous_", "_swappedbytes_", "_align_", "_objects",
                             "_b_base_", "_b_needsfree_", "_type_", "_length_", "_btf_type_id_"))

class CTypesBuilder:
    """Build (and cache) ctypes types for the types of one :class:`BTF`."""

    def __init__(self, btf: BTF) -> None:
        self.btf = btf
        self._cache: dict[int, CType] = {}
        self._building: set[int] = set()
        self._foreign = btf.byte_order != sys.byteorder

    def _err(self, type_id: int, what: str) -> BTFError:
        t = self.btf.type(type_id) if 0 <= type_id <= len(self.btf) else None
        desc = f"{t.kind.name} '{t.name or '(anon)'}'" if t is not None else "?"
        return BTFError(f"{self.btf.source}: cannot build a ctypes type for type id {type_id} "
                        f"({desc}): {what}", obj=self.btf.source)

    # -- public -------------------------------------------------------

    def build(self, type_id: int) -> CType:
        """The ctypes type of ``type_id`` (cached); unbuildable types raise BTFError."""
        c = self._cache.get(type_id)
        if c is not None:
            return c
        try:
            c = self._build(type_id)
        except BTFError:
            raise
        except RecursionError:
            raise self._err(type_id, "types nested too deeply (or a loop)") from None
        except (TypeError, ValueError, AttributeError, OverflowError, MemoryError) as e:
            raise self._err(type_id, f"ctypes refused the layout: {e}") from None
        self._cache[type_id] = c
        return c

    def is_plain_int(self, type_id: int) -> bool:
        """True when ``type_id`` resolves to an integer (INT of 1/2/4/8 bytes, ENUM, ENUM64)."""
        try:
            t = self.btf.resolve(type_id)
        except BTFError:
            return False
        if t.kind is BtfKind.INT:
            return t.size in _UNSIGNED and t.int_offset == 0 and t.int_bits == t.size * 8
        return t.kind in (BtfKind.ENUM, BtfKind.ENUM64) and t.size in _UNSIGNED

    # -- builders -----------------------------------------------------

    def _scalar(self, c: CType) -> CType:
        if self._foreign:
            return c.__ctype_be__ if sys.byteorder == "little" else c.__ctype_le__  # type: ignore[no-any-return]
        return c

    def _build(self, type_id: int) -> CType:
        btf = self.btf
        t = btf.resolve(type_id)
        if t.id != type_id:
            return self.build(t.id)
        k = t.kind
        if k is BtfKind.INT:
            return self._int(t)
        if k is BtfKind.ENUM or k is BtfKind.ENUM64:
            table = _SIGNED if t.kind_flag else _UNSIGNED
            if t.size not in table:
                raise self._err(type_id, f"enum size {t.size} is not 1, 2, 4 or 8")
            return self._scalar(table[t.size])
        if k is BtfKind.PTR:
            return self._scalar(ctypes.c_uint64)
        if k is BtfKind.FLOAT:
            if t.size not in _FLOATS:
                raise self._err(type_id, f"float size {t.size} has no ctypes type")
            return self._scalar(_FLOATS[t.size])
        if k is BtfKind.ARRAY:
            btf.size_of(type_id)  # overflow and loops raise BTFError first
            if t.elem_type in self._building:
                raise self._err(type_id, "type contains itself")
            return self.build(t.elem_type) * t.nelems  # type: ignore[no-any-return]
        if k is BtfKind.VAR:
            return self.build(t.type_id)
        if k is BtfKind.STRUCT or k is BtfKind.UNION or k is BtfKind.DATASEC:
            if type_id in self._building:
                raise self._err(type_id, "type contains itself")
            self._building.add(type_id)
            try:
                return self._record(t)
            finally:
                self._building.discard(type_id)
        raise self._err(type_id, f"{k.name} has no data layout")

    def _int(self, t: BtfType) -> CType:
        if t.int_encoding & INT_BOOL and t.size == 1:
            return ctypes.c_bool
        if t.size == 1 and (t.int_encoding & INT_CHAR or t.name == "char"):
            return ctypes.c_char
        if t.size in _UNSIGNED:
            table = _SIGNED if t.int_encoding & INT_SIGNED else _UNSIGNED
            return self._scalar(table[t.size])
        if t.size in (16, 32):  # __int128 and friends: opaque bytes, 16-byte aligned in C
            return ctypes.c_uint8 * t.size
        raise self._err(t.id, f"integer size {t.size} has no ctypes type")

    # -- structs and unions -------------------------------------------

    def _members(self, t: BtfType) -> list[BtfMember]:
        """Members with old-style (INT-encoded) bitfields turned into explicit ones."""
        out = []
        for m in t.members:
            if not m.bitfield_size:
                mt = self.btf.resolve(m.type_id)
                if mt.kind is BtfKind.INT and (mt.int_offset or mt.int_bits != mt.size * 8):
                    m = BtfMember(m.name, m.type_id, m.bit_offset + mt.int_offset, mt.int_bits)
            out.append(m)
        return out

    def _record(self, t: BtfType) -> CType:
        if t.kind is BtfKind.DATASEC:
            members = [BtfMember(self.btf.name_of(v.type_id), v.type_id, v.offset * 8, 0) for v in t.secinfo]
            size = t.size or max((v.offset + v.size for v in t.secinfo), default=0)
        else:
            members = self._members(t)
            size = t.size
        is_union = t.kind is BtfKind.UNION
        for m in members:
            if not m.bitfield_size and m.bit_offset % 8:
                raise self._err(t.id, f"member '{m.name}' is not byte aligned (bit offset {m.bit_offset})")
            if is_union and m.bit_offset:
                raise self._err(t.id, f"union member '{m.name}' at non-zero offset {m.bit_offset}")
        names = self._field_names(members)
        cls = self._try_natural(t, members, names, size, is_union)
        if cls is None:
            cls = self._try_packed(t, members, names, size, is_union)
        if cls is None and not is_union:
            cls = self._try_packed(t, members, names, size, is_union, runs=False)
        if cls is None:
            raise self._err(t.id, "ctypes cannot reproduce the BTF layout (member offsets or size differ)")
        return cls

    def _field_names(self, members: list[BtfMember]) -> list[str]:
        """ctypes field names for ``members``: C's names, except that ctypes' own class
        attributes (``_fields_``, ``_pack_``...) and repeats get a ``_`` suffix; anonymous
        members and the padding the builder adds get names no C member can have."""
        names: list[str] = []
        seen: set[str] = set()
        for i, m in enumerate(members):
            n = m.name or f"<anon {i}>"
            while n in _CTYPES_SPECIAL or n in seen:
                n += "_"
            seen.add(n)
            names.append(n)
        return names

    def _base_classes(self, is_union: bool) -> type[Any]:
        if self._foreign:
            return ctypes.BigEndianUnion if is_union else ctypes.BigEndianStructure
        return ctypes.Union if is_union else ctypes.Structure

    def _class_name(self, t: BtfType) -> str:
        n = t.name.replace(".", "_") if t.name else f"anon_{t.id}"
        return n if n.isidentifier() else f"btf_{t.id}"

    def _anonymous(self, members: list[BtfMember], names: list[str]) -> list[str]:
        out = []
        for m, n in zip(members, names):
            if not m.name and not m.bitfield_size and \
                    self.btf.resolve(m.type_id).kind in (BtfKind.STRUCT, BtfKind.UNION):
                out.append(n)
        return out

    def _make(self, t: BtfType, fields: list[tuple[Any, ...]], anon: list[str], is_union: bool,
              pack: bool) -> CType:
        ns: dict[str, Any] = {}
        if pack:
            ns["_pack_"] = 1
        if anon:
            ns["_anonymous_"] = anon
        ns["_fields_"] = fields
        ns["_btf_type_id_"] = t.id
        return type(self._class_name(t), (self._base_classes(is_union),), ns)

    def _member_fields(self, m: BtfMember, name: str) -> tuple[Any, ...]:
        ct = self.build(m.type_id)
        if m.bitfield_size:
            ct = self._bitfield_type(m, ct)
            return (name, ct, m.bitfield_size)
        return (name, ct)

    def _bitfield_type(self, m: BtfMember, ct: CType) -> CType:
        mt = self.btf.resolve(m.type_id)
        if ct is ctypes.c_bool:
            ct = ctypes.c_uint8
        elif ct is ctypes.c_char:  # a char bitfield reads as a number, signed as BTF says
            ct = ctypes.c_int8 if mt.int_encoding & INT_SIGNED else ctypes.c_uint8
        if mt.kind not in (BtfKind.INT, BtfKind.ENUM, BtfKind.ENUM64) or mt.size not in _UNSIGNED:
            raise self._err(m.type_id, f"bitfield '{m.name}' of a non-integer type")
        if m.bitfield_size > mt.size * 8:
            raise self._err(m.type_id, f"bitfield '{m.name}' wider ({m.bitfield_size}) than its type")
        return ct

    def _try_natural(self, t: BtfType, members: list[BtfMember], names: list[str], size: int,
                     is_union: bool) -> CType | None:
        fields: list[tuple[Any, ...]] = []
        end_bit = 0  # end of the previous member, in bits
        npad = 0
        for m, n in zip(members, names):
            f = self._member_fields(m, n)
            if m.bitfield_size and not is_union:
                # C's unnamed padding bitfields are not in BTF: put them back
                # so ctypes' (GCC-compatible) allocation lands where BTF says.
                usize = ctypes.sizeof(f[1]) * 8
                unit_start = m.bit_offset - m.bit_offset % usize
                gap_from = max(end_bit, unit_start)
                if m.bit_offset > gap_from:
                    npad += 1
                    fields.append((f"<pad {npad}>", f[1], m.bit_offset - gap_from))
                end_bit = m.bit_offset + m.bitfield_size
            elif not is_union:
                end_bit = m.bit_offset + ctypes.sizeof(f[1]) * 8
            fields.append(f)
        cls = self._make(t, fields, self._anonymous(members, names), is_union, False)
        if ctypes.sizeof(cls) < size:
            fields.append(("<pad end>", ctypes.c_uint8 * (size - ctypes.sizeof(cls))))
            cls = self._make(t, fields, self._anonymous(members, names), is_union, False)
        return cls if self._layout_ok(cls, members, names, size) else None

    def _try_packed(self, t: BtfType, members: list[BtfMember], names: list[str], size: int,
                    is_union: bool, runs: bool = True) -> CType | None:
        if is_union:
            ufields = [self._member_fields(m, n) for m, n in zip(members, names)]
            ufields.append(("<pad end>", ctypes.c_uint8 * size))
            cls = self._make(t, ufields, self._anonymous(members, names), True, True)
            return cls if self._layout_ok(cls, members, names, size) else None
        fields: list[tuple[Any, ...]] = []
        pos = 0  # bytes laid out so far
        npad = 0
        # bitfield unit currently open: (start byte, unit size, bits used)
        unit: list[int] | None = None
        order = sorted(range(len(members)), key=lambda i: members[i].bit_offset)
        if order != list(range(len(members))):
            return None
        for idx, (m, n) in enumerate(zip(members, names)):
            if m.bitfield_size:
                bo, bs = m.bit_offset, m.bitfield_size
                if unit is not None and bo + bs <= (unit[0] + unit[1]) * 8 and bo >= unit[0] * 8 + unit[2]:
                    gap = bo - (unit[0] * 8 + unit[2])
                    ut = _UNSIGNED[unit[1]]
                    if gap:
                        npad += 1
                        fields.append((f"<pad {npad}>", ut, gap))
                    ct = self._bitfield_type(m, self.build(m.type_id))
                    fields.append((n, _SIGNED[unit[1]] if self._signed(ct) else ut, bs))
                    unit[2] = bo + bs - unit[0] * 8
                    continue
                start = bo // 8
                if start < pos:
                    return None
                if unit is not None and unit[2] < unit[1] * 8:
                    # close the open unit so ctypes does not pack into its spare bits
                    npad += 1
                    fields.append((f"<pad {npad}>", _UNSIGNED[unit[1]], unit[1] * 8 - unit[2]))
                limit = members[idx + 1].bit_offset // 8 if idx + 1 < len(members) and \
                    not members[idx + 1].bitfield_size else size
                # one storage unit for the whole run of bitfields if possible
                run_end = bo + bs
                j = idx + 1
                while j < len(members) and members[j].bitfield_size:
                    run_end = max(run_end, members[j].bit_offset + members[j].bitfield_size)
                    j += 1
                room = max(limit, (bo + bs + 7) // 8) - start
                need_run = (run_end + 7) // 8 - start
                need = (bo + bs + 7) // 8 - start
                usize = next((u for u in (1, 2, 4, 8) if need_run <= u <= room), None) if runs else None
                if usize is None:
                    usize = next((u for u in (1, 2, 4, 8) if need <= u <= room), None)
                if usize is None:
                    return None
                if start > pos:
                    npad += 1
                    fields.append((f"<pad {npad}>", ctypes.c_uint8 * (start - pos)))
                gap = bo - start * 8
                ut = _UNSIGNED[usize]
                if gap:
                    npad += 1
                    fields.append((f"<pad {npad}>", ut, gap))
                ct = self._bitfield_type(m, self.build(m.type_id))
                fields.append((n, _SIGNED[usize] if self._signed(ct) else ut, bs))
                unit = [start, usize, bo + bs - start * 8]
                pos = start + usize
                continue
            unit = None
            off = m.bit_offset // 8
            if off < pos:
                return None
            if off > pos:
                npad += 1
                fields.append((f"<pad {npad}>", ctypes.c_uint8 * (off - pos)))
            ct = self.build(m.type_id)
            fields.append((n, ct))
            pos = off + ctypes.sizeof(ct)
        if pos < size:
            fields.append(("<pad end>", ctypes.c_uint8 * (size - pos)))
        cls = self._make(t, fields, self._anonymous(members, names), False, True)
        return cls if self._layout_ok(cls, members, names, size) else None

    @staticmethod
    def _signed(ct: CType) -> bool:
        return ct in _SIGNED.values() or getattr(ct, "__ctype_le__", None) in _SIGNED.values() \
            or getattr(ct, "__ctype_be__", None) in _SIGNED.values()

    def _layout_ok(self, cls: CType, members: list[BtfMember], names: list[str], size: int) -> bool:
        if ctypes.sizeof(cls) != size:
            return False
        for m, n in zip(members, names):
            desc = getattr(cls, n)
            if m.bitfield_size:
                bits, bit_in_unit = desc.size >> 16, desc.size & 0xFFFF
                if bits != m.bitfield_size:
                    return False
                if not self._foreign and desc.offset * 8 + bit_in_unit != m.bit_offset:
                    return False
            else:
                if desc.offset * 8 != m.bit_offset:
                    return False
        return True


__all__ = ["CTypesBuilder"]
