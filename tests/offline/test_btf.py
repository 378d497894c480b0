"""BTF reader: every kind, both byte orders, strings, split BTF, BTF.ext,
vmlinux against bpftool, and every kind of corruption raising BTFError."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from pybpfobj.errors import BTFError, NotFoundError
from pybpfobj.spec.btf import BTF, BTFExt, BtfKind, read_elf_btf

DATA = Path(__file__).resolve().parent.parent / "data" / "btf"
VMLINUX = "/sys/kernel/btf/vmlinux"
CLANG = shutil.which("clang-19") or shutil.which("clang")


def compile_bpf(src: Path, out_dir: Path, target: str = "bpf") -> Path:
    if CLANG is None:
        pytest.skip("clang is not installed")
    out = out_dir / f"{src.stem}_{target}.o"
    subprocess.run([CLANG, "-O2", "-g", "-target", target, "-c", str(src), "-o", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def kinds_objs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("btfkinds")
    return {t: compile_bpf(DATA / "kinds.c", d, t) for t in ("bpfel", "bpfeb")}


@pytest.fixture(scope="module")
def kinds(kinds_objs: dict[str, Path]) -> BTF:
    return read_elf_btf(kinds_objs["bpfel"])[0]


@pytest.fixture(scope="module")
def vmlinux() -> BTF:
    if not os.path.exists(VMLINUX):
        pytest.skip("no /sys/kernel/btf/vmlinux")
    return BTF.from_file(VMLINUX)


# -- a tiny BTF assembler for corruption tests ---------------------------------


def assemble(types: list[bytes], strings: bytes = b"\0int\0s\0t\0", *, order: str = "<",
             hdr_len: int = 24) -> bytes:
    tsec = b"".join(types)
    hdr = struct.pack(order + "HBBIIIII", 0xEB9F, 1, 0, hdr_len, 0, len(tsec), len(tsec), len(strings))
    hdr += b"\0" * (hdr_len - 24)
    return hdr + tsec + strings


def rec(name_off: int, kind: int, vlen: int, size_or_type: int, *extra: int, kflag: int = 0) -> bytes:
    info = (kflag << 31) | (kind << 24) | vlen
    return struct.pack("<III", name_off, info, size_or_type) + struct.pack(f"<{len(extra)}I", *extra)


INT32 = rec(1, 1, 0, 4, 32)  # [1] INT 'int' size=4 bits=32


# -- decoding -------------------------------------------------------------------


def test_every_kind_is_decoded(kinds: BTF) -> None:
    seen = {t.kind for t in kinds.types()}
    assert seen >= set(BtfKind) - {BtfKind.UNKN}


def test_struct_members_bitfields_and_offsets(kinds: BTF) -> None:
    bits = kinds.find("bits", BtfKind.STRUCT)
    assert bits.size == 8 and bits.kind_flag
    assert [(m.name, m.bit_offset, m.bitfield_size) for m in bits.members] == [
        ("a", 0, 3), ("b", 3, 5), ("c", 8, 7), ("d", 15, 40), ("e", 56, 0)]
    packed = kinds.find("packed_s")
    assert packed.size == 7 and [m.bit_offset for m in packed.members] == [0, 8, 40]


def test_enums_signedness_and_enum64(kinds: BTF) -> None:
    e64 = kinds.find("e64")
    assert e64.kind is BtfKind.ENUM64 and e64.size == 8
    assert [(v.name, v.value) for v in e64.enum_values] == [("BIG", 0xFFFFFFFFFF), ("SMALL", 1)]
    sgn = kinds.find("sgn", BtfKind.ENUM)
    assert sgn.kind_flag and [v.value for v in sgn.enum_values] == [-1, 1]
    assert kinds.find("small_enum").size == 1


def test_tags_func_var_and_fwd(kinds: BTF) -> None:
    tags = {t.name: t for t in kinds.types() if t.kind is BtfKind.DECL_TAG}
    assert tags["struct_tag"].component_idx == -1
    assert tags["member_tag"].component_idx == 0
    assert tags["param_tag"].component_idx == 0
    assert kinds.type(tags["param_tag"].type_id).name == "use_holder"
    tt = next(t for t in kinds.types() if t.kind is BtfKind.TYPE_TAG)
    assert tt.name == "user" and kinds.type_name(tt.type_id) == "int"
    func = kinds.find("use_holder", BtfKind.FUNC)
    assert func.linkage == 1
    proto = kinds.type(func.type_id)
    assert [p.name for p in proto.params] == ["h", "n"]
    assert kinds.find("ro_value", BtfKind.VAR).linkage == 1
    assert kinds.find("fwd_union", BtfKind.FWD).kind_flag


def test_type_names_in_c_spelling(kinds: BTF) -> None:
    holder = kinds.find("holder")
    names = {m.name: kinds.type_name(m.type_id) for m in holder.members}
    assert names["f"] == "struct fwd_only *"
    assert names["fu"] == "union fwd_union *"
    assert names["name"] == "char[8]"
    assert names["arr"] == "int[2][3]"
    assert names["cv"] == "const volatile u64_alias"
    assert names["rp"] == "int * restrict"
    assert names["fp"] == "int (*)(int, char)"
    assert names["un"] == "union u"
    assert kinds.type_name(0) == "void"


def test_size_of_and_resolve(kinds: BTF) -> None:
    holder = kinds.find("holder")
    sizes = {m.name: kinds.size_of(m.type_id) for m in holder.members}
    assert sizes["arr"] == 24 and sizes["cv"] == 8 and sizes["fp"] == 8 and sizes["flex"] == 0
    assert sizes["big128"] == 16 and sizes["ps"] == 7
    cv = next(m for m in holder.members if m.name == "cv")
    assert kinds.resolve(cv.type_id).name == "unsigned long long"
    with pytest.raises(BTFError, match="has no size"):
        kinds.size_of(kinds.find("use_holder").id)


def test_both_byte_orders_decode_the_same(kinds_objs: dict[str, Path]) -> None:
    le = read_elf_btf(kinds_objs["bpfel"])[0]
    be = read_elf_btf(kinds_objs["bpfeb"])[0]
    assert le.byte_order == "little" and be.byte_order == "big"
    assert list(le.types()) == list(be.types())
    le.validate()
    be.validate()


def test_lookup_by_name_kind_and_missing(kinds: BTF) -> None:
    assert kinds.find("int").kind is BtfKind.INT
    assert [t.kind for t in kinds.find_all("use_holder")] == [BtfKind.FUNC]
    with pytest.raises(NotFoundError, match="no BTF type STRUCT named 'int'"):
        kinds.find("int", BtfKind.STRUCT)
    with pytest.raises(NotFoundError):
        kinds.find("nonexistent_type_name")
    assert kinds.datasec(".nonexistent") is None


def test_datasec_lookup_and_fixup(objs: Path) -> None:
    btf, _ = read_elf_btf(objs / "xdp_counter.o")
    ds = btf.datasec(".rodata")
    assert ds is not None and [btf.name_of(v.type_id) for v in ds.secinfo] == ["verdict", "bpf_metadata_owner"]
    fixed = btf.fixup_datasec(".rodata", 16, {"bpf_metadata_owner": 4})
    ds2 = fixed.datasec(".rodata")
    assert ds2 is not None and ds2.size == 16 and [v.offset for v in ds2.secinfo] == [0, 4]


def test_strings(kinds: BTF) -> None:
    assert kinds.string(0) == ""
    assert kinds.string(kinds.find("holder").id and 1) != ""
    with pytest.raises(BTFError, match="string offset .* past the end"):
        kinds.string(10**7)


def test_type_id_out_of_range(kinds: BTF) -> None:
    assert kinds.type(0).kind is BtfKind.UNKN
    with pytest.raises(BTFError, match=r"type id 100000 out of range"):
        kinds.type(100000)


def test_validate_accepts_our_objects(objs: Path) -> None:
    for o in sorted(objs.glob("*.o")):
        btf, ext = read_elf_btf(o)
        btf.validate()
        assert ext is not None


# -- BTF.ext ----------------------------------------------------------------------


def test_func_info_names_the_programs(objs: Path) -> None:
    btf, ext = read_elf_btf(objs / "xdp_counter.o")
    assert ext is not None
    assert {sec: [btf.type(t).name for _, t in fi] for sec, fi in ext.func_info.items()} == {"xdp": ["xdp_count"]}
    assert ext.func_info["xdp"][0][0] == 0


def test_line_info_matches_the_source_and_sections(objs: Path) -> None:
    from elftools.elf.elffile import ELFFile

    for name in ("xdp_counter.o", "globals.o", "maps_all.o"):
        _btf, ext = read_elf_btf(objs / name)
        assert ext is not None and ext.line_info
        with open(objs / name, "rb") as f:
            sizes = {s.name: s["sh_size"] for s in ELFFile(f).iter_sections()}
        for sec, infos in ext.line_info.items():
            assert [li.insn_off for li in infos] == sorted(li.insn_off for li in infos)
            assert all(0 <= li.insn_off < sizes[sec] // 8 for li in infos)
            for li in infos:
                # line_info carries the file name, the line's text and its number: they agree
                # relative names are relative to bpf_progs/, where clang runs (see its Makefile)
                src_path = Path(li.file_name)
                if not src_path.is_absolute():
                    src_path = objs.parent / src_path
                src = src_path.read_text().splitlines()
                assert src[li.line_num - 1] == li.line, (li, src[li.line_num - 1])
                assert li.line_col <= len(li.line) + 1
        # func_info entries start at a line_info record (libbpf requires it)
        for sec, fi in ext.func_info.items():
            starts = {li.insn_off for li in ext.line_info[sec]}
            assert all(off in starts for off, _ in fi)


def test_btf_ext_tolerates_core_relo_and_rejects_corruption(objs: Path) -> None:
    from elftools.elf.elffile import ELFFile

    with open(objs / "xdp_counter.o", "rb") as f:
        elf = ELFFile(f)
        ext_data = elf.get_section_by_name(".BTF.ext").data()
    btf, _ = read_elf_btf(objs / "xdp_counter.o")
    hdr_len = struct.unpack_from("<I", ext_data, 4)[0]
    assert hdr_len >= 32  # clang emits the core_relo fields
    BTFExt.from_bytes(ext_data, btf, source="x.o")
    with pytest.raises(BTFError, match="x.o: invalid BTF.ext: bad magic"):
        BTFExt.from_bytes(b"\0\0" + ext_data[2:], btf, source="x.o")
    with pytest.raises(BTFError, match="truncated header"):
        BTFExt.from_bytes(ext_data[:6], btf, source="x.o")
    bad = bytearray(ext_data)
    struct.pack_into("<I", bad, 12, 10**6)  # func_info_len
    with pytest.raises(BTFError, match="func_info section .* out of bounds"):
        BTFExt.from_bytes(bytes(bad), btf, source="x.o")
    with pytest.raises(BTFError, match="x.o: invalid BTF.ext: .*(out of bounds|truncated)"):
        BTFExt.from_bytes(ext_data[:-4], btf, source="x.o")
    bad = bytearray(ext_data)
    fi_off = struct.unpack_from("<I", ext_data, 8)[0]
    struct.pack_into("<I", bad, hdr_len + fi_off, 3)  # func_info record size
    with pytest.raises(BTFError, match="record size 3 is invalid"):
        BTFExt.from_bytes(bytes(bad), btf, source="x.o")


# -- vmlinux against bpftool ---------------------------------------------------


@pytest.fixture(scope="module")
def bpftool_vmlinux_lines(bpftool: str, vmlinux: BTF) -> list[str]:
    out = subprocess.run([bpftool, "btf", "dump", "file", VMLINUX], capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()


def test_vmlinux_type_count_matches_bpftool(vmlinux: BTF, bpftool_vmlinux_lines: list[str]) -> None:
    last = next(line for line in reversed(bpftool_vmlinux_lines) if line.startswith("["))
    assert len(vmlinux) == int(last[1:last.index("]")])


def test_vmlinux_named_types_match_bpftool(vmlinux: BTF, bpftool_vmlinux_lines: list[str]) -> None:
    from pybpfobj.cli.btf import raw_type_text

    # bpftool's text split into per-type blocks, keyed by id
    blocks: dict[int, str] = {}
    cur: list[str] = []
    for line in bpftool_vmlinux_lines:
        if line.startswith("[") and cur:
            blocks[int(cur[0][1:cur[0].index("]")])] = "\n".join(cur)
            cur = []
        cur.append(line)
    blocks[int(cur[0][1:cur[0].index("]")])] = "\n".join(cur)
    ids = list(range(1, len(vmlinux) + 1, max(1, len(vmlinux) // 300)))
    for name in ("task_struct", "sk_buff", "xdp_md", "bpf_prog", "pt_regs", "list_head"):
        ids.append(vmlinux.find(name).id)
    for i in ids:
        assert raw_type_text(vmlinux, vmlinux.type(i)) == blocks[i]
    assert vmlinux.find("task_struct", BtfKind.STRUCT).size > 1000


def test_vmlinux_validates(vmlinux: BTF) -> None:
    vmlinux.validate()


def test_split_btf_on_top_of_a_base(kinds: BTF) -> None:
    # A split BTF adding "struct t { int s; }" whose member type is the base's int.
    base = BTF.from_bytes(assemble([INT32]), source="base")
    strs = b"t\0s\0"  # offsets continue after the base's strings
    so = len(b"\0int\0s\0t\0")
    split_types = [rec(so, 4, 1, 4, so + 2, 1, 0), rec(0, 2, 0, 2)]
    tsec = b"".join(split_types)
    raw = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(tsec), len(tsec), len(strs)) + tsec + strs
    split = BTF.from_bytes(raw, source="split", base=base)
    assert len(split) == 3 and split.start_id == 2
    t = split.find("t")
    assert t.id == 2 and t.members[0].name == "s" and split.type_name(t.members[0].type_id) == "int"
    assert split.find("int").id == 1
    assert split.type_name(3) == "struct t *"
    assert [x.id for x in split.own_types()] == [2, 3]


# -- corruption ------------------------------------------------------------------


def test_sound_assembled_btf_parses() -> None:
    btf = BTF.from_bytes(assemble([INT32]), source="ok.btf")
    assert len(btf) == 1 and btf.find("int").size == 4
    big = assemble([rec(1, 1, 0, 4, 32)], order=">")
    # a big-endian header with little-endian records is garbage: must not crash
    with pytest.raises(BTFError):
        BTF.from_bytes(big, source="mixed").validate()


@pytest.mark.parametrize("data, message", [
    (b"\x9f\xeb\x01", "truncated header"),
    (b"\x9f\xeb\x01\x00\x30\x00\x00\x00" + b"\0" * 16, r"truncated header \(hdr_len 48"),
    (b"\x00\x00" + assemble([INT32])[2:], "bad magic 0x0000"),
    (assemble([INT32])[:2] + b"\x02" + assemble([INT32])[3:], "unsupported version 2"),
    (struct.pack("<HBBI", 0xEB9F, 1, 0, 8) + b"\0" * 16, "bad hdr_len 8"),
    (assemble([INT32], hdr_len=32)[:24] + b"\1" + b"\0" * 7 + INT32 + b"\0int\0s\0t\0", "unknown non-zero"),
])
def test_bad_header_raises(data: bytes, message: str) -> None:
    with pytest.raises(BTFError, match=message) as ei:
        BTF.from_bytes(data, source="bad.btf")
    assert "bad.btf" in str(ei.value)


def _patch_hdr(data: bytes, field: int, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into("<I", b, 8 + 4 * field, value)
    return bytes(b)


@pytest.mark.parametrize("field, value, message", [
    (0, 1000, "type section .* out of bounds"),
    (1, 1000, "type section .* out of bounds"),
    (2, 1000, "string section .* out of bounds"),
    (3, 1000, "string section .* out of bounds"),
    (0, 2, "not 4-byte aligned"),
])
def test_section_out_of_bounds_raises(field: int, value: int, message: str) -> None:
    with pytest.raises(BTFError, match=message):
        BTF.from_bytes(_patch_hdr(assemble([INT32]), field, value), source="bad.btf")


def test_string_section_shape_is_checked() -> None:
    with pytest.raises(BTFError, match="start with a NUL"):
        BTF.from_bytes(assemble([INT32], strings=b"x\0"), source="s.btf")
    with pytest.raises(BTFError, match="not NUL-terminated"):
        BTF.from_bytes(assemble([INT32], strings=b"\0int"), source="s.btf")


def test_string_offset_past_the_end_raises() -> None:
    btf = BTF.from_bytes(assemble([rec(500, 1, 0, 4, 32)]), source="s.btf")
    with pytest.raises(BTFError, match=r"s.btf: invalid BTF: string offset 500 past the end"):
        btf.type(1)


def test_referenced_type_id_out_of_range_raises() -> None:
    btf = BTF.from_bytes(assemble([INT32, rec(0, 2, 0, 77)]), source="r.btf")
    with pytest.raises(BTFError, match="type id 2 refers to type id 77 out of range"):
        btf.type(2)
    btf = BTF.from_bytes(assemble([INT32, rec(5, 4, 1, 4, 7, 9, 0)]), source="r.btf")
    with pytest.raises(BTFError, match="refers to type id 9 out of range"):
        btf.type(2)


def test_unknown_kind_raises() -> None:
    with pytest.raises(BTFError, match="unknown kind 25"):
        BTF.from_bytes(assemble([INT32, rec(0, 25, 0, 0)]), source="k.btf")
    with pytest.raises(BTFError, match="unknown kind 0"):
        BTF.from_bytes(assemble([INT32, rec(0, 0, 0, 0)]), source="k.btf")


def test_truncated_type_section_raises() -> None:
    # a struct claiming 3 members but carrying one
    with pytest.raises(BTFError, match="type section truncated in type id 2"):
        BTF.from_bytes(assemble([INT32, rec(5, 4, 3, 4, 7, 1, 0)]), source="t.btf")


def test_typedef_loop_raises_in_resolve_size_of_and_validate() -> None:
    # [2] typedef s -> [3] typedef t -> [2]
    btf = BTF.from_bytes(assemble([INT32, rec(5, 8, 0, 3), rec(7, 8, 0, 2)]), source="loop.btf")
    assert btf.type(2).type_id == 3  # decoding alone is fine
    for call in (btf.resolve, btf.size_of):
        with pytest.raises(BTFError, match="type loop"):
            call(2)
    with pytest.raises(BTFError, match="loop.btf: invalid BTF: type loop"):
        btf.validate()


def test_struct_containing_itself_raises_in_validate() -> None:
    # [2] struct s { struct s x; } size 4
    btf = BTF.from_bytes(assemble([INT32, rec(5, 4, 1, 4, 7, 2, 0)]), source="self.btf")
    with pytest.raises(BTFError, match="type id 2 .* contains itself"):
        btf.validate()
    # through an array and a typedef too
    btf = BTF.from_bytes(assemble([INT32, rec(5, 4, 1, 8, 7, 3, 0), rec(0, 3, 0, 0, 4, 1, 1),
                                   rec(7, 8, 0, 2)]), source="self.btf")
    with pytest.raises(BTFError, match="contains itself"):
        btf.validate()


def test_array_size_overflow_raises() -> None:
    # int[0x40000000][16]: 2**36 bytes
    btf = BTF.from_bytes(assemble([INT32, rec(0, 3, 0, 0, 1, 1, 0x40000000), rec(0, 3, 0, 0, 2, 1, 16)]),
                         source="ovf.btf")
    with pytest.raises(BTFError, match="ovf.btf: invalid BTF: type id 3: impossible size"):
        btf.size_of(3)
    with pytest.raises(BTFError, match="impossible size"):
        btf.validate()


def test_member_beyond_struct_size_raises_in_validate() -> None:
    # struct s { int x at bit 32 } with size 4
    btf = BTF.from_bytes(assemble([INT32, rec(5, 4, 1, 4, 7, 1, 32)]), source="m.btf")
    with pytest.raises(BTFError, match="member 't' .* is beyond the size 4"):
        btf.validate()
    # a bitfield running past the end
    btf = BTF.from_bytes(assemble([INT32, rec(5, 4, 1, 4, 7, 1, (4 << 24) | 30, kflag=1)]), source="m.btf")
    with pytest.raises(BTFError, match="beyond the size"):
        btf.validate()


def test_missing_file_raises_btf_error(tmp_path: Path) -> None:
    with pytest.raises(BTFError, match="cannot read BTF"):
        BTF.from_file(tmp_path / "nope")
    with pytest.raises(BTFError, match="not an ELF file|no .BTF"):
        p = tmp_path / "junk.o"
        p.write_bytes(b"\x7fELF" + b"\0" * 10)
        read_elf_btf(p)
