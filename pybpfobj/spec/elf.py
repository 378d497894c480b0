"""ObjectSpec: everything a compiled BPF object (``clang -target bpf``) declares.

Pure reading, no syscalls: programs (from executable sections and their
function symbols), maps (BTF-defined ``.maps``, global-data sections,
``.kconfig`` and struct_ops), global variables with their initial bytes,
BTF and BTF.ext, license and kernel version.  The order of programs and maps
and the names of internal maps follow libbpf 1.1, so ``map idx N`` and map
names mean the same here as in bpftool.

Every malformed input raises :class:`pybpfobj.errors.ObjectFormatError`
(BTF problems: its subclass ``BTFError``) naming the file and the problem.
pyelftools is imported only here.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pybpfobj import constants
from pybpfobj.errors import BpfError, ObjectFormatError
from pybpfobj.spec.sections import resolve_section

if TYPE_CHECKING:
    from pybpfobj.spec.btf import BTF, BTFExt, BtfType, LineInfo

__all__ = ["MapSpec", "ObjectSpec", "ProgramSpec", "Relocation", "VarSpec"]

EM_BPF = 247
BPF_INSN_SIZE = 8
BPF_OBJ_NAME_LEN = 16          # kernel object names: 15 chars + NUL

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_NOBITS = 8
SHT_REL = 9
SHF_EXECINSTR = 0x4
SHN_UNDEF = 0
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
STB_LOCAL = 0
STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3

# instruction opcodes libbpf relocates
_BPF_LD_IMM64 = 0x18
_BPF_CALL = 0x85
_BPF_PSEUDO_CALL = 1

# map-definition attributes given as __uint(name, value)
_UINT_ATTRS = ("type", "max_entries", "map_flags", "numa_node", "key_size", "value_size",
               "map_extra", "pinning")
LIBBPF_PIN_NONE = 0
LIBBPF_PIN_BY_NAME = 1

_MAP_TYPE_ARRAY = constants.MAP_TYPE["array"]
_MAP_TYPE_PROG_ARRAY = constants.MAP_TYPE["prog_array"]
_MAP_TYPE_STRUCT_OPS = constants.MAP_TYPE["struct_ops"]


@dataclass
class VarSpec:
    """A global variable of a data section (``.rodata``, ``.data``, ``.bss``, ...).

    ``initial`` holds its initial bytes (zeros for ``.bss``); ``linkage`` is
    BTF's (0 static, 1 global, 2 extern).
    """

    name: str
    offset: int
    size: int
    type_id: int
    initial: bytes
    linkage: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "offset": self.offset, "size": self.size, "type_id": self.type_id,
                "linkage": self.linkage, "initial": self.initial.hex()}


@dataclass
class Relocation:
    """A relocation of one instruction of a program.

    ``insn`` is relative to the program.  ``kind`` is ``"map"`` (ld_imm64 of a
    map fd), ``"map_value"`` (address inside a global-data map, at
    ``offset``), ``"call"`` (bpf-to-bpf call), ``"func"`` (address of a
    function), ``"extern"`` (a ``__kconfig``/``__ksym`` extern) or
    ``"other"``; ``target`` names the map, function or extern.
    """

    insn: int
    kind: str
    target: str
    offset: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"insn": self.insn, "kind": self.kind, "target": self.target, "offset": self.offset}


@dataclass
class ProgramSpec:
    """A program: a function symbol in an executable section."""

    name: str
    section: str
    prog_type: str | None                 # None: the section name tells no type
    expected_attach_type: str | None
    insns: bytes
    sec_insn_off: int
    license: str = ""
    kern_version: int = 0
    func_info: list[tuple[int, int]] = field(default_factory=list)
    line_info: list[LineInfo] = field(default_factory=list)
    relocations: list[Relocation] = field(default_factory=list)
    is_subprog: bool = False
    sec_index: int = 0
    autoload: bool = True                 # False for SEC("?name"): libbpf opens it not to load

    @property
    def insn_count(self) -> int:
        """Number of 8-byte instruction slots (an ld_imm64 counts twice)."""
        return len(self.insns) // BPF_INSN_SIZE

    @property
    def map_relocs(self) -> dict[int, str]:
        """Instruction index -> map name, for the instructions that load a map."""
        return {r.insn: r.target for r in self.relocations if r.kind in ("map", "map_value")}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "section": self.section, "type": self.prog_type,
            "expected_attach_type": self.expected_attach_type, "insn_count": self.insn_count,
            "sec_insn_off": self.sec_insn_off, "license": self.license,
            "kern_version": self.kern_version,
            "func_info": [list(fi) for fi in self.func_info],
            "line_info": [{"insn_off": li.insn_off, "file_name": li.file_name, "line": li.line,
                           "line_num": li.line_num, "line_col": li.line_col} for li in self.line_info],
            "relocations": [r.to_dict() for r in self.relocations], "autoload": self.autoload,
        }


@dataclass
class MapSpec:
    """A map the object declares, as libbpf would create it."""

    name: str
    type: int
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: int = 0
    numa_node: int = 0
    map_extra: int = 0
    pinning: int = LIBBPF_PIN_NONE
    key_type_id: int = 0
    value_type_id: int = 0
    inner: MapSpec | None = None
    init_values: dict[int, str] = field(default_factory=dict)
    internal: bool = False
    section: str | None = None
    data: bytes = b""
    variables: list[VarSpec] = field(default_factory=list)
    sec_offset: int = 0          # offset of the definition in .maps
    # offset of the 'values' array within the definition (map-in-map, prog_array)
    values_offset: int | None = field(default=None, repr=False, compare=False)

    @property
    def type_name(self) -> str:
        """libbpf's name of the map type ("hash", "array_of_maps"...)."""
        return constants.map_type_name(self.type)

    def variable(self, name: str) -> VarSpec:
        """The global variable ``name`` of this data map."""
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name, "type": self.type_name, "type_id": self.type,
            "key_size": self.key_size, "value_size": self.value_size,
            "max_entries": self.max_entries, "flags": self.flags, "numa_node": self.numa_node,
            "map_extra": self.map_extra, "pinning": self.pinning,
            "key_type_id": self.key_type_id, "value_type_id": self.value_type_id,
            "internal": self.internal, "section": self.section,
        }
        if self.inner is not None:
            d["inner"] = self.inner.to_dict()
        if self.init_values:
            d["init_values"] = {str(k): v for k, v in sorted(self.init_values.items())}
        if self.internal:
            d["data"] = self.data.hex()
            d["variables"] = [v.to_dict() for v in self.variables]
        return d


