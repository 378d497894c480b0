"""Generate a typed Python skeleton module for a compiled BPF object.

``generate(obj)`` reads the object offline (spec layer, no privileges) and
renders ``templates/skeleton.py.j2`` with a model built here:

- :class:`TypeGen` turns the BTF types reachable from the maps and the
  global variables into ctypes classes with exact layout (``_pack_ = 1``,
  explicit padding, bitfields as :class:`~pybpfobj.skeleton.runtime.BitField`
  descriptors over their bytes), enums as ``IntEnum``, typedefs as aliases;
  anonymous types are named after where they sit (``flow_value_nexthop``,
  ``flow_value_anon0``, ``outer_hash_inner_value``);
- every name goes through :mod:`pybpfobj.skeleton.naming`, every string
  through :func:`~pybpfobj.skeleton.naming.pystr`: the object cannot inject
  code into the module;
- output is deterministic: the same object bytes give the same module bytes.

jinja2 is imported here only, and only when rendering.
"""

from __future__ import annotations

import base64
import builtins
import ctypes
import enum
import hashlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pybpfobj.constants import BPF_F_MMAPABLE
from pybpfobj.errors import BTFError, ObjectFormatError
from pybpfobj.skeleton.naming import Scope, identifier, pystr, to_class_name
from pybpfobj.skeleton.pyfmt import WIDTH, Cat, Expr, Group, Opt, Str, finish, parse_type_expr, stmt

__all__ = ["SkeletonError", "generate", "generate_file", "import_skeleton"]

# BTF kinds (numbers, so this module does not need the BTF module at import)
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = 12, 13, 14, 15, 16, 17, 18, 19
_MODIFIERS = (VOLATILE, CONST, RESTRICT, TYPE_TAG)

# Attributes a ctypes Structure/Union (or our runtime) needs; member names equal to them are renamed.
_CTYPES_RESERVED = ({n for n in dir(ctypes.Structure) if not n.startswith("_")}
                    | {n for n in dir(type(ctypes.Structure)) if not n.startswith("_")}
                    | {"from_param", "from_buffer", "from_buffer_copy", "from_address", "in_dll"})
_ENUM_RESERVED = ({n for n in dir(enum.IntEnum) if not n.startswith("_")}
                  | {n for n in dir(int) if not n.startswith("_")} | {"name", "value", "mro"})
# Module-level names: builtins (annotations use them) and the generated helpers' public names.
_MODULE_RESERVED = set(dir(builtins)) | {"annotations", "OBJECT_NAME", "OBJECT_SHA256"}
# Attribute names of the runtime containers: maps, programs and data-section attributes avoid them.
_MAPS_RESERVED = {"items", "names", "get", "skeleton", "values"}
_PROGS_RESERVED = {"items", "names", "get", "skeleton", "values"}
_SKEL_RESERVED = {"open", "load", "attach", "detach", "close", "maps", "progs", "links", "object",
                  "loaded", "path", "name", "pin_root", "open_and_load", "spec", "sections"}

_INT_CT = {(1, False): "_ct.c_uint8", (1, True): "_ct.c_int8", (2, False): "_ct.c_uint16",
           (2, True): "_ct.c_int16", (4, False): "_ct.c_uint32", (4, True): "_ct.c_int32",
           (8, False): "_ct.c_uint64", (8, True): "_ct.c_int64"}


class SkeletonError(ObjectFormatError):
    """The object cannot be described by a skeleton (a type that cannot be laid out, ...)."""


@dataclass
class CType:
    """How a BTF type appears in generated code."""

    expr: str          # ctypes type expression
    ann: str           # annotation of an attribute holding it (what ctypes returns)
    size: int
    scalar: bool       # ctypes hands it back as a Python value (int/bytes/float/bool)
    int_signed: bool = False
    is_int: bool = False


@dataclass
class Field:
    name: str
    expr: str
    offset: int
    size: int


@dataclass
class BitFieldDecl:
    name: str
    byte_offset: int
    nbytes: int
    shift: int
    bits: int
    signed: bool
    big_endian: bool = False


