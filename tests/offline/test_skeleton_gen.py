"""Skeleton generation: determinism, golden files, ruff + mypy --strict on the
generated modules, exact layouts against BTF, hostile names, the gen CLI.

Regenerate the golden files with ``PYBPFOBJ_REGEN_GOLDEN=1``.
"""

from __future__ import annotations

import ast
import ctypes
import importlib.util
import os
import struct
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from clirun import ours as cli

from pybpfobj.skeleton import generator
from pybpfobj.skeleton.naming import MAX_LEN, Scope, identifier, pystr
from pybpfobj.spec.btf import BTF, BtfKind
from pybpfobj.spec.elf import MapSpec, ObjectSpec, VarSpec

ROOT = Path(__file__).resolve().parent.parent.parent
GOLDEN = ROOT / "tests" / "golden" / "skeleton"
REGEN = os.environ.get("PYBPFOBJ_REGEN_GOLDEN") == "1"
EXPECTED_IMPORTS = {"__future__", "ctypes", "enum", "typing", "pybpfobj.skeleton"}


def built_objects(objs: Path) -> list[Path]:
    """Objects a skeleton can describe (the deliberately broken ones are excluded)."""
    out = []
    for p in sorted(objs.glob("*.o")):
        try:
            ObjectSpec.from_file(p)
        except Exception:  # noqa: BLE001, S112 - an object the reader refuses has no skeleton
            continue
        out.append(p)
    return out


