"""Fuzz: mutated BTF/BTF.ext bytes make the reader raise BTFError and nothing else.

Short in CI (``PYBPFOBJ_FUZZ_EXAMPLES``, default 300 examples); the long
campaign is marked slow and runs with ``PYBPFOBJ_LONG=1`` (20000 examples,
or ``PYBPFOBJ_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybpfobj.errors import BTFError, NotFoundError
from pybpfobj.spec.btf import BTF, BTFExt, BtfKind
from pybpfobj.spec.btf_format import format_value, format_value_text
from pybpfobj.spec.ctypes_types import CTypesBuilder

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD = ROOT / "bpf_progs" / "build"
VMLINUX = "/sys/kernel/btf/vmlinux"
SHORT = int(os.environ.get("PYBPFOBJ_FUZZ_EXAMPLES", "300"))
LONG = int(os.environ.get("PYBPFOBJ_FUZZ_EXAMPLES", "20000"))


def _corpus() -> list[tuple[bytes, bytes | None]]:
    from elftools.elf.elffile import ELFFile

    out: list[tuple[bytes, bytes | None]] = []
    for o in sorted(BUILD.glob("*.o"))[:6]:
        with open(o, "rb") as f:
            elf = ELFFile(f)
            btf = elf.get_section_by_name(".BTF")
            ext = elf.get_section_by_name(".BTF.ext")
            if btf is not None:
                out.append((btf.data(), ext.data() if ext is not None else None))
    if os.path.exists(VMLINUX):
        # vmlinux-like: its first ~300 types with the first 16 KiB of strings
        raw = Path(VMLINUX).read_bytes()
        _, _, _, hdr_len, _, _, str_off, _ = struct.unpack_from("<HBBIIIII", raw)
        v = BTF.from_bytes(raw, source="vmlinux")
        tend = hdr_len + 4 * v._offs[300]
        types = raw[hdr_len:tend]
        strs = raw[hdr_len + str_off:hdr_len + str_off + 16384] + b"\0"
        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strs))
        out.append((hdr + types + strs, None))
    return out


CORPUS = _corpus()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    data, ext = draw(st.sampled_from(CORPUS))
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 3))
        if not buf:
            break
        pos = draw(st.integers(0, len(buf) - 1))
        if op == 0:  # flip a byte
            buf[pos] = draw(st.integers(0, 255))
        elif op == 1:  # overwrite a 32-bit word (type ids, offsets, vlen, kinds)
            word = draw(st.sampled_from([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 0x0D000005, 0x04000003, 0x80000000,
                                         draw(st.integers(0, 0xFFFFFFFF))]))
            pos &= ~3
            buf[pos:pos + 4] = struct.pack("<I", word)[: len(buf) - pos]
        elif op == 2:  # truncate
            del buf[pos:]
        else:  # insert junk
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=12))
    return bytes(buf), ext


def exercise(data: bytes, ext: bytes | None) -> None:
    try:
        btf = BTF.from_bytes(data, source="fuzz")
    except BTFError:
        return
    cb = CTypesBuilder(btf)
    for i in range(1, len(btf) + 1):
        try:
            t = btf.type(i)
            btf.type_name(i)
            btf.resolve(i)
            if t.kind in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.INT, BtfKind.ARRAY, BtfKind.ENUM,
                          BtfKind.TYPEDEF, BtfKind.DATASEC):
                size = btf.size_of(i)
                cb.build(i)
                blob = bytes(range(256)) * (min(size, 4096) // 256 + 1)
                format_value(btf, i, blob[:size])
                format_value_text(btf, i, blob[:size])
        except BTFError:
            pass
    for name in ("int", "stats", "task_struct", ""):
        try:
            btf.find(name)
        except (BTFError, NotFoundError):
            pass
    try:
        btf.validate()
    except BTFError:
        pass
    if ext is not None:
        try:
            BTFExt.from_bytes(ext, btf, source="fuzz")
        except BTFError:
            pass


def test_corpus_is_sound() -> None:
    assert CORPUS
    for data, ext in CORPUS:
        btf = BTF.from_bytes(data, source="corpus")
        if ext is not None:
            BTFExt.from_bytes(ext, btf, source="corpus")


@settings(max_examples=SHORT, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(mutated())
def test_mutated_btf_raises_only_btf_error(case: tuple[bytes, bytes | None]) -> None:
    exercise(*case)


@st.composite
def mutated_ext(draw: st.DrawFn) -> tuple[bytes, bytes]:
    data, ext = draw(st.sampled_from([c for c in CORPUS if c[1] is not None]))
    assert ext is not None
    buf = bytearray(ext)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(buf) - 1)) & ~3
        buf[pos:pos + 4] = struct.pack("<I", draw(st.sampled_from([0, 1, 3, 8, 16, 0xFFFFFFFF,
                                                                   draw(st.integers(0, 0xFFFFFFFF))])))
        if draw(st.booleans()):
            del buf[draw(st.integers(0, len(buf))):]
        if not buf:
            break
    return data, bytes(buf)


@settings(max_examples=SHORT, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(mutated_ext())
def test_mutated_btf_ext_raises_only_btf_error(case: tuple[bytes, bytes]) -> None:
    btf = BTF.from_bytes(case[0], source="fuzz")
    try:
        BTFExt.from_bytes(case[1], btf, source="fuzz")
    except BTFError:
        pass


@pytest.mark.slow
@settings(max_examples=LONG, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_long_fuzz_campaign(case: tuple[bytes, bytes | None]) -> None:
    exercise(*case)
