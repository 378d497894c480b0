"""Event streams from BPF programs: ring buffers and perf event arrays.

:class:`RingBuffer` reads ``BPF_MAP_TYPE_RINGBUF`` maps and
:class:`PerfBuffer` reads ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` maps, both
through libbpf's managers.  Each can be used three ways::

    rb = RingBuffer(events_map, callback=lambda data: print(data))
    rb.poll(100)                       # callbacks run, returns the count

    for data in RingBuffer(events_map).events(timeout=1.0):   # iterator
        ...

    loop.add_reader(rb.epoll_fd, rb.consume)                   # asyncio
    async for data in rb: ...                                  # or this

``PerfBuffer`` yields :class:`PerfEvent` (cpu, data) and counts lost
samples in ``lost`` (and calls ``lost_callback(cpu, count)``).
"""

from __future__ import annotations

import ctypes
import struct
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pybpfobj.errors import BpfError, MapError
from pybpfobj.testrun import HasFd

MapLike = int | HasFd


def _map_fd(m: MapLike) -> int:
    return m if isinstance(m, int) else int(m.fd)


def _map_label(m: MapLike) -> str:
    name = getattr(m, "name", None)
    return name if isinstance(name, str) and name else f"fd {_map_fd(m)}"


def _check_type(m: MapLike, want: str) -> None:
    from pybpfobj.constants import map_type_name
    from pybpfobj.kernel import info

    fi = info.fdinfo(_map_fd(m))
    if "map_type" not in fi:
        raise MapError(f"{_map_label(m)} is not a BPF map", errno=22)
    t = map_type_name(int(fi["map_type"]))
    if t != want:
        raise MapError(f"map {_map_label(m)} is of type {t}; a {want} map is needed", errno=22,
                       map=_map_label(m))


class _Reader:
    """Common part: the pending-events queue, iteration and asyncio glue."""

    _ptr: int

    def __init__(self) -> None:
        self._pending: deque[Any] = deque()
        self._error: BaseException | None = None
        self._iterating = False

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            e, self._error = self._error, None
            raise e

    def poll(self, timeout_ms: int = 0) -> int:
        raise NotImplementedError

    def consume(self) -> int:
        raise NotImplementedError

    @property
    def epoll_fd(self) -> int:
        raise NotImplementedError

    def events(self, timeout: float | None = None, *, max_events: int | None = None) -> Iterator[Any]:
        """Yield events as they come; stops after ``timeout`` seconds without any, or ``max_events``.

        ``timeout=None`` waits forever.  Events go to the iterator instead
        of the callback while iterating.
        """
        seen = 0
        wait_ms = -1 if timeout is None else int(timeout * 1000)
        while max_events is None or seen < max_events:
            if not self._pending:
                self.poll(wait_ms)
                if not self._pending:
                    if timeout is not None:
                        return
                    continue
            seen += 1
            yield self._pending.popleft()

    def __iter__(self) -> Iterator[Any]:
        return self.events()

    async def _aiter(self) -> AsyncIterator[Any]:
        import asyncio

        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(self.epoll_fd, ready.set)
        self._iterating = True
        try:
            while True:
                if not self._pending:
                    self.consume()
                if self._pending:
                    yield self._pending.popleft()
                    continue
                ready.clear()
                await ready.wait()
        finally:
            self._iterating = False
            loop.remove_reader(self.epoll_fd)

    def __aiter__(self) -> AsyncIterator[Any]:
        """``async for event in reader``: waits on :attr:`epoll_fd` in the running event loop."""
        return self._aiter()

    def __enter__(self) -> _Reader:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110  # interpreter shutdown: nothing to report to
            pass


