"""format_value / format_value_text against bpftool's map dump on real maps.

Objects of bpf_progs/build are loaded with ``bpftool prog loadall ... pinmaps``
into a private bpffs; maps get values; every entry bpftool formats from the
kernel's BTF is compared with our formatting of the raw key/value bytes,
using the object's own .BTF (same type ids; DATASEC offsets fixed up from the
ELF symbols as libbpf does).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from pybpfobj.spec.btf import BTF, BtfKind, read_elf_btf
from pybpfobj.spec.btf_format import format_tree_text, format_value, pretty_json


def bt(bpftool: str, *args: str) -> str:
    return subprocess.run([bpftool, *args], capture_output=True, text=True, check=True).stdout


def map_kv_types(btf: BTF) -> dict[str, tuple[int, int]]:
    """map name -> (key type id, value type id) from the .maps DATASEC (0 when not BTF-typed)."""
    ds = btf.datasec(".maps")
    assert ds is not None
    out = {}
    for v in ds.secinfo:
        var = btf.type(v.type_id)
        st = btf.resolve(var.type_id)
        ids = {"key": 0, "value": 0}
        for m in st.members:
            if m.name in ids:
                ptr = btf.type(m.type_id)
                if ptr.kind is BtfKind.PTR:
                    ids[m.name] = ptr.type_id
        out[var.name] = (ids["key"], ids["value"])
    return out


def raw(hexes: list[str]) -> bytes:
    return bytes(int(x, 16) for x in hexes)


def hexargs(data: bytes) -> list[str]:
    return [f"{b:02x}" for b in data]


def expected(btf: BTF, kid: int, vid: int, entries: list[dict[str, Any]], text: bool) -> list[Any]:
    fmt = format_tree_text if text else format_value
    out = []
    for e in entries:
        d: dict[str, Any] = {}
        if kid:
            d["key"] = fmt(btf, kid, raw(e["key"]))
        if "values" in e:
            d["values"] = [{"cpu": c["cpu"], "value": fmt(btf, vid, raw(c["value"]))} for c in e["values"]]
        else:
            d["value"] = fmt(btf, vid, raw(e["value"]))
        out.append(d)
    return out


def check_map(bpftool: str, pin: Path, btf: BTF, kid: int, vid: int) -> int:
    entries = json.loads(bt(bpftool, "-j", "map", "dump", "pinned", str(pin)))
    for e, mine in zip(entries, expected(btf, kid, vid, entries, text=False)):
        assert e["formatted"] == mine, pin.name
    text = bt(bpftool, "map", "dump", "pinned", str(pin))
    assert text == pretty_json(expected(btf, kid, vid, entries, text=True)) + "\n", pin.name
    return len(entries)


def test_map_values_format_like_bpftool(bpftool: str, bpffs: Path, objs: Path) -> None:
    obj = objs / "maps_all.o"
    btf, _ = read_elf_btf(obj)
    kv = map_kv_types(btf)
    bt(bpftool, "prog", "loadall", str(obj), str(bpffs / "progs"), "pinmaps", str(bpffs / "maps"))
    maps = bpffs / "maps"
    fk, fv = btf.find("flow_key").id, btf.find("flow_value").id
    ksize, vsize = btf.size_of(fk), btf.size_of(fv)

    def flow_value(state: int, comm: bytes, seed: int) -> bytes:
        v = bytearray((i * seed + 5) & 0xFF for i in range(vsize))
        v[16:20] = state.to_bytes(4, "little")
        v[40:56] = comm.ljust(16, b"\0")
        return bytes(v)

    key1 = bytes(range(1, ksize + 1))
    key2 = bytes(ksize)
    for name in ("flows", "lru"):
        k = key1 if name == "flows" else key1[:4]
        bt(bpftool, "map", "update", "pinned", str(maps / name), "key", "hex", *hexargs(k),
           "value", "hex", *hexargs(flow_value(1, b"hi there", 37)))
    bt(bpftool, "map", "update", "pinned", str(maps / "flows"), "key", "hex", *hexargs(key2),
       "value", "hex", *hexargs(flow_value(7, b"\x01\x02bin", 11)))
    bt(bpftool, "map", "update", "pinned", str(maps / "flows"), "key", "hex", *hexargs(key2[:-1] + b"\x01"),
       "value", "hex", *hexargs(flow_value(12345, b"0123456789abcdef", 3)))
    bt(bpftool, "map", "update", "pinned", str(maps / "plain_array"), "key", "1", "0", "0", "0",
       "value", "hex", *hexargs((2**64 - 2).to_bytes(8, "little")))
    bt(bpftool, "map", "update", "pinned", str(maps / "routes"), "key", "24", "0", "0", "0", "10", "1", "2", "0",
       "value", "7", "0", "0", "0")
    bt(bpftool, "map", "update", "pinned", str(maps / "pcpu_array"), "key", "1", "0", "0", "0",
       "value", "1", "2", "3", "4", "5", "6", "7", "8")
    bt(bpftool, "map", "update", "pinned", str(maps / "pcpu_hash"), "key", "9", "0", "0", "0",
       "value", "1", "2", "3", "4", "5", "6", "7", "8")
    checked = 0
    for name in ("flows", "lru", "plain_array", "routes", "pcpu_array", "pcpu_hash", "inner_a"):
        kid, vid = kv[name]
        assert vid, name
        checked += check_map(bpftool, maps / name, btf, kid, vid)
    assert checked >= 10


def datasec_fixed(btf: BTF, obj: Path, sec: str) -> BTF:
    from elftools.elf.elffile import ELFFile

    with open(obj, "rb") as f:
        elf = ELFFile(f)
        s = elf.get_section_by_name(sec)
        idx = elf.get_section_index(sec)
        symtab = elf.get_section_by_name(".symtab")
        offs = {sym.name: sym["st_value"] for sym in symtab.iter_symbols()
                if sym["st_shndx"] == idx and sym["st_info"]["type"] == "STT_OBJECT"}
        return btf.fixup_datasec(sec, s["sh_size"], offs)


def test_global_data_maps_format_like_bpftool(bpftool: str, bpffs: Path, objs: Path) -> None:
    obj = objs / "globals.o"
    btf, _ = read_elf_btf(obj)
    bt(bpftool, "prog", "loadall", str(obj), str(bpffs / "progs"), "pinmaps", str(bpffs / "maps"))
    seen = set()
    for pin in sorted((bpffs / "maps").iterdir()):
        entries = json.loads(bt(bpftool, "-j", "map", "dump", "pinned", str(pin)))
        formatted = entries[0].get("formatted")
        if not formatted:
            continue
        (sec,) = formatted["value"].keys()
        fixed = datasec_fixed(btf, obj, sec)
        ds = fixed.datasec(sec)
        assert ds is not None
        check_map(bpftool, pin, fixed, 0, ds.id)
        seen.add(sec)
    assert {".rodata", ".data", ".bss", ".data.custom"} <= seen