@dataclass
class ClassDecl:
    kind: str                      # "struct" | "union" | "enum" | "alias"
    name: str
    doc: str = ""
    size: int = 0
    fields: list[Field] = field(default_factory=list)
    anonymous: list[str] = field(default_factory=list)
    annotations: list[tuple[str, str]] = field(default_factory=list)
    bitfields: list[BitFieldDecl] = field(default_factory=list)
    checks: list[tuple[str, int]] = field(default_factory=list)
    enum_values: list[tuple[str, int]] = field(default_factory=list)
    target: str = ""               # alias target / enum ctype


class TypeGen:
    """Emits ctypes declarations for BTF types, in dependency order."""

    def __init__(self, btf: Any, module: Scope) -> None:
        self.btf = btf
        self.module = module
        self.decls: list[ClassDecl] = []
        self.done: dict[int | tuple[int, str], CType] = {}
        self.in_progress: set[int] = set()
        self.big_endian = getattr(btf, "byte_order", "little") == "big"

    def _err(self, msg: str) -> SkeletonError:
        return SkeletonError(f"{getattr(self.btf, 'source', '<btf>')}: {msg}")

    # -- references ----------------------------------------------------

    def ref(self, type_id: int, hint: str) -> CType:
        """The CType of ``type_id``; named after ``hint`` if it is anonymous.

        An anonymous struct/union/enum gets one class per place it sits
        (``hint``), as in C, where each is a type of its own: BTF
        deduplication may merge identical ones into one id, and naming the
        shared id after its first user would let an unrelated addition
        rename it.
        """
        key: int | tuple[int, str] = (type_id, hint) if self._anonymous(type_id) else type_id
        if key in self.done:
            return self.done[key]
        if type_id in self.in_progress:
            raise self._err(f"type [{type_id}] contains itself by value")
        self.in_progress.add(type_id)
        try:
            ct = self._ref(type_id, hint)
        finally:
            self.in_progress.discard(type_id)
        self.done[key] = ct
        return ct

    def _anonymous(self, type_id: int) -> bool:
        """Whether ``type_id`` (through modifiers and arrays) is an anonymous struct/union/enum."""
        for _ in range(64):  # chains are short; a loop in crafted BTF ends here
            t = self.btf.type(type_id)
            k = int(t.kind)
            if k in _MODIFIERS:
                type_id = t.type_id
            elif k == ARRAY:
                type_id = t.elem_type
            else:
                return k in (STRUCT, UNION, ENUM, ENUM64) and not t.name
        return False

    def _ref(self, type_id: int, hint: str) -> CType:
        t = self.btf.type(type_id)
        k = int(t.kind)
        if k in _MODIFIERS:
            return self.ref(t.type_id, hint)
        if k == TYPEDEF:
            return self._typedef(t, hint)
        if k == INT:
            return self._int(t)
        if k == PTR:
            return CType("_ct.c_uint64", "_int", 8, True, False, True)
        if k == FLOAT:
            if t.size == 4:
                return CType("_ct.c_float", "_float", 4, True)
            if t.size == 8:
                return CType("_ct.c_double", "_float", 8, True)
            return CType(f"(_ct.c_uint8 * {t.size})", "_ct.Array[_ct.c_uint8]", t.size, False)
        if k in (ENUM, ENUM64):
            return self._enum(t, hint)
        if k == ARRAY:
            elem = self.ref(t.elem_type, hint)
            n = t.nelems
            if elem.expr == "_ct.c_char":
                return CType(f"(_ct.c_char * {n})", "_bytes", elem.size * n, False)
            return CType(f"({elem.expr} * {n})", f"_ct.Array[{elem.expr}]", elem.size * n, False)
        if k in (STRUCT, UNION):
            return self._record(t, hint)
        what = {0: "void", FWD: "a forward declaration", FUNC_PROTO: "a function"}.get(k, f"kind {k}")
        raise self._err(f"type [{type_id}] is {what} and cannot be held by value")

    def _int(self, t: Any) -> CType:
        size, enc = t.size, t.int_encoding
        if enc & 4 and size == 1:
            return CType("_ct.c_bool", "_bool", 1, True)
        if size == 1 and (enc & 2 or t.name == "char"):
            return CType("_ct.c_char", "_bytes", 1, True)
        signed = bool(enc & 1)
        expr = _INT_CT.get((size, signed))
        if expr is None:  # __int128 and odd sizes: raw bytes
            return CType(f"(_ct.c_uint8 * {size})", "_ct.Array[_ct.c_uint8]", size, False)
        return CType(expr, "_int", size, True, signed, True)

    def _typedef(self, t: Any, hint: str) -> CType:
        target = self.btf.type(t.type_id)
        tk = int(target.kind)
        # An anonymous struct/union/enum behind a typedef takes the typedef's name.
        if tk in (STRUCT, UNION, ENUM, ENUM64) and not target.name:
            return self.ref(t.type_id, t.name or hint)
        ct = self.ref(t.type_id, t.name or hint)
        # Every typedef gets its alias, ``__u32`` too (as ``c__u32``: the underscore
        # namespace is the generator's), so code can name the object's types.
        if t.name and tk not in _MODIFIERS and ct.expr != identifier(t.name):
            alias = self.module.claim(t.name)
            self.decls.append(ClassDecl("alias", alias, doc=f"typedef {t.name}", target=ct.expr))
        return ct

    def _enum(self, t: Any, hint: str) -> CType:
        signed = bool(t.kind_flag)
        expr = _INT_CT.get((t.size, signed)) or _INT_CT.get((t.size, False)) or "_ct.c_uint32"
        ct = CType(expr, "_int", t.size, True, signed, True)
        name = self.module.claim(t.name or hint, "anon_enum")
        scope = Scope(_ENUM_RESERVED)
        values = [(scope.claim(v.name, "value"), int(v.value)) for v in t.enum_values]
        kind = "enum64" if int(t.kind) == ENUM64 else "enum"
        self.decls.append(ClassDecl("enum", name, doc=f"{kind} {t.name or '(anonymous)'}", size=t.size,
                                    enum_values=values, target=expr))
        return ct

    # -- structs and unions ----------------------------------------------

    def _bits_of(self, m: Any) -> tuple[int, bool]:
        """(bitfield width or 0, signed) for a member, old-style (kind_flag 0) bitfields included."""
        r = self.btf.resolve(m.type_id)
        signed = bool(r.int_encoding & 1) if int(r.kind) == INT else bool(r.kind_flag)
        if m.bitfield_size:
            return m.bitfield_size, signed
        if int(r.kind) == INT and (r.int_bits != r.size * 8 or r.int_offset):
            return r.int_bits, signed
        if m.bit_offset % 8:
            return self.btf.size_of(m.type_id) * 8, signed
        return 0, signed

    def _record(self, t: Any, hint: str) -> CType:
        is_union = int(t.kind) == UNION
        cname = self.module.claim(t.name or hint, "anon")
        decl = ClassDecl("union" if is_union else "struct", cname, size=t.size,
                         doc=f"{'union' if is_union else 'struct'} {t.name or '(anonymous)'}")
        scope = Scope(_CTYPES_RESERVED)
        pos = 0
        anon_n = 0
        members = list(t.members)
        i = 0
        while i < len(members):
            m = members[i]
            bits, signed = self._bits_of(m)
            if bits:
                # a run of bitfields shares raw bytes; each gets a descriptor
                run = [(m, bits, signed)]
                j = i + 1
                if not is_union:
                    while j < len(members):
                        b2, s2 = self._bits_of(members[j])
                        if not b2:
                            break
                        run.append((members[j], b2, s2))
                        j += 1
                start = min(x.bit_offset for x, _, _ in run) // 8
                end = (max(x.bit_offset + b for x, b, _ in run) + 7) // 8
                if start < pos or end > t.size:
                    raise self._err(f"{decl.doc}: bitfields at bytes {start}..{end} overlap or overflow")
                if start > pos:
                    decl.fields.append(Field(scope.internal("pad"), f"(_ct.c_uint8 * {start - pos})", pos, start - pos))
                store = scope.internal("bf")
                decl.fields.append(Field(store, f"(_ct.c_uint8 * {end - start})", start, end - start))
                for x, b, s in run:
                    if not x.name:
                        continue  # unnamed bitfield: padding
                    bname = scope.claim(x.name, "bits")
                    rel = x.bit_offset - start * 8
                    # BTF counts bit offsets in memory order: from the low bit of a
                    # little-endian value, from the high bit of a big-endian one
                    shift = (end - start) * 8 - rel - b if self.big_endian else rel
                    decl.bitfields.append(BitFieldDecl(bname, start, end - start, shift, b, s,
                                                       self.big_endian))
                if not is_union:
                    pos = end
                i = j
                continue
            off = m.bit_offset // 8
            sub_hint = f"{cname}_{identifier(m.name)}" if m.name else f"{cname}_anon{anon_n}"
            ct = self.ref(m.type_id, sub_hint)
            if is_union:
                if off:
                    raise self._err(f"{decl.doc}: union member at offset {off}")
            else:
                if off < pos:
                    raise self._err(f"{decl.doc}: member {m.name or '(anonymous)'} overlaps the previous one")
                if off > pos:
                    decl.fields.append(Field(scope.internal("pad"), f"(_ct.c_uint8 * {off - pos})", pos, off - pos))
            if off + ct.size > t.size:
                raise self._err(f"{decl.doc}: member {m.name or '(anonymous)'} ends past the type's size")
            if m.name:
                fname = scope.claim(m.name, "member")
                decl.fields.append(Field(fname, ct.expr, off, ct.size))
                decl.annotations.append((fname, ct.ann))
                decl.checks.append((fname, off))
            else:
                fname = scope.internal("anon")
                anon_n += 1
                decl.fields.append(Field(fname, ct.expr, off, ct.size))
                decl.anonymous.append(fname)
                decl.checks.append((fname, off))
                self._promote(decl, ct, off, scope)
            if not is_union:
                pos = off + ct.size
            i += 1
        if is_union:
            biggest = max([f.size for f in decl.fields] + [0])
            if biggest < t.size:
                decl.fields.append(Field(scope.internal("pad"), f"(_ct.c_uint8 * {t.size})", 0, t.size))
        elif pos < t.size:
            decl.fields.append(Field(scope.internal("pad"), f"(_ct.c_uint8 * {t.size - pos})", pos,
                                     t.size - pos))
        self.decls.append(decl)
        return CType(cname, cname, t.size, False)

    def _promote(self, decl: ClassDecl, ct: CType, off: int, scope: Scope) -> None:
        """Anonymous member: its fields are reachable from the parent (ctypes ``_anonymous_``);
        annotate them for type checkers and re-export its bitfields with absolute offsets."""
        sub = next((d for d in self.decls if d.name == ct.expr), None)
        if sub is None:
            return
        for name, ann in sub.annotations:
            if name not in scope.used:
                scope.used.add(name)
                decl.annotations.append((name, ann))
        for bf in sub.bitfields:
            if bf.name not in scope.used:
                scope.used.add(bf.name)
                decl.bitfields.append(BitFieldDecl(bf.name, bf.byte_offset + off, bf.nbytes, bf.shift,
                                                   bf.bits, bf.signed, bf.big_endian))