@dataclass
class _Sym:
    name: str
    value: int
    size: int
    bind: int
    type: int
    shndx: int


@dataclass
class _Sec:
    index: int
    name: str
    type: int
    flags: int
    data: bytes        # b"" for NOBITS
    size: int
    link: int
    info: int


def _cstr(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("utf-8", "replace")


def internal_map_name(obj_name: str | bytes, real_name: str) -> str:
    """libbpf 1.1's name for the map of data section ``real_name``.

    The object name prefix fills what is left of the 15 usable bytes after
    the suffix (counted as at least 7); custom sections with a second dot
    (".data.custom") keep their whole section name, however long (libbpf
    1.1.2; the kernel keeps the first 15 bytes of it).  libbpf counts and
    cleans bytes, not characters: every byte the kernel refuses (a
    non-ASCII letter is two or more) becomes ``_``.
    """
    # bytes: the name as libbpf holds it (a str decoded with replacements would count other bytes)
    obj = obj_name if isinstance(obj_name, bytes) else obj_name.encode("utf-8", "surrogateescape")
    sec = real_name.encode("utf-8", "surrogateescape")
    if b"." in sec[1:]:
        return real_name  # a custom section's map is named by the whole section name
    sfx_len = max(7, len(sec))
    pfx_len = max(0, min(BPF_OBJ_NAME_LEN - sfx_len - 1, len(obj)))
    name = (obj[:pfx_len] + sec[:sfx_len])[:BPF_OBJ_NAME_LEN - 1]
    return "".join(chr(b) if chr(b).isalnum() and b < 128 or b in b"_." else "_" for b in name)


def object_name(path: str) -> str:
    """libbpf's object name: the file's basename cut to 15 bytes, then at its first dot
    (bytes a file name cannot decode are kept as :func:`os.fsdecode` keeps them)."""
    return os.fsdecode(object_name_bytes(path))


def object_name_bytes(path: str) -> bytes:
    """:func:`object_name` as libbpf holds it (what ``bpf_object__open_file`` names the path)."""
    return os.fsencode(os.path.basename(path))[:BPF_OBJ_NAME_LEN - 1].split(b".", 1)[0]


class ObjectSpec:
    """The parsed contents of one BPF ELF object.

    Build with :meth:`from_file` or :meth:`from_bytes`.  ``programs`` and
    ``maps`` are in libbpf's order.
    """

    name: str
    path: str
    raw: bytes
    license: str
    kern_version: int
    btf: BTF | None
    btf_ext: BTFExt | None
    programs: list[ProgramSpec]
    subprograms: list[ProgramSpec]
    maps: list[MapSpec]

    def __init__(self, data: bytes, *, name: str, path: str, mapcompat: bool = False) -> None:
        self.raw = data
        self.name = name
        self.path = path
        self.license = ""
        self.kern_version = 0
        self.btf = None
        self.btf_ext = None
        self.programs = []
        self.subprograms = []
        self.maps = []
        self._mapcompat = mapcompat
        try:
            self._parse()
        except BpfError:
            raise
        except RecursionError:
            raise self._err("malformed object (structure nests too deeply)") from None
        except Exception as e:  # noqa: BLE001 - pyelftools raises anything on garbage
            raise self._err(f"malformed ELF ({type(e).__name__}: {e})") from None

    # -- construction ---------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, mapcompat: bool = False) -> ObjectSpec:
        """Read the object at ``path``; ``mapcompat`` tolerates unknown map-definition fields."""
        p = os.fspath(path)
        try:
            with open(p, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ObjectFormatError(f"{p}: cannot read object file: {e.strerror}",
                                    errno=e.errno or 0, obj=p, path=p) from None
        return cls(data, name=object_name(p), path=p, mapcompat=mapcompat)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "obj", *, mapcompat: bool = False) -> ObjectSpec:
        """Parse an object held in memory; ``name`` stands for the file name."""
        return cls(bytes(data), name=object_name(name), path=name, mapcompat=mapcompat)

    # -- lookups --------------------------------------------------------

    def program(self, name: str) -> ProgramSpec:
        """The program called ``name``; NotFoundError if none."""
        from pybpfobj.errors import NotFoundError

        for p in self.programs:
            if p.name == name:
                return p
        raise NotFoundError(f"{self.path}: no program named {name!r}", obj=self.path, prog=name)

    def map(self, name: str) -> MapSpec:
        """The map called ``name`` (internal maps also by section name, e.g. ".rodata")."""
        from pybpfobj.errors import NotFoundError

        for m in self.maps:
            if m.name == name:
                return m
        for m in self.maps:
            if m.internal and m.section == name:
                return m
        raise NotFoundError(f"{self.path}: no map named {name!r}", obj=self.path, map=name)

    def map_index(self, name: str) -> int:
        """libbpf's index of map ``name`` (bpftool's ``map idx``)."""
        return self.maps.index(self.map(name))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description of the whole object."""
        return {
            "name": self.name, "path": self.path, "license": self.license,
            "kern_version": self.kern_version, "btf": self.btf is not None,
            "programs": [p.to_dict() for p in self.programs],
            "maps": [dict(m.to_dict(), idx=i) for i, m in enumerate(self.maps)],
        }

    def __repr__(self) -> str:
        return (f"<ObjectSpec {self.name!r} {len(self.programs)} programs, "
                f"{len(self.maps)} maps>")

    # -- parsing --------------------------------------------------------

    def _err(self, what: str) -> ObjectFormatError:
        return ObjectFormatError(f"{self.path}: {what}", obj=self.path, path=self.path)

    def _parse(self) -> None:
        data = self.raw
        if len(data) < 16 or data[:4] != b"\x7fELF":
            raise self._err("not an ELF file")
        if data[4] != 2:
            raise self._err("not a 64-bit ELF object (BPF objects are ELFCLASS64)")
        from elftools.elf.elffile import ELFFile

        elf = ELFFile(io.BytesIO(data))
        machine = elf.header["e_machine"]
        if machine not in ("EM_BPF", EM_BPF):
            raise self._err(f"not a BPF object (e_machine is {machine}, expected EM_BPF 247)")
        if elf.header["e_type"] not in ("ET_REL",):
            raise self._err(f"not a relocatable object (e_type is {elf.header['e_type']})")
        self._little = elf.little_endian
        self._secs = self._read_sections(elf)
        self._syms = self._read_symbols()
        self._read_meta()
        self._read_btf()
        self._read_programs()
        self._read_maps()
        self._read_relocations()
        if not self.programs and not self.maps:
            raise self._err("no BPF programs or maps found")

    def _read_sections(self, elf: Any) -> list[_Sec]:
        n = elf.num_sections()
        size = len(self.raw)
        secs: list[_Sec] = []
        for i in range(n):
            s = elf.get_section(i)
            h = s.header
            stype = h["sh_type"]
            stype_num = _SHT.get(stype, -1) if isinstance(stype, str) else int(stype)
            off, sz = int(h["sh_offset"]), int(h["sh_size"])
            if i and stype_num != SHT_NOBITS and (off > size or sz > size - off):
                raise self._err(f"section {i} ({s.name or '?'}) extends past the end of the file "
                                f"(offset {off}, size {sz}, file size {size})")
            body = b"" if stype_num == SHT_NOBITS or i == 0 else self.raw[off:off + sz]
            flags = int(h["sh_flags"])
            secs.append(_Sec(i, s.name, stype_num, flags, body, sz, int(h["sh_link"]),
                             int(h["sh_info"])))
        return secs

    def _read_symbols(self) -> list[_Sym]:
        symtabs = [s for s in self._secs if s.type == SHT_SYMTAB]
        if not symtabs:
            raise self._err("no symbol table (.symtab)")
        if len(symtabs) > 1:
            raise self._err("more than one symbol table")
        st = symtabs[0]
        if not 0 < st.link < len(self._secs):
            raise self._err(f"symbol table links to bad string table section {st.link}")
        strtab = self._secs[st.link].data
        fmt = ("<" if self._little else ">") + "IBBHQQ"
        if len(st.data) % 24:
            raise self._err(f"symbol table size {len(st.data)} is not a multiple of 24")
        syms: list[_Sym] = []
        for off in range(0, len(st.data), 24):
            name_off, info, _other, shndx, value, size = struct.unpack_from(fmt, st.data, off)
            if name_off >= len(strtab) and name_off:
                raise self._err(f"symbol {off // 24}: name offset {name_off} past the string table")
            name = _cstr(strtab[name_off:]) if name_off else ""
            syms.append(_Sym(name, value, size, info >> 4, info & 0xF, shndx))
        return syms

    def _read_meta(self) -> None:
        for s in self._secs:
            if s.name == "license":
                self.license = _cstr(s.data)
            elif s.name == "version":
                if len(s.data) != 4:
                    raise self._err(f"invalid kernel version section (size {len(s.data)}, expected 4)")
                self.kern_version = struct.unpack(("<" if self._little else ">") + "I", s.data)[0]
            elif s.name == "maps" and s.size:
                raise self._err("legacy map definitions in 'maps' section are not supported "
                                "(use BTF-defined maps in '.maps')")

    def _read_btf(self) -> None:
        from pybpfobj.spec.btf import BTF, BTFExt

        btf_sec = next((s for s in self._secs if s.name == ".BTF"), None)
        ext_sec = next((s for s in self._secs if s.name == ".BTF.ext"), None)
        if btf_sec is not None:
            self.btf = BTF.from_bytes(btf_sec.data, source=self.path)
            if ext_sec is not None:
                self.btf_ext = BTFExt.from_bytes(ext_sec.data, self.btf, source=self.path)

    # -- programs ---------------------------------------------------------

    def _read_programs(self) -> None:
        text_idx = next((s.index for s in self._secs if s.name == ".text"), -1)
        progs: list[ProgramSpec] = []
        for sec in self._secs:
            if sec.type != SHT_PROGBITS or not sec.flags & SHF_EXECINSTR or not sec.size:
                continue
            if sec.size % BPF_INSN_SIZE:
                raise self._err(f"section '{sec.name}' size {sec.size} is not a multiple of "
                                f"{BPF_INSN_SIZE}")
            funcs = sorted((s for s in self._syms if s.shndx == sec.index and s.type == STT_FUNC),
                           key=lambda s: s.value)
            # SEC("?xdp"): libbpf drops the '?' from the section name and turns autoload off
            autoload = not sec.name.startswith("?")
            sec_name = sec.name if autoload else sec.name[1:]
            sdef = resolve_section(sec_name)
            for sym in funcs:
                if sym.value % BPF_INSN_SIZE or sym.size % BPF_INSN_SIZE:
                    raise self._err(f"program '{sym.name}' in '{sec.name}' is not aligned to "
                                    f"instructions (offset {sym.value}, size {sym.size})")
                if sym.value + sym.size > sec.size:
                    raise self._err(f"program '{sym.name}' extends past its section '{sec.name}'")
                if not sym.size:
                    raise self._err(f"program '{sym.name}' in '{sec.name}' has size 0")
                if not sym.name:
                    raise self._err(f"unnamed function symbol in '{sec.name}'")
                if sec.index != text_idx and sym.bind == STB_LOCAL:
                    # libbpf refuses these as well
                    raise self._err(f"program '{sym.name}' in section '{sec.name}' is static, "
                                    "which is not supported")
                p = ProgramSpec(
                    name=sym.name, section=sec_name,
                    prog_type=sdef.prog_type if sdef else None,
                    expected_attach_type=sdef.attach_type if sdef else None,
                    insns=sec.data[sym.value:sym.value + sym.size],
                    sec_insn_off=sym.value // BPF_INSN_SIZE,
                    license=self.license, kern_version=self.kern_version,
                    is_subprog=sec.index == text_idx, sec_index=sec.index, autoload=autoload,
                )
                self._attach_ext(p, sec.name)
                progs.append(p)
            if not funcs:
                raise self._err(f"section '{sec.name}' has code but no function symbols")
        n_entry = len(progs)
        # libbpf: .text functions are subprograms, unless they are all there is
        for p in progs:
            if p.is_subprog and n_entry > 1:
                self.subprograms.append(p)
            else:
                p.is_subprog = False
                self.programs.append(p)
        self._all_progs = progs

    def _attach_ext(self, p: ProgramSpec, elf_sec: str) -> None:
        if self.btf_ext is None:
            return
        lo, hi = p.sec_insn_off, p.sec_insn_off + p.insn_count
        p.func_info = [(off - lo, tid) for off, tid in self.btf_ext.func_info.get(elf_sec, [])
                       if lo <= off < hi]
        from dataclasses import replace

        p.line_info = [replace(li, insn_off=li.insn_off - lo)
                       for li in self.btf_ext.line_info.get(elf_sec, []) if lo <= li.insn_off < hi]

    # -- maps -------------------------------------------------------------

    def _read_maps(self) -> None:
        self._maps_by_sec_off: dict[tuple[int, int], MapSpec] = {}
        maps_sec = next((s for s in self._secs if s.name == ".maps"), None)
        if maps_sec is not None:
            self._read_btf_maps(maps_sec)
        for sec in self._secs:
            kind = _data_sec_kind(sec)
            if kind is None or not sec.size:
                continue
            self.maps.append(self._data_map(sec, kind))
        self._read_kconfig()
        self._read_struct_ops()

    def _read_btf_maps(self, sec: _Sec) -> None:
        btf = self.btf
        if btf is None:
            raise self._err("'.maps' section without BTF (BTF-defined maps need -g)")
        from pybpfobj.spec.btf import BtfKind

        ds = btf.datasec(".maps")
        if ds is None:
            raise self._err("'.maps' section has no DATASEC in BTF")
        entries: list[tuple[int, MapSpec]] = []
        for vsi in ds.secinfo:
            var = btf.type(vsi.type_id)
            if var.kind != BtfKind.VAR:
                raise self._err(f"'.maps' DATASEC entry type id {vsi.type_id} is "
                                f"{var.kind.name}, not VAR")
            sym = self._find_sym(var.name, sec.index)
            if sym is None:
                raise self._err(f"map '{var.name}': no symbol in '.maps'")
            deft = btf.resolve(var.type_id)
            if deft.kind != BtfKind.STRUCT:
                raise self._err(f"map '{var.name}': definition is {deft.kind.name}, not a struct")
            size = btf.size_of(deft.id)
            if sym.value + size > sec.size and sec.type != SHT_NOBITS:
                raise self._err(f"map '{var.name}': definition extends past the '.maps' section")
            m = self._parse_map_def(var.name, deft, allow_inner=True)
            m.sec_offset = sym.value
            self._maps_by_sec_off[(sec.index, sym.value)] = m
            entries.append((sym.value, m))
        entries.sort(key=lambda e: e[0])
        self.maps.extend(m for _, m in entries)

    def _parse_map_def(self, name: str, deft: BtfType, *, allow_inner: bool) -> MapSpec:
        from pybpfobj.spec.btf import BtfKind

        btf = self.btf
        assert btf is not None
        m = MapSpec(name=name, type=0)
        seen: dict[str, int] = {}
        key_size = value_size = None
        for mem in deft.members:
            mname = mem.name
            if mname in _UINT_ATTRS:
                val = self._uint_attr(name, mname, mem.type_id)
                seen[mname] = val
            elif mname in ("key", "value"):
                pt = btf.resolve(mem.type_id)
                if pt.kind != BtfKind.PTR:
                    raise self._err(f"map '{name}': {mname} spec is {pt.kind.name}, not a pointer")
                sz = btf.size_of(pt.type_id)
                if mname == "key":
                    m.key_type_id, key_size = pt.type_id, sz
                else:
                    m.value_type_id, value_size = pt.type_id, sz
            elif mname == "values":
                if not allow_inner:
                    raise self._err(f"map '{name}': multi-level map-in-map is not supported")
                arr = btf.resolve(mem.type_id)
                if arr.kind != BtfKind.ARRAY or arr.nelems != 0:
                    raise self._err(f"map '{name}': 'values' must be a zero-sized array")
                pt = btf.resolve(arr.elem_type)
                if pt.kind != BtfKind.PTR:
                    raise self._err(f"map '{name}': 'values' elements must be pointers")
                target = btf.resolve(pt.type_id)
                if target.kind == BtfKind.STRUCT:
                    m.inner = self._parse_map_def(f"{name}.inner", target, allow_inner=False)
                elif target.kind != BtfKind.FUNC_PROTO:
                    raise self._err(f"map '{name}': 'values' must point to a map definition or a "
                                    f"function prototype, not {target.kind.name}")
                m.values_offset = mem.bit_offset // 8
            elif self._mapcompat:
                continue
            else:
                raise self._err(f"map '{name}': unknown field '{mname}'")
        m.type = seen.get("type", 0)
        m.max_entries = seen.get("max_entries", 0)
        m.flags = seen.get("map_flags", 0)
        m.numa_node = seen.get("numa_node", 0)
        m.map_extra = seen.get("map_extra", 0)
        m.pinning = seen.get("pinning", LIBBPF_PIN_NONE)
        for what, declared, from_type in (("key", seen.get("key_size"), key_size),
                                          ("value", seen.get("value_size"), value_size)):
            if declared is not None and from_type is not None and declared != from_type:
                raise self._err(f"map '{name}': conflicting {what} size {declared} != {from_type}")
        m.key_size = seen.get("key_size", key_size or 0)
        m.value_size = seen.get("value_size", value_size or 0)
        if m.inner is not None:
            if m.type not in constants.MAP_IN_MAP_TYPES:
                raise self._err(f"map '{name}': inner map definition for a "
                                f"{m.type_name} map (needs array_of_maps or hash_of_maps)")
            if "value_size" in seen and m.value_size != 4:
                raise self._err(f"map '{name}': map-in-map value_size must be 4")
            m.value_size = 4
        elif m.values_offset is not None:
            if m.type != _MAP_TYPE_PROG_ARRAY:
                raise self._err(f"map '{name}': function pointer values need a prog_array")
            m.value_size = m.value_size or 4
        if m.pinning not in (LIBBPF_PIN_NONE, LIBBPF_PIN_BY_NAME):
            raise self._err(f"map '{name}': invalid pinning value {m.pinning}")
        return m

    def _uint_attr(self, map_name: str, attr: str, type_id: int) -> int:
        from pybpfobj.spec.btf import BtfKind

        btf = self.btf
        assert btf is not None
        pt = btf.type(type_id)
        if pt.kind != BtfKind.PTR:
            raise self._err(f"map '{map_name}': attr '{attr}': expected PTR, got {pt.kind.name}")
        arr = btf.type(pt.type_id)
        if arr.kind != BtfKind.ARRAY:
            raise self._err(f"map '{map_name}': attr '{attr}': expected ARRAY, got {arr.kind.name}")
        return arr.nelems

    def _data_map(self, sec: _Sec, kind: str) -> MapSpec:
        flags = constants.BPF_F_RDONLY_PROG if kind == "rodata" else 0
        data = bytes(sec.size) if sec.type == SHT_NOBITS else sec.data
        m = MapSpec(name=internal_map_name(self.name, sec.name), type=_MAP_TYPE_ARRAY,
                    key_size=4, value_size=sec.size, max_entries=1, flags=flags,
                    internal=True, section=sec.name, data=data)
        m.variables = self._variables(sec, data)
        if self.btf is not None:
            ds = self.btf.datasec(sec.name)
            if ds is not None:
                m.value_type_id = ds.id
                # libbpf 1.1.2 makes a data map mmapable only when its DATASEC has a
                # non-static variable (a .rodata of bpf_printk formats is not; nor is
                # any data map of an object without BTF)
                if any(v.linkage != 0 for v in m.variables):
                    m.flags |= constants.BPF_F_MMAPABLE
        self._maps_by_sec_off[(sec.index, -1)] = m
        return m

    def _variables(self, sec: _Sec, data: bytes) -> list[VarSpec]:
        out: list[VarSpec] = []
        ds = self.btf.datasec(sec.name) if self.btf is not None else None
        if ds is not None and self.btf is not None:
            from pybpfobj.spec.btf import BtfKind

            for vsi in ds.secinfo:
                var = self.btf.type(vsi.type_id)
                if var.kind != BtfKind.VAR:
                    raise self._err(f"DATASEC '{sec.name}' entry type id {vsi.type_id} is "
                                    f"{var.kind.name}, not VAR")
                sym = self._find_sym(var.name, sec.index)
                if sym is None:
                    # libbpf drops static variables the compiler optimised away
                    if var.linkage == 0:
                        continue
                    raise self._err(f"variable '{var.name}' of '{sec.name}' has no symbol")
                size = self.btf.size_of(var.type_id)
                if sym.value + size > sec.size:
                    raise self._err(f"variable '{var.name}' extends past section '{sec.name}'")
                out.append(VarSpec(var.name, sym.value, size, var.type_id,
                                   data[sym.value:sym.value + size], var.linkage))
        else:
            for sym in self._syms:
                if sym.shndx == sec.index and sym.type == STT_OBJECT and sym.name:
                    if sym.value + sym.size > sec.size:
                        raise self._err(f"variable '{sym.name}' extends past section '{sec.name}'")
                    out.append(VarSpec(sym.name, sym.value, sym.size, 0,
                                       data[sym.value:sym.value + sym.size],
                                       0 if sym.bind == STB_LOCAL else 1))
        out.sort(key=lambda v: v.offset)
        return out

    def _read_kconfig(self) -> None:
        if self.btf is None:
            return
        from pybpfobj.spec.btf import BtfKind

        ds = self.btf.datasec(".kconfig")
        if ds is None or not ds.secinfo:
            return
        # libbpf lays the externs out itself: sorted by alignment (largest
        # first), then size (smallest first), then name, each at its alignment
        externs = []
        for vsi in ds.secinfo:
            var = self.btf.type(vsi.type_id)
            if var.kind != BtfKind.VAR:
                continue
            size = self.btf.size_of(var.type_id)
            externs.append((-_align_of(self.btf, var.type_id), size, var.name.encode(), var))
        externs.sort(key=lambda e: e[:3])
        off = 0
        variables = []
        for neg_align, size, _, var in externs:
            off = (off - neg_align - 1) // -neg_align * -neg_align
            variables.append(VarSpec(var.name, off, size, var.type_id, bytes(size), var.linkage))
            off += size
        self.maps.append(MapSpec(
            name=internal_map_name(self.name, ".kconfig"), type=_MAP_TYPE_ARRAY, key_size=4,
            value_size=off, max_entries=1,
            flags=constants.BPF_F_MMAPABLE | constants.BPF_F_RDONLY_PROG,
            internal=True, section=".kconfig", data=bytes(off), variables=variables,
            value_type_id=ds.id))

    def _read_struct_ops(self) -> None:
        btf = self.btf
        for sec in self._secs:
            if sec.name not in (".struct_ops", ".struct_ops.link"):
                continue
            if btf is None:
                # libbpf refuses it too ("BTF is required")
                raise self._err(f"'{sec.name}' section without BTF (struct_ops maps need -g)")
            from pybpfobj.spec.btf import BtfKind

            ds = btf.datasec(sec.name)
            if ds is None:
                raise self._err(f"'{sec.name}' section has no DATASEC in BTF")
            for vsi in ds.secinfo:
                var = btf.type(vsi.type_id)
                if var.kind != BtfKind.VAR:
                    continue
                sym = self._find_sym(var.name, sec.index)
                if sym is None:
                    raise self._err(f"struct_ops '{var.name}': no symbol in '{sec.name}'")
                t = btf.resolve(var.type_id)
                size = btf.size_of(t.id)
                m = MapSpec(name=var.name, type=_MAP_TYPE_STRUCT_OPS, key_size=4,
                            value_size=size, max_entries=1, section=sec.name,
                            value_type_id=t.id, sec_offset=sym.value,
                            data=sec.data[sym.value:sym.value + size])
                if sec.name == ".struct_ops.link":
                    m.flags = constants.BPF_F_LINK
                self._maps_by_sec_off[(sec.index, sym.value)] = m
                self.maps.append(m)

    def _find_sym(self, name: str, shndx: int) -> _Sym | None:
        for s in self._syms:
            if s.shndx == shndx and s.name == name and s.type in (STT_OBJECT, STT_NOTYPE):
                return s
        return None

    # -- relocations --------------------------------------------------------

    def _read_relocations(self) -> None:
        by_sec: dict[int, list[ProgramSpec]] = {}
        for p in self._all_progs:
            by_sec.setdefault(p.sec_index, []).append(p)
        maps_idx = next((s.index for s in self._secs if s.name == ".maps"), -1)
        for rel in self._secs:
            if rel.type != SHT_REL:
                continue
            if not 0 < rel.info < len(self._secs):
                raise self._err(f"relocation section '{rel.name}' targets bad section {rel.info}")
            target = self._secs[rel.info]
            if rel.info in by_sec:
                for r_off, sym in self._rel_entries(rel):
                    self._prog_reloc(target, by_sec[rel.info], r_off, sym)
            elif rel.info == maps_idx:
                for r_off, sym in self._rel_entries(rel):
                    self._maps_reloc(target, r_off, sym)
            # relocations of data, BTF and DWARF sections are libbpf's to ignore too

    def _rel_entries(self, rel: _Sec) -> list[tuple[int, _Sym]]:
        if len(rel.data) % 16:
            raise self._err(f"relocation section '{rel.name}' size {len(rel.data)} is not a "
                            "multiple of 16")
        fmt = ("<" if self._little else ">") + "QQ"
        out = []
        for off in range(0, len(rel.data), 16):
            r_offset, r_info = struct.unpack_from(fmt, rel.data, off)
            sym_idx = r_info >> 32
            if sym_idx >= len(self._syms):
                raise self._err(f"relocation #{off // 16} of '{rel.name}': symbol index {sym_idx} "
                                f"out of range ({len(self._syms)} symbols)")
            out.append((r_offset, self._syms[sym_idx]))
        return out

    def _prog_reloc(self, sec: _Sec, progs: list[ProgramSpec], r_off: int, sym: _Sym) -> None:
        where = f"relocation at offset {r_off} of '{sec.name}'"
        if r_off % BPF_INSN_SIZE or r_off + BPF_INSN_SIZE > sec.size:
            raise self._err(f"{where}: bad instruction offset")
        insn_idx = r_off // BPF_INSN_SIZE
        prog = next((p for p in progs if p.sec_insn_off <= insn_idx < p.sec_insn_off + p.insn_count),
                    None)
        if prog is None:
            raise self._err(f"{where}: not inside any program")
        code = sec.data[r_off]
        src_reg = sec.data[r_off + 1] >> 4 if self._little else sec.data[r_off + 1] & 0xF
        rel_insn = insn_idx - prog.sec_insn_off
        if code == _BPF_CALL and src_reg == _BPF_PSEUDO_CALL:
            prog.relocations.append(Relocation(rel_insn, "call", self._func_name(sym)))
            return
        if code != _BPF_LD_IMM64:
            raise self._err(f"{where}: instruction {insn_idx} (opcode 0x{code:02x}) cannot be "
                            "relocated (expected ld_imm64 or call)")
        imm_fmt = ("<" if self._little else ">") + "i"
        imm = struct.unpack_from(imm_fmt, sec.data, r_off + 4)[0]
        if sym.shndx == SHN_UNDEF:
            prog.relocations.append(Relocation(rel_insn, "extern", sym.name))
            return
        if sym.shndx >= len(self._secs) and sym.shndx not in (SHN_ABS, SHN_COMMON):
            raise self._err(f"{where}: symbol '{sym.name}' in bad section {sym.shndx}")
        if sym.shndx in (SHN_ABS, SHN_COMMON):
            raise self._err(f"{where}: symbol '{sym.name}' is not in a section")
        tsec = self._secs[sym.shndx]
        if tsec.name == ".maps":
            m = self._maps_by_sec_off.get((sym.shndx, sym.value))
            if m is None:
                raise self._err(f"{where}: no map at offset {sym.value} of '.maps' "
                                f"(symbol '{sym.name}')")
            prog.relocations.append(Relocation(rel_insn, "map", m.name))
        elif (sym.shndx, -1) in self._maps_by_sec_off:
            m = self._maps_by_sec_off[(sym.shndx, -1)]
            off = imm + (sym.value if sym.type != STT_SECTION else 0)
            prog.relocations.append(Relocation(rel_insn, "map_value", m.name, off))
        elif tsec.type == SHT_PROGBITS and tsec.flags & SHF_EXECINSTR:
            prog.relocations.append(Relocation(rel_insn, "func", self._func_name(sym)))
        elif (sym.shndx, sym.value) in self._maps_by_sec_off:
            m = self._maps_by_sec_off[(sym.shndx, sym.value)]
            prog.relocations.append(Relocation(rel_insn, "map", m.name))
        else:
            # libbpf: "bad map relo" -- data in a section that does not become a map
            raise self._err(f"{where}: program '{prog.name}' refers to '{sym.name or tsec.name}' "
                            f"in section '{tsec.name}', which is not a map")

    def _func_name(self, sym: _Sym) -> str:
        if sym.type == STT_FUNC:
            return sym.name
        return sym.name or (self._secs[sym.shndx].name if sym.shndx < len(self._secs) else "?")

    def _maps_reloc(self, sec: _Sec, r_off: int, sym: _Sym) -> None:
        where = f"'.maps' relocation at offset {r_off}"
        owner = None
        for m in self.maps:
            if m.internal or m.section is not None:
                continue
            if m.sec_offset <= r_off and (owner is None or m.sec_offset > owner.sec_offset):
                owner = m
        if owner is None or owner.values_offset is None:
            raise self._err(f"{where}: not inside the 'values' of a map")
        start = owner.sec_offset + owner.values_offset
        if r_off < start or (r_off - start) % 8:
            raise self._err(f"{where}: not a 'values' slot of map '{owner.name}'")
        slot = (r_off - start) // 8
        if owner.max_entries and slot >= owner.max_entries:
            raise self._err(f"map '{owner.name}': initial value slot {slot} is past max_entries "
                            f"{owner.max_entries}")
        if sym.shndx >= len(self._secs) or sym.shndx == SHN_UNDEF:
            raise self._err(f"{where}: symbol '{sym.name}' is not defined in the object")
        tsec = self._secs[sym.shndx]
        if owner.inner is not None:
            target = self._maps_by_sec_off.get((sym.shndx, sym.value))
            if tsec.name != ".maps" or target is None:
                raise self._err(f"map '{owner.name}': slot {slot} points to '{sym.name}', "
                                "which is not a map")
            owner.init_values[slot] = target.name
        else:
            if sym.type != STT_FUNC or not (tsec.flags & SHF_EXECINSTR):
                raise self._err(f"map '{owner.name}': slot {slot} points to '{sym.name}', "
                                "which is not a program")
            owner.init_values[slot] = sym.name


_SHT = {"SHT_NULL": 0, "SHT_PROGBITS": 1, "SHT_SYMTAB": 2, "SHT_STRTAB": 3, "SHT_RELA": 4,
        "SHT_HASH": 5, "SHT_DYNAMIC": 6, "SHT_NOTE": 7, "SHT_NOBITS": 8, "SHT_REL": 9,
        "SHT_DYNSYM": 11, "SHT_LLVM_ADDRSIG": 0x6FFF4C03}


def _align_of(btf: BTF, type_id: int) -> int:
    """C alignment of a type as libbpf computes it for ``.kconfig`` externs."""
    from pybpfobj.spec.btf import BtfKind

    t = btf.resolve(type_id)
    steps = 0
    while t.kind == BtfKind.ARRAY and steps < 64:   # an array aligns as its element
        t = btf.resolve(t.elem_type)
        steps += 1
    if t.kind == BtfKind.PTR:
        return 8
    if t.kind in (BtfKind.STRUCT, BtfKind.UNION):
        return max((_align_of(btf, m.type_id) for m in t.members), default=1)
    return min(8, max(1, btf.size_of(t.id)))


def _data_sec_kind(sec: _Sec) -> str | None:
    """Which global-data map a section becomes ("data", "rodata", "bss"), as libbpf 1.1 decides."""
    n = sec.name
    if sec.type == SHT_PROGBITS and not sec.flags & SHF_EXECINSTR:
        if n == ".data" or n.startswith(".data."):
            return "data"
        if n == ".rodata" or n.startswith(".rodata."):
            return "rodata"
    elif sec.type == SHT_NOBITS and (n == ".bss" or n.startswith(".bss.")):
        return "bss"  # .bss.* too, as the system libbpf 1.1.2 (bpftool 7.1's own libbpf refuses it)
    return None
