"""Eight threads doing map operations at once: no lost update, no crash, no
cross-talk between threads sharing one Map handle.

Each thread owns a key range of a shared hash map (update, lookup, delete,
re-insert) and one counter key it increments read-modify-write (one writer
per key, so every increment must be there at the end); meanwhile the same
threads iterate the whole map and a per-CPU array.  Shared handles are also
driven through the other buffer-using paths: struct-typed keys and values,
lookup_and_delete, get_next_key, per-CPU values, push/pop.  CI: 3,000
operations per thread; PYBPFOBJ_LONG=1: 30,000.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any

import pytest

from pybpfobj.errors import KeyNotFoundError
from pybpfobj.maps import Map
from reliability.common import open_fds, size

THREADS = 8
OPS = size("PYBPFOBJ_REL_THREAD_OPS", 3000, 30_000)
RANGE = 256  # keys per thread
COUNTER_BASE = 1_000_000
TYPES = {"key_type": ctypes.c_uint32, "value_type": ctypes.c_uint64}


def _run_threads(work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def body(t: int) -> None:
        try:
            start.wait()
            work(t)
        except BaseException as e:  # noqa: BLE001 - reported below, with its thread
            errors.append(e)

    threads = [threading.Thread(target=body, args=(t,), name=f"mapops-{t}") for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "a thread hung"
    assert not errors, f"{len(errors)} thread(s) failed, first: {errors[0]!r}"


def _key(t: int, i: int) -> int:
    return t * RANGE + i % RANGE


def _value(t: int, i: int) -> int:
    return (t << 40) | i


@pytest.fixture
def hash_map(need_root: None) -> Any:
    m = Map.create("hash", 4, 8, THREADS * RANGE + THREADS, name="rel_threads", **TYPES)
    yield m
    m.close()


def _hammer(handle_for: Callable[[int], Map]) -> Callable[[int], None]:
    def work(t: int) -> None:
        m = handle_for(t)
        counter = COUNTER_BASE + t
        m.update(counter, 0)
        for i in range(OPS):
            k = _key(t, i)
            m.update(k, _value(t, i))
            got = m.lookup(k)
            assert got == _value(t, i), f"thread {t}: key {k} holds {got:#x}, wrote {_value(t, i):#x}"
            m.update(counter, m.lookup(counter) + 1)  # read-modify-write, one writer per key
            if i % 7 == 3:
                m.delete(k)
                assert m.get(k) is None
                m.update(k, _value(t, i), "noexist")
            if i % 500 == 0:
                seen = m.keys()  # iteration while the others write: any subset, no crash
                assert all(isinstance(x, int) for x in seen)
    return work


def _check_final(m: Map) -> None:
    contents = dict(m.items())
    for t in range(THREADS):
        assert contents[COUNTER_BASE + t] == OPS, f"thread {t}: increments lost"
        for j in range(min(OPS, RANGE)):
            # the last write to key j of thread t was at the last i with i % RANGE == j
            last = max(i for i in range(OPS - RANGE - 1, OPS) if i >= 0 and i % RANGE == j)
            assert contents[_key(t, j)] == _value(t, last)
    assert len(contents) == THREADS * (min(OPS, RANGE) + 1)


def test_eight_threads_sharing_one_map_handle_lose_no_update(hash_map: Map) -> None:
    _run_threads(_hammer(lambda t: hash_map))
    _check_final(hash_map)


def test_eight_threads_with_their_own_handles_lose_no_update(hash_map: Map) -> None:
    fds0 = open_fds()
    handles = [Map.from_id(hash_map.id, **TYPES) for _ in range(THREADS)]
    try:
        _run_threads(_hammer(lambda t: handles[t]))
    finally:
        for h in handles:
            h.close()
    _check_final(hash_map)
    assert open_fds() <= fds0


def test_threads_on_a_percpu_array_and_batches_do_not_crash(need_root: None) -> None:
    shared_arr = Map.create("percpu_array", 4, 8, 64, name="rel_pcpu", **TYPES)
    shared_hm = Map.create("hash", 4, 8, THREADS * 64, name="rel_batch", **TYPES)
    try:
        def work(t: int) -> None:
            arr = Map.from_id(shared_arr.id, **TYPES)
            hm = Map.from_id(shared_hm.id, **TYPES)
            for i in range(OPS // 10):
                arr.update(t, [i] * arr.ncpus)
                assert arr.lookup(t) == [i] * arr.ncpus
                hm.update_batch({t * 64 + j: i for j in range(64)})
                got = dict(hm.lookup_batch())
                assert all(got[t * 64 + j] == i for j in range(64))
            with pytest.raises(KeyNotFoundError):
                hm.lookup(10**9)
            arr.close()
            hm.close()

        _run_threads(work)
        assert len(shared_hm.keys()) == THREADS * 64
    finally:
        shared_arr.close()
        shared_hm.close()


class _Key(ctypes.Structure):
    _fields_ = [("t", ctypes.c_uint32), ("i", ctypes.c_uint32)]


class _Val(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]


def test_threads_sharing_a_struct_typed_handle_read_back_their_own_values(need_root: None) -> None:
    m = Map.create("hash", 8, 16, THREADS * RANGE, name="rel_struct", key_type=_Key, value_type=_Val)
    try:
        def work(t: int) -> None:
            for i in range(OPS // 3):
                k = _Key(t, i % RANGE)
                m.update(k, _Val(_value(t, i), ~_value(t, i) & (2**64 - 1)))
                got = m.lookup(k)
                assert (got.a, got.b) == (_value(t, i), ~_value(t, i) & (2**64 - 1)), (t, i, got.a)
                if i % 3 == 0:
                    got = m.lookup_and_delete(k)
                    assert got.a == _value(t, i), (t, i, got.a)
                    assert k not in m

        _run_threads(work)
        for k in m:  # every remaining value is the one its own thread wrote last for that key
            last = max(i for i in range(OPS // 3) if i % RANGE == k.i)
            assert m[k].a == _value(k.t, last), (k.t, k.i)
    finally:
        m.close()


def test_threads_sharing_an_array_handle_get_the_next_key_of_their_own_key(need_root: None) -> None:
    m = Map.create("array", 4, 8, THREADS * RANGE, name="rel_next", **TYPES)
    try:
        def work(t: int) -> None:
            for i in range(OPS):
                k = _key(t, i)
                if k + 1 < m.max_entries:
                    assert m.get_next_key(k) == k + 1, (t, k)

        _run_threads(work)
    finally:
        m.close()


def test_threads_sharing_a_percpu_handle_read_back_their_own_values(need_root: None) -> None:
    m = Map.create("percpu_hash", 4, 8, THREADS, name="rel_pcpu_sh", **TYPES)
    try:
        def work(t: int) -> None:
            for i in range(OPS // 3):
                vals = [_value(t, i) + c for c in range(m.ncpus)]
                m.update(t, vals)
                assert m.lookup(t) == vals, (t, i)

        _run_threads(work)
    finally:
        m.close()


def test_threads_sharing_a_queue_handle_pop_every_pushed_value_once(need_root: None) -> None:
    per_thread = OPS // 3
    q = Map.create("queue", 0, 8, THREADS * per_thread, name="rel_queue", value_type=ctypes.c_uint64)
    popped: list[list[int]] = [[] for _ in range(THREADS)]
    try:
        def work(t: int) -> None:
            for i in range(per_thread):
                q.push(_value(t, i))
                if i % 2:
                    popped[t].append(q.pop())

        _run_threads(work)
        rest = []
        while True:
            try:
                rest.append(q.pop())
            except KeyNotFoundError:
                break
        got = sorted([v for p in popped for v in p] + rest)
        assert got == sorted(_value(t, i) for t in range(THREADS) for i in range(per_thread))
    finally:
        q.close()
