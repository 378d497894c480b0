"""Generated skeletons as an application developer types against them: correct
uses pass ``mypy --strict``, wrong ones are flagged (one mypy run for all);
misspelt fields fail at run time too; names that collide with each other,
with Python keywords or with the runtime's own attributes are escaped; a
path-mode skeleton whose object moved or was rebuilt says so."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from test_foreign_objects import compile_foreign

from pybpfobj.errors import NotFoundError, ObjectFormatError
from pybpfobj.skeleton import generator

ROOT = Path(__file__).resolve().parent.parent.parent

# map and program of the same name, variables named like keywords and like the
# runtime's attributes, custom sections named like skeleton methods
COLLIDE_SRC = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} counter SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} get SEC(".maps");

volatile const __u32 load = 1;
volatile const __u32 close = 2;
volatile const __u32 maps = 3;
volatile const __u32 lambda = 4;
volatile __u64 skeleton = 5;
volatile __u64 _pack_ = 6;
volatile __u64 __slots__ = 7;
volatile __u64 _pybpfobj_mapping = 8;
volatile __u64 from_buffer = 9;
__u32 open SEC(".data.open") = 10;
__u32 in_maps SEC(".data.maps") = 11;

SEC("xdp")
int counteR(struct xdp_md *ctx) {
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&counter, &k);
    if (v)
        *v += load + close + maps + lambda + skeleton + _pack_ + __slots__ + _pybpfobj_mapping
              + from_buffer + open + in_maps;
    return XDP_PASS;
}
SEC("xdp") int geT(struct xdp_md *ctx) { return XDP_DROP; }
char LICENSE[] SEC("license") = "GPL";
"""
# C forbids a map and a function of one name: the object gets them by a same-length
# rename of the compiled names (ELF symbols and BTF)
COLLIDE_RENAMES = ((b"counteR\0", b"counter\0"), (b"geT\0", b"get\0"))
COLLIDE_SUM = 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11


def build_collide(out_dir: Path) -> Path:
    """The name-collision object (also used by the kernel sweep)."""
    cc = shutil.which("clang-19") or shutil.which("clang")
    assert cc is not None, "clang is needed to build the test objects"
    src = out_dir / "collide.bpf.c"
    src.write_text(COLLIDE_SRC)
    raw = out_dir / "collide_raw.o"
    subprocess.run([cc, "-O2", "-g", "-target", "bpf", f"-I/usr/include/{platform.machine()}-linux-gnu",
                    f"-fdebug-prefix-map={out_dir}=.", "-c", str(src), "-o", str(raw)],
                   check=True, capture_output=True)
    data = raw.read_bytes()
    for old, new in COLLIDE_RENAMES:
        assert old in data
        data = data.replace(old, new)
    obj = out_dir / "collide.o"
    obj.write_bytes(data)
    return obj