def import_module(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def assert_no_injected_code(text: str) -> None:
    """Only the expected imports, and every top-level statement is one the template writes."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= EXPECTED_IMPORTS, ast.dump(node)
        elif isinstance(node, ast.ImportFrom):
            assert node.module in EXPECTED_IMPORTS, ast.dump(node)
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else "?"
            assert name in {"check_layout", "check_byte_order", "BitField", "TypedMap", "PerCpuMap", "QueueMap", "MapInMap",
                            "ProgArray", "RawMap", "Scalar", "Record", "InnerSpec", "_add", "_source",
                            "_section", "__init__", "super"} or name.startswith("_Maps") or name[:1].isupper() \
                or name.endswith(("Maps_0", "Progs_0")), ast.dump(node)


# ---------------------------------------------------------------------------
# our objects


@pytest.fixture(scope="module")
def generated(objs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Every object's skeleton (embedded), written to a temp package dir."""
    d = tmp_path_factory.mktemp("skels")
    out = {}
    for p in built_objects(objs):
        text = generator.generate(p)
        f = d / f"{p.stem}_skel.py"
        f.write_text(text)
        out[p.stem] = (f, text)
    assert "xdp_counter" in out and "maps_all" in out and "globals" in out
    return out


def test_generation_is_deterministic(objs: Path, generated: dict[str, tuple[Path, str]]) -> None:
    for stem, (_, text) in generated.items():
        assert generator.generate(objs / f"{stem}.o") == text, stem
        data = (objs / f"{stem}.o").read_bytes()
        assert generator.generate(data, name=stem) == text, stem


def test_generated_modules_import_and_check_their_layouts(generated: dict[str, tuple[Path, str]]) -> None:
    for stem, (path, text) in generated.items():
        mod = import_module(path, f"skel_{stem}")
        assert mod.OBJECT_NAME == stem
        assert_no_injected_code(text)


def ruff_both_ways(files: list[str]) -> None:
    """ruff with the project's configuration, and with ruff's defaults plus E501 (88 columns)."""
    for extra in ([], ["--isolated", "--extend-select", "E501,W"]):
        r = subprocess.run(check=False, args=[sys.executable, "-m", "ruff", "check", "--no-cache", *extra, *files],
                           capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0, f"ruff {extra}: {r.stdout}{r.stderr}"


def test_generated_modules_pass_ruff_and_mypy_strict(generated: dict[str, tuple[Path, str]]) -> None:
    files = [str(p) for p, _ in generated.values()]
    ruff_both_ways(files)
    for _, text in generated.values():  # short lines by layout, not by exemption
        assert "noqa" not in text and max(len(line) for line in text.splitlines()) <= 88
    env = dict(os.environ, MYPYPATH=str(ROOT))
    r = subprocess.run(check=False, args=[sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                        "--no-incremental", "--cache-dir=/dev/null", *files],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_knows_map_value_and_section_types(generated: dict[str, tuple[Path, str]],
                                                 tmp_path: Path) -> None:
    """A user script with a type error on a map value is caught by mypy; the correct one passes."""
    skel_dir = generated["xdp_counter"][0].parent
    good = tmp_path / "good.py"
    good.write_text(
        "from xdp_counter_skel import XdpCounter, stats\n"
        "def f(s: XdpCounter) -> int:\n"
        "    per_cpu: list[stats] = s.maps.stats[0]\n"
        "    v: int = s.rodata.verdict\n"
        "    return per_cpu[0].packets + v\n")
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from xdp_counter_skel import XdpCounter\n"
        "def f(s: XdpCounter) -> str:\n"
        "    return s.maps.stats[0]\n")
    env = dict(os.environ, MYPYPATH=f"{ROOT}:{skel_dir}")
    cmd = [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
           "--cache-dir=/dev/null"]
    r = subprocess.run(check=False, args=[*cmd, str(good)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout
    r = subprocess.run(check=False, args=[*cmd, str(bad)], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "list[stats]" in r.stdout, r.stdout


def test_golden_files(objs: Path) -> None:
    """Each object's skeleton (referenced by path, so goldens stay readable) equals its golden file."""
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for p in built_objects(objs):
        text = generator.generate(p, embed=False, path=f"bpf_progs/build/{p.name}")
        golden = GOLDEN / f"{p.stem}.py.txt"
        if REGEN or not golden.exists() and os.environ.get("CI", "") == "":
            golden.write_text(text)
        assert golden.exists(), f"missing golden {golden}: run with PYBPFOBJ_REGEN_GOLDEN=1"
        assert text == golden.read_text(), f"{p.name}: skeleton differs from {golden} " \
                                           "(PYBPFOBJ_REGEN_GOLDEN=1 to accept)"


def test_layouts_match_btf_sizes_and_offsets(objs: Path, generated: dict[str, tuple[Path, str]]) -> None:
    """Every generated struct/union has BTF's size and member offsets; bitfields round-trip."""
    mod = import_module(generated["maps_all"][0], "skel_maps_all_layout")
    btf = ObjectSpec.from_file(objs / "maps_all.o").btf
    assert btf is not None
    fv = btf.find("flow_value", BtfKind.STRUCT)
    assert ctypes.sizeof(mod.flow_value) == fv.size
    for m in fv.members:
        if m.name and not m.bitfield_size:
            assert getattr(mod.flow_value, m.name).offset * 8 == m.bit_offset, m.name
    v = mod.flow_value()
    v.flags_syn, v.flags_fin, v.reserved, v.ttl = 1, 0, 45, 200
    v.vlan, v.mark = 7, 9
    assert (v.flags_syn, v.flags_fin, v.reserved, v.ttl, v.vlan, v.mark) == (1, 0, 45, 200, 7, 9)
    raw = bytes(v)
    assert int.from_bytes(raw[20:22], "little") == 1 | (45 << 2) | (200 << 8)
    with pytest.raises(ValueError, match="ttl"):
        v.ttl = 256
    assert mod.flow_state.FLOW_CLOSED == 7
    assert ctypes.sizeof(mod.flow_value_nexthop) == 16
    assert mod.counter_t is ctypes.c_uint64


def test_anonymous_types_are_named_by_position(generated: dict[str, tuple[Path, str]]) -> None:
    text = generated["maps_all"][1]
    assert "class flow_value_nexthop(_rt.Union)" in text
    assert "class flow_value_anon0(_rt.Struct)" in text


def test_embedded_object_round_trips(objs: Path, generated: dict[str, tuple[Path, str]]) -> None:
    from pybpfobj.skeleton.runtime import object_bytes

    mod = import_module(generated["globals"][0], "skel_globals_embed")
    assert object_bytes(mod.Globals) == (objs / "globals.o").read_bytes()


def object_paths(text: str) -> list[str]:
    """Values given to OBJECT_PATH in a generated module.

    Read from the syntax tree, not the text: a long checkout path wraps the
    assignment over lines and splits the literal into pieces."""
    return [
        node.value.value
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "OBJECT_PATH"
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]


def test_path_mode_references_the_object(objs: Path) -> None:
    text = generator.generate(objs / "xdp_counter.o", embed=False)
    assert "_OBJECT: " not in text
    assert object_paths(text) == [str(objs / "xdp_counter.o")]


# ---------------------------------------------------------------------------
# names


def test_identifier_rules() -> None:
    assert identifier("stats") == "stats"
    assert identifier("class") == "class_"
    assert identifier("match") == "match_"
    assert identifier("__init__") == "c__init__"
    assert identifier("_fields_") == "c_fields_"
    assert identifier("9lives").startswith("n9lives")
    a, b = identifier("a-b"), identifier("a.b")
    assert a != b and a.startswith("a_b_x") and a.isidentifier()
    assert identifier("é") != identifier("e") and identifier("é").isascii()
    long = identifier("x" * 5000)
    assert len(long) <= MAX_LEN and long.isidentifier()
    assert identifier("x" * 5000) != identifier("x" * 5001)
    s = Scope({"from_buffer"})
    assert [s.claim("from_buffer"), s.claim("a"), s.claim("a"), s.claim("a")] == \
        ["from_buffer_", "a", "a_", "a_2"]
    for text in ['"""', "'", "a\nb", "\\", "\x00", "\udcff"]:
        lit = pystr(text)
        assert lit.isascii() and "\n" not in lit and ast.literal_eval(lit) == text


class RawBTF:
    """Builds raw little-endian BTF (for names no compiler would emit)."""

    def __init__(self) -> None:
        self.strings = bytearray(b"\0")
        self.types = bytearray()
        self.n = 0

    def s(self, text: str) -> int:
        off = len(self.strings)
        self.strings += text.encode("utf-8", "surrogateescape") + b"\0"
        return off

    def add(self, name: str, kind: int, vlen: int, size_or_type: int, extra: bytes = b"",
            kflag: bool = False) -> int:
        self.types += struct.pack("<III", self.s(name) if name else 0,
                                  (int(kflag) << 31) | (kind << 24) | vlen, size_or_type) + extra
        self.n += 1
        return self.n

    def int_(self, name: str, size: int, signed: bool = False) -> int:
        return self.add(name, 1, 0, size, struct.pack("<I", (int(signed) << 24) | size * 8))

    def struct_(self, name: str, size: int, members: list[tuple[str, int, int]], kflag: bool = False) -> int:
        extra = b"".join(struct.pack("<III", self.s(n) if n else 0, t, off) for n, t, off in members)
        return self.add(name, 4, len(members), size, extra, kflag)

    def enum_(self, name: str, values: list[tuple[str, int]]) -> int:
        extra = b"".join(struct.pack("<Ii", self.s(n), v) for n, v in values)
        return self.add(name, 6, len(values), 4, extra)

    def bytes_(self) -> bytes:
        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types),
                          len(self.strings))
        return hdr + bytes(self.types) + bytes(self.strings)


PAYLOAD = "x'); open('PWNED', 'w'); ('"
HOSTILE = ['"""', "'", "a\nimport os\nb", "__class__", "class", "_fields_", "from_buffer", "__init__",
           PAYLOAD, "x" * 3000, "é", "a b", "9", "None", "self", "_pad0", "_anon0"]


def hostile_spec() -> Any:
    b = RawBTF()
    u32 = b.int_("unsigned int", 4)
    u8 = b.int_("unsigned char", 1)
    # struct with every hostile member name, one per 4 bytes; plus a bitfield and an anonymous union
    members = [(n, u32, i * 32) for i, n in enumerate(HOSTILE)]
    anon = b.struct_("", 4, [("__dict__", u32, 0)])
    members.append(("", anon, len(HOSTILE) * 32))
    val = b.struct_('ev"il\nstruct', 4 * (len(HOSTILE) + 2),
                    members + [("bits\n", u8, (3 << 24) | (len(HOSTILE) + 1) * 32)], kflag=True)
    e = b.enum_("__import__", [(n, i) for i, n in enumerate(["_missing_", "name", "value", "mro", PAYLOAD,
                                                             "__new__", "A", "A"])])
    var_t = b.struct_("int", 8, [("os", e, 0), ("sys", u32, 32)])
    btf = BTF.from_bytes(b.bytes_(), source="hostile")
    maps = [
        MapSpec(name=PAYLOAD, type=1, key_size=4, value_size=btf.size_of(val), max_entries=4,
                key_type_id=u32, value_type_id=val),
        MapSpec(name="maps", type=2, key_size=4, value_size=8, max_entries=1, key_type_id=u32,
                value_type_id=var_t),
        MapSpec(name=".rodata", type=2, key_size=4, value_size=16, max_entries=1, internal=True,
                section=".rodata", variables=[VarSpec('"""', 0, 8, var_t, bytes(8)),
                                              VarSpec("__class__", 8, 4, u32, bytes(4)),
                                              VarSpec("load", 12, 4, u32, bytes(4))]),
    ]
    progs = [types.SimpleNamespace(name=n, section="xdp", prog_type="xdp", map_relocs={})
             for n in ("__init__", "open", 'p"""', "p" * 2000)]
    return types.SimpleNamespace(programs=progs, maps=maps, btf=btf)


def test_hostile_names_cannot_inject_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(generator, "_load_spec", lambda data, source: hostile_spec())
    monkeypatch.chdir(tmp_path)
    text = generator.generate(b"not used", name='ob"j\nimport os')
    assert generator.generate(b"not used", name='ob"j\nimport os') == text
    assert_no_injected_code(text)
    path = tmp_path / "hostile_skel.py"
    path.write_text(text)
    mod = import_module(path, "hostile_skel")
    assert not (tmp_path / "PWNED").exists()
    cls = next(v for v in vars(mod).values() if isinstance(v, type) and getattr(v, "__doc__", "") ==
               'struct ev"il\nstruct')
    inst = cls()
    for attr in ("class_", "c__class__", "c_fields_", "from_buffer_", "c__init__", "None_", "self",
                 "c_pad0", "c_anon0"):
        setattr(inst, attr, 7)
        assert getattr(inst, attr) == 7, attr
    assert isinstance(cls.from_buffer(bytearray(ctypes.sizeof(cls))), cls)  # not shadowed by a field
    inst.c__dict__ = 5  # promoted from the anonymous union-like member
    assert inst.c__dict__ == 5
    enum_cls = next(v for v in vars(mod).values() if isinstance(v, type) and v.__doc__ == "enum __import__")
    assert {"c_missing_", "name_", "value_", "mro_", "c__new__", "A", "A_"} <= set(enum_cls.__members__)
    ruff_both_ways([str(path)])
    r = subprocess.run(check=False, args=[sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                        "--no-incremental", "--cache-dir=/dev/null", str(path)],
                       capture_output=True, text=True, env=dict(os.environ, MYPYPATH=str(ROOT)))
    assert r.returncode == 0, r.stdout


def test_hostile_elf_names_patched_into_a_real_object(objs: Path, tmp_path: Path) -> None:
    """Same-length patches of the ELF/BTF string tables: program, map and variable names."""
    data = (objs / "xdp_counter.o").read_bytes()
    patched = data.replace(b"xdp_count\0", b"__class__\0").replace(b"verdict\0", b'"""\n#x\'\0') \
                  .replace(b"stats\0", b"a'\nb)\0")
    assert patched != data and len(patched) == len(data)
    text = generator.generate(patched, name="patched")
    assert_no_injected_code(text)
    path = tmp_path / "patched_skel.py"
    path.write_text(text)
    mod = import_module(path, "patched_skel")
    assert mod.Patched.OBJECT_NAME == "patched"
    assert "c__class__" in text and pystr("a'\nb)") in text


# ---------------------------------------------------------------------------
# errors


def test_object_without_btf_is_refused(tmp_path: Path, objs: Path) -> None:
    from pybpfobj.errors import ObjectFormatError

    with pytest.raises(ObjectFormatError):
        generator.generate(tmp_path / "missing.o")
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"\x7fELF not really")
    with pytest.raises(ObjectFormatError):
        generator.generate(junk)


def test_value_type_cannot_contain_itself() -> None:
    b = RawBTF()
    # struct a { struct a x; } is impossible in C; a hostile object may still claim it
    b.struct_("a", 4, [("x", 1, 0)])
    btf = BTF.from_bytes(b.bytes_(), source="loop")
    tg = generator.TypeGen(btf, Scope())
    with pytest.raises(generator.SkeletonError, match="contains itself"):
        tg.ref(1, "a")


# ---------------------------------------------------------------------------
# CLI


def test_cli_gen_skeleton_to_stdout_and_file(objs: Path, tmp_path: Path) -> None:
    obj = str(objs / "xdp_counter.o")
    rc, out, err = cli("gen", "skeleton", obj)
    assert rc == 0 and err == ""
    assert out == generator.generate(obj)
    target = tmp_path / "x_skel.py"
    rc, out, err = cli("gen", "skel", obj, "name", "my_app", "output", str(target))
    assert rc == 0 and out == "" and err == ""
    assert "class MyApp(_rt.Skeleton)" in target.read_text()
    rc, out, _ = cli("gen", "skeleton", obj, "path")
    assert rc == 0 and "_OBJECT: " not in out and object_paths(out) == [os.path.abspath(obj)]


def test_cli_gen_errors(objs: Path, tmp_path: Path) -> None:
    rc, _, err = cli("gen", "skeleton")
    assert rc == 255 and err.startswith("Error: expected FILE")
    rc, _, err = cli("gen", "skeleton", str(tmp_path / "nope.o"))
    assert rc != 0 and err.startswith("Error: ") and "nope.o" in err and "Traceback" not in err
    rc, _, err = cli("gen", "skeleton", str(objs / "xdp_counter.o"), "bogus")
    assert rc == 255 and "unknown arg bogus" in err
    rc, _, err = cli("gen", "skeleton", str(objs / "xdp_counter.o"), "name")
    assert rc == 255 and err.startswith("Error: expected an object name")
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"junk")
    target = tmp_path / "out.py"
    rc, _, err = cli("gen", "skeleton", str(junk), "output", str(target))
    assert rc != 0 and err.startswith("Error: ") and not target.exists()
    assert not list(tmp_path.glob("out.py.tmp*"))
    rc, _, err = cli("gen", "frobnicate")
    assert rc == 255 and "unknown command" in err
    rc, _, err = cli("gen", "skeleton", str(objs / "xdp_counter.o"), "output")
    assert rc == 255 and err.startswith("Error: expected a file after 'output'")
    rc, _, err = cli("gen", "skeleton", str(tmp_path / "nope.o"))
    assert rc == 254 and err.startswith("Error: failed to open BPF object file: ")


def test_gen_keeps_jinja2_out_of_cli_startup() -> None:
    code = "import sys, pybpfobj.cli.main, pybpfobj.cli.gen, pybpfobj.skeleton.runtime; " \
           "print('jinja2' in sys.modules, 'elftools' in sys.modules)"
    r = subprocess.run(check=False, args=[sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.stdout.split() == ["False", "False"], r.stdout + r.stderr


def test_line_breaker_keeps_meaning_and_width() -> None:
    from pybpfobj.skeleton import pyfmt

    long = "c" * 60
    exprs: list[pyfmt.Expr] = [
        pyfmt.Cat([f"x_{long}: ", pyfmt.parse_type_expr(f"_ct.Array[(({long} * 4294967295) * 5)]"), " = ",
                   pyfmt.Group("f", "(", [pyfmt.Str("s" * 200 + "\n'\""), "1", pyfmt.Group("", "(", ["2"], ")",
                                                                                         one_tuple=True)], ")")]),
        pyfmt.Cat([f"y_{long} = ", pyfmt.Opt("12345678901234567890123456789")]),
    ]
    for e in exprs:
        text = pyfmt.stmt(e, 4)
        assert max(len(line) for line in text.splitlines()) <= pyfmt.WIDTH, text
        assert ast.dump(ast.parse(text.strip())) == ast.dump(ast.parse(pyfmt.flat(e)))
    # an atom longer than any line: the module is exempted from E501 as a whole, and says so
    out = pyfmt.finish("# head\nx = " + "a" * 100 + "\n")
    assert out.splitlines()[1] == "# ruff: noqa: E501"


_STABLE_V1 = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner_pair {
    struct { __u32 a; __u16 b; } x;
    union { __u32 v4; __u8 v6[16]; } addr;
};
typedef struct { __u64 hits; struct { __u8 flag; } sub; } counters_t;
struct value {
    struct inner_pair p;
    counters_t c;
    struct { __u32 k; };
    enum { V_A, V_B } kind;
    __u32 bits : 3, more : 5;
};
%(EXTRA)s
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct value);
} vals SEC(".maps");

SEC("xdp")
int prog(struct xdp_md *ctx) { __u32 k = 0; return bpf_map_lookup_elem(&vals, &k) ? 2 : 1; }
char LICENSE[] SEC("license") = "GPL";
"""

# v2 adds, before everything of v1, an unrelated struct (anonymous members of the
# same shapes as v1's, a new typedef) used by a map declared first
_STABLE_EXTRA = r"""
typedef __u32 other_id_t;
struct unrelated {
    struct { __u32 a; __u16 b; } y;
    union { __u32 v4; __u8 v6[16]; } addr;
    enum { U_A } e;
    other_id_t id;
};
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, struct unrelated);
} other SEC(".maps");
"""


def _type_statements(text: str) -> dict[str, str]:
    """Each top-level statement of the module's types section, by the name it defines."""
    part = text.split("# -- types", 1)[1].split("\n", 1)[1].split("# -- maps", 1)[0]
    tree = ast.parse(part)
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            key = node.name
        elif isinstance(node, ast.Assign):
            key = ast.unparse(node.targets[0])
        else:
            assert isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            key = "check " + ast.unparse(node.value.args[0])
        out[key] = ast.get_source_segment(part, node) or ""
    return out