# ---------------------------------------------------------------------------
# the model of the object


@dataclass
class MapModel:
    name: str          # original
    attr: str          # attribute under skel.maps
    kind: str          # "plain" | "percpu" | "queue" | "mapinmap" | "progarray" | "raw"
    type_name: str
    key: CType | None = None
    value: CType | None = None
    inner: MapModel | None = None
    init_values: list[tuple[int, str]] = field(default_factory=list)
    prog_type: str | None = None   # prog_array: expected program type
    max_entries: int = 0
    key_size: int = 0
    value_size: int = 0
    flags: int = 0

    @property
    def wrapper_type(self) -> Expr:
        """The annotation of the map's attribute."""
        k = _ann(self.key)
        v = _ann(self.value)
        if self.kind == "plain":
            return _sub("_rt.TypedMap", k, v)
        if self.kind == "percpu":
            return _sub("_rt.PerCpuMap", k, v)
        if self.kind == "queue":
            return _sub("_rt.QueueMap", v)
        if self.kind == "mapinmap":
            assert self.inner is not None
            return _sub("_rt.MapInMap", k, self.inner.wrapper_type)
        if self.kind == "progarray":
            return "_rt.ProgArray"
        return "_rt.RawMap"

    def wrapper_expr(self, handle: Expr) -> Expr:
        """Constructor expression taking the map handle source ``handle``."""
        key = _codec(self.key)
        value = _codec(self.value)
        if self.kind == "plain":
            return _call("_rt.TypedMap", handle, key, value)
        if self.kind == "percpu":
            return _call("_rt.PerCpuMap", handle, key, value)
        if self.kind == "queue":
            return _call("_rt.QueueMap", handle, value)
        if self.kind == "mapinmap":
            assert self.inner is not None
            i = self.inner
            spec = _call("_rt.InnerSpec", Str(i.type_name), str(i.key_size), str(i.value_size),
                         str(i.max_entries), str(i.flags))
            return _call("_rt.MapInMap", handle, key, Cat(["lambda h: ", i.wrapper_expr("h")]),
                         Str(i.name), spec)
        if self.kind == "progarray":
            return _call("_rt.ProgArray", handle, Str(self.prog_type or ""))
        return _call("_rt.RawMap", handle)


