"""``prog dump xlated`` against bpftool on every program bpftool can load from bpf_progs/."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import pytest

from pybpfobj.cli.common import Context
from pybpfobj.cli.main import run

OBJECTS = ["xdp_counter", "progs_all", "maps_all", "globals", "tailcall", "mapinmap", "heavy"]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = run(list(argv), Context(out=out, err=err))
    return rc, out.getvalue(), err.getvalue()


def tool(bpftool: str, *argv: str) -> tuple[int, str, str]:
    p = subprocess.run([bpftool, *argv], capture_output=True, text=True, check=False)
    return p.returncode, p.stdout, p.stderr


# bpftool 7.1 predates the kernel's per-CPU address mov (off -1) and prints it as a plain mov;
# we print upstream's spelling.
_PERCPU = re.compile(r"&\(void __percpu \*\)\((r\d+)\)")


def normalise(text: str) -> str:
    return _PERCPU.sub(r"\1", text.replace("\\&(void __percpu *)", "&(void __percpu *)"))


@pytest.mark.parametrize("obj", OBJECTS)
def test_dump_xlated_matches_bpftool_in_every_form(obj: str, objs: Path, bpffs: Path, bpftool: str) -> None:
    d = bpffs / obj
    subprocess.run([bpftool, "prog", "loadall", str(objs / f"{obj}.o"), str(d)], check=True)
    pins = sorted(d.iterdir())
    assert pins
    for pin in pins:
        for extra in ([], ["opcodes"], ["linum"], ["visual"]):
            rc_t, t_out, _ = tool(bpftool, "prog", "dump", "xlated", "pinned", str(pin), *extra)
            rc_o, o_out, o_err = cli("prog", "dump", "xlated", "pinned", str(pin), *extra)
            assert (rc_o, o_err) == (rc_t, "")
            assert normalise(o_out) == t_out, (pin, extra)
        for extra in ([], ["opcodes"], ["linum"]):
            _, t_out, _ = tool(bpftool, "-j", "prog", "dump", "xlated", "pinned", str(pin), *extra)
            _, o_out, _ = cli("-j", "prog", "dump", "xlated", "pinned", str(pin), *extra)
            theirs, ours = json.loads(t_out), json.loads(o_out)
            for row in ours:
                row["disasm"] = normalise(row["disasm"])
            assert ours == theirs, (pin, extra)


def test_dump_xlated_file_writes_the_raw_image(objs: Path, bpffs: Path, bpftool: str) -> None:
    subprocess.run([bpftool, "prog", "loadall", str(objs / "xdp_counter.o"), str(bpffs / "p")], check=True)
    pin = str(bpffs / "p" / "xdp_count")
    out_t, out_o = bpffs.parent / f"{bpffs.name}-t.bin", bpffs.parent / f"{bpffs.name}-o.bin"
    try:
        subprocess.run([bpftool, "prog", "dump", "xlated", "pinned", pin, "file", str(out_t)], check=True)
        rc, out, _ = cli("-j", "prog", "dump", "xlated", "pinned", pin, "file", str(out_o))
        assert (rc, out) == (0, "null\n")
        assert out_o.read_bytes() == out_t.read_bytes() and len(out_o.read_bytes()) % 8 == 0
    finally:
        for f in (out_t, out_o):
            f.unlink(missing_ok=True)


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


def test_dump_errors_match_bpftool(bpftool: str) -> None:
    assert cli("prog", "dump") == (255, "", "Error: expected 'xlated' or 'jited', got: (null)\n")
    rc, _, err = cli("prog", "dump", "xlated", "id", "99999999")
    assert (rc, err) == (255, "Error: get by id (99999999): No such file or directory\n")
    rc, _, err = cli("prog", "dump", "xlated", "pinned", "/nonexistent/x")
    assert rc == 255 and err.startswith("Error: bpf obj get (/nonexistent/x)")


def test_visual_renders_svg_with_graphviz_or_says_it_is_missing(objs: Path, bpffs: Path,
                                                                 bpftool: str) -> None:
    import shutil

    subprocess.run([bpftool, "prog", "loadall", str(objs / "progs_all.o"), str(bpffs / "p")], check=True)
    pin = str(bpffs / "p" / "socket_filter")
    target = bpffs.parent / f"{bpffs.name}.svg"
    try:
        rc, _, err = cli("prog", "dump", "xlated", "pinned", pin, "visual", str(target))
        if shutil.which("dot"):
            assert rc == 0 and target.read_text().lstrip().startswith(("<?xml", "<svg"))
        else:
            assert rc == 255 and "Graphviz" in err and not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_dump_jited_without_capstone_says_so(objs: Path, bpffs: Path, bpftool: str) -> None:
    try:
        import capstone  # type: ignore[import-not-found]  # noqa: F401
        pytest.skip("capstone installed")
    except ImportError:
        pass
    subprocess.run([bpftool, "prog", "loadall", str(objs / "xdp_counter.o"), str(bpffs / "p")], check=True)
    rc, _, err = cli("prog", "dump", "jited", "pinned", str(bpffs / "p" / "xdp_count"))
    assert rc == 255 and "capstone" in err


def test_profile_checks_arguments_then_reports_the_fentry_refusal(objs: Path, bpffs: Path,
                                                                  bpftool: str) -> None:
    subprocess.run([bpftool, "prog", "loadall", str(objs / "xdp_counter.o"), str(bpffs / "p")], check=True)
    pin = str(bpffs / "p" / "xdp_count")
    assert cli("prog", "profile", "pinned", pin)[2] == "Error: no metric is selected\n"
    assert cli("prog", "profile", "pinned", pin, "bogus")[2] == "Error: unknown metric bogus\n"
    assert cli("prog", "profile", "pinned", pin, "cycles", "cycles")[2] == \
        "Error: duplicated metric: cycles\n"
    assert cli("prog", "profile", "pinned", pin, "duration", "x", "cycles")[2] == \
        "Error: invalid duration: x\n"
    rc, _, err = cli("prog", "profile", "pinned", pin, "duration", "1", "cycles", "instructions")
    assert rc == 255
    assert "fentry" in err and "Operation not permitted" in err
