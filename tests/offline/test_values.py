"""spec.values.encode on BTF built by hand: layouts clang no longer emits (older BTF's
bitfields as narrow INT types), and the values it takes besides plain ints."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pybpfobj.spec.btf import BTF
from pybpfobj.spec.values import ValueRangeError, encode


def _btf(types: list[bytes], strings: bytes) -> BTF:
    tsec = b"".join(types)
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(tsec), len(tsec), len(strings))
    return BTF.from_bytes(hdr + tsec + strings)


def _type(name_off: int, kind: int, vlen: int, size_or_type: int, *extra: int) -> bytes:
    return struct.pack("<III", name_off, (kind << 24) | vlen, size_or_type) + struct.pack(f"<{len(extra)}I", *extra)


# [1] INT size 4, 3 bits; [2] INT size 4, 5 bits; [3] INT size 1, 8 bits (u8)
# [4] STRUCT s (size 4, kind_flag 0: bit offsets only): a:[1]@0, b:[2]@3, c:[3]@8
_STRINGS = b"\0u\0s\0a\0b\0c\0"
_LEGACY = _btf([_type(1, 1, 0, 4, 3), _type(1, 1, 0, 4, 5), _type(1, 1, 0, 1, 8),
                _type(3, 4, 3, 4, 5, 1, 0, 7, 2, 3, 9, 3, 8)], _STRINGS)


def test_older_btf_bitfields_are_written_at_their_bits() -> None:
    # a=5 in bits 0-2, b=17 in bits 3-7: 0b10001101 = 0x8d; c=0xaa in the next byte
    assert encode(_LEGACY, 4, {"a": 5, "b": 17, "c": 0xAA}, bytes(4), "v") == bytes.fromhex("8daa0000")
    # only b's five bits change: the neighbours keep theirs
    assert encode(_LEGACY, 4, {"b": 17}, bytes.fromhex("ffffffff"), "v") == bytes.fromhex("8fffffff")
    with pytest.raises(ValueRangeError, match=r"v\.a: 8 does not fit an unsigned 3-bit integer"):
        encode(_LEGACY, 4, {"a": 8}, bytes(4), "v")


class _Index:
    """An integer that is no int (as numpy's are)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __index__(self) -> int:
        return self.n


def test_struct_values_positional_and_integers_that_are_no_ints() -> None:
    assert encode(_LEGACY, 4, (5, 17, _Index(0xAA)), bytes(4), "v") == bytes.fromhex("8daa0000")
    with pytest.raises(ValueRangeError, match="4 values for 3 members"):
        encode(_LEGACY, 4, (1, 2, 3, 4), bytes(4), "v")
    with pytest.raises(TypeError, match=r"v\.c: an integer needs an int, got 1\.5"):
        encode(_LEGACY, 4, {"c": 1.5}, bytes(4), "v")


_BITS_SRC = """
enum e8 { LOW = -2, HIGH = 3 } __attribute__((packed));
struct bits {
    unsigned int a : 3; int b : 30; unsigned long long c : 50; unsigned short d : 9;
    char ch : 4; _Bool on : 1; enum e8 en : 4;
    union { unsigned int x; struct { unsigned short lo : 12, hi : 4; }; };
    char name[6];
    float f; double g;
} __attribute__((packed));
const volatile struct bits expect = { .a = 5, .b = -123456789, .c = 0x3ffffffffffffULL, .d = 300,
    .ch = -3, .on = 1, .en = LOW, .lo = 0xabc, .hi = 9, .name = "hey", .f = -2.5f, .g = 1e100 };
const volatile struct bits zero;
"""


@pytest.mark.parametrize("target", ["bpfel", "bpfeb"])
def test_values_are_the_bytes_clang_makes_in_either_byte_order(tmp_path: Path, target: str) -> None:
    from bpfbuild import build_bpf

    from pybpfobj.spec.elf import ObjectSpec

    spec = ObjectSpec.from_file(build_bpf(tmp_path, f"bits_{target}", _BITS_SRC, f"--target={target}"))
    assert spec.btf is not None and spec.btf.byte_order == ("big" if target == "bpfeb" else "little")
    var = {v.name: v for m in spec.maps for v in m.variables}
    got = encode(spec.btf, var["zero"].type_id,
                 {"a": 5, "b": -123456789, "c": (1 << 50) - 1, "d": 300, "ch": -3, "on": True, "en": "LOW",
                  "lo": 0xABC, "hi": 9, "name": "hey", "f": -2.5, "g": 1e100},
                 var["zero"].initial, "zero")
    assert got == var["expect"].initial
