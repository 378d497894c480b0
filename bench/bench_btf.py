#!/usr/bin/env python3
"""Benchmark: the BTF reader on vmlinux against bpftool, measured in the same run.

- full parse: open /sys/kernel/btf/vmlinux, build the index and decode every
  type (in process), vs ``bpftool btf dump file vmlinux > /dev/null`` (whole process);
- named lookup: open a fresh BTF and ``find("task_struct")`` (in process),
  vs the same bpftool run;
- also the whole ``python3 -m pybpfobj btf dump file vmlinux`` process for reference.

Prints medians of several runs and the ratios (targets: full parse <= 10x,
named lookup <= 2x), then the same as ``RATIO <name> <value> <target|->``
lines for bench/run_all.py.  Usage: python3 bench/bench_btf.py [--runs N] [--file PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pybpfobj.spec.btf import BTF


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_cpu(fn: Callable[[], object], runs: int, child: bool) -> float:
    """Median CPU time (user+sys) of fn: of this process, or of its children (bpftool)."""
    who = resource.RUSAGE_CHILDREN if child else resource.RUSAGE_SELF
    times = []
    for _ in range(runs):
        r0 = resource.getrusage(who)
        fn()
        r1 = resource.getrusage(who)
        times.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--file", default="/sys/kernel/btf/vmlinux")
    ap.add_argument("--name", default="task_struct")
    args = ap.parse_args()
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if not os.path.exists(bpftool):
        print("bpftool not found", file=sys.stderr)
        return 1

    def run_bpftool() -> None:
        subprocess.run([bpftool, "btf", "dump", "file", args.file], stdout=subprocess.DEVNULL, check=True)

    def full_parse() -> None:
        btf = BTF.from_file(args.file)
        for _ in btf.types():
            pass

    def named_lookup() -> None:
        BTF.from_file(args.file).find(args.name)

    def run_ours_cli() -> None:
        subprocess.run([sys.executable, "-m", "pybpfobj", "btf", "dump", "file", args.file],
                       stdout=subprocess.DEVNULL, check=True, cwd=Path(__file__).resolve().parent.parent)

    run_bpftool()  # warm the page cache
    ref = median_time(run_bpftool, args.runs)
    full = median_time(full_parse, args.runs)
    look = median_time(named_lookup, args.runs)
    cli = median_time(run_ours_cli, max(1, args.runs // 2))
    ref_cpu = median_cpu(run_bpftool, args.runs, True)
    full_cpu = median_cpu(full_parse, args.runs, False)
    look_cpu = median_cpu(named_lookup, args.runs, False)
    n = len(BTF.from_file(args.file))
    print(f"BTF file: {args.file} ({n} types), median of {args.runs} runs")
    print(f"bpftool btf dump file (whole process): {ref * 1000:8.1f} ms")
    print(f"full parse (index + decode all):       {full * 1000:8.1f} ms  ratio {full / ref:5.2f}x  (target <= 10x)")
    print(f"open + find({args.name!r}):{' ' * max(0, 15 - len(args.name))}{look * 1000:8.1f} ms  "
          f"ratio {look / ref:5.2f}x  (target <= 2x)")
    print(f"pybpfobj btf dump file (whole process):{cli * 1000:8.1f} ms  ratio {cli / ref:5.2f}x")
    print("CPU time (user+sys), robust when the machine is busy:")
    print(f"  bpftool {ref_cpu * 1000:.1f} ms; full parse {full_cpu * 1000:.1f} ms ratio {full_cpu / ref_cpu:.2f}x; "
          f"open+find {look_cpu * 1000:.1f} ms ratio {look_cpu / ref_cpu:.2f}x")
    # for bench/run_all.py: RATIO <name> <value> <target|-> (issue 2's targets)
    print(f"RATIO btf_full_parse_vs_bpftool {full / ref:.4f} 10")
    print(f"RATIO btf_named_lookup_vs_bpftool {look / ref:.4f} 2")
    print(f"RATIO btf_dump_process_vs_bpftool {cli / ref:.4f} -")
    print(f"RATIO btf_full_parse_cpu_vs_bpftool {full_cpu / ref_cpu:.4f} -")
    print(f"RATIO btf_named_lookup_cpu_vs_bpftool {look_cpu / ref_cpu:.4f} -")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
