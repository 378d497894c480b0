"""CTypesBuilder: ctypes layouts equal to BTF on our objects and on vmlinux structs."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pybpfobj.errors import BTFError
from pybpfobj.spec.btf import BTF, BtfKind, BtfType, read_elf_btf
from pybpfobj.spec.ctypes_types import CTypesBuilder

DATA = Path(__file__).resolve().parent.parent / "data" / "btf"
VMLINUX = "/sys/kernel/btf/vmlinux"


def assert_layout(btf: BTF, cls: type, t: BtfType) -> None:
    assert ctypes.sizeof(cls) == t.size, t.name
    for i, m in enumerate(t.members):
        name = m.name or f"<anon {i}>"
        desc = getattr(cls, name)
        if m.bitfield_size:
            assert desc.size >> 16 == m.bitfield_size
            assert desc.offset * 8 + (desc.size & 0xFFFF) == m.bit_offset, (t.name, m.name)
        else:
            assert desc.offset * 8 == m.bit_offset, (t.name, m.name)


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> BTF:
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed")
    out = tmp_path_factory.mktemp("ct") / "kinds.o"
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-c", str(DATA / "kinds.c"), "-o", str(out)], check=True)
    return read_elf_btf(out)[0]


def test_kinds_structs_packed_anon(kinds: BTF) -> None:
    cb = CTypesBuilder(kinds)
    for name in ("packed_s", "with_anon", "tagged", "u"):
        t = kinds.find(name)
        assert_layout(kinds, cb.build(t.id), t)
    wa = cb.build(kinds.find("with_anon").id)()
    wa.y, wa.p = 7, -2  # anonymous struct/union members are reachable directly
    assert (wa.y, wa.p) == (7, -2)
    assert cb.build(kinds.find("u").id) is cb.build(kinds.find("u").id)  # cached


def test_bitfields(objs: Path) -> None:
    btf, _ = read_elf_btf(objs / "maps_all.o")
    t = btf.find("flow_value", BtfKind.STRUCT)
    cls = CTypesBuilder(btf).build(t.id)
    assert_layout(btf, cls, t)
    v = cls()
    v.flags_fin, v.reserved, v.ttl = 1, 0x3F, 200
    assert (v.flags_syn, v.flags_fin, v.reserved, v.ttl) == (0, 1, 0x3F, 200)


def test_bitfield_straddling_units_is_a_btf_error(kinds: BTF) -> None:
    # struct bits { u32 a:3, b:5; int c:7; u64 d:40; char e; }: d shares bytes
    # with c and e the way GCC allows but ctypes' units cannot express.
    cb = CTypesBuilder(kinds)
    for name in ("bits", "holder"):
        with pytest.raises(BTFError, match="cannot build a ctypes type .*cannot reproduce the BTF layout"):
            cb.build(kinds.find(name).id)


def test_scalars_enums_pointers_and_plain_ints(kinds: BTF) -> None:
    cb = CTypesBuilder(kinds)
    holder = kinds.find("holder")
    types = {m.name: cb.build(m.type_id) for m in holder.members if m.name != "b"}
    assert types["f"] is ctypes.c_uint64 and types["fp"] is ctypes.c_uint64
    assert types["big"] is ctypes.c_uint64 and types["s"] is ctypes.c_int32 and types["se"] is ctypes.c_uint8
    assert types["fl"] is ctypes.c_float and types["db"] is ctypes.c_double and types["flag"] is ctypes.c_bool
    assert types["name"]._type_ is ctypes.c_char and types["name"]._length_ == 8
    assert ctypes.sizeof(types["arr"]) == 24 and types["cv"] is ctypes.c_uint64
    assert cb.is_plain_int(next(m.type_id for m in holder.members if m.name == "cv"))
    assert cb.is_plain_int(kinds.find("sgn").id)
    assert not cb.is_plain_int(holder.id)


def test_unbuildable_types_raise_btf_error(kinds: BTF) -> None:
    cb = CTypesBuilder(kinds)
    for name, kind in (("use_holder", BtfKind.FUNC), ("fwd_only", BtfKind.FWD)):
        with pytest.raises(BTFError, match="cannot build a ctypes type"):
            cb.build(kinds.find(name, kind).id)


def test_our_objects_value_types(objs: Path) -> None:
    for o in sorted(objs.glob("*.o")):
        btf, _ = read_elf_btf(o)
        cb = CTypesBuilder(btf)
        for t in btf.types():
            if t.kind in (BtfKind.STRUCT, BtfKind.UNION):
                assert_layout(btf, cb.build(t.id), t)


def test_datasec_with_fixed_offsets(objs: Path) -> None:
    btf, _ = read_elf_btf(objs / "globals.o")
    ds = btf.datasec(".data")
    assert ds is not None
    with pytest.raises(BTFError):  # clang's offsets are all 0: overlapping variables
        CTypesBuilder(btf).build(ds.id)
    offs, pos = {}, 0
    for v in ds.secinfo:
        pos = (pos + 7) & ~7 if v.size >= 8 else pos
        offs[btf.name_of(v.type_id)] = pos
        pos += v.size
    fixed = btf.fixup_datasec(".data", pos, offs)
    cls = CTypesBuilder(fixed).build(fixed.datasec(".data").id)  # type: ignore[union-attr]
    assert ctypes.sizeof(cls) == pos and cls.ports.offset == offs["ports"]


def test_vmlinux_structs_match_btf_layout() -> None:
    if not os.path.exists(VMLINUX):
        pytest.skip("no vmlinux BTF")
    btf = BTF.from_file(VMLINUX)
    cb = CTypesBuilder(btf)
    records = [i for i in range(1, len(btf) + 1) if btf.kind_of(i) in (BtfKind.STRUCT, BtfKind.UNION)]
    sample = records[:: max(1, len(records) // 200)]
    sample += [btf.find(n).id for n in ("task_struct", "sk_buff", "fred_ss", "x86_pmu", "vc_data", "tcp_sock")]
    for i in sample:
        t = btf.type(i)
        try:
            cls = cb.build(i)
        except BTFError:
            continue  # allowed (never another exception); all of vmlinux builds today
        assert_layout(btf, cls, t)
    # the hard ones above (gappy bitfields, packed runs) all build
    for n in ("fred_ss", "x86_pmu", "vc_data", "task_struct"):
        cb.build(btf.find(n).id)


def test_members_named_like_ctypes_attributes_or_padding_keep_their_own_fields(tmp_path: Path) -> None:
    # a member `_fields_` replaced ctypes' class attribute; `_pad0`/`_anon1` were shadowed by the
    # builder's own padding and anonymous-member names (reads returned the padding)
    clang = shutil.which("clang-19") or shutil.which("clang")
    assert clang is not None
    src = tmp_path / "names.c"
    src.write_text("struct names { char _pad0; int _fields_; union { int a; } ; long _anon1; short _pack_; };\n"
                   "struct names v;\n")
    out = tmp_path / "names.o"
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", "-c", str(src), "-o", str(out)], check=True)
    btf = read_elf_btf(out)[0]
    t = btf.find("names")
    cls = CTypesBuilder(btf).build(t.id)
    obj = cls.from_buffer_copy(bytes(range(ctypes.sizeof(cls))))
    assert obj._pad0 == b"\x00" and obj._fields__ == int.from_bytes(bytes(range(4, 8)), "little")
    assert obj.a == int.from_bytes(bytes(range(8, 12)), "little")
    assert obj._anon1 == int.from_bytes(bytes(range(16, 24)), "little")
    assert obj._pack__ == int.from_bytes(bytes(range(24, 26)), "little")
    assert ctypes.sizeof(cls) == t.size
