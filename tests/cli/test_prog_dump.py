"""``prog dump xlated|jited`` on every program bpftool can load from bpf_progs/:
xlated against bpftool in every form, jited against the kernel's image."""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from clirun import ours as cli
from clirun import theirs as tool

from pybpfobj.kernel.info import prog_full_name
from pybpfobj.programs import Program

ROOT = Path(__file__).resolve().parent.parent.parent
OBJECTS = ["xdp_counter", "progs_all", "maps_all", "globals", "tailcall", "mapinmap", "heavy", "subprogs"]
# bpftool 7.1 takes one of these words at a time.  Its plain output is its linum output less the
# " [file:... line_col:N]" suffixes (text) or the file/line_num/line_col keys (JSON), so the plain
# references are derived from the linum ones: five bpftool runs per program instead of seven.
TOOL_TEXT_FORMS: list[list[str]] = [["opcodes"], ["linum"], ["visual"]]
TOOL_JSON_FORMS: list[list[str]] = [["opcodes"], ["linum"]]
_LINUM_SUFFIX = re.compile(r" \[file:[^\n]* line_num:\d+ line_col:\d+\]$", re.MULTILINE)


@pytest.fixture(scope="module")
def loaded(objs: Path, bpftool: str) -> Iterator[dict[str, list[Path]]]:
    """Every object of OBJECTS loaded once (bpftool loadall) on a private bpffs: name -> pins."""
    if os.geteuid() != 0:
        pytest.skip("needs root and a BPF-capable kernel")
    d = Path(tempfile.mkdtemp(prefix="pybpfobj-dump-"))
    subprocess.run(["mount", "-t", "bpf", "bpf", str(d)], check=True)
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda o: subprocess.run([bpftool, "prog", "loadall", str(objs / f"{o}.o"),
                                                    str(d / o)], check=True), OBJECTS))
        yield {o: sorted((d / o).iterdir()) for o in OBJECTS}
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
        shutil.rmtree(d, ignore_errors=True)


# bpftool 7.1 predates the kernel's per-CPU address mov (off -1) and prints it as a plain mov;
# we print upstream's spelling.
_PERCPU = re.compile(r"&\(void __percpu \*\)\((r\d+)\)")


def normalise(text: str) -> str:
    return _PERCPU.sub(r"\1", text.replace("\\&(void __percpu *)", "&(void __percpu *)"))


# -- dump xlated ------------------------------------------------------------------------------

@pytest.mark.parametrize("obj", OBJECTS)
def test_dump_xlated_matches_bpftool_in_every_form(obj: str, loaded: dict[str, list[Path]],
                                                    bpftool: str) -> None:
    pins = loaded[obj]
    assert pins
    jobs = [(pin, False, extra) for pin in pins for extra in TOOL_TEXT_FORMS]
    jobs += [(pin, True, extra) for pin in pins for extra in TOOL_JSON_FORMS]

    def theirs(job: tuple[Path, bool, list[str]]) -> tuple[int, str, str]:
        pin, js, extra = job
        return tool(bpftool, *(["-j"] if js else []), "prog", "dump", "xlated", "pinned", str(pin), *extra)

    # bpftool re-reads /proc/kallsyms for every dump: run its calls two at a time
    with ThreadPoolExecutor(2) as pool:
        reference = list(pool.map(theirs, jobs))
    for (pin, js, extra), (rc_t, t_out, _) in zip(jobs, reference):
        assert rc_t == 0, (pin, js, extra)
        forms = [(extra, t_out)]
        if extra == ["linum"] and not js:
            forms.append(([], _LINUM_SUFFIX.sub("", t_out)))
        elif extra == ["linum"]:
            plain = [{k: v for k, v in row.items() if k not in ("file", "line_num", "line_col")}
                     for row in json.loads(t_out)]
            forms.append(([], json.dumps(plain)))
        for words, ref in forms:
            rc_o, o_out, o_err = cli(*(["-j"] if js else []), "prog", "dump", "xlated", "pinned", str(pin),
                                     *words)
            assert (rc_o, o_err) == (0, ""), (pin, js, words)
            if not js:
                assert normalise(o_out) == ref, (pin, words)
                continue
            ours = json.loads(o_out)
            for row in ours:
                row["disasm"] = normalise(row["disasm"])
            assert ours == json.loads(ref), (pin, words)


