#!/usr/bin/env python3
"""Test-run round trips per second: Program.test_run() from Python (one syscall per run)
against bpftool's ``prog run ... repeat N`` average (N runs inside one syscall), and
Python's own ``repeat N`` for the in-kernel cost.  Needs root and bpftool.
Also prints ``RATIO <name> <value> -`` lines (time per run over bpftool's) for bench/run_all.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _bpffs import drop_scratch_bpffs, scratch_bpffs

from pybpfobj.loader import BpfObject

N = 20000


def main() -> int:
    tmp, bpffs = scratch_bpffs("bench-testrun-")
    try:
        pkt = os.path.join(tmp, "pkt")
        Path(pkt).write_bytes(bytes(64))
        with BpfObject(ROOT / "bpf_progs/build/tailcall.o") as obj:
            obj.load()
            prog = obj.programs["bpf_func_process"]
            prog.pin(os.path.join(bpffs, "p"))
            data = bytes(64)
            for _ in range(1000):  # warm up
                prog.test_run(data, data_size_out=0)
            t = time.perf_counter()
            for _ in range(N):
                prog.test_run(data, data_size_out=0)
            py_rate = N / (time.perf_counter() - t)
            py_rep = prog.test_run(data, data_size_out=0, repeat=N).duration_ns
            out = subprocess.run(["bpftool", "prog", "run", "pinned", os.path.join(bpffs, "p"), "data_in", pkt,
                                  "repeat", str(N)], check=True, capture_output=True, text=True).stdout
            avg = int(re.search(r"duration \(average\): (\d+)ns", out).group(1))  # type: ignore[union-attr]
            bt_rate = 1e9 / max(avg, 1)
            os.unlink(os.path.join(bpffs, "p"))
        print(f"test runs of an XDP program on a 64-byte packet, N={N}:")
        print(f"  Python, one test_run() per run:        {py_rate:12,.0f} runs/s")
        print(f"  bpftool prog run repeat N (average):   {bt_rate:12,.0f} runs/s ({avg} ns)")
        print(f"  Python test_run(repeat=N) (average):   {1e9 / max(py_rep, 1):12,.0f} runs/s ({py_rep} ns)")
        print(f"  ratio Python round trip / bpftool repeat average: {py_rate / bt_rate:.3f}")
        # for bench/run_all.py: RATIO <name> <value> <target|->; time per run over time per run
        # (a cost, like the other benchmarks' ratios); issue 6 sets no target
        print(f"RATIO testrun_roundtrip_time_vs_bpftool_repeat_avg {bt_rate / py_rate:.4f} -")
        print(f"RATIO testrun_repeat_avg_time_vs_bpftool_repeat_avg {py_rep / max(avg, 1):.4f} -")
    finally:
        drop_scratch_bpffs(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