def _call(fn: str, *args: Expr) -> Group:
    return Group(fn, "(", list(args), ")")


def _sub(generic: str, *args: Expr) -> Group:
    return Group(generic, "[", list(args), "]", trailing=False)


def _ann(ct: CType | None) -> str:
    if ct is None:
        return "_bytes"
    return ct.ann if ct.scalar else ct.expr if not ct.expr.startswith("(") else ct.ann


def _codec(ct: CType | None) -> Expr:
    if ct is None:
        return "_rt.BYTES"
    return _call("_rt.Scalar" if ct.scalar else "_rt.Record", parse_type_expr(ct.expr))


@dataclass
class ProgModel:
    name: str
    attr: str
    section: str
    prog_type: str


@dataclass
class SectionModel:
    map_name: str      # internal map's name (".rodata", ".data.custom", ...)
    attr: str          # skel attribute
    cls: str           # view class name
    writable_after_load: bool


_PLAIN_TYPES = {"hash", "array", "lru_hash", "lpm_trie"}
_PERCPU_TYPES = {"percpu_hash", "percpu_array", "lru_percpu_hash"}
_QUEUE_TYPES = {"queue", "stack", "bloom_filter"}


@dataclass
class Model:
    obj_name: str
    class_name: str
    source_name: str
    sha256: str
    embed: bool
    blob: list[str]
    path: str
    decls: list[ClassDecl]
    maps: list[MapModel]
    progs: list[ProgModel]
    sections: list[SectionModel]
    maps_cls: str
    progs_cls: str
    byte_order: str = "little"


