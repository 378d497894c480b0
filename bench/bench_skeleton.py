#!/usr/bin/env python3
"""Skeleton benchmarks (targets: generation <= 0.5 s whole process, import <= 50 ms).

1. ``pybpfobj gen skeleton`` of our largest object, whole process (median of
   runs), against two references measured in the same run: a bare
   ``python3 -c pass`` and ``bpftool gen skeleton`` (C) on the same object.
2. Importing the generated module in a fresh interpreter (time of the import
   statement alone, median), against importing ctypes + enum + typing (what
   any such module pays anyway).

Prints for people, then ``RATIO <name> <value> <target|->`` lines for
bench/run_all.py: ``skeleton_generation_<obj>_process_s`` (target 0.5),
``skeleton_import_ms`` (target 50) and the informative ratios.

Both run as installed code does: with the project's ``.venv`` interpreter
when it exists (``bash scripts/setup.sh``), and with byte code caches
(``PYTHONDONTWRITEBYTECODE`` is dropped; a warm-up run writes the caches of
pybpfobj and of the generated module before anything is timed).

    PYTHONPATH=. python3 bench/bench_skeleton.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "bpf_progs" / "build"


def wall(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def import_time(python: str, module: str, path: str, runs: int, env: dict[str, str]) -> float:
    code = (f"import sys, time; sys.path.insert(0, {path!r}); t = time.perf_counter(); import {module}; "
            "print(time.perf_counter() - t)")
    times = []
    for _ in range(runs):
        out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True,
                             env=env, cwd=ROOT).stdout
        times.append(float(out))
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    subprocess.run(["make", "-s", "-C", str(ROOT / "bpf_progs")], check=True)
    objs = sorted(BUILD.glob("*.o"), key=lambda p: p.stat().st_size)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed code runs: with .pyc caches
    venv_python = ROOT / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    print(f"interpreter: {python}")
    ratio_lines: list[str] = []  # for bench/run_all.py: RATIO <name> <value> <target|->
    tmp = Path(tempfile.mkdtemp(prefix="bench-skel-"))
    try:
        # the largest object the skeleton generator accepts
        for obj in reversed(objs):
            out = tmp / "bench_skel_mod.py"
            r = subprocess.run([python, "-m", "pybpfobj", "gen", "skeleton", str(obj), "output",
                                str(out)], check=False, env=env, cwd=ROOT, capture_output=True)
            if r.returncode == 0:
                break
        else:
            print("no object could be generated", file=sys.stderr)
            return 1
        print(f"object: {obj.name} ({obj.stat().st_size} bytes) -> module {out.stat().st_size} bytes")

        gen = wall([python, "-m", "pybpfobj", "gen", "skeleton", str(obj), "output", str(out)],
                   args.runs, env)
        bare = wall([python, "-c", "pass"], args.runs, env)
        print(f"generation (whole process): {gen * 1000:7.1f} ms   target <= 500 ms   "
              f"{'OK' if gen <= 0.5 else 'SLOW'}")
        print(f"  reference python3 -c pass: {bare * 1000:7.1f} ms   ratio {gen / bare:5.1f}x")
        ratio_lines.append(f"RATIO skeleton_generation_{obj.stem}_process_s {gen:.4f} 0.5")
        ratio_lines.append(f"RATIO skeleton_generation_vs_python_startup {gen / bare:.4f} -")
        bpftool = shutil.which("bpftool") or ("/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool")
                                              else None)
        if bpftool:
            try:
                ref = wall([bpftool, "gen", "skeleton", str(obj)], args.runs, env)
                print(f"  reference bpftool gen skeleton (C): {ref * 1000:7.1f} ms   ratio {gen / ref:5.1f}x")
                ratio_lines.append(f"RATIO skeleton_generation_vs_bpftool_gen {gen / ref:.4f} -")
            except subprocess.CalledProcessError:
                print("  reference bpftool gen skeleton: refused this object")

        import_time(python, "bench_skel_mod", str(tmp), 1, env)  # warm-up: writes the module's .pyc
        imp = import_time(python, "bench_skel_mod", str(tmp), args.runs, env)
        base = import_time(python, "ctypes, enum, typing", str(tmp), args.runs, env)
        print(f"import of the generated module: {imp * 1000:7.2f} ms   target <= 50 ms   "
              f"{'OK' if imp <= 0.05 else 'SLOW'}")
        print(f"  reference import ctypes, enum, typing: {base * 1000:7.2f} ms   ratio {imp / base:5.1f}x")
        ratio_lines.append(f"RATIO skeleton_import_ms {imp * 1000:.3f} 50")
        ratio_lines.append(f"RATIO skeleton_import_vs_ctypes_enum_typing {imp / base:.4f} -")
        print()
        print("\n".join(ratio_lines))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
