"""``pybpfobj inspect``: text, JSON and errors (run as a subprocess: exit codes, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pybpfobj.cli.common import Context
from pybpfobj.cli.main import run


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pybpfobj", *args], capture_output=True, text=True,
                          check=False)


def test_text_lists_programs_maps_and_variables(objs: Path) -> None:
    r = cli("inspect", str(objs / "globals.o"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "xdp_globals  section xdp  type xdp  attach_type xdp  insns" in out
    assert "map idx 0  name globals.rodata  type array  section .rodata" in out
    assert "flags 0x480" in out
    assert 'cfg (const volatile struct config) @16 = {"mode": 3, "port": 8080, "enabled": 1, ' \
           '"label": "abcd"}' in out
    assert 'favourite (const volatile enum color) @28 = "GREEN"' in out
    assert "map idx 2  name .data.custom" in out


def test_text_shows_inner_maps_init_values_and_btf_type_names(objs: Path) -> None:
    out = cli("inspect", str(objs / "maps_all.o")).stdout
    assert "inner: name outer_arr.inner  type array" in out
    assert "initial values: [0] = inner_a, [1] = inner_b" in out
    assert "initial values: [0] = xdp_tail_a, [2] = xdp_tail_b" in out
    assert "key 16B (struct flow_key)  value 96B (struct flow_value)  max_entries 1024" in out
    assert "map_extra 3" in out


def test_json_document(objs: Path) -> None:
    r = cli("-j", "inspect", str(objs / "maps_all.o"))
    assert r.returncode == 0 and r.stderr == ""
    doc = json.loads(r.stdout)
    assert doc["name"] == "maps_all" and doc["license"] == "GPL"
    assert [m["idx"] for m in doc["maps"]] == list(range(18))
    outer = next(m for m in doc["maps"] if m["name"] == "outer_arr")
    assert outer["inner"]["type"] == "array" and outer["init_values"] == {"0": "inner_a", "1": "inner_b"}
    assert [p["type"] for p in doc["programs"]] == ["xdp", "xdp", "xdp", "socket_filter"]


def test_json_variables_are_formatted_by_btf(objs: Path) -> None:
    doc = json.loads(cli("-j", "inspect", str(objs / "globals.o")).stdout)
    rodata = doc["maps"][0]
    values = {v["name"]: v["value"] for v in rodata["variables"]}
    assert values["cfg"] == {"mode": 3, "port": 8080, "enabled": 1, "label": "abcd"}
    assert values["bpf_metadata_version"] == "1.0"
    assert values["favourite"] == "GREEN"


def test_pretty_json_is_indented(objs: Path) -> None:
    out = cli("-p", "inspect", str(objs / "tailcall.o")).stdout
    assert out.startswith("{\n    \"name\": \"tailcall\"")


def test_missing_file_is_an_error_with_enoent_exit_code(tmp_path: Path) -> None:
    r = cli("inspect", str(tmp_path / "nope.o"))
    assert r.returncode == 254
    assert r.stderr == f"Error: {tmp_path / 'nope.o'}: cannot read object file: No such file or directory\n"
    assert r.stdout == ""


def test_garbage_file_is_an_error_without_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"\x7fELF" + bytes(range(256)) * 4)
    r = cli("inspect", str(junk))
    assert r.returncode != 0
    assert r.stderr.startswith("Error: ") and str(junk) in r.stderr
    assert "Traceback" not in r.stderr


def test_garbage_in_json_mode_reports_error_object(tmp_path: Path) -> None:
    junk = tmp_path / "junk.o"
    junk.write_text("not an object\n")
    r = cli("-j", "inspect", str(junk))
    assert r.returncode == 234   # -EINVAL & 0xff
    assert json.loads(r.stdout) == {"error": f"{junk}: not an ELF file"}


def test_usage_errors() -> None:
    import io

    ctx = Context(out=io.StringIO(), err=io.StringIO())
    assert run(["inspect"], ctx) == 255
    assert "Error: expected an object file" in ctx.err.getvalue()    # type: ignore[attr-defined]
    ctx = Context(out=io.StringIO(), err=io.StringIO())
    assert run(["inspect", "a.o", "extra"], ctx) == 255
    assert "too many arguments" in ctx.err.getvalue()    # type: ignore[attr-defined]


# -- bad input: every kind the foundation issue names, through the reader and the CLI --

_TRAILER = {1: 4, 3: 12, 14: 4, 17: 4}          # fixed trailers: INT, ARRAY, VAR, DECL_TAG
_PER_VLEN = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}  # STRUCT, UNION, ENUM, FUNC_PROTO, DATASEC, ENUM64


def _btf_types(data: bytes) -> tuple[int, dict[int, tuple[int, int, str]]]:
    """The string section's length and type id -> (file offset, kind, name) of an object's .BTF."""
    import struct

    pos = data.find(b"\x9f\xeb\x01\x00")
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<IIIII", data, pos + 4)
    base = pos + hdr_len
    strs = data[base + str_off:base + str_off + str_len]
    types: dict[int, tuple[int, int, str]] = {}
    off, tid = type_off, 1
    while off < type_off + type_len:
        name_off, info, _ = struct.unpack_from("<III", data, base + off)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        types[tid] = (base + off, kind, strs[name_off:strs.index(b"\0", name_off)].decode())
        off += 12 + _TRAILER.get(kind, 0) + _PER_VLEN.get(kind, 0) * vlen
        tid += 1
    return str_len, types


def _corrupt(objs: Path, how: str) -> bytes:
    import struct

    if how in ("truncated", "garbage", "non_bpf_elf"):
        data = (objs / "tailcall.o").read_bytes()
        if how == "truncated":
            return data[:len(data) // 2]
        if how == "garbage":
            return b"\x7fELF" + bytes(range(256)) * 4
        b = bytearray(data)
        b[18:20] = (62).to_bytes(2, "little")  # EM_X86_64
        return bytes(b)
    src = "globals.o" if how == "impossible_size" else "xdp_counter.o"
    data = (objs / src).read_bytes()
    b = bytearray(data)
    str_len, types = _btf_types(data)

    def find(kind: int, name: str) -> int:
        return next(t[0] for t in types.values() if t[1] == kind and t[2] == name)

    def u32(off: int) -> int:
        return int(struct.unpack_from("<I", data, off)[0])

    if how == "string_offset":  # the map variable's name lies past the string section
        struct.pack_into("<I", b, find(14, "stats"), str_len + 1000)
    elif how == "type_id_out_of_range":  # the map variable's type id is past the last type
        struct.pack_into("<I", b, find(14, "stats") + 8, len(types) + 50)
    elif how == "type_loop":  # typedef __u32 -> itself
        tid = next(i for i, t in types.items() if t[1] == 8 and t[2] == "__u32")
        struct.pack_into("<I", b, types[tid][0] + 8, tid)
    else:  # impossible size: char greeting[8] becomes int[0xffffffff] (2**34 bytes)
        int4 = next(i for i, t in types.items() if t[1] == 1 and u32(t[0] + 8) == 4)
        tid = u32(find(14, "greeting") + 8)
        while types[tid][1] != 3:  # through const/volatile/typedef to the array
            tid = u32(types[tid][0] + 8)
        struct.pack_into("<III", b, types[tid][0] + 12, int4, int4, 0xFFFFFFFF)
    return bytes(b)


BAD = {
    "truncated": "malformed ELF|truncated|past",
    "garbage": "not an ELF|section|ELF",
    "non_bpf_elf": "not a BPF object",
    "string_offset": "string offset .* past the end",
    "type_id_out_of_range": "type id .* out of range",
    "type_loop": "type loop",
    "impossible_size": "impossible size",
}


@pytest.mark.parametrize("how", list(BAD))
def test_bad_objects_raise_object_format_errors_naming_the_file(objs: Path, tmp_path: Path, how: str) -> None:
    from pybpfobj.errors import BTFError, ObjectFormatError
    from pybpfobj.spec.elf import ObjectSpec

    path = tmp_path / f"{how}.o"
    path.write_bytes(_corrupt(objs, how))
    with pytest.raises(ObjectFormatError, match=BAD[how]) as ei:
        ObjectSpec.from_file(path)
    assert str(path) in str(ei.value)
    if how in ("string_offset", "type_id_out_of_range", "type_loop", "impossible_size"):
        assert isinstance(ei.value, BTFError)
    r = cli("inspect", str(path))
    assert r.returncode not in (0, 1) and r.stdout == ""
    assert r.stderr.startswith(f"Error: {path}: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    j = cli("-j", "inspect", str(path))
    assert j.returncode == r.returncode and json.loads(j.stdout)["error"] == r.stderr[len("Error: "):-1]
