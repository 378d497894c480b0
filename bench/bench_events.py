#!/usr/bin/env python3
"""Ring buffer consumption: pybpfobj.events.RingBuffer (Python callbacks) vs a small C
consumer (bench/c/ringbuf_consumer.c, libbpf) draining the same producer in the same run.

The producer is tests/data/runtime_events.bpf.c's emit_ringbuf, test-run with
``repeat`` so that each round fills the ring with EVENTS samples before the
consumer starts; consumption time alone is measured.  Needs root, clang, cc.
"""

from __future__ import annotations

import os
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

EVENTS = 64 * 3000  # fits the 4 MiB ring (16 bytes per sample)
ROUNDS = 3


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
            for _ in range(ROUNDS):
                count = 0

                def on_sample(_: bytes) -> None:
                    nonlocal count
                    count += 1

                with RingBuffer(rb_map, callback=on_sample) as rb:
                    emit.test_run(packet, data_size_out=0, repeat=EVENTS // 64)
                    t = time.perf_counter()
                    while count < EVENTS:
                        if rb.poll(1000) <= 0:
                            break
                    py_rates.append(count / (time.perf_counter() - t))
                emit.test_run(packet, data_size_out=0, repeat=EVENTS // 64)
                out = subprocess.run([consumer, pin, str(EVENTS)], check=True, capture_output=True,
                                     text=True).stdout.split()
                c_rates.append(int(out[0]) / float(out[1]))
            os.unlink(pin)
        py, c = max(py_rates), max(c_rates)
        print(f"ring buffer consumption, {EVENTS} samples of 8 bytes, best of {ROUNDS}:")
        print(f"  pybpfobj RingBuffer (Python callback): {py:12,.0f} events/s")
        print(f"  C consumer (libbpf ring_buffer__poll):  {c:12,.0f} events/s")
        print(f"  ratio Python/C: {py / c:.3f}  (C is {c / py:.1f}x faster)")
    finally:
        subprocess.run(["umount", bpffs], check=False)
        subprocess.run(["rm", "-rf", tmp], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
