#!/usr/bin/env python3
"""Ring buffer consumption: pybpfobj.events.RingBuffer (Python callbacks) vs a small C
consumer (bench/c/ringbuf_consumer.c, libbpf) draining the same producer in the same run.

The producer is tests/data/runtime_events.bpf.c's emit_ringbuf: one test run of a
1 KiB packet makes 64 bpf_ringbuf_output calls (one u64 sequence number each), and
``repeat`` runs it EVENTS/64 times, so the ring holds EVENTS real records before a
consumer starts; consumption time alone is measured.  Each consumer reads every
record's sequence number and reports count, min, max and sum, which must show that
it consumed exactly the EVENTS consecutive records written for it (checked, not
assumed).  Rounds alternate Python and C; medians are reported.  Needs root, clang, cc.

A C consumer with a trivial callback drains a ring at a few ns per record (it is a
memory scan), so the Python/C ratio is mostly the cost of one ctypes callback.
"""

from __future__ import annotations

import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from netns import build_runtime_events

from pybpfobj.events import RingBuffer
from pybpfobj.loader import BpfObject

EVENTS = 64 * 3000  # fits the 4 MiB ring (16 bytes per record)
ROUNDS = 5


def _check(who: str, count: int, lo: int, hi: int, total: int) -> None:
    if count != EVENTS or hi - lo + 1 != EVENTS or total != EVENTS * (lo + hi) // 2:
        raise SystemExit(f"{who} consumed {count} records (seq {lo}..{hi}, sum {total}); "
                         f"{EVENTS} consecutive ones were written")


def main() -> int:
    tmp = tempfile.mkdtemp(prefix="bench-events-")
    bpffs = os.path.join(tmp, "bpffs")
    os.mkdir(bpffs)
    subprocess.run(["mount", "-t", "bpf", "bpf", bpffs], check=True)
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
            py_rates, c_rates = [], []
            unpack = struct.Struct("<Q").unpack_from
            for _ in range(ROUNDS):
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
                    emit.test_run(packet, data_size_out=0, repeat=EVENTS // 64)
                    t = time.perf_counter()
                    while count < EVENTS:
                        if rb.poll(1000) <= 0:
                            break
                    py_rates.append(count / (time.perf_counter() - t))
                _check("Python", count, lo, hi, total)

                emit.test_run(packet, data_size_out=0, repeat=EVENTS // 64)
                out = subprocess.run([consumer, pin, str(EVENTS)], check=True, capture_output=True,
                                     text=True).stdout.split()
                c_count, c_secs, c_lo, c_hi, c_sum = int(out[0]), float(out[1]), *map(int, out[2:])
                _check("C", c_count, c_lo, c_hi, c_sum)
                c_rates.append(c_count / c_secs)
            os.unlink(pin)
        py, c = statistics.median(py_rates), statistics.median(c_rates)
        print(f"ring buffer consumption, {EVENTS} records of 8 bytes each side (verified), "
              f"median of {ROUNDS}:")
        print(f"  pybpfobj RingBuffer (Python callback): {py:14,.0f} events/s")
        print(f"  C consumer (libbpf ring_buffer__poll):  {c:14,.0f} events/s")
        print(f"  ratio Python/C throughput: {py / c:.4f}  (C is {c / py:.0f}x faster)")
    finally:
        subprocess.run(["umount", bpffs], check=False)
        subprocess.run(["rm", "-rf", tmp], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