def test_subprogram_calls_are_named_and_split_into_functions(loaded: dict[str, list[Path]]) -> None:
    pin = next(p for p in loaded["subprogs"] if p.name == "tc_subprogs")
    _, out, _ = cli("prog", "dump", "xlated", "pinned", str(pin))
    assert "int global_clamp(int v):\n" in out and "int mix(int a, int b):\n" in out
    assert "int loop_body(__u32 index, void * data):\n" in out
    assert re.search(r"\(85\) call pc\+\d+#bpf_prog_[0-9a-f]{16}_loop_body\n", out)
    assert re.search(r"\(85\) call pc\+\d+#bpf_prog_[0-9a-f]{16}_global_clamp\n", out)
    _, dot, _ = cli("prog", "dump", "xlated", "pinned", str(pin), "visual")
    assert dot.count('subgraph "cluster_') == 4   # tc_subprogs, loop_body, mix, global_clamp


def test_dump_xlated_file_writes_the_raw_image(loaded: dict[str, list[Path]], bpftool: str,
                                               tmp_path: Path) -> None:
    pin = str(loaded["xdp_counter"][0])
    out_t, out_o = tmp_path / "t.bin", tmp_path / "o.bin"
    subprocess.run([bpftool, "prog", "dump", "xlated", "pinned", pin, "file", str(out_t)], check=True)
    rc, out, _ = cli("-j", "prog", "dump", "xlated", "pinned", pin, "file", str(out_o))
    assert (rc, out) == (0, "null\n")
    assert out_o.read_bytes() == out_t.read_bytes() and len(out_o.read_bytes()) % 8 == 0


def test_several_matches_print_each_dump_with_a_header(objs: Path, bpffs: Path, bpftool: str) -> None:
    subprocess.run([bpftool, "prog", "loadall", str(objs / "tailcall.o"), str(bpffs / "a")], check=True)
    subprocess.run([bpftool, "prog", "loadall", str(objs / "tailcall.o"), str(bpffs / "b")], check=True)
    # bpf_func_process exists (at least) twice now; other tests may have more copies loaded.
    rc_t, t_out, _ = tool(bpftool, "prog", "dump", "xlated", "name", "bpf_func_process")
    rc_o, o_out, _ = cli("prog", "dump", "xlated", "name", "bpf_func_process")
    assert rc_o == rc_t == 0
    assert o_out == t_out
    _, t_js, _ = tool(bpftool, "-j", "prog", "dump", "xlated", "name", "bpf_func_process")
    _, o_js, _ = cli("-j", "prog", "dump", "xlated", "name", "bpf_func_process")
    assert json.loads(o_js) == json.loads(t_js)
    rc, _, err = cli("prog", "dump", "xlated", "name", "bpf_func_process", "visual")
    assert (rc, err) == (255, "Error: several programs matched\n")
    rc, out, _ = cli("prog", "dump", "jited", "name", "bpf_func_process")
    assert rc == 0 and out.count("bpf_prog_") >= 2 and re.match(r"\d+: xdp  name bpf_func_process  tag ", out)


def test_dump_errors_match_bpftool() -> None:
    assert cli("prog", "dump") == (255, "", "Error: expected 'xlated' or 'jited', got: (null)\n")
    rc, _, err = cli("prog", "dump", "xlated", "id", "99999999")
    assert (rc, err) == (255, "Error: get by id (99999999): No such file or directory\n")
    rc, _, err = cli("prog", "dump", "jited", "id", "99999999")
    assert (rc, err) == (255, "Error: get by id (99999999): No such file or directory\n")
    rc, _, err = cli("prog", "dump", "xlated", "pinned", "/nonexistent/x")
    assert rc == 255 and err.startswith("Error: bpf obj get (/nonexistent/x)")