def _load_spec(data: bytes, source: str) -> Any:
    from pybpfobj.spec.elf import ObjectSpec

    return ObjectSpec.from_bytes(data, os.path.basename(source) or "object.o")


def _btf_of(spec: Any, data: bytes, source: str) -> Any:
    btf = getattr(spec, "btf", None)
    if btf is not None:
        return btf
    raise SkeletonError(f"{source}: the object has no BTF (build with -g)", obj=source)


def build_model(data: bytes, *, name: str | None = None, source: str = "<bytes>",
                embed: bool = True, path: str | None = None) -> Model:
    """Read the object and describe what the skeleton module will hold."""
    spec = _load_spec(data, source)
    btf = _btf_of(spec, data, source)
    base = Path(source).name
    obj_name = name if name is not None else (base.removesuffix(".o")).split(".")[0]
    class_name = to_class_name(obj_name)
    module = Scope(_MODULE_RESERVED)
    class_name = module.claim_exact(class_name)
    # one skeleton class per module: its containers need no longer names (short lines)
    maps_cls = module.internal("Maps_")
    progs_cls = module.internal("Progs_")
    types = TypeGen(btf, module)

    maps_scope = Scope(_MAPS_RESERVED)
    maps: list[MapModel] = []
    sections: list[SectionModel] = []
    skel_scope = Scope(_SKEL_RESERVED)
    prog_types = {p.name: p.prog_type or "" for p in spec.programs}

    def map_model(m: Any, attr: str, hint: str) -> MapModel:
        tname = m.type_name
        key = value = None
        if getattr(m, "key_type_id", 0):
            key = types.ref(m.key_type_id, f"{hint}_key")
        elif m.key_size:
            key = None
        if getattr(m, "value_type_id", 0) and tname not in ("array_of_maps", "hash_of_maps", "prog_array"):
            value = types.ref(m.value_type_id, f"{hint}_value")
        if key is not None and key.size != m.key_size:
            raise SkeletonError(f"{source}: map {m.name!r}: key type has {key.size} bytes, "
                                f"the map {m.key_size}", map=m.name)
        if value is not None and value.size != m.value_size:
            raise SkeletonError(f"{source}: map {m.name!r}: value type has {value.size} bytes, "
                                f"the map {m.value_size}", map=m.name)
        if tname in _PLAIN_TYPES:
            kind = "plain"
        elif tname in _PERCPU_TYPES:
            kind = "percpu"
        elif tname in _QUEUE_TYPES:
            kind = "queue"
        elif tname in ("array_of_maps", "hash_of_maps"):
            kind = "mapinmap"
        elif tname == "prog_array":
            kind = "progarray"
        else:
            kind = "raw"
        mm = MapModel(m.name, attr, kind, tname, key, value, max_entries=int(m.max_entries or 0),
                      key_size=int(m.key_size or 0), value_size=int(m.value_size or 0),
                      flags=int(getattr(m, "flags", 0) or 0))
        init = dict(getattr(m, "init_values", None) or {})
        mm.init_values = sorted((int(k), str(v)) for k, v in init.items())
        if kind == "mapinmap":
            inner = getattr(m, "inner", None)
            if inner is None:
                mm.kind = "raw"
            else:
                mm.inner = map_model(inner, "inner", f"{hint}_inner")
        if kind == "progarray":
            users = {p.name for p in spec.programs if m.name in p.map_relocs.values()}
            owners = sorted({prog_types[v] for v in users | {v for _, v in mm.init_values} if v in prog_types})
            if len(owners) == 1:
                mm.prog_type = owners[0]
            elif len(set(prog_types.values())) == 1:
                mm.prog_type = next(iter(prog_types.values()))
        return mm

    for m in spec.maps:
        if getattr(m, "internal", False):
            variables = list(getattr(m, "variables", None) or [])
            section = getattr(m, "section", "") or m.name
            if not variables or section == ".kconfig" or not section.startswith((".rodata", ".data", ".bss")):
                continue
            if not int(getattr(m, "flags", 0)) & BPF_F_MMAPABLE:
                # libbpf does not mmap it (only static variables, e.g. bpf_printk formats):
                # a section view could not follow the map after load; bpftool skips it too
                continue
            attr = skel_scope.claim(section.lstrip(".").replace(".", "_"), "section")
            cls = module.internal(f"Section_{attr}_")
            decl = _section_decl(types, cls, section, m, variables, source)
            sections.append(SectionModel(section, attr, cls, not section.startswith(".rodata")))
            types.decls.append(decl)
            continue
        attr = maps_scope.claim(m.name, "map")
        maps.append(map_model(m, attr, attr))

    progs_scope = Scope(_PROGS_RESERVED)
    progs = [ProgModel(p.name, progs_scope.claim(p.name, "prog"), str(getattr(p, "section", "")),
                       prog_types[p.name]) for p in spec.programs]

    sha = hashlib.sha256(data).hexdigest()
    blob: list[str] = []
    if embed:
        enc = base64.b64encode(zlib.compress(data, 9)).decode("ascii")
        blob = [enc[i:i + 76] for i in range(0, len(enc), 76)]
    return Model(obj_name, class_name, base, sha, embed, blob, path or "", types.decls, maps, progs,
                 sections, maps_cls, progs_cls, "big" if types.big_endian else "little")


