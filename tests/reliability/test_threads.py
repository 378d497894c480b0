"""Eight threads doing map operations at once: no lost update, no crash, no
cross-talk between threads sharing one Map handle.

Each thread owns a key range of a shared hash map (update, lookup, delete,
re-insert) and one counter key it increments read-modify-write (one writer
per key, so every increment must be there at the end); meanwhile the same
threads iterate the whole map and a per-CPU array.  CI: 3,000 operations per
thread; PYBPFOBJ_LONG=1: 30,000.
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
