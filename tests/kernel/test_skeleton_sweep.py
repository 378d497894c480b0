"""Generated skeletons and the pytest plugin used as an application would,
against the real kernel: data sections after load, escaped names, nested
types, per-CPU values, lifetimes (exceptions, two instances), and the plugin
run from a separate test project."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from pybpfobj.errors import MapError, MapFrozenError
from pybpfobj.skeleton.generator import generate

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "offline"))
from test_foreign_objects import compile_foreign
from test_skeleton_typing_sweep import COLLIDE_SUM, build_collide

pytestmark = pytest.mark.kernel
PKT = bytes(64)


def fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(scope="module")
def skel(objs: Path, tmp_path_factory: pytest.TempPathFactory) -> types.SimpleNamespace:
    d = tmp_path_factory.mktemp("ksweep")
    sources: dict[str, Path] = {s: objs / f"{s}.o" for s in ("globals", "maps_all", "xdp_counter")}
    sources["zoo"] = compile_foreign(d, "types_zoo", "g")
    sources["collide"] = build_collide(d)
    mods = {}
    for stem, obj in sources.items():
        path = d / f"{stem}_ksweep.py"
        path.write_text(generate(obj, name=stem))
        spec = importlib.util.spec_from_file_location(f"{stem}_ksweep", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods[stem] = mod
    return types.SimpleNamespace(**mods)


def test_sections_after_load_rodata_frozen_data_live_typos_refused(need_root: None, skel: Any) -> None:
    with skel.globals.Globals.open() as s:
        s.rodata.verdict = 2
        s.data_custom.custom_val = 5
        with pytest.raises(AttributeError, match="verdcit"):
            s.rodata.verdcit = 1  # a typo would otherwise configure nothing, silently
        s.load()
        assert s.rodata.verdict == 2 and s.rodata.cfg.port == s.rodata.cfg.port  # readable, nested too
        with pytest.raises(MapFrozenError, match="verdict"):
            s.rodata.verdict = 1
        assert s.progs.xdp_globals.test_run(PKT).retval == 2
        assert s.data.packets_seen >= 1 and s.bss.counter >= 1  # the program's writes are visible
        s.data.last_len, s.data_custom.custom_val = -5, 50
        assert s.data.last_len == -5 and s.data_custom.custom_val == 50
        with pytest.raises(AttributeError, match="packets_sen"):
            s.data.packets_sen = 1


def test_escaped_names_reach_the_right_kernel_objects(need_root: None, skel: Any) -> None:
    with skel.collide.Collide.open() as s:
        s.rodata.load = 100  # variables named like skeleton methods are plain fields
        s.data_open.open = 1000
        s.data.c__slots__ = 0
        s.load()
        assert s.progs.counter.test_run(PKT).retval == 2 and s.progs.get_.test_run(PKT).retval == 1
        assert s.maps.counter[0] == COLLIDE_SUM - 1 - 10 - 7 + 100 + 1000
        s.maps.get_[1] = 2
        assert s.maps.get_[1] == 2 and s.maps.get("get") is s.maps.get_
        assert s.data.c_pybpfobj_mapping == 8 and s.data_maps.in_maps == 11


def test_nested_structs_unions_bitfields_enums_round_trip(need_root: None, skel: Any) -> None:
    z = skel.zoo
    with z.Zoo.open() as s:
        s.rodata.cfg_wide = z.wide_enum.WIDE_BIG
        s.rodata.cfg_signed = z.signed_enum.NEG_BIG
        s.load()
        assert (s.rodata.cfg_wide, s.rodata.cfg_signed) == (z.wide_enum.WIDE_BIG, -(1 << 31))
        k = z.keywords(class_=1, None_=-3, self=65535, int_=-(1 << 63), c_pack_=255)
        v = z.zoo_value(kw=k)
        v.packed.q, v.packed.bits, v.packed.more = (1 << 64) - 1, 5, 8191
        v.al.x = -7
        v.na.kind, v.na.a, v.na.b, v.na.inner_x, v.na.d = 2, 0x1234, 0x5678, 9, 1.5
        v.zla.len = 3
        s.maps.zoo[k] = v
        got = s.maps.zoo[k]
        assert bytes(got) == bytes(v)
        assert (got.kw.None_, got.kw.self, got.kw.int_, got.packed.q, got.packed.bits, got.packed.more) == \
            (-3, 65535, -(1 << 63), (1 << 64) - 1, 5, 8191)
        assert (got.al.x, got.na.named.ab, got.na.raw[0], got.na.d, got.zla.len) == (-7, 0x56781234, 0x34, 1.5, 3)
        assert s.maps.zoo.keys()[0].None_ == -3
        m = s.maps.a_map_with_a_really_really_long_name_that_goes_on__x42545309
        m[0] = z.a_structure_with_a_really_really_long_name_that_go_x4364a0ac(
            se=z.signed_enum.NEG_ONE, we=z.wide_enum.WIDE_BIG, ne=z.neg64_enum.N64_MIN)
        assert z.signed_enum(m[0].se) is z.signed_enum.NEG_ONE and m[0].we == z.wide_enum.WIDE_BIG
        assert m[0].ne == z.neg64_enum.N64_MIN


def test_per_cpu_values_are_lists(need_root: None, skel: Any) -> None:
    m = skel.maps_all
    with m.MapsAll.open_and_load() as s:
        ncpu = s.maps.pcpu_hash.map.ncpus
        s.maps.pcpu_hash[1] = 3
        assert s.maps.pcpu_hash[1] == [3] * ncpu and s.maps.pcpu_hash.sum(1) == 3 * ncpu
        s.maps.pcpu_hash[2] = list(range(ncpu))
        assert s.maps.pcpu_hash[2] == list(range(ncpu))
        assert dict(s.maps.pcpu_hash.items()) == {1: [3] * ncpu, 2: list(range(ncpu))}
        assert s.maps.pcpu_hash.get(99) is None
        with pytest.raises(MapError, match="pcpu_hash.*one per possible CPU"):
            s.maps.pcpu_hash[3] = [1] * (ncpu + 1)
        s.maps.pcpu_array[0] = [m.addr_pair(src=i, dst=-1 & 0xFFFFFFFF) for i in range(ncpu)]
        assert [(a.src, a.dst) for a in s.maps.pcpu_array[0]] == [(i, 0xFFFFFFFF) for i in range(ncpu)]


def test_exception_inside_with_and_two_instances_leave_nothing(need_root: None, skel: Any) -> None:
    before = fds()
    m = skel.maps_all
    with pytest.raises(RuntimeError, match="boom"), m.MapsAll.open_and_load() as s:
        s.maps.outer_hash[1] = s.maps.outer_hash.new_inner(4)
        _ = s.maps.outer_hash.inner(1)
        raise RuntimeError("boom")
    assert "closed" in repr(s) and fds() == before
    a, b = m.MapsAll.open_and_load(), m.MapsAll.open_and_load()
    try:
        a.maps.plain_array[0], b.maps.plain_array[0] = 11, 22
        assert (a.maps.plain_array[0], b.maps.plain_array[0]) == (11, 22)
        assert a.maps.plain_array.map.id != b.maps.plain_array.map.id
        a.close()
        b.progs.xdp_maps.test_run(PKT)  # b still works with a closed
        assert b.maps.plain_array[0] >= 22
    finally:
        a.close()
        b.close()
    assert fds() == before


# ---------------------------------------------------------------------------
# the pytest plugin, from a separate project

PLUGIN_TESTS = '''
import os
from pathlib import Path

import pytest

from pybpfobj.pytest_plugin import assert_verdict

HERE = Path(__file__).parent
PINS = Path(os.environ["SWEEP_PIN_ROOT"])


@pytest.mark.parametrize("verdict,name", [(1, "XDP_DROP"), (2, "XDP_PASS")])
def test_param(bpf_object, verdict, name):
    obj = bpf_object(HERE / "my-prog.o", configure=lambda o: o.set_var("verdict", verdict))
    assert_verdict(obj.programs["xdp_count"], bytes(64), name, data_out=bytes(64))


def test_skeleton(bpf_skeleton, bpf_object):
    mod = bpf_skeleton(HERE / "my-prog.o")
    s = bpf_object(mod, configure=lambda sk: setattr(sk.rodata, "verdict", 1))
    assert_verdict(s.progs.xdp_count, bytes(64), "XDP_DROP")
    assert sum(x.packets for x in s.maps.stats[0]) == 1


def test_fail_verdict(bpf_object):
    obj = bpf_object(HERE / "my-prog.o")
    assert_verdict(obj.programs["xdp_count"], bytes(64), "XDP_DROP")


def test_fail_int_verdict(bpf_object):
    obj = bpf_object(HERE / "my-prog.o")
    assert_verdict(obj.programs["xdp_count"], bytes(64), 7)


def test_fail_data_out(bpf_object):
    obj = bpf_object(HERE / "my-prog.o")
    assert_verdict(obj.programs["xdp_count"], bytes(64), "XDP_PASS", data_out=bytes(63) + b"\\x01")


def test_fail_after_skeleton_pins(bpf_skeleton, bpf_object):
    s = bpf_object(bpf_skeleton(HERE / "pinbyname.o"), pin_root=PINS)
    assert (PINS / "pinned_hash").exists()
    raise RuntimeError("failure after pinning")


def test_fail_after_object_pins(bpf_object):
    bpf_object(HERE / "pinbyname.o", pin_root=PINS / "obj")
    raise RuntimeError("failure after pinning")


def test_bpf_fs(bpf_fs):
    assert os.path.ismount(bpf_fs)
    (bpf_fs / "d").mkdir()
    Path(os.environ["SWEEP_FS_RECORD"]).write_text(str(bpf_fs))
'''


@pytest.mark.parametrize("how", [["-p", "pybpfobj.pytest_plugin"], []], ids=["dash-p", "entry-point"])
def test_plugin_from_a_separate_project(need_root: None, objs: Path, bpffs: Path, tmp_path: Path,
                                        how: list[str]) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(objs / "xdp_counter.o", proj / "my-prog.o")
    shutil.copy(objs / "pinbyname.o", proj / "pinbyname.o")
    (proj / "test_app.py").write_text(textwrap.dedent(PLUGIN_TESTS))
    record = tmp_path / "bpf_fs_path"
    env = dict(os.environ, SWEEP_PIN_ROOT=str(bpffs), SWEEP_FS_RECORD=str(record))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *how, str(proj)],
                       capture_output=True, text=True, cwd=proj, env=env, check=False)
    out = r.stdout + r.stderr
    assert "already registered" not in out, out
    assert "5 failed, 4 passed" in out, out
    assert "program xdp_count: verdict XDP_PASS (2), expected XDP_DROP (1) on 64 bytes of input" in out
    assert "program xdp_count: verdict XDP_PASS (2), expected 7 on 64 bytes of input" in out
    assert "output packet differs: byte 63 is 0x00, expected 0x01" in out
    left = [p.name for p in bpffs.iterdir() if not p.name.endswith(".debug")]  # the kernel's preloaded iterators
    assert left == [], f"pins left after failing tests: {left}"
    fs = record.read_text()  # bpf_fs was unmounted and removed
    assert f" {fs} " not in Path("/proc/self/mounts").read_text() and not os.path.exists(fs)