def _section_decl(types: TypeGen, cls: str, section: str, m: Any, variables: list[Any],
                  source: str) -> ClassDecl:
    """A struct laying out a data section's variables at their offsets."""
    size = int(m.value_size)
    decl = ClassDecl("struct", cls, doc=f"section {section}", size=size)
    scope = Scope(_CTYPES_RESERVED)
    pos = 0
    for v in sorted(variables, key=lambda v: (v.offset, v.name)):
        ct = types.ref(v.type_id, f"{identifier(v.name)}_t")
        if v.offset < pos:
            raise SkeletonError(f"{source}: section {section}: variable {v.name!r} overlaps another")
        if v.offset + ct.size > size:
            raise SkeletonError(f"{source}: section {section}: variable {v.name!r} ends past the section")
        if v.offset > pos:
            decl.fields.append(Field(scope.internal("pad"), f"(_ct.c_uint8 * {v.offset - pos})", pos,
                                     v.offset - pos))
        fname = scope.claim(v.name, "var")
        decl.fields.append(Field(fname, ct.expr, v.offset, ct.size))
        decl.annotations.append((fname, ct.ann))
        decl.checks.append((fname, v.offset))
        pos = v.offset + ct.size
    if pos < size:
        decl.fields.append(Field(scope.internal("pad"), f"(_ct.c_uint8 * {size - pos})", pos, size - pos))
    return decl


