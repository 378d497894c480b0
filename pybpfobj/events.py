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
import mmap as _mmap
import os
import select
import struct
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pybpfobj.errors import BpfError, LibbpfError, MapError
from pybpfobj.testrun import HasFd

MapLike = int | HasFd


def _map_fd(m: MapLike) -> int:
    if isinstance(m, int) and not isinstance(m, bool):
        return m
    if not hasattr(m, "fd"):
        raise MapError(f"cannot read events from {m!r}: give a map handle (with .fd) or an fd", errno=22)
    return int(m.fd)  # type: ignore[union-attr]  # a bool has no .fd: refused above


def _timeout_ms(t: Any) -> int:
    """A poll timeout in ms (negative: forever), checked: epoll and libbpf take a C int."""
    import math

    if isinstance(t, bool) or not isinstance(t, (int, float)) or math.isnan(t) or t > 0x7FFFFFFF:
        raise BpfError(f"invalid timeout_ms {t!r}: an int of milliseconds, -1 to wait forever", errno=22)
    return int(t) if t >= 0 else -1


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


_E = TypeVar("_E")


class _Reader(Generic[_E]):
    """Common part: the pending-events queue, iteration and asyncio glue (events of type ``_E``)."""

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

    def events(self, timeout: float | None = None, *, max_events: int | None = None) -> Iterator[_E]:
        """Yield events as they come; stops after ``timeout`` seconds without any, or ``max_events``.

        ``timeout=None`` waits forever.  Events go to the iterator instead
        of the callback while iterating.
        """
        seen = 0
        wait_ms = -1 if timeout is None else int(timeout * 1000)
        self._iterating = True
        try:
            while max_events is None or seen < max_events:
                if not self._pending:
                    self.poll(wait_ms)
                    if not self._pending:
                        if timeout is not None:
                            return
                        continue
                seen += 1
                yield self._pending.popleft()
        finally:
            self._iterating = False

    def __iter__(self) -> Iterator[_E]:
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

    def __enter__(self) -> _Reader[_E]:
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


# struct bpf_ringbuf_hdr (8 bytes: u32 len, u32 pg_off) and the two flags the kernel keeps in len
_RB_HDR = 8
_RB_BUSY = 1 << 31
_RB_DISCARD = 1 << 30
_RB_LEN = _RB_DISCARD - 1
_BULK_MIN = 8  # records in a run worth checking for one common size (see _Ring.read)