def test_names_and_code_of_types_survive_an_unrelated_addition(tmp_path: Path) -> None:
    import platform
    import shutil

    cc = shutil.which("clang-19") or shutil.which("clang")
    assert cc is not None, "clang is needed to build the test objects"
    texts = []
    for tag, extra in (("v1", ""), ("v2", _STABLE_EXTRA)):
        src = tmp_path / f"{tag}.bpf.c"
        src.write_text(_STABLE_V1 % {"EXTRA": extra})
        obj = tmp_path / f"{tag}.o"
        subprocess.run([cc, "-O2", "-g", "-target", "bpf", f"-I/usr/include/{platform.machine()}-linux-gnu",
                        "-c", str(src), "-o", str(obj)], check=True)
        texts.append(generator.generate(obj, name="stable"))
    v1, v2 = (_type_statements(t) for t in texts)
    assert {"inner_pair_x", "inner_pair_addr", "counters_t", "counters_t_sub", "value_anon0", "value_kind",
            "c__u32", "check value"} <= set(v1)
    assert "unrelated_y" in v2 and "other_id_t" in v2
    assert {k: v2.get(k) for k in v1} == v1  # same names, same code


_BITFIELDS_SRC = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bf { __u8 lead; __u32 a : 3, b : 7, c : 12; __s32 d : 5; __u16 e : 9; __u64 f : 40, g : 24; };
struct bf g_bf = { .lead = 0xAB, .a = 5, .b = 100, .c = 3000, .d = -7, .e = 300, .f = 0x12345678AB, .g = 0x654321 };