# -- visual: the picture ----------------------------------------------------------------------

def test_visual_renders_the_graph_to_svg_and_png(loaded: dict[str, list[Path]], tmp_path: Path) -> None:
    assert shutil.which("dot"), "Graphviz is part of the set-up (scripts/setup.sh)"
    pin = str(next(p for p in loaded["subprogs"] if p.name == "tc_subprogs"))
    svg, png = tmp_path / "g.svg", tmp_path / "g.png"
    assert cli("prog", "dump", "xlated", "pinned", pin, "visual", str(svg)) == (0, "", "")
    text = svg.read_text()
    assert text.lstrip().startswith(("<?xml", "<svg")) and "</svg>" in text
    # every function is a titled cluster; instructions and branch labels are readable text
    for title in ("int tc_subprogs(struct __sk_buff * skb)", "int global_clamp(int v)",
                  "int mix(int a, int b)"):
        assert title in text
    assert "(95) exit" in text and "monospace" in text and "> T</text>" in text and "> F</text>" in text
    assert cli("prog", "dump", "xlated", "pinned", pin, "visual", str(png)) == (0, "", "")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dotfile = tmp_path / "g.dot"
    assert cli("prog", "dump", "xlated", "pinned", pin, "visual", str(dotfile))[0] == 0
    assert dotfile.read_text() == cli("prog", "dump", "xlated", "pinned", pin, "visual")[1]


def test_visual_without_graphviz_says_so_and_writes_nothing(loaded: dict[str, list[Path]], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    dot = shutil.which("dot")
    assert dot
    dot_dir = os.path.dirname(os.path.realpath(dot))
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and os.path.realpath(d) != dot_dir and not os.path.exists(os.path.join(d, "dot"))]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    assert shutil.which("dot") is None
    target = tmp_path / "g.svg"
    pin = str(loaded["xdp_counter"][0])
    rc, out, err = cli("prog", "dump", "xlated", "pinned", pin, "visual", str(target))
    assert (rc, out) == (255, "")
    assert err.startswith("Error: rendering the graph needs Graphviz's 'dot' program")
    assert not target.exists()
    # without a file name the DOT text needs no Graphviz
    assert cli("prog", "dump", "xlated", "pinned", pin, "visual")[1].startswith("digraph")


# -- dump jited -------------------------------------------------------------------------------

def _prologue_ok(insns: list[dict[str, object]]) -> bool:
    """This kernel's x86-64 JIT prologue: [endbr64], a 5-byte nop (the fentry patch site), the
    tail-call counter (xor rax, rax) or a 3-byte nop in its place, then push rbp; mov rbp, rsp."""
    ops = [(i["operation"], i["operands"]) for i in insns[:6]]
    if ops and ops[0][0] == "endbr64":
        ops = ops[1:]
    return (ops[0][0] == "nop" and insns[0 if insns[0]["operation"] == "nop" else 1]["opcodes"][:2]
            == ["0x0f", "0x1f"]
            and ops[1] in (("xor", ["rax", "rax"]), ("nop", ["dword", "ptr", "[rax]"]))
            and ops[2] == ("push", ["rbp"]) and ops[3] == ("mov", ["rbp", "rsp"]))