class _Ring:
    """One ringbuf map mapped into this process, read without libbpf.

    The layout is the kernel's (Documentation/bpf/ringbuf.rst): page 0
    holds ``consumer_pos`` and is the only writable one; page 1 holds
    ``producer_pos``; then come the data pages, mapped twice in a row so
    that a record crossing the end of the ring reads as one piece.  Each
    record is an 8-byte header (length, BUSY and DISCARD bits in the first
    u32) and its data, padded to 8 bytes.  Positions only grow; ``pos &
    mask`` is the offset in the ring.

    Ordering: ``producer_pos`` is read before the headers below it and a
    header before its data, and ``consumer_pos`` is written after the data
    is copied out; x86-64 (total store order) keeps loads in order and
    stores in order, which is all the acquire/release pairs of libbpf's
    reader give there.  Positions are read and written as whole aligned
    8-byte words (memoryview ``Q`` items), never byte by byte.
    """

    def __init__(self, m: MapLike, callback: Callable[[bytes], Any] | None) -> None:
        from pybpfobj.kernel import info

        label = _map_label(m)
        self.label = label
        self.callback = callback
        size = int(info.fdinfo(_map_fd(m)).get("max_entries", "0"))
        page = _mmap.PAGESIZE
        if size <= 0 or size & (size - 1) or size % page:
            raise MapError(f"ring buffer map {label} has an unusable size {size}", errno=22, map=label)
        self.fd = os.dup(_map_fd(m))  # ours: the caller may close its handle while we read
        try:
            self._cons_mm = _mmap.mmap(self.fd, page, _mmap.MAP_SHARED, _mmap.PROT_READ | _mmap.PROT_WRITE)
            self._data_mm = _mmap.mmap(self.fd, page + 2 * size, _mmap.MAP_SHARED, _mmap.PROT_READ,
                                       offset=page)
        except OSError as e:
            self.close()
            raise MapError(f"mapping ring buffer map {label}: {os.strerror(e.errno or 22)}",
                           errno=e.errno or 22, map=label) from None
        self.cons = memoryview(self._cons_mm).cast("Q")
        self.prod = memoryview(self._data_mm).cast("Q")  # [0] is producer_pos
        self.words = memoryview(self._data_mm).cast("I")
        self.mm = self._data_mm
        self.base = page
        self.mask = size - 1

    def available(self) -> bool:
        return bool(self.prod[0] - self.cons[0])

    def read(self, out: Any, limit: int, fmt: struct.Struct | None = None,
             bulk: dict[tuple[int, int], struct.Struct | None] | None = None,
             ends: list[int] | None = None) -> int:
        """Append up to ``limit`` records to ``out`` (bytes, or ``fmt`` tuples); returns how many.

        ``consumer_pos`` is committed at the end of each run of records
        found below ``producer_pos``, then ``producer_pos`` is read again.
        A BUSY record (reserved, not yet submitted) ends the read: nothing
        after it may be consumed before it.  DISCARD records are skipped.
        ``bulk`` caches the structs that cut same-size runs (None: record by
        record).  With ``ends``, nothing is committed: the position after
        each record is appended to it and the caller commits (:meth:`commit`)
        up to where its records were handled; :attr:`reached` is where the
        read stopped.
        """
        cons_v, prod_v, words, mm, base, mask = self.cons, self.prod, self.words, self.mm, self.base, self.mask
        append = out.append
        unpack_from = fmt.unpack_from if fmt is not None else None
        need = fmt.size if fmt is not None else 0
        got = 0
        cons = cons_v[0]
        try:
            while got < limit:
                prod = prod_v[0]
                if cons >= prod:
                    break
                busy = False
                while cons < prod and got < limit:
                    off = base + (cons & mask)
                    hdr = words[off >> 2]
                    if hdr & _RB_BUSY:
                        busy = True
                        break
                    ln = hdr & _RB_LEN
                    step = (ln + _RB_HDR + 7) & ~7
                    # a run of same-size records (fixed-size events, the common case) is taken
                    # whole: its headers are compared in one go and its records cut out by C code
                    k = min((prod - cons) // step, limit - got)
                    if k >= _BULK_MIN and bulk is not None and not hdr & _RB_DISCARD:
                        key = (ln, step)
                        st = bulk.get(key, _NO_STRUCT)
                        if st is _NO_STRUCT:
                            st = bulk[key] = _bulk_struct(fmt, ln, step)
                        if st is not None:
                            w = off >> 2
                            hb = words[w:w + k * (step >> 2):step >> 2].tobytes()
                            want = hdr.to_bytes(4, sys.byteorder) * k
                            if hb != want:  # the run ends earlier: how many headers match
                                k = _common_prefix(hb, want) >> 2
                            if k >= _BULK_MIN:
                                chunk = mm[off:off + k * step]
                                if fmt is None:
                                    out.extend(map(_first, st.iter_unpack(chunk)))
                                else:
                                    out.extend(st.iter_unpack(chunk))
                                if ends is not None:
                                    ends.extend(range(cons + step, cons + k * step + 1, step))
                                got += k
                                cons += k * step
                                continue
                    if not hdr & _RB_DISCARD:
                        if unpack_from is None:
                            append(mm[off + _RB_HDR:off + _RB_HDR + ln])
                        else:
                            if ln < need:
                                raise MapError(f"a {ln}-byte record in ring buffer map {self.label} is "
                                               f"shorter than the format's {need} bytes", errno=22,
                                               map=self.label)
                            append(unpack_from(mm, off + _RB_HDR))
                        got += 1
                        if ends is not None:
                            ends.append(cons + step)
                    cons += step
                if ends is None:
                    cons_v[0] = cons
                if busy:
                    break
        finally:
            self.reached = cons
            if ends is None:
                cons_v[0] = cons
        return got

    def commit(self, pos: int) -> None:
        """Give the ring space up to ``pos`` back to the producer."""
        self.cons[0] = pos

    def close(self) -> None:
        for v in ("cons", "prod", "words"):
            mv = self.__dict__.pop(v, None)
            if mv is not None:
                mv.release()
        self.__dict__.pop("mm", None)
        for name in ("_cons_mm", "_data_mm"):
            mm = self.__dict__.pop(name, None)
            if mm is not None:
                mm.close()
        fd = self.__dict__.pop("fd", -1)
        if fd >= 0:
            os.close(fd)


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix of ``a`` and ``b`` (slice compares only: C speed)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _first(t: tuple[Any, ...]) -> Any:
    return t[0]


def _bulk_struct(fmt: struct.Struct | None, ln: int, step: int) -> struct.Struct | None:
    """One record of a same-size run as a struct: header skipped, data (or ``fmt``'s fields), padding.

    None when the run cannot be cut that way (records shorter than
    ``fmt``, or native alignment that would pad differently).
    """
    if fmt is None:
        return struct.Struct(f"={_RB_HDR}x{ln}s{step - _RB_HDR - ln}x")
    f = fmt.format
    has_order = f[:1] in ("@", "=", "<", ">", "!")
    order, body = (f[0], f[1:]) if has_order else ("@", f)
    if ln < fmt.size:
        return None
    st = struct.Struct(f"{order}{_RB_HDR}x{body}{step - _RB_HDR - fmt.size}x")
    return st if st.size == step else None


_NO_STRUCT: Any = object()


class RingBuffer(_Reader[bytes]):
    """A reader of one (or more, see :meth:`add`) ``ringbuf`` maps.

    The ring is mapped into this process and its records are parsed in
    Python (no libbpf call, no foreign callback per record).  Three ways
    to read:

    - :meth:`read_batch` returns every record available now as a list of
      bytes (optionally waiting for the first); :meth:`read_structs`
      returns them decoded by a :mod:`struct` format (fastest);
    - ``callback(data: bytes)`` is called for each record during
      :meth:`poll`/:meth:`consume`: a callback returning a negative number
      stops the poll, which raises :class:`LibbpfError` with that errno
      (libbpf's rule); an exception in it propagates from :meth:`poll`,
      and the records before it (and that one) stay consumed;
    - without a callback, records queue up for :meth:`events`, iteration
      and ``async for``.

    Discarded records are skipped; a record still being written (BUSY)
    stops the read until it is submitted, so records are always read in
    order.  :attr:`epoll_fd` becomes readable when records are waiting.
    A reader is not meant to be shared by threads (as libbpf's is not).
    """

    def __init__(self, ringbuf: MapLike, callback: Callable[[bytes], Any] | None = None) -> None:
        super().__init__()
        self._rings: list[_Ring] = []
        self._ep: select.epoll | None = None
        self._bulk: dict[Any, dict[tuple[int, int], struct.Struct | None]] = {}
        self._user_cb = callback
        self._wake = -1
        self._waiters = 0
        _check_type(ringbuf, "ringbuf")
        self._ep = select.epoll()
        # close() writes here: a thread blocked in poll() wakes up and sees the reader closed
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._ep.register(self._wake, select.EPOLLIN)
        self._ptr = 1  # open
        try:
            self._add(ringbuf, callback)
        except BaseException:
            self.close()
            raise

    def _add(self, ringbuf: MapLike, callback: Callable[[bytes], Any] | None) -> None:
        ring = _Ring(ringbuf, callback)
        assert self._ep is not None
        try:
            self._ep.register(ring.fd, select.EPOLLIN)
        except OSError as e:
            ring.close()
            raise MapError(f"adding map {_map_label(ringbuf)} to the ring buffer: {os.strerror(e.errno or 22)}",
                           errno=e.errno or 22, map=_map_label(ringbuf)) from None
        self._rings.append(ring)

    def add(self, ringbuf: MapLike, callback: Callable[[bytes], Any] | None = None) -> None:
        """Also read another ringbuf map through the same poll/epoll fd."""
        self._need_open()
        _check_type(ringbuf, "ringbuf")
        self._add(ringbuf, callback or self._user_cb)

    # -- batch reads ---------------------------------------------------------

    def _wait(self, timeout_ms: int) -> None:
        if timeout_ms == 0 or any(r.available() for r in self._rings):
            return
        assert self._ep is not None
        self._waiters += 1
        try:
            self._ep.poll(-1 if timeout_ms < 0 else timeout_ms / 1000)
        except InterruptedError:  # pragma: no cover  # PEP 475 retries; a handler's exception propagates
            pass
        finally:
            self._waiters -= 1
            if not self._ptr and not self._waiters:  # closed by another thread while we waited
                self._release()
        self._need_open()

    def read_batch(self, timeout_ms: int = 0, *, max_records: int | None = None) -> list[bytes]:
        """Every record available now (at most ``max_records``), in order, as bytes.

        Waits up to ``timeout_ms`` (-1: forever) when none is available; an
        empty list means none came.  Records of several rings come ring by
        ring.  Callbacks are not called.
        """
        self._need_open()
        if timeout_ms.__class__ is not int:
            timeout_ms = _timeout_ms(timeout_ms)
        pending = self._pending
        if pending:  # records an iterator left queued come first
            take = len(pending) if max_records is None else min(len(pending), max_records)
            return [pending.popleft() for _ in range(take)]
        out: list[Any] = []
        self._wait(timeout_ms)
        limit = max_records if max_records is not None else 1 << 62
        for ring in self._rings:
            ring.read(out, limit - len(out), None, self._bulk.setdefault(None, {}))
        return out

    def read_structs(self, fmt: str | struct.Struct, timeout_ms: int = 0, *,
                     max_records: int | None = None) -> list[tuple[Any, ...]]:
        """Like :meth:`read_batch`, each record decoded as ``fmt`` (its leading ``calcsize`` bytes).

        The fastest way to read fixed-layout events: a run of same-size
        records is decoded by :meth:`struct.Struct.iter_unpack` in one
        call.  A record shorter than the format raises :class:`MapError`
        (the records before it are consumed, it is not).
        """
        self._need_open()
        try:
            st = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        except (struct.error, TypeError) as e:
            raise BpfError(f"read_structs: bad struct format {fmt!r}: {e}", errno=22) from None
        if timeout_ms.__class__ is not int:
            timeout_ms = _timeout_ms(timeout_ms)
        self._wait(timeout_ms)
        out: list[Any] = []
        limit = max_records if max_records is not None else 1 << 62
        bulk = self._bulk.setdefault(st.format, {})
        for ring in self._rings:
            ring.read(out, limit - len(out), st, bulk)
        return out

    # -- callback API ------------------------------------------------------------

    def _dispatch(self) -> int:
        n = 0
        bulk = self._bulk.setdefault(None, {})
        for ring in self._rings:
            cb = ring.callback
            if cb is None or self._iterating:
                n += ring.read(self._pending, 1 << 62, None, bulk)
                continue
            while True:
                # in slices, committed up to the record whose callback returned or raised: a
                # callback that stops the poll leaves the records after it in the ring (libbpf's rule)
                batch: list[bytes] = []
                ends: list[int] = []
                if not ring.read(batch, 4096, None, bulk, ends):
                    ring.commit(ring.reached)  # discarded records only
                    break
                i = 0
                try:
                    for rec in batch:
                        r = cb(rec)
                        if r is not None and isinstance(r, int) and r < 0:
                            raise LibbpfError(f"ring buffer callback on map {ring.label} stopped the poll: "
                                              f"{os.strerror(-r)}", errno=-r, map=ring.label)
                        i += 1
                except BaseException:
                    ring.commit(ends[i])
                    raise
                n += len(batch)
                ring.commit(ring.reached)
        return n

    def poll(self, timeout_ms: int = 0) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for records and handle them; returns how many."""
        self._need_open()
        if timeout_ms.__class__ is not int or timeout_ms > 0x7FFFFFFF:
            timeout_ms = _timeout_ms(timeout_ms)
        self._wait(timeout_ms)
        return self._dispatch()

    def consume(self) -> int:
        """Handle every record available now, without waiting; returns how many."""
        self._need_open()
        return self._dispatch()

    @property
    def epoll_fd(self) -> int:
        """An fd that becomes readable when records are waiting (for select/asyncio)."""
        self._need_open()
        assert self._ep is not None
        return self._ep.fileno()

    def _need_open(self) -> None:
        if not self._ptr:
            raise BpfError("the ring buffer reader is closed", errno=9)

    def close(self) -> None:
        """Unmap the rings and close the epoll fd (idempotent).

        A thread blocked in :meth:`poll` wakes up and gets a "closed" :class:`BpfError`.
        """
        self._ptr = 0
        wake = getattr(self, "_wake", -1)
        if getattr(self, "_waiters", 0) and wake >= 0:
            # the waiting thread frees everything when it wakes: closing the fds now would
            # take the wake-up event away before epoll_wait saw it
            os.eventfd_write(wake, 1)
            return
        self._release()

    def _release(self) -> None:
        wake = getattr(self, "_wake", -1)
        for ring in getattr(self, "_rings", ()):
            try:
                ring.close()
            except BufferError:  # another thread is reading it: its views keep the mapping alive
                pass
        self._rings = []
        ep = getattr(self, "_ep", None)
        if ep is not None:
            ep.close()
            self._ep = None
        if wake >= 0:
            os.close(wake)
            self._wake = -1


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


class PerfBuffer(_Reader[PerfEvent]):
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
        if not isinstance(page_cnt, int) or page_cnt <= 0 or page_cnt & (page_cnt - 1):
            raise MapError(f"page_cnt must be a power of two, got {page_cnt}", errno=22)
        if cpus is not None and (not cpus or min(*cpus, *cpus.values()) < 0):
            raise MapError(f"cpus must map CPUs to map indexes (both >= 0), got {cpus!r}", errno=22)
        self.lost = 0
        self._ptr = 0
        self._polling = 0
        self._closing = False
        pending = self._pending
        index_of = dict(cpus) if cpus else None
        string_at = ctypes.string_at
        hdr_unpack, sample_unpack, lost_unpack = _HDR.unpack, _SAMPLE.unpack, _LOST.unpack

        def on_event(_ctx: int | None, cpu: int, ev: int | None) -> int:
            if self._error is not None:  # stopped: the rest waits for the next poll
                return attach.LIBBPF_PERF_EVENT_DONE
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
                # DONE, not ERROR: libbpf stops on it without a warning of its own ("error
                # while processing records"), and the poll raises this exception
                return attach.LIBBPF_PERF_EVENT_DONE
            return attach.LIBBPF_PERF_EVENT_CONT

        self._cbs = (attach.PERF_BUFFER_EVENT_FN(on_event),)
        self._ptr = attach.perf_buffer_new_raw(_map_fd(perf_array), page_cnt, self._cbs[0], index_of,
                                               f"perf buffer on map {_map_label(perf_array)}")

    def poll(self, timeout_ms: int = 0) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) and handle samples; returns how many rings had data."""
        from pybpfobj.kernel import attach

        self._need_open()
        if timeout_ms.__class__ is not int or timeout_ms > 0x7FFFFFFF:
            timeout_ms = _timeout_ms(timeout_ms)
        self._polling += 1  # close() from another thread now defers the free (no use after free)
        try:
            n = attach.perf_buffer_poll(self._ptr, timeout_ms)
        except BpfError:
            self._raise_pending_error()
            raise
        finally:
            self._polling -= 1
            if self._closing and not self._polling:
                self._free()
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

    @property
    def epoll_fd(self) -> int:
        from pybpfobj.kernel import attach

        self._need_open()
        return attach.perf_buffer_epoll_fd(self._ptr)

    def _need_open(self) -> None:
        if not self._ptr:
            raise BpfError("the perf buffer reader is closed", errno=9)

    def close(self) -> None:
        """Free libbpf's perf buffer manager (idempotent).

        While another thread is inside :meth:`poll`, the free waits until that poll returns
        (its timeout or the next sample); later calls get a "closed" :class:`BpfError`.
        """
        if getattr(self, "_polling", 0):
            self._closing = True
            return
        self._free()

    def _free(self) -> None:
        if getattr(self, "_ptr", 0):
            from pybpfobj.kernel import attach

            ptr, self._ptr = self._ptr, 0
            attach.perf_buffer_free(ptr)


__all__ = ["PerfBuffer", "PerfEvent", "PerfLost", "RingBuffer"]