def import_path(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def skels(objs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of skeleton modules: some of ours, a foreign one, the collision object."""
    d = tmp_path_factory.mktemp("typing_sweep")
    for stem in ("maps_all", "globals", "mapinmap", "xdp_counter"):
        (d / f"{stem}_skel.py").write_text(generator.generate(objs / f"{stem}.o"))
    zoo = compile_foreign(d, "types_zoo", "g")
    (d / "zoo_skel.py").write_text(generator.generate(zoo, name="zoo"))
    (d / "collide_skel.py").write_text(generator.generate(build_collide(d)))
    return d


GOOD = '''
from __future__ import annotations

from collide_skel import Collide
from globals_skel import Globals, config
from mapinmap_skel import Mapinmap
from maps_all_skel import MapsAll, addr_pair, flow_key, flow_value
from xdp_counter_skel import XdpCounter, stats
from zoo_skel import Zoo, keywords, wide_enum, zoo_value


def maps(s: MapsAll) -> int:
    k = flow_key()
    k.addrs.src = 1
    k.sport = 80
    v: flow_value = s.maps.flows[k]
    v.packets += 1
    v.ttl = 3
    v.comm = b"x"
    v.nexthop.ipv4 = 7
    s.maps.flows[k] = v
    s.maps.flows.update(k, v, "noexist")
    pc: list[addr_pair] = s.maps.pcpu_array[0]
    s.maps.pcpu_array[0] = [addr_pair(src=1)] * 2
    s.maps.pcpu_hash[1] = 3
    n: int = s.maps.plain_array[0] + pc[0].src + s.maps.pcpu_hash.sum(1)
    s.maps.plain_array[1] = 5
    s.maps.queue.push(3)
    q: int = s.maps.queue.pop()
    inner = s.maps.outer_hash.new_inner(8)
    inner[1] = 2
    s.maps.outer_hash[1] = inner
    s.maps.outer_hash[2] = inner.map
    i2: int = s.maps.outer_hash.inner(1)[1]
    s.maps.jumps[0] = "xdp_tail_a"
    s.maps.jumps[1] = s.progs.xdp_tail_b
    s.maps.flows.set_max_entries(10)
    raw: bytes = s.maps.sized_array[bytes(4)]
    got: flow_value | None = s.maps.lru.get(1)
    return n + q + i2 + len(raw) + v.hist[0] + (got.packets if got else 0)


def sections(g: Globals) -> int:
    g.rodata.verdict = 2
    g.rodata.cfg.port = 3
    c: config = g.bss.seen_cfg
    g.data.greeting = b"hi"
    g.data.ports[0] = 1
    g.data_custom.custom_arr[1] = 7
    return c.mode + g.data.packets_seen


def lifecycle() -> None:
    with XdpCounter.open() as skel:
        skel.rodata.verdict = 1
        skel.load()
        skel.progs.xdp_count.test_run(bytes(64))
        per: list[stats] = skel.maps.stats[0]
        print(sum(s.packets for s in per))
    with Mapinmap.open_and_load(pin_root="/sys/fs/bpf/x") as m:
        m.maps.outer_array[0] = m.maps.outer_array.new_inner()


def zoo(z: Zoo) -> int:
    k = keywords()
    k.class_ = 1
    k.None_ = -1
    v: zoo_value = z.maps.zoo[k]
    v.na.a = 1
    v.na.d = 1.5
    z.rodata.cfg_wide = wide_enum.WIDE_BIG
    return v.kw.self + v.packed.bits


def collide(c: Collide) -> int:
    c.rodata.load = 1
    c.rodata.lambda_ = 2
    c.data.c__slots__ = 3
    c.data.c_pybpfobj_mapping = 4
    c.data_open.open = 5
    c.load()
    c.progs.counter.test_run(bytes(64))
    c.progs.get_.test_run(bytes(64))
    c.close()
    return c.maps.counter[0] + c.maps.get_[1] + c.data_maps.in_maps + c.rodata.close
'''

# every line marked "# E" must get a mypy error, and no other line may
BAD = '''
from __future__ import annotations

from collide_skel import Collide
from globals_skel import Globals
from maps_all_skel import MapsAll, flow_key, flow_value
from zoo_skel import Zoo, keywords


def bad(s: MapsAll, g: Globals, z: Zoo, c: Collide) -> None:
    v = flow_value()
    v.packets = "x"  # E str into an int field
    v.ttl = "x"  # E str into a bitfield
    v.pakcets = 1  # E misspelt field
    s.maps.flows["k"] = v  # E wrong key type
    s.maps.flows[flow_key()] = 3  # E wrong value type
    s.maps.plain_array["a"] = 1  # E wrong key type (scalar)
    x: str = s.maps.plain_array[0]  # E value is an int
    s.maps.nosuch  # E unknown map
    s.progs.nosuch  # E unknown program
    g.nosuch  # E unknown skeleton attribute
    g.rodata.nosuch = 1  # E unknown .rodata variable
    g.rodata.verdict = "a"  # E str into an int variable
    print(g.bss.nosuch)  # E unknown .bss variable
    s.maps.outer_hash.new_inner("big")  # E new_inner size is an int
    s.maps.outer_hash.new_inner(max_entries=1.5)  # E new_inner size is an int
    s.maps.outer_hash.inner(0)["k"]  # E typed inner map
    s.maps.outer_hash[0] = 5.0  # E not an inner map
    s.maps.queue.push("x")  # E queue of ints
    s.maps.pcpu_hash[0] = "x"  # E per-CPU ints
    s.maps.jumps[0] = 1.5  # E not a program
    g.data.ports[0] = "x"  # E array of u16
    s.maps.flows.set_max_entries("10")  # E sizes are ints
    z.maps.zoo[keywords()].kw.class_ = "c"  # E nested struct field
    c.maps.get_["k"] = 1  # E escaped map name keeps its types
    c.rodata.lambda_ = b"x"  # E keyword-named variable keeps its type
'''


def test_mypy_accepts_correct_uses_and_flags_wrong_ones(skels: Path) -> None:
    """One mypy --strict run over the skeletons and both application modules."""
    (skels / "app_good.py").write_text(GOOD)
    (skels / "app_bad.py").write_text(BAD)
    env = dict(os.environ, MYPYPATH=f"{ROOT}:{skels}")
    files = sorted(str(p) for p in skels.glob("*.py"))
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
                        "--cache-dir=/dev/null", "--no-error-summary", *files],
                       capture_output=True, text=True, env=env, cwd=skels, check=False)
    errors: dict[str, set[int]] = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(.+?\.py):(\d+): error:", line)
        if m:
            errors.setdefault(Path(m.group(1)).name, set()).add(int(m.group(2)))
    assert set(errors) <= {"app_bad.py"}, r.stdout  # skeletons and correct uses are clean
    marked = {i for i, text in enumerate(BAD.splitlines(), 1) if "# E" in text}
    assert marked and errors.get("app_bad.py", set()) == marked, \
        f"missed: {sorted(marked - errors.get('app_bad.py', set()))}, unexpected: " \
        f"{sorted(errors.get('app_bad.py', set()) - marked)}\n{r.stdout}"


def test_misspelt_field_is_an_attribute_error_not_a_silent_python_attribute(skels: Path) -> None:
    mod = import_path(skels / "maps_all_skel.py", "sweep_maps_all")
    v = mod.flow_value(packets=1)
    with pytest.raises(AttributeError, match="pakcets"):
        v.pakcets = 5  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        v.nexthop.ipv5 = 1  # nested union too
    assert not hasattr(v, "__dict__")
    v.ttl, v.nexthop.ipv4 = 9, 7  # real fields and bitfields still work
    assert (v.ttl, v.nexthop.ipv4, ctypes.sizeof(v)) == (9, 7, 96)
    assert isinstance(v, ctypes.Structure) and isinstance(v.nexthop, ctypes.Union)
    assert mod.flow_value.from_buffer_copy(bytes(v)).ttl == 9


def test_colliding_names_are_escaped_and_distinct(skels: Path) -> None:
    mod = import_path(skels / "collide_skel.py", "sweep_collide")
    text = (skels / "collide_skel.py").read_text()
    assert "self.counter: _rt.TypedMap[_int, _int]" in text and "self.counter: _rt.ProgramRef" in text
    assert "self.get_: " in text and "_add('get'" in text
    section_fields = {f[0] for f in mod._Section_rodata_0._fields_} | {f[0] for f in mod._Section_data_0._fields_}
    assert {"load", "close", "maps", "lambda_", "skeleton", "c_pack_", "c__slots__", "c_pybpfobj_mapping",
            "from_buffer_"} <= section_fields
    for attr in ("data_open", "data_maps", "rodata", "data", "load", "close", "open"):
        assert hasattr(mod.Collide, attr), attr
    assert {"maps", "progs"} <= set(mod.Collide.__annotations__)
    assert callable(mod.Collide.load) and callable(mod.Collide.open)  # not shadowed by variables
    d = mod._Section_data_0()
    d.c_pybpfobj_mapping = 8  # the C variable, not the runtime's slot
    assert bytes(d).count(8) == 1


def test_generation_is_deterministic_for_the_collision_object(skels: Path, tmp_path: Path) -> None:
    obj = build_collide(tmp_path)
    assert generator.generate(obj) == (skels / "collide_skel.py").read_text()
    assert generator.generate(obj.read_bytes(), name="collide") == generator.generate(obj)


def test_path_mode_skeleton_names_a_moved_or_rebuilt_object(objs: Path, tmp_path: Path) -> None:
    obj = tmp_path / "counter.o"
    shutil.copy(objs / "xdp_counter.o", obj)
    (tmp_path / "counter_path_skel.py").write_text(generator.generate(obj, embed=False))
    mod = import_path(tmp_path / "counter_path_skel.py", "sweep_counter_path")
    moved = tmp_path / "elsewhere.o"
    obj.rename(moved)
    with pytest.raises(NotFoundError, match=re.escape(str(obj)) + ".*does not exist.*path=") as ei:
        mod.Counter.open()
    assert ei.value.path == str(obj)
    shutil.copy(objs / "globals.o", obj)  # something else rebuilt at the old path
    with pytest.raises(ObjectFormatError, match="not the object it was generated from"):
        mod.Counter.open()
    with pytest.raises(ObjectFormatError, match="regenerate"):
        mod.Counter.open(path=str(objs / "globals.o"))
