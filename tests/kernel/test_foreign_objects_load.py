"""Foreign objects (tests/data/foreign/) on the kernel: what ObjectSpec reads offline is
what gets created, by our loader (the system libbpf 1.1.2) and by ``bpftool prog loadall``.

bpftool 7.1 carries its own libbpf, which sets BPF_F_MMAPABLE on every data map; the
system libbpf (and ObjectSpec) only on those with a non-static variable, so flags are
compared with our loader's maps, names/types/sizes with bpftool's as well.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pybpfobj import constants
from pybpfobj.errors import BpfError, ProgramError
from pybpfobj.loader import BpfObject
from pybpfobj.spec.elf import ObjectSpec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "offline"))
from test_foreign_objects import compile_foreign

pytestmark = pytest.mark.usefixtures("need_root")

# objects the verifier accepts here (struct_ops, legacy maps: offline only)
LOADABLE = ["types_zoo", "mapattrs", "progs_misc", "core_externs", "nolicense", "autoload_off"]


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("foreign_load")
    return {s: compile_foreign(d, s, "g") for s in LOADABLE}


@pytest.mark.parametrize("src", LOADABLE)
def test_loader_creates_the_maps_and_programs_the_spec_describes(foreign: dict[str, Path], src: str) -> None:
    spec = ObjectSpec.from_file(foreign[src])
    with BpfObject(foreign[src]) as obj:
        obj.load()
        maps = obj.maps
        assert list(maps) == [m.name for m in spec.maps]
        for m in spec.maps:
            info = maps[m.name].info()
            assert (info.type, info.key_size, info.value_size, info.max_entries, info.map_flags,
                    info.map_extra) == (m.type, m.key_size, m.value_size, m.max_entries, m.flags,
                                        m.map_extra), m.name
        progs = obj.programs
        # SEC("?...") programs are not loaded
        assert list(progs) == [p.name for p in spec.programs if p.autoload]
        for p in spec.programs:
            if p.autoload:
                assert progs[p.name].type == p.prog_type


def _show(bpftool: str, kind: str, path: Path) -> dict[str, Any]:
    out = subprocess.run([bpftool, "-j", kind, "show", "pinned", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


@pytest.mark.parametrize("src", [s for s in LOADABLE if s != "autoload_off"])
def test_bpftool_loadall_agrees_with_spec(foreign: dict[str, Path], bpftool: str, bpffs: Path,
                                          src: str) -> None:
    spec = ObjectSpec.from_file(foreign[src])
    progdir, mapdir = bpffs / "progs", bpffs / "maps"
    subprocess.run([bpftool, "prog", "loadall", str(foreign[src]), str(progdir), "pinmaps", str(mapdir)],
                   check=True, capture_output=True)
    progs = {p.name: _show(bpftool, "prog", progdir / p.name) for p in spec.programs}
    for p in spec.programs:
        assert progs[p.name]["type"] == p.prog_type
    # pinned map files are named after the maps with '.' as '_'
    for m in spec.maps:
        info = _show(bpftool, "map", mapdir / m.name.replace(".", "_"))
        assert info["name"] == m.name[:15]
        assert info["type"] == m.type_name
        assert (info["bytes_key"], info["bytes_value"], info["max_entries"]) == (m.key_size, m.value_size,
                                                                                m.max_entries)
        assert info["flags"] & ~constants.BPF_F_MMAPABLE == m.flags & ~constants.BPF_F_MMAPABLE


def test_set_autoload_loads_a_question_mark_section_program(foreign: dict[str, Path]) -> None:
    with BpfObject(foreign["autoload_off"]) as obj:
        assert [obj.autoload(p) for p in ("lazy_xdp", "lazy_tc", "eager_sock")] == [False, False, True]
        obj.set_autoload("lazy_xdp")
        obj.set_autoload("eager_sock", False)
        obj.load()
        assert sorted(obj.programs) == ["lazy_xdp"]
        assert obj.programs["lazy_xdp"].type == "xdp"
        with pytest.raises(BpfError, match="configure it before load"):
            obj.set_autoload("lazy_tc")


def test_skeleton_program_autoload_is_settable_before_load(foreign: dict[str, Path], tmp_path: Path) -> None:
    from pybpfobj.skeleton import generator

    mod_path = tmp_path / "autoload_skel.py"
    mod_path.write_text(generator.generate(foreign["autoload_off"], name="autoload_skel"))
    sys.path.insert(0, str(tmp_path))
    try:
        import autoload_skel  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    with autoload_skel.AutoloadSkel.open() as skel:
        progs = skel.progs
        assert (progs.lazy_xdp.autoload, progs.eager_sock.autoload) == (False, True)
        progs.lazy_xdp.autoload = True
        skel.load()
        assert progs.lazy_xdp.fd >= 0 and progs.eager_sock.fd >= 0
        with pytest.raises(ProgramError, match=r"no loaded program 'lazy_tc' \(its autoload is off"):
            _ = progs.lazy_tc.fd