class RingBuffer(_Reader):
    """A reader of one (or more, see :meth:`add`) ``ringbuf`` maps.

    ``callback(data: bytes)`` is called for each sample during
    :meth:`poll`/:meth:`consume`; without one, samples queue up for
    :meth:`events` / iteration.  A callback returning a negative number
    stops the current poll (libbpf's rule); an exception in it is raised
    from :meth:`poll`.
    """

    def __init__(self, ringbuf: MapLike, callback: Callable[[bytes], Any] | None = None) -> None:
        from pybpfobj.kernel import attach

        super().__init__()
        _check_type(ringbuf, "ringbuf")
        self._callbacks: list[Any] = []
        self._user_cb = callback
        self._ptr = 0
        cb = self._make_cb(callback)
        self._ptr = attach.ring_buffer_new(_map_fd(ringbuf), cb, f"ring buffer on map {_map_label(ringbuf)}")

    def _make_cb(self, callback: Callable[[bytes], Any] | None) -> Any:
        from pybpfobj.kernel import attach

        pending = self._pending

        def on_sample(_ctx: int | None, data: int | None, size: int) -> int:
            try:
                sample = ctypes.string_at(data, size) if data else b""
                if callback is None or self._iterating:
                    pending.append(sample)
                    return 0
                r = callback(sample)
                return r if isinstance(r, int) and r < 0 else 0
            except BaseException as e:  # noqa: BLE001  # never unwind through C; re-raised after the poll
                self._error = e
                return -1

        fn = attach.RING_BUFFER_SAMPLE_FN(on_sample)
        self._callbacks.append(fn)  # keep alive as long as libbpf may call it
        return fn

    def add(self, ringbuf: MapLike, callback: Callable[[bytes], Any] | None = None) -> None:
        """Also read another ringbuf map through the same poll/epoll fd."""
        from pybpfobj.kernel import attach

        _check_type(ringbuf, "ringbuf")
        attach.ring_buffer_add(self._ptr, _map_fd(ringbuf), self._make_cb(callback or self._user_cb),
                               f"adding map {_map_label(ringbuf)} to the ring buffer")

    def poll(self, timeout_ms: int = 0) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for samples and handle them; returns how many."""
        from pybpfobj.kernel import attach

        self._need_open()
        try:
            n = attach.ring_buffer_poll(self._ptr, timeout_ms)
        except BpfError:
            self._raise_pending_error()
            raise
        self._raise_pending_error()
        return n

    def consume(self) -> int:
        """Handle every sample available now, without waiting; returns how many."""
        from pybpfobj.kernel import attach

        self._need_open()
        try:
            n = attach.ring_buffer_consume(self._ptr)
        except BpfError:
            self._raise_pending_error()
            raise
        self._raise_pending_error()
        return n

    def events(self, timeout: float | None = None, *, max_events: int | None = None) -> Iterator[bytes]:
        self._iterating = True
        try:
            yield from super().events(timeout, max_events=max_events)
        finally:
            self._iterating = False

    @property
    def epoll_fd(self) -> int:
        """An fd that becomes readable when samples are waiting (for select/asyncio)."""
        from pybpfobj.kernel import attach

        self._need_open()
        return attach.ring_buffer_epoll_fd(self._ptr)

    def _need_open(self) -> None:
        if not self._ptr:
            raise BpfError("the ring buffer reader is closed", errno=9)

    def close(self) -> None:
        """Free libbpf's ring buffer manager (idempotent)."""
        if getattr(self, "_ptr", 0):
            from pybpfobj.kernel import attach

            attach.ring_buffer_free(self._ptr)
            self._ptr = 0


@dataclass(frozen=True)
class PerfEvent:
    """One sample from a perf event array.

    ``cpu`` is the CPU it was written on, ``data`` its raw bytes (as the
    kernel pads them: to 4 bytes short of a multiple of 8), ``index`` the
    map slot of the ring that received it and ``time`` the kernel's
    timestamp (perf clock, nanoseconds).
    """

    cpu: int
    data: bytes
    index: int = -1
    time: int = 0


@dataclass(frozen=True)
class PerfLost:
    """A PERF_RECORD_LOST: ``count`` samples the kernel dropped on ``cpu``'s ring."""

    cpu: int
    index: int
    id: int
    count: int


_HDR = struct.Struct("<IHH")
_SAMPLE = struct.Struct("<QI")  # PERF_SAMPLE_TIME, then the raw size
_LOST = struct.Struct("<QQ")