def test_dump_jited_disassembles_every_program_into_its_whole_image(loaded: dict[str, list[Path]]) -> None:
    pytest.importorskip("capstone")
    for pins in loaded.values():
        for pin in pins:
            with Program.from_pinned(str(pin)) as prog:
                pi = prog.info(jited=True, jited_ksyms=True)
                full_name = prog_full_name(prog.fd, pi)
            rc, out, err = cli("-j", "prog", "dump", "jited", "pinned", str(pin), "opcodes")
            assert (rc, err) == (0, ""), pin
            funcs = json.loads(out)
            assert len(funcs) == len(pi.jited_ksyms or []) >= 1, pin
            image = b"".join(bytes(int(b, 16) for b in i["opcodes"]) for f in funcs for i in f["insns"])
            assert image == pi.jited and len(image) == pi.jited_prog_len, pin
            for f in funcs:
                assert re.fullmatch(r"bpf_prog_[0-9a-f]{16}_\w+", f["name"]), (pin, f["name"])
                assert _prologue_ok(f["insns"]), (pin, f["name"], f["insns"][:5])
                pcs = [int(i["pc"], 16) for i in f["insns"]]
                sizes = [len(i["opcodes"]) for i in f["insns"]]
                assert pcs[0] == 0 and all(a + n == b for a, n, b in zip(pcs, sizes, pcs[1:]))
                assert all(i["operation"] != "(bad)" for i in f["insns"]), (pin, f["name"])
            assert funcs[0]["name"] == f"bpf_prog_{pi.tag}_{full_name}", pin


def test_dump_jited_text_labels_functions_and_interleaves_source(loaded: dict[str, list[Path]]) -> None:
    pytest.importorskip("capstone")
    pin = str(next(p for p in loaded["subprogs"] if p.name == "xdp_subprogs"))
    rc, out, _ = cli("prog", "dump", "jited", "pinned", pin)
    assert rc == 0 and out.endswith("\n\n")
    blocks = out.rstrip("\n").split("\n\n")
    assert [b.split("\n")[0] for b in blocks] == ["int xdp_subprogs(struct xdp_md * ctx):",
                                                  "int mix(int a, int b):", "int global_clamp(int v):"]
    for b in blocks:
        lines = b.split("\n")
        assert re.fullmatch(r"bpf_prog_[0-9a-f]{16}_\w+:", lines[1])
        assert re.fullmatch(r"   0:\tnop\tdword ptr \[rax \+ rax\]", lines[2 + lines[2].startswith(";")])
        assert any(ln.startswith("; ") for ln in lines)       # BTF line_info, placed by jited_line_info
        assert all(re.fullmatch(r"( {0,3}[0-9a-f]{1,4}:\t\S.*|; .*|.*:)", ln) for ln in lines[1:]), b
    assert "; return global_clamp(mix(len & 1, 2));\n" in out
    assert re.search(r"\n  [0-9a-f]{2}:\tcall\t0x[0-9a-f]+\n", out)
    _, lin, _ = cli("prog", "dump", "jited", "pinned", pin, "linum")
    assert re.search(r"; return global_clamp\(mix\(len & 1, 2\)\); \[file:\S*subprogs\.bpf\.c line_num:\d+ "
                     r"line_col:\d+\]\n", lin)
    _, opc, _ = cli("prog", "dump", "jited", "pinned", pin, "opcodes")
    assert "   0:\tnop\tdword ptr [rax + rax]\n\t0f 1f 44 00 00 \n" in opc
    _, js, _ = cli("-j", "prog", "dump", "jited", "pinned", pin, "linum")
    first = json.loads(js)[0]
    assert first["proto"] == "int xdp_subprogs(struct xdp_md * ctx)"
    assert first["insns"][0]["src"] == "int len = ctx->data_end - ctx->data;"
    assert first["insns"][0]["file"].endswith("subprogs.bpf.c") and first["insns"][0]["pc"] == "0x0"
    assert {"pc", "operation", "operands"} <= set(first["insns"][1]) and "opcodes" not in first["insns"][1]
    assert [i["operands"] for i in first["insns"] if i["operation"] == "leave"] == [[None]]


def test_dump_jited_file_writes_the_raw_image(loaded: dict[str, list[Path]], tmp_path: Path) -> None:
    pin = str(loaded["tailcall"][0])
    with Program.from_pinned(pin) as prog:
        jited = prog.info(jited=True).jited
    rc, out, _ = cli("-j", "prog", "dump", "jited", "pinned", pin, "file", str(tmp_path / "img"))
    assert (rc, out) == (0, "null\n")
    assert (tmp_path / "img").read_bytes() == jited
    rc, _, err = cli("prog", "dump", "jited", "pinned", pin, "file", str(tmp_path / "no" / "img"))
    assert rc == 255 and err.startswith(f"Error: can't open file {tmp_path}/no/img")
    rc, _, err = cli("prog", "dump", "jited", "pinned", pin, "visual")
    assert (rc, err) == (255, "Error: what is 'visual'?\n")


