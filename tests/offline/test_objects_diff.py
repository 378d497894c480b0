"""ObjectSpec against other readers: bpftool's BTF dump, llvm-objdump and (as root) the kernel.

- ``bpftool btf dump file``: the ``.maps`` DATASEC and the map-definition structs
  give the BTF maps' names, types, sizes and max_entries independently of us.
- ``llvm-objdump -h -t``: sections and symbols (programs, global variables).
- the kernel: ``bpftool prog loadall OBJ DIR pinmaps MAPDIR`` and ``map show``
  on every pinned map: names, types, sizes, max_entries, flags and map order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pybpfobj import constants
from pybpfobj.spec.elf import ObjectSpec

WITH_MAPS = ["xdp_counter", "maps_all", "pinbyname", "progs_all", "tailcall", "mapinmap", "heavy",
             "bad_verifier", "needs_sizing", "newsec"]
ALL = [*WITH_MAPS, "globals", "bad_section"]
# objects bpftool can load here (pinbyname needs /sys/fs/bpf as bpffs; heavy is slow)
LOADABLE = ["xdp_counter", "maps_all", "globals", "progs_all", "tailcall", "mapinmap"]


@pytest.fixture(scope="module")
def objdump() -> str:
    path = shutil.which("llvm-objdump") or shutil.which("llvm-objdump-14")
    if not path:
        pytest.skip("llvm-objdump is not installed")
    return path


def btf_maps_from_bpftool(bpftool: str, obj: Path) -> list[dict[str, Any]]:
    out = subprocess.run([bpftool, "-j", "btf", "dump", "file", str(obj)], capture_output=True,
                         text=True, check=True).stdout
    types = {t["id"]: t for t in json.loads(out)["types"]}

    def strip(tid: int) -> dict[str, Any]:
        t = types[tid]
        while t["kind"] in ("TYPEDEF", "CONST", "VOLATILE"):
            t = types[t["type_id"]]
        return t

    def size(tid: int) -> int:
        t = strip(tid)
        if t["kind"] == "ARRAY":
            return int(t["nr_elems"]) * size(t["type_id"])
        return 8 if t["kind"] == "PTR" else int(t["size"])

    ds = next(t for t in types.values() if t["kind"] == "DATASEC" and t["name"] == ".maps")
    maps = []
    for v in ds["vars"]:
        var = types[v["type_id"]]
        d: dict[str, Any] = {"name": var["name"]}
        for m in strip(var["type_id"])["members"]:
            ptr = strip(m["type_id"])
            if m["name"] in ("key", "value"):
                d[m["name"] + "_size"] = size(ptr["type_id"])
            elif m["name"] != "values":
                d[m["name"]] = types[ptr["type_id"]]["nr_elems"]
        maps.append(d)
    return maps


@pytest.mark.parametrize("name", WITH_MAPS)
def test_btf_maps_match_bpftool_btf_dump(objs: Path, bpftool: str, name: str) -> None:
    ref = btf_maps_from_bpftool(bpftool, objs / f"{name}.o")
    spec = ObjectSpec.from_file(objs / f"{name}.o")
    ours = {m.name: m for m in spec.maps if not m.internal}
    assert set(ours) == {r["name"] for r in ref}
    for r in ref:
        m = ours[r["name"]]
        assert m.type == r["type"], r
        assert m.max_entries == r.get("max_entries", 0), r
        assert m.flags == r.get("map_flags", 0), r
        if "key_size" in r:
            assert m.key_size == r["key_size"], r
        if "value_size" in r and m.inner is None:
            assert m.value_size == r["value_size"], r


def objdump_sections(objdump: str, obj: Path) -> dict[str, tuple[int, str]]:
    out = subprocess.run([objdump, "-h", str(obj)], capture_output=True, text=True, check=True).stdout
    secs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\d+) (\S+)\s+([0-9a-f]+) [0-9a-f]+ ?(\w*)", line)
        if m:
            secs[m.group(2)] = (int(m.group(3), 16), m.group(4))
    return secs


def objdump_symbols(objdump: str, obj: Path) -> list[tuple[int, str, str, int, str]]:
    out = subprocess.run([objdump, "-t", str(obj)], capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        m = re.match(r"([0-9a-f]{16}) (.{7}) (\S+)\s+([0-9a-f]{16}) (.*)$", line)
        if m:
            syms.append((int(m.group(1), 16), m.group(2), m.group(3), int(m.group(4), 16), m.group(5)))
    return syms


@pytest.mark.parametrize("name", ALL)
def test_programs_match_objdump_function_symbols(objs: Path, objdump: str, name: str) -> None:
    obj = objs / f"{name}.o"
    spec = ObjectSpec.from_file(obj)
    secs = objdump_sections(objdump, obj)
    funcs = [(sec, value, size, sym) for value, flags, sec, size, sym in objdump_symbols(objdump, obj)
             if flags.strip().endswith("F") and sec != ".text"]
    ours = [(p.section, p.sec_insn_off * 8, len(p.insns), p.name) for p in spec.programs]
    assert sorted(ours) == sorted(funcs)
    for p in spec.programs:
        assert secs[p.section][1] == "TEXT"
        assert p.sec_insn_off * 8 + len(p.insns) <= secs[p.section][0]


@pytest.mark.parametrize("name", ["globals", "xdp_counter"])
def test_variables_match_objdump_object_symbols(objs: Path, objdump: str, name: str) -> None:
    obj = objs / f"{name}.o"
    spec = ObjectSpec.from_file(obj)
    secs = objdump_sections(objdump, obj)
    ref = {(sec, sym, value, size) for value, flags, sec, size, sym in objdump_symbols(objdump, obj)
           if flags.strip().endswith("O") and sec in {m.section for m in spec.maps}}
    ours = {(m.section, v.name, v.offset, v.size) for m in spec.maps if m.internal for v in m.variables}
    assert ours == ref
    for m in spec.maps:
        if m.internal:
            assert m.section is not None and m.value_size == secs[m.section][0]
    # the internal maps come in ELF section order
    order = list(secs)
    assert [m.section for m in spec.maps if m.internal] == sorted(
        (m.section for m in spec.maps if m.internal), key=lambda s: order.index(s or ""))


def _possible_cpus() -> int:
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    n = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


@pytest.mark.parametrize("name", LOADABLE)
def test_maps_match_the_kernel_after_bpftool_loadall(objs: Path, bpftool: str, bpffs: Path,
                                                     name: str) -> None:
    obj = objs / f"{name}.o"
    spec = ObjectSpec.from_file(obj)
    subprocess.run([bpftool, "prog", "loadall", str(obj), str(bpffs / "p"), "pinmaps",
                    str(bpffs / "m")], check=True, capture_output=True)
    shown = []
    for pin in os.listdir(bpffs / "m"):
        out = subprocess.run([bpftool, "-j", "map", "show", "pinned", str(bpffs / "m" / pin)],
                             capture_output=True, text=True, check=True).stdout
        shown.append((pin, json.loads(out)))
    shown.sort(key=lambda s: s[1]["id"])   # libbpf creates maps in its map order
    assert [pin for pin, _ in shown] == [m.name.replace(".", "_") for m in spec.maps]
    for m, (_, k) in zip(spec.maps, shown):
        assert k["name"] == m.name[:15]
        assert k["type"] == m.type_name
        assert (k["bytes_key"], k["bytes_value"]) == (m.key_size, m.value_size), m.name
        want_max = m.max_entries
        if m.type == constants.MAP_TYPE["perf_event_array"] and not want_max:
            want_max = _possible_cpus()   # libbpf sizes it at load
        assert k["max_entries"] == want_max, m.name
        assert k["flags"] == m.flags, m.name
    for p in spec.programs:
        assert (bpffs / "p" / p.name).exists()


@pytest.mark.parametrize("file_name", ["ü.o", "a\udcffb.o", "averyveryverylongname.o", "x.y.o"],
                         ids=["non-ascii", "non-utf8", "long", "two-dots"])
def test_object_and_internal_map_names_are_libbpfs_byte_for_byte(
        objs: Path, tmp_path: Path, file_name: str) -> None:
    # libbpf cuts the object name at 15 bytes and turns each byte the kernel refuses into
    # '_' (a two-byte letter becomes two); the spec must name maps as libbpf does, or
    # 'map name NAME' and pinmaps file names disagree with what inspect shows
    from pybpfobj.loader import BpfObject

    path = tmp_path / file_name
    shutil.copy(objs / "globals.o", path)
    spec = ObjectSpec.from_file(str(path))
    with BpfObject(str(path)) as obj:  # libbpf's open only: no root needed
        assert [m.name for m in spec.maps] == obj.map_names()
        assert os.fsencode(spec.name) == obj.name.encode("utf-8", "replace") or "\udcff" in spec.name
