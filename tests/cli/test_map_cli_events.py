"""`map event_pipe` with real events: perf_event_array (all CPUs and `cpu N index M`) against
bpftool 7.1, lost samples, and ringbuf maps.

The producer is tests/data/runtime_events.bpf.c: each test run of ``emit_perf``/``emit_ringbuf``
writes one u64 sequence number per 16 bytes of packet.  perf samples only reach a reader that
is attached, so readers run as subprocesses and the producer starts once the reader holds its
perf event fds; the producer and the readers stay on one CPU so every record lands on a known ring.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pybpfobj.cli.common import Context
from pybpfobj.cli.main import run
from pybpfobj.events import PerfBuffer, PerfEvent
from pybpfobj.loader import BpfObject

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from netns import build_runtime_events

pytestmark = pytest.mark.usefixtures("need_root")

CPU = min(os.sched_getaffinity(0))
ROOT = Path(__file__).resolve().parent.parent.parent
HEADER = re.compile(r"== @(\d+)\.(\d{9}) CPU: (\d+) index: (\d+) =====")


def ours(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = run(list(argv), Context(out=out, err=err))
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def events_obj_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_runtime_events(str(tmp_path_factory.mktemp("rte")))


@pytest.fixture
def producer(bpffs: Path, events_obj_path: str) -> Iterator[Any]:
    with BpfObject(events_obj_path) as obj:
        obj.load()
        obj.maps["pb"].pin(str(bpffs / "pb"))
        obj.maps["rb"].pin(str(bpffs / "rb"))
        yield obj


def _reset_seq(obj: Any) -> None:
    bss = obj.maps["runtime_.bss"]
    v = bss[0]
    v.seq = 0
    bss[0] = v


def _perf_fds(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[perf_event]":
                n += 1
        except OSError:
            pass
    return n


def _run_reader(cmd: list[str], obj: Any, packets: list[tuple[int, int]], want_fds: int, *,
                freeze_first: bool = False) -> tuple[int, str, str]:
    """Start ``cmd`` on CPU, wait for its perf fds, produce ``packets`` (events, repeat) there, SIGINT it.

    Output goes to files, not pipes: a reader blocked on a full pipe would stop draining its ring.
    ``freeze_first`` stops the reader (SIGSTOP) while the first batch is produced, so that a
    batch larger than its ring loses samples for sure.
    """
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CPU})
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(["taskset", "-c", str(CPU), *cmd], stdout=out, stderr=err, text=True)
        try:
            deadline = time.monotonic() + 20
            while _perf_fds(p.pid) < want_fds:
                assert p.poll() is None, "reader exited early"
                assert time.monotonic() < deadline, "reader never opened its perf buffers"
                time.sleep(0.02)
            time.sleep(0.2)  # the fds go into the map right after they are opened
            _reset_seq(obj)
            for i, (n, repeat) in enumerate(packets):
                if freeze_first and i == 0:
                    p.send_signal(signal.SIGSTOP)
                obj.programs["emit_perf"].test_run(bytes(16 * n), repeat=repeat)
                if freeze_first and i == 0:
                    p.send_signal(signal.SIGCONT)
                time.sleep(0.5)  # drained before the next batch: a loss is reported with the next sample
            p.send_signal(signal.SIGINT)
            p.wait(timeout=20)
        finally:
            os.sched_setaffinity(0, old)
            if p.poll() is None:
                p.kill()
                p.wait()
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read()


def _text_records(out: str) -> list[tuple[int, int, str]]:
    """(cpu, index, hex dump) of each record of bpftool's text output; timestamps checked and dropped."""
    recs = []
    lines = out.splitlines()
    for i, line in enumerate(lines):
        m = HEADER.fullmatch(line)
        if m:
            recs.append((int(m[3]), int(m[4]), lines[i + 1]))
    return recs


def _strip_ts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in records:
        assert isinstance(r.pop("timestamp"), int)
    return records


BPFTOOL_LIKE = [sys.executable, "-m", "pybpfobj"]


@pytest.mark.parametrize("sel", [[], ["cpu", str(CPU), "index", str(CPU)]], ids=["all_cpus", "cpu_index"])
def test_event_pipe_perf_text_matches_bpftool(producer: Any, bpffs: Path, bpftool: str, sel: list[str]) -> None:
    argv = ["map", "event_pipe", "pinned", str(bpffs / "pb"), *sel]
    fds = 1 if sel else _online_cpus()
    rc_t, out_t, err_t = _run_reader([bpftool, *argv], producer, [(3, 1)], fds)
    rc_o, out_o, err_o = _run_reader([*BPFTOOL_LIKE, *argv], producer, [(3, 1)], fds)
    assert (rc_o, err_o) == (rc_t, err_t) == (0, "Stopping...\n")
    recs = _text_records(out_o)
    assert recs == _text_records(out_t)
    assert recs == [(CPU, CPU, f"0{i} 00 00 00 00 00 00 00  00 00 00 00") for i in range(3)]
    assert len(out_o.splitlines()) == 6