SEC("xdp")
int prog(struct xdp_md *ctx) { return g_bf.a; }
char LICENSE[] SEC("license") = "GPL";
"""
_BITFIELD_VALUES = {"a": 5, "b": 100, "c": 3000, "d": -7, "e": 300, "f": 0x12345678AB, "g": 0x654321}


@pytest.mark.parametrize("target", ["bpfel", "bpfeb"])
def test_bitfields_follow_the_objects_byte_order(tmp_path: Path, target: str) -> None:
    """The descriptors read the values the compiler stored in .data, for either byte order;
    a big-endian module refuses to import on a host of the other order, saying why."""
    import platform
    import shutil

    from elftools.elf.elffile import ELFFile

    from pybpfobj.errors import BpfError
    from pybpfobj.skeleton import runtime

    cc = shutil.which("clang-19") or shutil.which("clang")
    assert cc is not None, "clang is needed to build the test objects"
    src = tmp_path / "bf.bpf.c"
    src.write_text(_BITFIELDS_SRC)
    obj = tmp_path / f"bf_{target}.o"
    subprocess.run([cc, "-O2", "-g", "-target", target, f"-I/usr/include/{platform.machine()}-linux-gnu",
                    "-c", str(src), "-o", str(obj)], check=True)
    text = generator.generate(obj, name="bf")
    with open(obj, "rb") as f:
        data = ELFFile(f).get_section_by_name(".data").data()
    # the BitField descriptors of struct bf, as generated
    cls = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == "bf")
    fields = {}
    for node in cls.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and ast.unparse(node.value.func) == "_rt.BitField":
            args = [ast.literal_eval(a) for a in node.value.args]
            kw = {k.arg: ast.literal_eval(k.value) for k in node.value.keywords}
            fields[ast.unparse(node.targets[0])] = runtime.BitField(*args, **kw)
    assert set(fields) == set(_BITFIELD_VALUES)
    buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    for name, want in _BITFIELD_VALUES.items():
        assert fields[name].__get__(buf) == want, (target, name)
    fields["c"].__set__(buf, 4095)  # a write changes that field only
    assert [fields[n].__get__(buf) for n in "abc"] == [5, 100, 4095] and buf[0] == 0xAB
    path = tmp_path / f"bf_{target}_skel.py"
    path.write_text(text)
    ruff_both_ways([str(path)])
    if target == "bpfeb":
        assert "_rt.check_byte_order('big')" in text
        with pytest.raises(BpfError, match="big-endian BPF object; on this little-endian host"):
            import_module(path, f"bf_{target}_skel")
    else:
        assert "check_byte_order" not in text
        mod = import_module(path, f"bf_{target}_skel")
        v = mod.bf.from_buffer_copy(data[: ctypes.sizeof(mod.bf)])
        assert [getattr(v, n) for n in _BITFIELD_VALUES] == list(_BITFIELD_VALUES.values())
