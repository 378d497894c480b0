"""``prog run|attach|detach|tracelog``: differential against bpftool 7.1, and errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pybpfobj.loader import BpfObject

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from netns import build_runtime_events

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(cmd: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    r = subprocess.run(cmd, input=stdin, capture_output=True, env=ENV, check=False)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def ours(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    return run([sys.executable, "-m", "pybpfobj", *args], stdin)


def theirs(bpftool: str, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    return run([bpftool, *args], stdin)


def no_duration(text: str) -> str:
    return re.sub(r'(duration[^0-9]*)[0-9]+', r"\g<1>N", text)


@pytest.fixture
def pinned(need_root: None, objs: Path, bpffs: Path) -> Iterator[Path]:
    """tailcall.o and progs_all.o programs pinned under bpffs/t and bpffs/p, maps under bpffs/m."""
    with BpfObject(objs / "tailcall.o") as t, BpfObject(objs / "progs_all.o") as p:
        t.load()
        p.load()
        t.pin_programs(str(bpffs / "t"))
        p.pin_programs(str(bpffs / "p"))
        p.pin_maps(str(bpffs / "m"))
        yield bpffs


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "pkt").write_bytes(bytes(range(64)))
    (tmp_path / "ctx").write_bytes(bytes(24))
    return tmp_path


RUN_CASES = [
    ["data_in", "{pkt}"],
    ["data_in", "{pkt}", "data_out", "-"],
    ["data_in", "{pkt}", "data_out", "-", "data_size_out", "100", "ctx_in", "{ctx}", "ctx_out", "-"],
    ["data_in", "{pkt}", "repeat", "5"],
    ["repeat", "2", "data_in", "{pkt}", "ctx_in", "{ctx}"],
    ["data_in", "/nonexistent/pkt"],
    ["data_in", "{pkt}", "repeat", "x"],
    ["data_in", "{pkt}", "data_size_out", "1k"],
    ["d", "{pkt}"],
    ["data_in", "{pkt}", "bogus", "1"],
    ["data_in", "-", "ctx_in", "-"],
    ["data_in"],
]


@pytest.mark.parametrize("opts", [[], ["-j"], ["-p"]], ids=["text", "json", "pretty"])
@pytest.mark.parametrize("case", RUN_CASES, ids=[" ".join(c) for c in RUN_CASES])
def test_prog_run_matches_bpftool(pinned: Path, files: Path, bpftool: str, opts: list[str],
                                  case: list[str]) -> None:
    words = [w.format(pkt=files / "pkt", ctx=files / "ctx") for w in case]
    handle = ["pinned", str(pinned / "t" / "main_func")]
    a = theirs(bpftool, *opts, "prog", "run", *handle, *words)
    b = ours(*opts, "prog", "run", *handle, *words)
    assert b[0] == a[0]
    assert no_duration(b[1]) == no_duration(a[1])
    assert b[2] == a[2]


def test_prog_run_reads_stdin_and_writes_data_out_file(pinned: Path, files: Path, bpftool: str) -> None:
    handle = ["pinned", str(pinned / "t" / "bpf_func_debug")]
    rc, out, _ = ours("prog", "run", *handle, "data_in", "-", "data_out", str(files / "o1"),
                      stdin=b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ")
    assert rc == 0 and out.startswith("Return value: 3, duration: ")
    assert (files / "o1").read_bytes() == b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"


def test_prog_run_too_small_data_size_out_is_enospc(pinned: Path, files: Path) -> None:
    rc, _, err = ours("prog", "run", "pinned", str(pinned / "t" / "main_func"), "data_in",
                      str(files / "pkt"), "data_out", "-", "data_size_out", "10")
    assert rc == 228
    assert err.startswith("Error: failed to run program: No space left on device")
    assert "too small" in err


def test_prog_run_of_type_without_test_run_says_so(pinned: Path, files: Path) -> None:
    rc, _, err = ours("prog", "run", "pinned", str(pinned / "p" / "kprobe_unlinkat"), "data_in",
                      str(files / "pkt"))
    assert rc == (-524) & 0xFF
    assert "program type kprobe cannot be test-run" in err


ATTACH_CASES: list[tuple[list[str], bool]] = [
    (["pinned", "{p}/sk_msg_redirect", "msg_verdict", "pinned", "{m}/sock_hash"], True),
    (["pinned", "{p}/sk_msg_redirect", "sk_msg_verdict", "pinned", "{m}/sock_map"], True),
    (["pinned", "{p}/sk_skb_parser", "s", "pinned", "{m}/sock_map"], True),
    (["pinned", "{p}/sk_skb_verdict", "skb", "pinned", "{m}/sock_hash"], True),
    (["pinned", "{p}/sk_msg_redirect", "msg_verdict", "pinned", "{m}/event_count"], False),
    (["pinned", "{p}/xdp_count_proto", "msg_verdict", "pinned", "{m}/sock_map"], False),
    (["pinned", "{p}/sk_msg_redirect", "bogus", "pinned", "{m}/sock_map"], False),
    (["pinned", "{p}/sk_msg_redirect", "sk_msg", "pinned", "{m}/sock_map"], False),
    (["pinned", "{p}/sk_msg_redirect", "msg_verdict"], False),
    (["pinned", "{p}/sk_msg_redirect"], False),
    (["pinned", "{p}/nothere", "msg_verdict", "pinned", "{m}/sock_map"], False),
]


@pytest.mark.parametrize(("case", "ok"), ATTACH_CASES, ids=[" ".join(c[0][2:]) for c in ATTACH_CASES])
def test_prog_attach_and_detach_match_bpftool(pinned: Path, bpftool: str, case: list[str], ok: bool) -> None:
    words = [w.format(p=pinned / "p", m=pinned / "m") for w in case]
    for verb in ("attach", "detach"):
        a = theirs(bpftool, "-j", "prog", verb, *words)
        assert (a[0] == 0) == ok
    for verb in ("attach", "detach"):
        b = ours("-j", "prog", verb, *words)
        assert b[0] == a[0], b
        if ok:
            assert b[1] == "null\n"
        else:
            assert b[1].startswith('{"error":')
    if ok:
        t = ours("prog", "attach", *words)
        assert t == (0, "", "")
        ours("prog", "detach", *words)


def test_tracelog_streams_trace_pipe_lines(need_root: None, tmp_path: Path) -> None:
    obj_path = build_runtime_events(str(tmp_path))
    with BpfObject(obj_path) as obj:
        obj.load()
        proc = subprocess.Popen([sys.executable, "-m", "pybpfobj", "prog", "tracelog", "count", "1",
                                 "timeout", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        try:
            import time

            line = b""
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline:
                obj.programs["say_hello"].test_run(bytes(16))
                time.sleep(0.2)
            out, err = proc.communicate(timeout=5)
            line = out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    assert b"pybpfobj tracelog marker 42" in line


def test_tracelog_json_is_an_array_of_lines(need_root: None, tmp_path: Path) -> None:
    rc, out, _ = ours("-j", "prog", "tracelog", "timeout", "0.2")
    assert rc == 0
    import json

    assert isinstance(json.loads(out), list)


def _first_trace_line(cmd: list[str], obj: BpfObject) -> str:
    """The first trace_pipe line ``cmd`` prints while say_hello runs; stdout is a pty so
    bpftool writes each line at once instead of at exit."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.DEVNULL, env=ENV)
    os.close(slave)
    buf = b""
    try:
        deadline = time.monotonic() + 20
        while b"\n" not in buf and time.monotonic() < deadline:
            obj.programs["say_hello"].test_run(bytes(16))
            if select.select([master], [], [], 0.2)[0]:
                buf += os.read(master, 4096)
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return buf.decode().replace("\r\n", "\n").split("\n", 1)[0]


def test_tracelog_prints_the_same_lines_as_bpftool(need_root: None, bpftool: str, tmp_path: Path) -> None:
    obj_path = build_runtime_events(str(tmp_path))
    with BpfObject(obj_path) as obj:
        obj.load()
        lines = [_first_trace_line(cmd, obj) for cmd in
                 ([bpftool, "prog", "tracelog"], [sys.executable, "-m", "pybpfobj", "prog", "tracelog"])]
    # task, pid, CPU and time differ between the two runs: compare the message and the line's shape
    shapes = [re.sub(r"\d+", "N", ln.split(": ", 1)[0].strip().split()[-1]) for ln in lines]
    msgs = [ln.split(": ", 1)[1] for ln in lines]
    assert "pybpfobj tracelog marker 42" in msgs[0]
    assert msgs[0] == msgs[1] and shapes[0] == shapes[1], lines