class PerfBuffer(_Reader):
    """A reader of a ``perf_event_array`` map (one ring per CPU, ``page_cnt`` pages each).

    ``callback(cpu, data)`` runs per sample (or samples queue for
    iteration as :class:`PerfEvent`); ``lost_callback(cpu, count)`` runs
    when the kernel dropped samples, and :attr:`lost` totals them.
    ``record_callback(record)`` instead gets every record whole, a
    :class:`PerfEvent` or a :class:`PerfLost` (what ``map event_pipe``
    prints).  ``cpus`` limits the rings to some CPUs, as ``{cpu: map
    index}`` (bpftool's ``cpu N index M``); by default every possible CPU
    gets a ring at its own index.
    """

    def __init__(self, perf_array: MapLike, callback: Callable[[int, bytes], Any] | None = None, *,
                 lost_callback: Callable[[int, int], Any] | None = None, page_cnt: int = 8,
                 cpus: dict[int, int] | None = None,
                 record_callback: Callable[[PerfEvent | PerfLost], Any] | None = None) -> None:
        from pybpfobj.kernel import attach

        super().__init__()
        _check_type(perf_array, "perf_event_array")
        if page_cnt <= 0 or page_cnt & (page_cnt - 1):
            raise MapError(f"page_cnt must be a power of two, got {page_cnt}", errno=22)
        if cpus is not None and (not cpus or min(*cpus, *cpus.values()) < 0):
            raise MapError(f"cpus must map CPUs to map indexes (both >= 0), got {cpus!r}", errno=22)
        self.lost = 0
        self._ptr = 0
        pending = self._pending
        index_of = dict(cpus) if cpus else None
        string_at = ctypes.string_at
        hdr_unpack, sample_unpack, lost_unpack = _HDR.unpack, _SAMPLE.unpack, _LOST.unpack

        def on_event(_ctx: int | None, cpu: int, ev: int | None) -> int:
            try:
                if not ev:
                    return attach.LIBBPF_PERF_EVENT_CONT
                rtype, _misc, _size = hdr_unpack(string_at(ev, 8))
                index = index_of[cpu] if index_of is not None else cpu
                if rtype == attach.PERF_RECORD_SAMPLE:
                    ts, rsize = sample_unpack(string_at(ev + 8, 12))
                    raw = string_at(ev + 20, rsize)
                    if record_callback is not None and not self._iterating:
                        record_callback(PerfEvent(cpu, raw, index, ts))
                    elif callback is None or self._iterating:
                        pending.append(PerfEvent(cpu, raw, index, ts))
                    else:
                        callback(cpu, raw)
                elif rtype == attach.PERF_RECORD_LOST:
                    lid, count = lost_unpack(string_at(ev + 8, 16))
                    self.lost += count
                    if record_callback is not None:
                        record_callback(PerfLost(cpu, index, lid, count))
                    elif lost_callback is not None:
                        lost_callback(cpu, count)
            except BaseException as e:  # noqa: BLE001  # never unwind through C; re-raised after the poll
                self._error = e
                return attach.LIBBPF_PERF_EVENT_ERROR
            return attach.LIBBPF_PERF_EVENT_CONT

        self._cbs = (attach.PERF_BUFFER_EVENT_FN(on_event),)
        self._ptr = attach.perf_buffer_new_raw(_map_fd(perf_array), page_cnt, self._cbs[0], index_of,
                                               f"perf buffer on map {_map_label(perf_array)}")

    def poll(self, timeout_ms: int = 0) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) and handle samples; returns how many rings had data."""
        from pybpfobj.kernel import attach

        self._need_open()
        try:
            n = attach.perf_buffer_poll(self._ptr, timeout_ms)
        except BpfError:
            self._raise_pending_error()
            raise
        self._raise_pending_error()
        return n

    def consume(self) -> int:
        """Handle everything available now, without waiting."""
        from pybpfobj.kernel import attach

        self._need_open()
        try:
            n = attach.perf_buffer_consume(self._ptr)
        except BpfError:
            self._raise_pending_error()
            raise
        self._raise_pending_error()
        return n

    def events(self, timeout: float | None = None, *, max_events: int | None = None) -> Iterator[PerfEvent]:
        self._iterating = True
        try:
            yield from super().events(timeout, max_events=max_events)
        finally:
            self._iterating = False

    @property
    def epoll_fd(self) -> int:
        from pybpfobj.kernel import attach

        self._need_open()
        return attach.perf_buffer_epoll_fd(self._ptr)

    def _need_open(self) -> None:
        if not self._ptr:
            raise BpfError("the perf buffer reader is closed", errno=9)

    def close(self) -> None:
        """Free libbpf's perf buffer manager (idempotent)."""
        if getattr(self, "_ptr", 0):
            from pybpfobj.kernel import attach

            attach.perf_buffer_free(self._ptr)
            self._ptr = 0


__all__ = ["PerfBuffer", "PerfEvent", "PerfLost", "RingBuffer"]