_NO_CAPSTONE = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "capstone" or name.startswith("capstone."):
            raise ImportError("capstone blocked for this test")
        return None
sys.meta_path.insert(0, Blocker())
from pybpfobj.cli.main import entry
sys.argv[0] = "pybpfobj"
entry()
"""


def test_dump_jited_without_capstone_says_how_to_get_it(loaded: dict[str, list[Path]], tmp_path: Path) -> None:
    pin = str(loaded["xdp_counter"][0])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", _NO_CAPSTONE, "prog", "dump", "jited", "pinned", pin],
                       capture_output=True, text=True, env=env, check=False)
    assert (p.returncode, p.stdout) == (255, "")
    assert p.stderr.startswith("Error: dump jited needs the capstone disassembler: pip install 'capstone>=5'")
    assert "Traceback" not in p.stderr
    # the raw image needs no disassembler
    p = subprocess.run([sys.executable, "-c", _NO_CAPSTONE, "prog", "dump", "jited", "pinned", pin,
                        "file", str(tmp_path / "img")], capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 0 and (tmp_path / "img").stat().st_size > 0


# -- prog profile -----------------------------------------------------------------------------

def _fds() -> set[str]:
    # objects earlier tests dropped close their fds when collected: collect first, so
    # only what the command under test leaves open counts
    gc.collect()
    return set(os.listdir("/proc/self/fd"))


def test_profile_checks_its_arguments_before_anything_is_loaded(loaded: dict[str, list[Path]]) -> None:
    pin = str(loaded["xdp_counter"][0])
    before = _fds()
    for words in (["pinned"], ["pinned", pin]):   # bpftool wants PROG and at least one more word
        rc, _, err = cli("prog", "profile", *words)
        assert rc == 255 and err.startswith("Error: too few parameters\nUsage: ")
    cases = {
        ("bogus",): "unknown metric bogus",
        ("cycles", "cycles"): "duplicated metric: cycles",
        ("cycles", "cyc"): "duplicated metric: cyc",
        ("cycles", "instructions", "l1d_loads", "llc_misses", "dtlb_misses"):
            "too many (5) metrics, please specify no more than 4 metrics at a time",
        ("duration", "x", "cycles"): "invalid duration: x",
        ("duration", "0", "cycles"): "invalid duration: 0",
        ("duration", "-3", "cycles"): "invalid duration: -3",
        ("duration",): "expected duration",
        ("duration", "5"): "no metric is selected",
    }
    for words, message in cases.items():
        assert cli("prog", "profile", "pinned", pin, *words) == (255, "", f"Error: {message}\n"), words
    rc, out, _ = cli("-j", "prog", "profile", "pinned", pin, "bogus")
    assert (rc, json.loads(out)) == (255, {"error": "unknown metric bogus"})
    assert _fds() == before


def test_profile_says_the_kernel_refuses_fentry_and_leaves_nothing_open(loaded: dict[str, list[Path]]) -> None:
    pin = str(next(p for p in loaded["subprogs"] if p.name == "xdp_subprogs"))
    before = _fds()
    rc, out, err = cli("prog", "profile", "pinned", pin, "duration", "1", "cycles", "instr")
    assert (rc, out) == (255, "")
    assert err == ("Error: prog profile needs fentry/fexit programs attached to xdp_subprogs, and the kernel "
                   "refused to load them: Operation not permitted (this kernel does not allow fentry/fexit "
                   "programs)\n")
    rc, out, _ = cli("-j", "prog", "profile", "pinned", pin, "cycles")
    assert rc == 255 and "fentry" in json.loads(out)["error"]
    assert _fds() == before
