"""``prog run`` against bpftool 7.1 for every test-runnable program type (tests/data/run/run_progs.bpf.c)."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pybpfobj.errors import ProgramError
from pybpfobj.loader import BpfObject

ROOT = Path(__file__).resolve().parent.parent.parent
SRC = ROOT / "tests" / "data" / "run" / "run_progs.bpf.c"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run_progs.o"
    subprocess.run(["clang-19", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c",
                    str(SRC), "-o", str(out)], check=True, capture_output=True)
    return out


def _run(cmd: list[str], stdin: bytes | None, cwd: Path) -> tuple[int, str, str, dict[str, bytes]]:
    for f in cwd.iterdir():
        f.unlink()
    r = subprocess.run(cmd, input=stdin, capture_output=True, env=ENV, cwd=cwd, check=False)
    files = {f.name: f.read_bytes() for f in sorted(cwd.iterdir())}
    return r.returncode, re.sub(r"(duration[^0-9]*)[0-9]+", r"\g<1>N", r.stdout.decode()), r.stderr.decode(), files


CASES = [
    "xdp_len data_in {pkt} data_out -", "xdp_len data_in {pkt} data_out o",
    "xdp_len data_in {pkt} data_out - data_size_out 1000", "xdp_len data_in {empty}",
    "xdp_len data_in {pkt5} data_out -", "xdp_len data_in {pkt14} data_out -", "xdp_len data_in - data_out - <pkt",
    "xdp_len data_in - <empty", "xdp_len data_in {pkt} repeat 0", "-j xdp_len data_in {pkt} repeat 3",
    "xdp_len data_in {pkt} ctx_in {pkt5}", "xdp_len data_in {pkt} ctx_in {pkt} ctx_out -", "xdp_len repeat 2",
    "xdp_grow data_in {pkt} data_out -", "xdp_grow data_in {pkt} data_out o data_size_out 164",
    "-j tc_len data_in {pkt} data_out - ctx_in {skb} ctx_out -", "tc_len data_in {pkt} ctx_in {skb_small} ctx_out -",
    "tc_len data_in {pkt} ctx_in {skb_big} ctx_out c", "tc_len data_in {pkt} ctx_in - ctx_out - <skb",
    "tc_len data_in {pkt5}", "sock_len data_in {pkt} data_out -", "dissect data_in {pkt14} data_out -",
    "-p cg_egress data_in {pkt} ctx_in {skb} ctx_out -", "lookup ctx_in {sk}", "lookup data_in {pkt}",
    "rawtp_arg ctx_in {u64} data_in {pkt}",
]


def test_prog_run_matches_bpftool_for_every_runnable_type(need_root: None, bpffs: Path, bpftool: str, obj: Path,
                                                          tmp_path: Path) -> None:
    subprocess.run([bpftool, "prog", "loadall", str(obj), str(bpffs / "p")], check=True)
    inp = tmp_path / "in"
    inp.mkdir()
    blobs = {"pkt": bytes(range(64)), "empty": b"", "pkt5": bytes(5), "pkt14": bytes(range(14)),
             "skb": bytes(192), "skb_small": bytes(20), "skb_big": bytes(300), "sk": bytes(72),
             "u64": struct.pack("<QQ", 5, 6)}
    for k, v in blobs.items():
        (inp / k).write_bytes(v)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    diffs = []
    for case in CASES:
        text, _, stdin_name = case.partition(" <")
        stdin = blobs[stdin_name] if stdin_name else None
        words = text.format(**{k: str(inp / k) for k in blobs}).split()
        opts = [w for w in words if w.startswith("-") and w != "-"]
        rest = [w for w in words if w not in opts]
        args = [*opts, "prog", "run", "pinned", str(bpffs / "p" / rest[0]), *rest[1:]]
        theirs = _run([bpftool, *args], stdin, tmp_path / "a")
        ours = _run([sys.executable, "-m", "pybpfobj", *args], stdin, tmp_path / "b")
        if ours != theirs:
            diffs.append((case, theirs, ours))
    assert diffs == []


def test_prog_run_too_small_output_names_the_buffer_with_bpftools_exit_code(need_root: None, bpffs: Path,
                                                                           bpftool: str, obj: Path,
                                                                           tmp_path: Path) -> None:
    subprocess.run([bpftool, "prog", "loadall", str(obj), str(bpffs / "p")], check=True)
    (tmp_path / "pkt").write_bytes(bytes(64))
    (tmp_path / "skb").write_bytes(bytes(192))
    for prog, extra, which in (("xdp_grow", ["data_out", "-", "data_size_out", "64"], "data_size_out"),
                               ("tc_len", ["ctx_in", str(tmp_path / "skb"), "ctx_out", "-", "ctx_size_out", "10"],
                                "ctx_size_out")):
        args = ["prog", "run", "pinned", str(bpffs / "p" / prog), "data_in", str(tmp_path / "pkt"), *extra]
        t = subprocess.run([bpftool, *args], capture_output=True, text=True, check=False)
        o = subprocess.run([sys.executable, "-m", "pybpfobj", *args], capture_output=True, text=True, env=ENV,
                           check=False)
        assert (o.returncode, o.stdout) == (t.returncode, t.stdout) == (228, "")
        assert o.stderr == f"Error: failed to run program: No space left on device: {which} too small for " \
                           "the program's output\n"


def test_syscall_and_raw_tracepoint_programs_run_with_ctx_only(need_root: None, obj: Path) -> None:
    # bpftool 7.1 always sends repeat=1, which the kernel refuses (EINVAL) for these types
    with BpfObject(str(obj)) as o:
        o.load()
        r = o.programs["sys_ctx"].test_run(None, ctx_in=struct.pack("<II", 41, 0))
        assert (r.retval, r.data_out, r.ctx_out) == (7, None, struct.pack("<II", 41, 42))
        r = o.programs["rawtp_arg"].test_run(None, ctx_in=struct.pack("<QQ", 5, 6))
        assert (r.retval, r.ctx_out) == (5, None)
        with pytest.raises(ProgramError, match="ctx_size_out 4 is too small") as e:
            o.programs["sys_ctx"].test_run(None, ctx_in=struct.pack("<II", 41, 0), ctx_size_out=4)
        assert e.value.errno == 28
        with pytest.raises(ProgramError, match="runs once") as e:
            o.programs["sys_ctx"].test_run(None, ctx_in=bytes(8), repeat=3)
        with pytest.raises(ProgramError, match="ctx_size_out 10 is too small for the output context"):
            o.programs["tc_len"].test_run(bytes(64), ctx_in=bytes(192), ctx_size_out=10)


def test_cli_runs_a_syscall_program_and_writes_its_context(need_root: None, bpffs: Path, bpftool: str, obj: Path,
                                                           tmp_path: Path) -> None:
    subprocess.run([bpftool, "prog", "loadall", str(obj), str(bpffs / "p")], check=True)
    (tmp_path / "ctx").write_bytes(struct.pack("<II", 1, 0))
    r = subprocess.run([sys.executable, "-m", "pybpfobj", "-j", "prog", "run", "pinned", str(bpffs / "p" / "sys_ctx"),
                        "ctx_in", str(tmp_path / "ctx"), "ctx_out", str(tmp_path / "out")],
                       capture_output=True, text=True, env=ENV, check=False)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith('{"retval":7,')
    assert (tmp_path / "out").read_bytes() == struct.pack("<II", 1, 2)
