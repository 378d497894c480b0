"""``pybpfobj btf dump file``: differential against bpftool (text and JSON), and errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from clirun import ours, theirs

DATA = Path(__file__).resolve().parent.parent / "data" / "btf"
VMLINUX = "/sys/kernel/btf/vmlinux"


@pytest.fixture(scope="module")
def files(objs: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = sorted(objs.glob("*.o"))
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang:
        d = tmp_path_factory.mktemp("btfcli")
        for target in ("bpfel", "bpfeb"):
            o = d / f"kinds_{target}.o"
            subprocess.run([clang, "-O2", "-g", "-target", target, "-c", str(DATA / "kinds.c"), "-o", str(o)],
                           check=True)
            out.append(o)
    return out


def test_raw_text_and_json_equal_bpftool_on_objects(bpftool: str, files: list[Path]) -> None:
    for f in files:
        assert ours("btf", "dump", "file", str(f)) == theirs(bpftool, "btf", "dump", "file", str(f)), f
        assert ours("btf", "dump", "file", str(f), "format", "raw")[1] == \
            theirs(bpftool, "btf", "dump", "file", str(f))[1]
        rc, out, _ = ours("-j", "btf", "dump", "file", str(f))
        assert rc == 0 and json.loads(out) == json.loads(theirs(bpftool, "-j", "btf", "dump", "file", str(f))[1])


def test_raw_text_equals_bpftool_on_vmlinux(bpftool: str) -> None:
    if not os.path.exists(VMLINUX):
        pytest.skip("no vmlinux BTF")
    rc, out, err = ours("btf", "d", "file", VMLINUX)
    assert (rc, err) == (0, "")
    ref = theirs(bpftool, "btf", "dump", "file", VMLINUX)[1]
    assert out.count("\n[") == ref.count("\n[")
    assert out == ref


@pytest.mark.parametrize("argv", [
    ["btf", "dump", "file", "/nonexistent/x.o"],
    ["btf", "dump", "file", VMLINUX, "format", "x"],
    ["btf", "dump", "file", VMLINUX, "bogus"],
    ["btf", "dump"],
    ["btf", "dump", "file"],
    ["btf", "dump", "nosuch", "x"],
])
def test_errors_match_bpftool(bpftool: str, argv: list[str]) -> None:
    rc, out, err = ours(*argv)
    trc, tout, terr = theirs(bpftool, *argv)
    assert rc == trc and out == tout == ""
    first = err.splitlines()[0]
    assert first.startswith("Error: ") and "Traceback" not in err
    assert first.split(":")[0] == terr.splitlines()[-1 if "libbpf" in terr else 0].split(":")[0]
    if "nonexistent" in argv[-1] or "format" in argv or "bogus" in argv or argv[2:3] == ["nosuch"]:
        assert first == next(line for line in terr.splitlines() if line.startswith("Error"))


def test_json_error_for_missing_file(bpftool: str) -> None:
    rc, out, _ = ours("-j", "btf", "dump", "file", "/nonexistent")
    assert rc == 254 and json.loads(out) == {"error": "failed to load BTF from /nonexistent: No such file or directory"}


def test_corrupted_file_is_a_clean_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.btf"
    p.write_bytes(b"\x9f\xeb\x01\x00\x18\x00\x00\x00" + b"\xff" * 16)
    rc, _out, err = ours("btf", "dump", "file", str(p))
    assert rc == 234 and err.startswith(f"Error: failed to load BTF from {p}: {p}: invalid BTF: ")


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["btf", "dump", "file", VMLINUX, "format"], 234, "Error: expecting value for 'format' option"),
])
def test_a_format_without_value_is_an_error_with_bpftools_exit_code(argv: list[str], code: int,
                                                                     message: str) -> None:
    rc, out, err = ours(*argv)
    assert (rc, out) == (code, "") and err.startswith(message) and "Traceback" not in err
