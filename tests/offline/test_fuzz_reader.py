"""Mutated objects fed to ObjectSpec.from_bytes: only ObjectFormatError may escape.

~300 examples per run by default; PYBPFOBJ_FUZZ_EXAMPLES=N sets the count of
the long (``slow``) campaign.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybpfobj.errors import ObjectFormatError
from pybpfobj.spec.elf import ObjectSpec

BUILD = Path(__file__).resolve().parents[2] / "bpf_progs" / "build"
SEEDS = ["tailcall", "globals", "maps_all", "mapinmap", "progs_all", "bad_verifier"]


def _seeds() -> dict[str, bytes]:
    import subprocess

    subprocess.run(["make", "-s", "-C", str(BUILD.parent)], check=True)
    return {n: (BUILD / f"{n}.o").read_bytes() for n in SEEDS}


_SEED_DATA: dict[str, bytes] = {}


def seed(name: str) -> bytes:
    if not _SEED_DATA:
        _SEED_DATA.update(_seeds())
    return _SEED_DATA[name]


def _shdr_fields(data: bytes) -> tuple[int, int, int]:
    e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
    e_shentsize, e_shnum = struct.unpack_from("<HH", data, 0x3A)
    return e_shoff, e_shentsize, e_shnum


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(seed(draw(st.sampled_from(SEEDS))))
    kind = draw(st.sampled_from(["flip", "truncate", "overwrite", "shdr", "header", "multi"]))
    n = len(data)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, n - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        del data[draw(st.integers(0, n - 1)):]
    elif kind == "overwrite":
        i = draw(st.integers(0, n - 1))
        chunk = draw(st.binary(min_size=1, max_size=16))
        data[i:i + len(chunk)] = chunk
    elif kind == "shdr":
        shoff, entsize, shnum = _shdr_fields(bytes(data))
        idx = draw(st.integers(0, max(0, shnum - 1)))
        field = draw(st.sampled_from([(4, "I"), (8, "Q"), (0x18, "Q"), (0x20, "Q"), (0x28, "I"),
                                      (0x2C, "I"), (0x38, "Q")]))   # type, flags, off, size, link...
        value = draw(st.sampled_from([0, 1, 2, 8, 9, 0xFFFF, 0xFFFFFFFF, 2**63, n, n + 1]))
        pos = shoff + idx * entsize + field[0]
        if pos + struct.calcsize(field[1]) <= n:
            struct.pack_into("<" + field[1], data, pos, value & ((1 << (8 * struct.calcsize(field[1]))) - 1))
    elif kind == "header":
        off = draw(st.sampled_from([0x10, 0x12, 0x28, 0x30, 0x3A, 0x3C, 0x3E]))
        struct.pack_into("<H", data, off, draw(st.integers(0, 0xFFFF)))
    else:
        for _ in range(draw(st.integers(2, 40))):
            i = draw(st.integers(0, n - 1))
            data[i] = draw(st.integers(0, 255))
    return bytes(data)


def _check(data: bytes) -> None:
    try:
        spec = ObjectSpec.from_bytes(data, name="fuzz.o")
    except ObjectFormatError as e:
        assert "fuzz.o" in str(e)
        return
    # a mutation that still parses must still describe itself
    spec.to_dict()


def test_seed_objects_parse() -> None:
    for name in SEEDS:
        ObjectSpec.from_bytes(seed(name), name=f"{name}.o")


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(mutated())
def test_mutated_objects_raise_only_object_format_error(data: bytes) -> None:
    _check(data)


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("PYBPFOBJ_FUZZ_EXAMPLES", "5000")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(mutated())
def test_mutated_objects_long_campaign(data: bytes) -> None:
    _check(data)