def _online_cpus() -> int:
    with open("/sys/devices/system/cpu/online") as f:
        text = f.read().strip()
    return sum(int(b) - int(a) + 1 if "-" in part else 1
               for part in text.split(",") for a, _, b in [part.partition("-")])


@pytest.mark.parametrize("flag", ["-j", "-p"])
def test_event_pipe_perf_json_matches_bpftool(producer: Any, bpffs: Path, bpftool: str, flag: str) -> None:
    argv = [flag, "map", "event_pipe", "pinned", str(bpffs / "pb"), "cpu", str(CPU), "index", "0"]
    rc_t, out_t, _ = _run_reader([bpftool, *argv], producer, [(2, 1)], 1)
    rc_o, out_o, _ = _run_reader([*BPFTOOL_LIKE, *argv], producer, [(2, 1)], 1)
    assert rc_o == rc_t == 0
    theirs, mine = json.loads(out_t), json.loads(out_o)
    assert _strip_ts(mine) == _strip_ts(theirs) == [
        {"type": 9, "cpu": CPU, "index": 0, "data": [i] + [0] * 11} for i in range(2)]
    # the same layout, timestamps aside
    assert re.sub(r"\d{6,}", "T", out_o) == re.sub(r"\d{6,}", "T", out_t)


@pytest.mark.parametrize("tool", ["bpftool", "pybpfobj"])
def test_event_pipe_perf_reports_lost_samples(producer: Any, bpffs: Path, bpftool: str, tool: str) -> None:
    # 16 pages hold 2048 records of 32 bytes: 64 x 100 written while the reader is stopped overflow
    # them; the next sample carries the loss
    cmd = [bpftool] if tool == "bpftool" else BPFTOOL_LIKE
    argv = [*cmd, "map", "event_pipe", "pinned", str(bpffs / "pb"), "cpu", str(CPU), "index", str(CPU)]
    rc, out, _err = _run_reader(argv, producer, [(64, 100), (1, 1)], 1, freeze_first=True)
    assert rc == 0
    lost = [int(n) for n in re.findall(r"^lost (\d+) events$", out, re.MULTILINE)]
    samples = _text_records(out)
    assert lost and sum(lost) + len(samples) == 64 * 100 + 1
    assert samples[-1] == (CPU, CPU, "00 19 00 00 00 00 00 00  00 00 00 00")  # seq 6400, after the loss


def test_event_pipe_perf_json_lost_record_shape(producer: Any, bpffs: Path) -> None:
    argv = [*BPFTOOL_LIKE, "-j", "map", "event_pipe", "pinned", str(bpffs / "pb"), "cpu", str(CPU), "index", str(CPU)]
    rc, out, _err = _run_reader(argv, producer, [(64, 100), (1, 1)], 1, freeze_first=True)
    assert rc == 0
    recs = json.loads(out)
    lost = [r for r in recs if r["type"] == 2]
    assert lost and all(set(r) == {"type", "cpu", "index", "lost"} and r["index"] == CPU
                        and set(r["lost"]) == {"id", "count"} for r in lost)
    assert sum(r["lost"]["count"] for r in lost) + sum(r["type"] == 9 for r in recs) == 64 * 100 + 1


def test_event_pipe_count_stops_after_n_records(producer: Any, bpffs: Path) -> None:
    argv = [*BPFTOOL_LIKE, "map", "event_pipe", "pinned", str(bpffs / "pb"), "count", "4"]
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CPU})
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # 4 records fit
        deadline = time.monotonic() + 20
        while _perf_fds(p.pid) < _online_cpus() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        _reset_seq(producer)
        producer.programs["emit_perf"].test_run(bytes(16 * 5))
        out, err = p.communicate(timeout=20)
    finally:
        os.sched_setaffinity(0, old)
    assert (p.returncode, err) == (0, "")
    assert [r[2][:2] for r in _text_records(out)] == ["00", "01", "02", "03"]


def test_perf_buffer_on_one_cpu_gives_index_and_kernel_time(producer: Any) -> None:
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {CPU})
    try:
        with PerfBuffer(producer.maps["pb"], cpus={CPU: CPU}) as pb:
            _reset_seq(producer)
            before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            producer.programs["emit_perf"].test_run(bytes(32))
            events = list(pb.events(timeout=0.3))
    finally:
        os.sched_setaffinity(0, old)
    assert [(e.cpu, e.index, e.data) for e in events] == [(CPU, CPU, bytes([i]) + bytes(11)) for i in range(2)]
    assert all(isinstance(e, PerfEvent) and e.time > 0 for e in events)
    assert events[0].time <= events[1].time
    assert abs(events[0].time - before) < 60 * 10**9  # the perf clock runs with CLOCK_MONOTONIC