def render(model: Model) -> str:
    """Render the module text for ``model``."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pybpfobj.skeleton", "templates"),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pystr"] = pystr
    tmpl = env.get_template("skeleton.py.j2")
    text = tmpl.render(m=model, L=Layout)
    head, _sep, body = text.partition("import ctypes as _ct\n")
    if "_ct." not in body:
        text = head + body
    return finish(text)


class Layout:
    """Statements of the generated module, laid out within :data:`pyfmt.WIDTH` columns."""

    @staticmethod
    def s(text: str) -> Str:
        return Str(text)

    @staticmethod
    def opt(expr: str) -> Expr:
        t = parse_type_expr(expr)
        return t if isinstance(t, Group) else Opt(t)

    @staticmethod
    def assign(target: str, value: Expr, indent: int) -> str:
        return stmt(Cat([target, " = ", value]), indent)

    @staticmethod
    def comment(text: str, indent: int) -> str:
        line = "# " + pystr(text)
        room = WIDTH - indent
        return " " * indent + (line if len(line) <= room else line[: room - 3] + "...")

    @staticmethod
    def doc(text: str, indent: int) -> str:
        return stmt(Str(text), indent)

    @staticmethod
    def tuple(names: list[str], indent: int = 0) -> Group:
        return Group("", "(", [Str(n) for n in names], ")", one_tuple=True)

    @staticmethod
    def fields(fields: list[Field], indent: int) -> str:
        items: list[Expr] = [Group("", "(", [Str(f.name), parse_type_expr(f.expr)], ")") for f in fields]
        # a tuple: the class is no ctypes.Structure to ruff (RUF012 would flag a list)
        return stmt(Group("_fields_ = ", "(", items, ")", force=True, one_tuple=True), indent)

    @staticmethod
    def annotate(name: str, ann: str, indent: int) -> str:
        return stmt(Cat([name, ": ", Layout.opt(ann)]), indent)

    @staticmethod
    def bitfield(b: BitFieldDecl, indent: int) -> str:
        args = [str(b.byte_offset), str(b.nbytes), str(b.shift), str(b.bits), str(b.signed)]
        if b.big_endian:
            args.append("big_endian=True")
        return stmt(Cat([b.name, " = ", _call("_rt.BitField", *args)]), indent)

    @staticmethod
    def check_layout(d: ClassDecl) -> str:
        checks: list[Expr] = [Group("", "(", [Str(n), str(off)], ")") for n, off in d.checks]
        return stmt(_call("_rt.check_layout", d.name, str(d.size), Group("", "(", checks, ")", one_tuple=True)), 0)

    @staticmethod
    def map_attr(mp: MapModel, indent: int) -> str:
        add = _call("self._add", Str(mp.name), mp.wrapper_expr(_call("self._source", Str(mp.name))))
        ann = mp.wrapper_type
        return stmt(Cat([f"self.{mp.attr}: ", ann if isinstance(ann, Group) else Opt(ann), " = ", add]), indent)

    @staticmethod
    def prog_attr(p: ProgModel, indent: int) -> str:
        add = _call("self._add", Str(p.name), Str(p.section), Str(p.prog_type))
        return stmt(Cat([f"self.{p.attr}: ", Opt("_rt.ProgramRef"), " = ", add]), indent)

    @staticmethod
    def initial_values(maps: list[MapModel], indent: int) -> str:
        entries: list[Expr] = []
        for mp in maps:
            if mp.init_values:
                inner: list[Expr] = [Cat([f"{k}: ", Str(v)]) for k, v in mp.init_values]
                entries.append(Cat([Str(mp.name), ": ", Group("", "{", inner, "}")]))
        target = "INITIAL_VALUES: _t.ClassVar[_t.Mapping[str, _t.Mapping[int, str]]]"
        return stmt(Cat([target, " = ", Group("", "{", entries, "}")]), indent)

    @staticmethod
    def method_head(name: str, returns: str, indent: int) -> str:
        return stmt(Cat([f"def {name}", Group("", "(", ["self"], ")"), f" -> {returns}:"]), indent)

    @staticmethod
    def section_return(s: SectionModel, indent: int) -> str:
        call = _call("self._section", Str(s.map_name), s.cls, str(s.writable_after_load))
        return stmt(Cat(["return ", call]), indent)

    @staticmethod
    def all(class_name: str) -> str:
        names: list[Expr] = [Str("OBJECT_NAME"), Str("OBJECT_SHA256"), Str(class_name)]
        return stmt(Cat(["__all__ = ", Group("", "[", names, "]")]), 0)


def generate(obj: str | os.PathLike[str] | bytes, *, name: str | None = None, embed: bool = True,
             path: str | None = None) -> str:
    """The skeleton module's source for ``obj`` (a path, or the object's bytes).

    ``name`` names the object (default: the file name without ``.o``) and the
    class (CamelCase of it).  ``embed=False`` references the object by
    ``path`` (default: the absolute path of ``obj``) instead of embedding it.
    """
    if isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
        source = f"{name or 'object'}.o"
        if not embed and path is None:
            raise SkeletonError("embed=False needs a path to the object", obj=source)
    else:
        source = os.fspath(obj)
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ObjectFormatError(f"cannot read object {source}: {e.strerror}", errno=e.errno or 0,
                                    path=source) from None
        if not embed and path is None:
            path = os.path.abspath(source)
    try:
        model = build_model(data, name=name, source=source, embed=embed, path=path)
    except BTFError:
        raise
    except RecursionError:
        raise SkeletonError(f"{source}: types nest too deeply", obj=source) from None
    return render(model)


def generate_file(obj: str | os.PathLike[str], out: str | os.PathLike[str], *,
                  name: str | None = None, embed: bool = True, path: str | None = None) -> None:
    """Write the skeleton module for ``obj`` to ``out`` (atomically: a temp file, then rename)."""
    text = generate(obj, name=name, embed=embed, path=path)
    out = os.fspath(out)
    tmp = f"{out}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="ascii") as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def import_skeleton(obj: str | os.PathLike[str], module: str,
                    directory: str | os.PathLike[str] | None = None) -> Any:
    """Generate the skeleton of ``obj`` as ``directory/module.py`` and import it.

    For scripts that make their skeleton at run time (the examples, notebooks):
    an application runs ``pybpfobj gen skeleton OBJ output app_skel.py`` at
    build time and just imports the module.  The file is rewritten only when
    its text changes; ``directory`` is put on ``sys.path``.  Without a
    ``directory`` the module goes to a temporary one, removed at exit.
    """
    import atexit
    import importlib
    import shutil
    import sys
    import tempfile

    if directory is None:
        directory = tempfile.mkdtemp(prefix=f"{module}-")
        atexit.register(shutil.rmtree, directory, True)
    where = Path(directory)
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{module}.py"
    text = generate(obj)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    if str(where) not in sys.path:
        sys.path.insert(0, str(where))
    return importlib.import_module(module)
