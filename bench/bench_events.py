#!/usr/bin/env python3
"""Ring buffer consumption: pybpfobj.events.RingBuffer vs a small C consumer
(bench/c/ringbuf_consumer.c, libbpf's ring_buffer__poll) draining the same producer in the
same run.

The producer is tests/data/runtime_events.bpf.c's emit_ringbuf: one test run of a
1 KiB packet makes 64 bpf_ringbuf_output calls (one u64 sequence number each), and
``repeat`` runs it EVENTS/64 times, so the ring holds EVENTS real records before a
consumer starts; consumption time alone is measured (wall clock, from the first read
to the last record).  Each consumer reads every record's sequence number and keeps
count, min, max and sum, which must show that it consumed exactly the EVENTS
consecutive records written for it (checked, not assumed).  Rounds alternate the
consumers; medians are reported.  Needs root, clang, cc.

Python consumers measured (all public API):
- ``read_structs("<Q")``: records decoded by struct in whole runs (the fast path);
- ``read_batch()``: a list of bytes, then the user unpacks each;
- ``RingBuffer(callback=...)``: a Python call per record, on the same in-process parser;
- for reference, what RingBuffer did before: libbpf's ring_buffer__poll calling a
  ctypes callback per record.
A C consumer with a trivial callback drains a ring at a few ns per record (a memory
scan), so any per-record Python work dominates the ratio.
"""

from __future__ import annotations

import ctypes
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _bpffs import drop_scratch_bpffs, scratch_bpffs
from netns import build_runtime_events

from pybpfobj.events import RingBuffer
from pybpfobj.kernel import attach
from pybpfobj.loader import BpfObject

EVENTS = 64 * 3000  # fits the 4 MiB ring (16 bytes per record)
ROUNDS = 5


def _check(who: str, count: int, lo: int, hi: int, total: int) -> None:
    if count != EVENTS or hi - lo + 1 != EVENTS or total != EVENTS * (lo + hi) // 2:
        raise SystemExit(f"{who} consumed {count} records (seq {lo}..{hi}, sum {total}); "
                         f"{EVENTS} consecutive ones were written")


def main() -> int:
    tmp, bpffs = scratch_bpffs("bench-events-")
    try:
        obj_path = build_runtime_events(tmp)
        consumer = os.path.join(tmp, "ringbuf_consumer")
        subprocess.run(["cc", "-O2", "-o", consumer, str(ROOT / "bench/c/ringbuf_consumer.c"), "-lbpf"],
                       check=True)
        with BpfObject(obj_path) as obj:
            obj.load()
            emit, rb_map = obj.programs["emit_ringbuf"], obj.maps["rb"]
            pin = os.path.join(bpffs, "rb")
            rb_map.pin(pin)
            packet = bytes(16 * 64)
            unpack = struct.Struct("<Q").unpack_from

            def produce() -> None:
                emit.test_run(packet, data_size_out=0, repeat=EVENTS // 64)

            def py_structs() -> tuple[int, float, int, int, int]:
                count = total = 0
                lo, hi = 1 << 64, -1
                with RingBuffer(rb_map) as rb:
                    produce()
                    t = time.perf_counter()
                    while count < EVENTS:
                        recs = rb.read_structs("<Q", 1000)
                        if not recs:
                            break
                        vals = [r[0] for r in recs]
                        count += len(vals)
                        total += sum(vals)
                        lo, hi = min(lo, min(vals)), max(hi, max(vals))
                    return count, time.perf_counter() - t, lo, hi, total

            def py_batch() -> tuple[int, float, int, int, int]:
                count = total = 0
                lo, hi = 1 << 64, -1
                with RingBuffer(rb_map) as rb:
                    produce()
                    t = time.perf_counter()
                    while count < EVENTS:
                        recs = rb.read_batch(1000)
                        if not recs:
                            break
                        for data in recs:
                            v = unpack(data)[0]
                            count += 1
                            total += v
                            lo = min(lo, v)
                            hi = max(hi, v)
                    return count, time.perf_counter() - t, lo, hi, total

            def py_callback() -> tuple[int, float, int, int, int]:
                count = total = 0
                lo, hi = 1 << 64, -1

                def on_sample(data: bytes) -> None:
                    nonlocal count, total, lo, hi
                    v = unpack(data)[0]
                    count += 1
                    total += v
                    lo = min(lo, v)
                    hi = max(hi, v)

                with RingBuffer(rb_map, callback=on_sample) as rb:
                    produce()
                    t = time.perf_counter()
                    while count < EVENTS:
                        if rb.poll(1000) <= 0:
                            break
                    return count, time.perf_counter() - t, lo, hi, total

            def py_libbpf_callback() -> tuple[int, float, int, int, int]:
                count = total = 0
                lo, hi = 1 << 64, -1

                def on_sample(_ctx: int | None, data: int | None, size: int) -> int:
                    nonlocal count, total, lo, hi
                    v = unpack(ctypes.string_at(data, size))[0]
                    count += 1
                    total += v
                    lo = min(lo, v)
                    hi = max(hi, v)
                    return 0

                fn = attach.RING_BUFFER_SAMPLE_FN(on_sample)
                ptr = attach.ring_buffer_new(rb_map.fd, fn, "reference reader")
                try:
                    produce()
                    t = time.perf_counter()
                    while count < EVENTS:
                        if attach.ring_buffer_poll(ptr, 1000) <= 0:
                            break
                    return count, time.perf_counter() - t, lo, hi, total
                finally:
                    attach.ring_buffer_free(ptr)

            def c_consumer() -> tuple[int, float, int, int, int]:
                produce()
                out = subprocess.run([consumer, pin, str(EVENTS)], check=True, capture_output=True,
                                     text=True).stdout.split()
                return int(out[0]), float(out[1]), int(out[2]), int(out[3]), int(out[4])

            consumers: list[tuple[str, Callable[[], tuple[int, float, int, int, int]]]] = [
                ("C consumer (libbpf ring_buffer__poll)", c_consumer),
                ("RingBuffer.read_structs('<Q')", py_structs),
                ("RingBuffer.read_batch() + unpack", py_batch),
                ("RingBuffer(callback=...)", py_callback),
                ("before: libbpf + ctypes callback", py_libbpf_callback),
            ]
            rates: dict[str, list[float]] = {name: [] for name, _ in consumers}
            for rnd in range(ROUNDS):
                order = consumers if rnd % 2 == 0 else consumers[::-1]
                for name, fn in order:
                    count, secs, lo, hi, total = fn()
                    _check(name, count, lo, hi, total)
                    rates[name].append(count / secs)
            os.unlink(pin)
        med = {name: statistics.median(r) for name, r in rates.items()}
        c = med[consumers[0][0]]
        print(f"ring buffer consumption, {EVENTS} records of 8 bytes each (verified), median of {ROUNDS}:")
        print(f"{'consumer':40s} {'events/s':>14s} {'ratio vs C':>11s}")
        for name, _ in consumers:
            print(f"{name:40s} {med[name]:14,.0f} {med[name] / c:11.4f}")
        # for bench/run_all.py: RATIO <name> <value> -; records/s over C's (higher is faster)
        keys = ["read_structs", "read_batch", "callback", "before_libbpf_ctypes_callback"]
        for (name, _), key in zip(consumers[1:], keys, strict=True):
            print(f"RATIO ringbuf_{key}_throughput_vs_C {med[name] / c:.4f} -")
    finally:
        drop_scratch_bpffs(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
