"""Objects built differently from ours (tests/data/foreign/*.bpf.c, compiled here).

Each source is compiled with clang-19 in several ways (-g or not, -mcpu=v1..v4,
big endian, -O0) and every object must either be read by ObjectSpec or be
refused with an ObjectFormatError naming the file.  What we read is compared
with the system libbpf's own view of the object (``bpf_object__open``, no
load), with ``bpftool btf dump file`` and ``llvm-objdump -h``; generated
skeletons must import (their layout checks pass) and pass ``mypy --strict``.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from clirun import ours as cli

from pybpfobj import constants
from pybpfobj.errors import BpfError, ObjectFormatError
from pybpfobj.skeleton.generator import generate
from pybpfobj.spec.btf_format import format_value_text
from pybpfobj.spec.elf import ObjectSpec

ROOT = Path(__file__).resolve().parent.parent.parent
SRC = ROOT / "tests" / "data" / "foreign"
SOURCES = sorted(p.name[: -len(".bpf.c")] for p in SRC.glob("*.bpf.c"))
VARIANTS: dict[str, list[str]] = {
    "g": ["-O2", "-g", "-target", "bpf"],
    "nog": ["-O2", "-target", "bpf"],
    "v1": ["-O2", "-g", "-target", "bpf", "-mcpu=v1"],
    "v2": ["-O2", "-g", "-target", "bpf", "-mcpu=v2"],
    "v3": ["-O2", "-g", "-target", "bpf", "-mcpu=v3"],
    "v4": ["-O2", "-g", "-target", "bpf", "-mcpu=v4"],
    "eb": ["-O2", "-g", "-target", "bpfeb"],
    "O0": ["-O0", "-g", "-target", "bpf"],
}
# (source, variant) -> a phrase of the ObjectFormatError we give (libbpf refuses them too)
REFUSED = {
    **{("legacy_maps", v): "legacy map definitions in 'maps' section" for v in VARIANTS},
    ("mapattrs", "nog"): "'.maps' section without BTF",
    ("nolicense", "nog"): "'.maps' section without BTF",
    ("types_zoo", "nog"): "'.maps' section without BTF",
    ("struct_ops", "nog"): "'.struct_ops' section without BTF",
}
# clang itself refuses CO-RE builtins without -g
UNBUILDABLE = {("core_externs", "nog")}
CASES = [(s, v) for s in SOURCES for v in VARIANTS if (s, v) not in UNBUILDABLE]


def _clang() -> str:
    path = shutil.which("clang-19") or shutil.which("clang")
    if not path:
        pytest.skip("clang is not installed")
    return path


def compile_foreign(out_dir: Path, src: str, variant: str) -> Path:
    """Compile tests/data/foreign/SRC.bpf.c with VARIANT's flags into OUT_DIR."""
    out = out_dir / f"{src}_{variant}.o"
    arch = subprocess.run(["uname", "-m"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([_clang(), *VARIANTS[variant], f"-I/usr/include/{arch}-linux-gnu",
                    f"-fdebug-prefix-map={SRC}=.", "-c", str(SRC / f"{src}.bpf.c"), "-o", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    d = tmp_path_factory.mktemp("foreign")
    with ThreadPoolExecutor(2) as ex:
        paths = list(ex.map(lambda c: compile_foreign(d, *c), CASES))
    return dict(zip(CASES, paths, strict=True))


# -- libbpf's own view (bpf_object__open only: nothing is loaded) -------------------


class _Libbpf:
    def __init__(self) -> None:
        lib = ctypes.CDLL("libbpf.so.1")
        vp = ctypes.c_void_p
        lib.bpf_object__open.restype, lib.bpf_object__open.argtypes = vp, [ctypes.c_char_p]
        lib.libbpf_get_error.restype, lib.libbpf_get_error.argtypes = ctypes.c_long, [vp]
        lib.bpf_object__close.argtypes = [vp]
        for k in ("program", "map"):
            f = getattr(lib, f"bpf_object__next_{k}")
            f.restype, f.argtypes = vp, [vp, vp]
        for name in ("bpf_program__section_name", "bpf_program__name", "bpf_map__name"):
            f = getattr(lib, name)
            f.restype, f.argtypes = ctypes.c_char_p, [vp]
        for name in ("bpf_program__type", "bpf_program__autoload", "bpf_map__type",
                     "bpf_map__key_size", "bpf_map__value_size", "bpf_map__max_entries",
                     "bpf_map__map_flags", "bpf_map__numa_node"):
            f = getattr(lib, name)
            f.restype, f.argtypes = ctypes.c_uint, [vp]
        lib.bpf_map__map_extra.restype, lib.bpf_map__map_extra.argtypes = ctypes.c_ulonglong, [vp]
        # libbpf's open-time complaints go to stderr; keep the test output clean
        cb = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
        self._quiet = cb(lambda *_: 0)
        lib.libbpf_set_print.restype, lib.libbpf_set_print.argtypes = vp, [cb]
        self.lib = lib

    def view(self, path: Path) -> tuple[list[Any], list[Any]] | None:
        lib = self.lib
        old = lib.libbpf_set_print(self._quiet)
        try:
            obj = lib.bpf_object__open(str(path).encode())
        finally:
            restore = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
            lib.libbpf_set_print(ctypes.cast(old, restore) if old else restore())
        if not obj or lib.libbpf_get_error(obj):
            return None
        progs, maps = [], []
        p = None
        while p := lib.bpf_object__next_program(obj, p):
            progs.append((lib.bpf_program__name(p).decode(), lib.bpf_program__section_name(p).decode(),
                          lib.bpf_program__type(p), bool(lib.bpf_program__autoload(p))))
        m = None
        while m := lib.bpf_object__next_map(obj, m):
            maps.append((lib.bpf_map__name(m).decode(), lib.bpf_map__type(m), lib.bpf_map__key_size(m),
                         lib.bpf_map__value_size(m), lib.bpf_map__max_entries(m),
                         lib.bpf_map__map_flags(m), lib.bpf_map__numa_node(m), lib.bpf_map__map_extra(m)))
        lib.bpf_object__close(obj)
        return progs, maps


@pytest.fixture(scope="module")
def libbpf() -> _Libbpf:
    try:
        return _Libbpf()
    except OSError:
        pytest.skip("libbpf.so.1 is not installed")


def spec_view(spec: ObjectSpec) -> tuple[list[Any], list[Any]]:
    progs = [(p.name, p.section, constants.PROG_TYPE[p.prog_type] if p.prog_type else 0, p.autoload)
             for p in spec.programs]
    maps = [(m.name, m.type, m.key_size, m.value_size, m.max_entries, m.flags, m.numa_node, m.map_extra)
            for m in spec.maps]
    return progs, maps


def read(path: Path) -> ObjectSpec | ObjectFormatError:
    try:
        return ObjectSpec.from_file(path)
    except ObjectFormatError as e:
        return e


# -- the reader ------------------------------------------------------------------------


@pytest.mark.parametrize(("src", "variant"), CASES)
def test_reader_reads_or_refuses_naming_the_file(built: dict[tuple[str, str], Path], src: str,
                                                  variant: str) -> None:
    path = built[src, variant]
    got = read(path)   # any other exception fails the test
    if (src, variant) in REFUSED:
        assert isinstance(got, ObjectFormatError)
        assert str(path) in str(got) and REFUSED[src, variant] in str(got)
    else:
        assert isinstance(got, ObjectSpec), got
        assert got.programs


@pytest.mark.parametrize(("src", "variant"), [c for c in CASES if c[1] != "eb"])
def test_reader_agrees_with_libbpf_open(built: dict[tuple[str, str], Path], libbpf: _Libbpf, src: str,
                                        variant: str) -> None:
    """Programs (name, section, type, autoload) and maps (name, type, sizes, flags, numa, extra)."""
    path = built[src, variant]
    theirs = libbpf.view(path)
    got = read(path)
    if isinstance(got, ObjectFormatError):
        assert theirs is None, f"libbpf opens what we refuse: {got}"
        return
    assert theirs is not None
    assert spec_view(got) == theirs


def test_big_endian_objects_read_like_little_endian(built: dict[tuple[str, str], Path]) -> None:
    # libbpf 1.1 cannot open a foreign-endian object: compare with the -g build instead
    for src in SOURCES:
        le, be = read(built[src, "g"]), read(built[src, "eb"])
        if isinstance(le, ObjectFormatError):
            assert isinstance(be, ObjectFormatError)
            continue
        assert isinstance(be, ObjectSpec)
        le_progs, le_maps = spec_view(le)
        be_progs, be_maps = spec_view(be)
        assert be_progs == le_progs
        assert [m[:5] for m in be_maps] == [m[:5] for m in le_maps]
        for a, b in zip(le.maps, be.maps, strict=True):
            assert [(v.name, v.offset, v.size) for v in a.variables] == \
                   [(v.name, v.offset, v.size) for v in b.variables]
    rodata = read(built["types_zoo", "eb"])
    assert isinstance(rodata, ObjectSpec)
    rc, out, err = cli("-j", "inspect", str(built["types_zoo", "eb"]))
    assert rc == 0, err
    values = {v["name"]: v["value"] for m in json.loads(out)["maps"] for v in m.get("variables", [])}
    assert values["cfg_signed"] == "NEG_ONE" and values["cfg_neg64"] == "N64_MIN"
    assert values["g_packed"] == {"c": 1, "q": 2, "h": 3, "bits": "0x5", "more": "0x4d"}


def test_kconfig_externs_laid_out_as_libbpf_does(built: dict[tuple[str, str], Path]) -> None:
    """Sorted by alignment (largest first), then size, then name (libbpf's open log says so)."""
    spec = ObjectSpec.from_file(built["core_externs", "g"])
    m = spec.map(".kconfig")
    assert [(v.name, v.offset, v.size) for v in m.variables] == [
        ("CONFIG_NR_CPUS", 0, 8), ("CONFIG_HZ", 8, 4), ("LINUX_KERNEL_VERSION", 12, 4),
        ("CONFIG_BPF_SYSCALL", 16, 1), ("CONFIG_DEFAULT_HOSTNAME", 17, 64)]
    assert m.value_size == 81
    prog = spec.program("core_prog")
    externs = {r.target for r in prog.relocations if r.kind == "extern"}
    assert {"LINUX_KERNEL_VERSION", "cpu_hw_events"} <= externs


def test_autoload_off_programs_keep_libbpf_section_name(built: dict[tuple[str, str], Path]) -> None:
    spec = ObjectSpec.from_file(built["autoload_off", "g"])
    assert [(p.name, p.section, p.prog_type, p.autoload) for p in spec.programs] == [
        ("lazy_xdp", "xdp", "xdp", False), ("lazy_tc", "tc", "sched_cls", False),
        ("eager_sock", "socket", "socket_filter", True)]
    assert spec.program("lazy_xdp").func_info   # BTF.ext is still found under the ELF name "?xdp"
    rc, out, _ = cli("inspect", str(built["autoload_off", "g"]))
    assert rc == 0 and "lazy_xdp  section xdp  type xdp  attach_type xdp  insns 2  autoload off" in out
    progs = json.loads(cli("-j", "inspect", str(built["autoload_off", "g"]))[1])["programs"]
    assert [p.get("autoload", True) for p in progs] == [False, False, True]


def test_data_maps_of_static_variables_only_are_not_mmapable(built: dict[tuple[str, str], Path]) -> None:
    # libbpf 1.1.2 sets BPF_F_MMAPABLE only for a DATASEC with a non-static variable
    spec = ObjectSpec.from_file(built["progs_misc", "g"])
    flags = {m.section: m.flags for m in spec.maps}
    assert flags[".rodata"] == constants.BPF_F_RDONLY_PROG          # bpf_printk formats only
    assert flags[".rodata.str1.1"] == constants.BPF_F_RDONLY_PROG   # no DATASEC at all
    assert flags[".rodata.cfg"] == constants.BPF_F_RDONLY_PROG | constants.BPF_F_MMAPABLE
    assert flags[".data.foo"] == constants.BPF_F_MMAPABLE
    nog = ObjectSpec.from_file(built["progs_misc", "nog"])
    assert all(not m.flags & constants.BPF_F_MMAPABLE for m in nog.maps)
    skel = generate(built["progs_misc", "g"])
    assert "def data_foo(self)" in skel and "def rodata_cfg(self)" in skel
    assert "def rodata(self)" not in skel and "rodata_str1_1" not in skel


def test_map_attributes_read_from_foreign_map_definitions(built: dict[tuple[str, str], Path]) -> None:
    spec = ObjectSpec.from_file(built["mapattrs", "g"])
    assert spec.map("noprealloc").flags == constants.BPF_F_NO_PREALLOC | constants.BPF_F_ZERO_SEED
    assert spec.map("bloom").map_extra == 3 and spec.map("bloom").key_size == 0
    assert spec.map("numa").flags == constants.BPF_F_NUMA_NODE
    assert (spec.map("sized").key_size, spec.map("sized").value_size) == (4, 24)
    doc = json.loads(cli("-j", "inspect", str(built["mapattrs", "g"]))[1])
    bloom = next(m for m in doc["maps"] if m["name"] == "bloom")
    assert bloom["map_extra"] == 3 and bloom["type"] == "bloom_filter"


def test_struct_ops_map_read_offline(built: dict[tuple[str, str], Path]) -> None:
    spec = ObjectSpec.from_file(built["struct_ops", "g"])
    (m,) = spec.maps
    assert (m.name, m.type_name, m.section) == ("foreign_cc", "struct_ops", ".struct_ops")
    assert spec.btf is not None and spec.btf.type_name(m.value_type_id) == "struct tcp_congestion_ops"
    assert {p.prog_type for p in spec.programs} == {"struct_ops"}


# -- inspect against bpftool btf dump and llvm-objdump -----------------------------------


@pytest.mark.parametrize("src", [s for s in SOURCES if s != "legacy_maps"])
def test_inspect_agrees_with_bpftool_btf_dump_and_objdump(built: dict[tuple[str, str], Path],
                                                          bpftool: str, src: str) -> None:
    path = built[src, "g"]
    rc, out, err = cli("-j", "inspect", str(path))
    assert rc == 0, err
    doc = json.loads(out)
    types = {t["id"]: t for t in json.loads(subprocess.run(
        [bpftool, "-j", "btf", "dump", "file", str(path)], capture_output=True, text=True,
        check=True).stdout)["types"]}
    spec = ObjectSpec.from_file(path)
    for m, d in zip(spec.maps, doc["maps"], strict=True):
        for tid, tname in ((m.key_type_id, d["key_type"]), (m.value_type_id, d["value_type"])):
            if tid:
                t = types[tid]
                assert t["name"] in (tname or ""), (m.name, t, tname)
        if m.internal and m.value_type_id:
            ds = types[m.value_type_id]
            assert ds["kind"] == "DATASEC" and ds["name"] == m.section   # size: 0 until libbpf fixes it
            # (clang leaves DATASEC sizes and offsets 0: libbpf fills them in from the symbols)
            assert {v["name"] for v in d["variables"]} <= {types[v["type_id"]]["name"] for v in ds["vars"]}
    objdump = shutil.which("llvm-objdump") or shutil.which("llvm-objdump-14")
    if not objdump:
        return
    def lines(opt: str) -> list[list[str]]:
        out = subprocess.run([objdump, opt, str(path)], capture_output=True, text=True, check=True).stdout
        return [ln.split() for ln in out.splitlines()]

    # "IDX NAME SIZE VMA [TYPE]" and "VALUE FLAGS... SECTION SIZE NAME"
    secs = {w[1]: int(w[2], 16) for w in lines("-h") if len(w) >= 4 and w[0].isdigit()}
    syms = {(w[-3], w[-1]): int(w[0], 16) for w in lines("-t") if len(w) >= 5 and "O" in w[1:-3]}
    for p in doc["programs"]:
        elf_name = p["section"] if p.get("autoload", True) else "?" + p["section"]
        assert elf_name in secs
    for m in doc["maps"]:
        if "section" in m and m["section"] != ".kconfig":
            assert secs[m["section"]] == m["value_size"]
            for v in m.get("variables", []):
                assert syms[m["section"], v["name"]] == v["offset"], v


def test_inspect_keeps_every_anonymous_member(built: dict[tuple[str, str], Path]) -> None:
    doc = json.loads(cli("-j", "inspect", str(built["types_zoo", "g"]))[1])
    values = {v["name"]: v["value"] for m in doc["maps"] for v in m.get("variables", [])}
    assert values["g_anon"] == {"kind": 3, "a": 1, "b": 2, "named": {"ab": 0x20001}, "raw": [1, 0, 2, 0],
                                "sraw": [1, 0, 2, 0], "inner_x": 0, "l": 0, "d": 0.0}
    assert values["cfg_wide"] == "WIDE_BIG" and values["cfg_neg64"] == "N64_MIN"
    assert values["g_keywords"]["class"] == 1 and values["g_keywords"]["None"] == 3


def test_text_dump_prints_every_anonymous_member_as_bpftool_does(
        built: dict[tuple[str, str], Path]) -> None:
    spec = ObjectSpec.from_file(built["types_zoo", "g"])
    assert spec.btf is not None
    var = spec.map(".data").variable("g_anon")
    text = format_value_text(spec.btf, var.type_id, var.initial)
    assert text.count('"": {') == 5     # union{struct, union}, struct{union}
    assert '"a": 1' in text and '"raw": [1,0,2,0' in text and '"inner_x": 0' in text


# -- skeletons ---------------------------------------------------------------------------------


SKELETON_SOURCES = [s for s in SOURCES if s != "legacy_maps"]


@pytest.fixture(scope="module")
def skeletons(built: dict[tuple[str, str], Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("foreign_skel")
    out = {}
    for src in SKELETON_SOURCES:
        for variant in ("g", "v4"):
            f = d / f"skel_{src}_{variant}.py"
            f.write_text(generate(built[src, variant]))
            out[f"{src}_{variant}"] = f
    return out


def _import(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"foreign_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)   # runs the generated layout checks
    return mod


def test_skeletons_import_with_layout_checks_passing(skeletons: dict[str, Path]) -> None:
    for path in skeletons.values():
        _import(path)


def test_skeleton_types_match_btf_layout(skeletons: dict[str, Path],
                                         built: dict[tuple[str, str], Path]) -> None:
    mod = _import(skeletons["types_zoo_g"])
    spec = ObjectSpec.from_file(built["types_zoo", "g"])
    assert spec.btf is not None
    sections = {c.__doc__: c for c in vars(mod).values() if isinstance(c, type)
                and issubclass(c, ctypes.Structure) and (c.__doc__ or "").startswith("section ")}
    for m in spec.maps:
        if m.internal:
            cls = sections[f"section {m.section}"]
            assert ctypes.sizeof(cls) == m.value_size
            for v in m.variables:
                field = next(f[0] for f in cls._fields_ if getattr(cls, f[0]).offset == v.offset
                             and not f[0].startswith("_"))
                assert getattr(cls, field).size == v.size
    for name in ("keywords", "zoo_value", "packed_s", "over_aligned", "nested_anon", "with_zla"):
        tid = next(t.id for t in spec.btf.types() if t.name == name)
        assert ctypes.sizeof(getattr(mod, name)) == spec.btf.size_of(tid), name
    skel = mod.TypesZooG.open()
    try:
        assert (skel.rodata.cfg_signed, skel.rodata.cfg_wide, skel.rodata.cfg_neg64) == (
            -1, 0xFFFFFFFFF0000000, -(1 << 63))
        anon = skel.data.g_anon
        assert (anon.kind, anon.a, anon.b, anon.named.ab, list(anon.raw)) == (3, 1, 2, 0x20001, [1, 0, 2, 0])
        assert (skel.data.g_packed.bits, skel.data.g_packed.more, skel.data.g_packed.q) == (5, 77, 2)
        assert (skel.data.g_keywords.class_, skel.data.g_keywords.None_) == (1, 3)
    finally:
        skel.close()


def test_skeleton_refuses_big_endian_object_on_little_endian_host(built: dict[tuple[str, str], Path],
                                                                    tmp_path: Path) -> None:
    f = tmp_path / "skel_be.py"
    f.write_text(generate(built["types_zoo", "eb"]))
    if sys.byteorder == "little":
        with pytest.raises(BpfError, match="big-endian BPF object"):
            _import(f)
    else:
        _import(f)


def test_skeleton_refuses_object_without_btf_naming_it(built: dict[tuple[str, str], Path]) -> None:
    with pytest.raises(ObjectFormatError, match=r"progs_misc_nog\.o.*no BTF"):
        generate(built["progs_misc", "nog"])


def test_skeletons_pass_mypy_strict(skeletons: dict[str, Path]) -> None:
    paths = [str(p) for k, p in skeletons.items() if k.endswith("_g")]
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                        "--cache-dir=/dev/null", *paths], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