def test_event_pipe_ringbuf_prints_records_and_stops_at_count(producer: Any, bpffs: Path) -> None:
    _reset_seq(producer)
    producer.programs["emit_ringbuf"].test_run(bytes(16 * 3))
    rc, out, err = ours("map", "event_pipe", "pinned", str(bpffs / "rb"), "count", "3")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 6
    assert all(re.fullmatch(r"== @\d+\.\d{9} ringbuf =====", h) for h in lines[0::2])
    assert lines[1::2] == [f"0{i} 00 00 00 00 00 00 00" for i in range(3)]


def test_event_pipe_ringbuf_json(producer: Any, bpffs: Path) -> None:
    _reset_seq(producer)
    producer.programs["emit_ringbuf"].test_run(bytes(16 * 2))
    rc, out, _err = ours("-j", "map", "event_pipe", "pinned", str(bpffs / "rb"), "count", "2")
    assert rc == 0
    recs = _strip_ts(json.loads(out))
    assert recs == [{"type": "ringbuf", "data": [i, 0, 0, 0, 0, 0, 0, 0]} for i in range(2)]


@pytest.mark.parametrize(("args", "message"), [
    (["cpu", "0"], "cpu and index must be specified together"),
    (["index", "0"], "cpu and index must be specified together"),
    (["cpu", "x", "index", "0"], "can't parse x as CPU ID"),
    (["cpu", "0", "index", "y"], "can't parse y as index"),
    (["cpu", "-1", "index", "0"], "can't parse -1 as CPU ID"),
    (["foo", "1"], "what is 'foo'?"),
    (["cpu"], "what is 'cpu'?"),
])
def test_event_pipe_bad_arguments_like_bpftool(producer: Any, bpffs: Path, bpftool: str, args: list[str],
                                               message: str) -> None:
    argv = ["map", "event_pipe", "pinned", str(bpffs / "pb"), *args]
    rc, out, err = ours(*argv)
    assert (rc, out, err) == (255, "", f"Error: {message}\n")
    if "-1" not in args:  # bpftool wraps negatives through strtoul
        t = subprocess.run([bpftool, *argv], capture_output=True, text=True, timeout=10, check=False)
        assert (t.returncode, t.stderr) == (rc, err)


def test_event_pipe_index_beyond_the_map_fails_like_bpftool(producer: Any, bpffs: Path, bpftool: str) -> None:
    argv = ["-j", "map", "event_pipe", "pinned", str(bpffs / "pb"), "cpu", "0", "index", "100000"]
    t = subprocess.run([bpftool, *argv], capture_output=True, text=True, timeout=10, check=False)
    rc, out, _err = ours(*argv)
    assert (rc, json.loads(out)) == (t.returncode, json.loads(t.stdout)) == (
        255, {"error": "failed to create perf buffer: Argument list too long (7)"})


def test_event_pipe_ringbuf_refuses_cpu_index(producer: Any, bpffs: Path) -> None:
    rc, _out, err = ours("map", "event_pipe", "pinned", str(bpffs / "rb"), "cpu", "0", "index", "0")
    assert (rc, err) == (255, "Error: cpu and index apply to perf_event_array maps only\n")


def test_event_pipe_stopped_while_events_flow_ends_like_bpftool(producer: Any, bpffs: Path, bpftool: str) -> None:
    """SIGTERM and SIGHUP landing together while samples keep coming, with SIGHUP ignored
    by the parent (nohup): both tools stop, exit 0 and close their JSON array; ours says
    nothing but "Stopping..." (no libbpf error line for the records left unread)."""
    import json
    import threading

    results = {}
    for tool, cmd in (("bpftool", [bpftool]), ("ours", BPFTOOL_LIKE)):
        argv = ["sh", "-c", "trap '' HUP; exec \"$@\"", "sh", *cmd, "-j", "map", "event_pipe", "pinned",
                str(bpffs / "pb")]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
            stop = threading.Event()

            def produce(stop: threading.Event) -> None:
                while not stop.is_set():
                    producer.programs["emit_perf"].test_run(bytes(16), repeat=50)

            t = threading.Thread(target=produce, args=(stop,))
            try:
                deadline = time.monotonic() + 20
                while _perf_fds(p.pid) < 1:
                    assert p.poll() is None and time.monotonic() < deadline
                    time.sleep(0.02)
                time.sleep(0.2)
                t.start()
                time.sleep(0.3)
                for sig in (signal.SIGSTOP, signal.SIGTERM, signal.SIGHUP, signal.SIGCONT):
                    p.send_signal(sig)
                p.wait(timeout=20)
            finally:
                stop.set()
                if t.is_alive():
                    t.join()
                if p.poll() is None:
                    p.kill()
                    p.wait()
            out.seek(0)
            err.seek(0)
            results[tool] = (p.returncode, out.read(), err.read())
    for tool, (rc, out, _err) in results.items():
        assert rc == 0, (tool, results[tool])
        assert isinstance(json.loads(out), list), tool
    err_lines = set(results["ours"][2].splitlines())
    assert err_lines == {"Stopping..."}, results["ours"][2]
