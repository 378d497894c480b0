"""Ring buffer and perf buffer readers: callbacks, iterators, asyncio, lost samples."""

from __future__ import annotations

import asyncio
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pybpfobj.errors import MapError
from pybpfobj.events import PerfBuffer, PerfEvent, RingBuffer
from pybpfobj.loader import BpfObject

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from netns import build_runtime_events


@pytest.fixture(scope="module")
def events_obj_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_runtime_events(str(tmp_path_factory.mktemp("rte")))


@pytest.fixture
def producer(need_root: None, events_obj_path: str) -> Iterator[Any]:
    with BpfObject(events_obj_path) as obj:
        obj.load()
        yield obj


def _seqs(samples: list[bytes]) -> list[int]:
    return [struct.unpack_from("<Q", s)[0] for s in samples]


def test_ring_buffer_callback_gets_every_sample_in_order(producer: Any) -> None:
    got: list[bytes] = []
    with RingBuffer(producer.maps["rb"], callback=got.append) as rb:
        producer.programs["emit_ringbuf"].test_run(bytes(16 * 5), repeat=4)
        assert rb.poll(1000) == 20
    assert _seqs(got) == list(range(20))


def test_ring_buffer_iterator_stops_after_timeout(producer: Any) -> None:
    with RingBuffer(producer.maps["rb"]) as rb:
        producer.programs["emit_ringbuf"].test_run(bytes(16 * 3))
        assert _seqs(list(rb.events(timeout=0.2))) == [0, 1, 2]


def test_ring_buffer_iterator_max_events_leaves_the_rest(producer: Any) -> None:
    with RingBuffer(producer.maps["rb"]) as rb:
        producer.programs["emit_ringbuf"].test_run(bytes(16 * 6))
        assert _seqs(list(rb.events(timeout=0.2, max_events=2))) == [0, 1]
        assert _seqs(list(rb.events(timeout=0.2))) == [2, 3, 4, 5]


def test_ring_buffer_callback_exception_is_raised_from_poll(producer: Any) -> None:
    def boom(_: bytes) -> None:
        raise ValueError("from callback")

    with RingBuffer(producer.maps["rb"], callback=boom) as rb:
        producer.programs["emit_ringbuf"].test_run(bytes(16))
        with pytest.raises(ValueError, match="from callback"):
            rb.poll(1000)


def test_ring_buffer_async_for_reads_through_epoll_fd(producer: Any) -> None:
    async def main() -> list[int]:
        rb = RingBuffer(producer.maps["rb"])
        got: list[bytes] = []
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, producer.programs["emit_ringbuf"].test_run, bytes(16 * 4))
        async for sample in rb:
            got.append(sample)
            if len(got) == 4:
                break
        rb.close()
        return _seqs(got)

    assert asyncio.run(asyncio.wait_for(main(), 5)) == [0, 1, 2, 3]


def test_ring_buffer_add_reader_with_consume(producer: Any) -> None:
    async def main() -> int:
        got: list[bytes] = []
        rb = RingBuffer(producer.maps["rb"], callback=got.append)
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def on_ready() -> None:
            rb.consume()
            if len(got) >= 8:
                done.set()

        loop.add_reader(rb.epoll_fd, on_ready)
        producer.programs["emit_ringbuf"].test_run(bytes(16 * 8))
        await asyncio.wait_for(done.wait(), 5)
        loop.remove_reader(rb.epoll_fd)
        rb.close()
        return len(got)

    assert asyncio.run(main()) == 8


def test_ring_buffer_refuses_other_map_types(producer: Any) -> None:
    with pytest.raises(MapError, match="pb is of type perf_event_array; a ringbuf map is needed"):
        RingBuffer(producer.maps["pb"])


def test_perf_buffer_callback_gets_cpu_and_data(producer: Any) -> None:
    got: list[tuple[int, bytes]] = []
    with PerfBuffer(producer.maps["pb"], lambda cpu, data: got.append((cpu, data))) as pb:
        producer.programs["emit_perf"].test_run(bytes(16 * 3), repeat=2)
        pb.poll(1000)
        pb.consume()
    assert _seqs([d for _, d in got]) == list(range(6))
    assert all(0 <= cpu < 1024 for cpu, _ in got)
    assert pb.lost == 0


def test_perf_buffer_iterator_yields_perf_events(producer: Any) -> None:
    with PerfBuffer(producer.maps["pb"]) as pb:
        producer.programs["emit_perf"].test_run(bytes(16 * 2))
        events = list(pb.events(timeout=0.2))
    assert all(isinstance(e, PerfEvent) for e in events)
    assert _seqs([e.data for e in events]) == [0, 1]


def test_perf_buffer_reports_lost_samples(producer: Any) -> None:
    lost_calls: list[tuple[int, int]] = []
    got: list[bytes] = []
    # stay on one CPU: a loss is reported on the ring of the CPU that lost samples
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        _overflow_and_count(producer, got, lost_calls)
    finally:
        os.sched_setaffinity(0, cpus)
    assert sum(n for _, n in lost_calls) > 0
    assert len(got) + sum(n for _, n in lost_calls) == 64 * 50 + 1


def _overflow_and_count(producer: Any, got: list[bytes], lost_calls: list[tuple[int, int]]) -> None:
    # one page per CPU holds ~200 samples: 64 x 50 overflows it
    with PerfBuffer(producer.maps["pb"], lambda cpu, d: got.append(d),
                    lost_callback=lambda cpu, n: lost_calls.append((cpu, n)), page_cnt=1) as pb:
        producer.programs["emit_perf"].test_run(bytes(16 * 64), repeat=50)
        while pb.poll(100) > 0:
            pass
        # the kernel reports the loss with the next sample written after room was made
        producer.programs["emit_perf"].test_run(bytes(16))
        while pb.poll(100) > 0:
            pass
    assert sum(n for _, n in lost_calls) == pb.lost


def test_perf_buffer_refuses_page_count_not_power_of_two(producer: Any) -> None:
    with pytest.raises(MapError, match="power of two"):
        PerfBuffer(producer.maps["pb"], page_cnt=3)
