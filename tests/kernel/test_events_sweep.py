"""Ring and perf buffer readers on odd record sizes, discards, overrun, exceptions, timeouts and close().

Producers: tests/data/run/rb_sizes.bpf.c, run with BPF_PROG_TEST_RUN.
"""

from __future__ import annotations

import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pybpfobj.errors import BpfError
from pybpfobj.events import PerfBuffer, RingBuffer
from pybpfobj.loader import BpfObject

SRC = Path(__file__).resolve().parent.parent / "data" / "run" / "rb_sizes.bpf.c"


@pytest.fixture(scope="module")
def obj_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ev") / "rb_sizes.o"
    subprocess.run(["clang-19", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c",
                    str(SRC), "-o", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture
def obj(need_root: None, obj_path: Path) -> Iterator[Any]:
    with BpfObject(str(obj_path)) as o:
        o.load()
        yield o


def produce(obj: Any, size: int, count: int, every: int = 0, which: int = 0) -> None:
    r = obj.programs["rb_out"].test_run(None, ctx_in=struct.pack("<IIII", size, count, every, which))
    assert r.retval == 0


def test_ringbuf_records_of_odd_sizes_read_whole(obj: Any) -> None:
    with RingBuffer(obj.maps["rb"]) as rb:
        for size in (1, 3, 7, 8, 9, 13, 2999, 3000):
            produce(obj, size, 3)
            recs = rb.read_batch()
            assert [(len(r), r[0]) for r in recs] == [(size, 0), (size, 1), (size, 2)]
        produce(obj, 9, 300)  # a same-size run: the bulk path
        recs = rb.read_batch()
        assert [r[0] for r in recs] == [n & 0xFF for n in range(300)]
        assert {len(r) for r in recs} == {9}


def test_ringbuf_skips_discarded_records_and_catches_up_after_overrun(obj: Any) -> None:
    with RingBuffer(obj.maps["rb"]) as rb:
        produce(obj, 5, 10, every=3)
        assert [r[0] for r in rb.read_batch()] == [0, 1, 3, 4, 6, 7, 9]
        produce(obj, 3000, 20)  # a 16 KiB ring holds 5 of them: the rest are dropped by the producer
        assert [r[0] for r in rb.read_batch()] == [0, 1, 2, 3, 4]
        produce(obj, 3000, 2)
        assert [(len(r), r[0]) for r in rb.read_batch()] == [(3000, 0), (3000, 1)]


def test_ringbuf_reads_several_rings_and_survives_a_raising_callback(obj: Any) -> None:
    seen: list[tuple[str, int, int]] = []
    armed = [True]

    def a(d: bytes) -> None:
        if d[0] == 1 and armed:
            armed.pop()
            raise ValueError("boom")
        seen.append(("a", len(d), d[0]))

    with RingBuffer(obj.maps["rb"], callback=a) as rb:
        rb.add(obj.maps["rb2"], callback=lambda d: seen.append(("b", len(d), d[0])))
        produce(obj, 5, 3)
        produce(obj, 11, 2, which=1)
        with pytest.raises(ValueError, match="boom"):
            rb.poll(0)
        assert rb.poll(0) == 3  # record 2 of rb, then rb2's two: nothing lost, nothing twice
        assert seen == [("a", 5, 0), ("a", 5, 2), ("b", 11, 0), ("b", 11, 1)]


@pytest.mark.parametrize("timeout", [0, 20])
def test_ringbuf_poll_with_nothing_to_read_returns_zero(obj: Any, timeout: int) -> None:
    with RingBuffer(obj.maps["rb"], callback=lambda d: None) as rb:
        assert rb.poll(timeout) == 0
        assert rb.read_batch(timeout) == []


def test_ringbuf_close_from_another_thread_wakes_a_blocked_poll(obj: Any) -> None:
    rb = RingBuffer(obj.maps["rb"])
    res: list[Any] = []
    started = threading.Event()

    def poller() -> None:
        started.set()
        try:
            res.append(rb.poll(-1))
        except BpfError as e:
            res.append(e.errno)

    th = threading.Thread(target=poller)
    th.start()
    started.wait()
    while not rb._waiters:  # the poller is inside epoll_wait
        th.join(0.01)
    rb.close()
    th.join(10)
    assert not th.is_alive()
    assert res == [9]
    assert rb._wake == -1  # the woken poller released the fds


def test_perfbuffer_sample_sizes_lost_counts_and_deferred_close(obj: Any) -> None:
    lost: list[int] = []
    pb = PerfBuffer(obj.maps["pb"], page_cnt=1, lost_callback=lambda cpu, n: lost.append(n))
    prog = obj.programs["pb_out"]
    for n in (14, 15, 16, 17, 60, 1000):
        prog.test_run(bytes(range(256))[:n] if n < 256 else bytes(n))
    evs = list(pb.events(timeout=0.05))
    # the kernel pads raw samples to 4 bytes short of a multiple of 8
    assert [len(e.data) for e in evs] == [20, 20, 20, 20, 60, 1004]
    assert evs[0].data[:14] == bytes(range(14))
    for _ in range(40):  # a one-page ring holds 3 of them
        prog.test_run(bytes(1000))
    got = len(list(pb.events(timeout=0.05)))
    prog.test_run(bytes(20))  # the kernel writes the LOST record once there is room again
    got += len(list(pb.events(timeout=0.05)))
    assert got + pb.lost == 41 and pb.lost == sum(lost) > 0
    res: list[Any] = []
    th = threading.Thread(target=lambda: res.append(pb.poll(-1)))
    th.start()
    while not pb._polling:
        th.join(0.01)
    pb.close()  # deferred: the poller is inside libbpf
    prog.test_run(bytes(20))
    th.join(10)
    assert not th.is_alive() and res == [1]
    with pytest.raises(BpfError, match="closed"):
        pb.poll(0)
