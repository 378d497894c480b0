"""Load benchmarks: pybpfobj against bpftool and against libbpf from C, in the same run.

1. Whole process: ``python3 -m pybpfobj loadall OBJ DIR`` vs ``bpftool prog
   loadall OBJ DIR`` for each object (median of N runs each, fresh pin dirs
   in a private bpffs, runs interleaved), printing both medians, the ratio
   and the difference.  Targets: difference <= 40 ms; ratio <= 1.15 on
   heavy.o (a load of 100 ms or more).  Our command is the project's
   ``.venv/bin/pybpfobj`` when it exists (``scripts/setup.sh``), else
   ``python -m pybpfobj``; it runs as installed code does, with byte code
   caches (``PYTHONDONTWRITEBYTECODE`` is dropped and one warm-up run writes
   them).  ``python -c pass`` of the same interpreter is printed as the
   start-up floor.
2. In process: ``BpfObject(path).load()`` vs bench/c/load_bench.c doing
   bpf_object__open_file + bpf_object__load: rounds alternate C and Python
   (N loads each, more for small objects; median), the ratio printed is the
   median over rounds.
   Target <= 1.1.

Run as root: ``python3 bench/bench_load.py [-n N] [OBJ...]``.
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
DEFAULT = ["xdp_counter", "globals", "maps_all", "progs_all", "tailcall", "mapinmap", "heavy"]


def timed(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {p.stderr.decode()}")
    return dt


def whole_process(objs: list[str], n: int, fs: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    venv = ROOT / ".venv" / "bin"
    if (venv / "pybpfobj").exists():
        ours_cmd, python = [str(venv / "pybpfobj")], str(venv / "python")
    else:
        ours_cmd, python = [sys.executable, "-m", "pybpfobj"], sys.executable
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    timed([*ours_cmd, "loadall", str(BUILD / f"{objs[0]}.o"), str(fs / "warm")], env)  # byte code caches
    print(f"ours: {' '.join(ours_cmd)}")
    print(f"{'object':<14} {'bpftool ms':>10} {'pybpfobj ms':>12} {'ratio':>6} {'diff ms':>8} "
          f"{'python -c pass':>15}")
    k = 0
    for name in objs:
        obj = str(BUILD / f"{name}.o")
        ref: list[float] = []
        us: list[float] = []
        floor: list[float] = []
        for _ in range(n):
            k += 1
            ref.append(timed([bpftool, "prog", "loadall", obj, str(fs / f"t{k}")], env))
            us.append(timed([*ours_cmd, "loadall", obj, str(fs / f"o{k}")], env))
            floor.append(timed([python, "-c", "pass"], env))
            for d in (fs / f"t{k}", fs / f"o{k}"):
                for p in d.iterdir():
                    p.unlink()
                d.rmdir()
        r, u, f = statistics.median(ref), statistics.median(us), statistics.median(floor)
        print(f"{name:<14} {r * 1e3:10.1f} {u * 1e3:12.1f} {u / r:6.2f} {(u - r) * 1e3:8.1f} "
              f"{f * 1e3:15.1f}")


def in_process(objs: list[str], n: int) -> None:
    sys.path.insert(0, str(ROOT))
    from pybpfobj.loader import BpfObject

    exe = Path(tempfile.mkdtemp()) / "load_bench"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "bench" / "c" / "load_bench.c"), "-lbpf"],
                   check=True)
    print(f"\n{'object':<14} {'C libbpf ms':>11} {'BpfObject ms':>12} {'ratio':>6}")
    rounds = 5
    for name in objs:
        obj = str(BUILD / f"{name}.o")
        t = time.perf_counter()
        with BpfObject(obj) as warm:  # first use loads libbpf and declares prototypes
            warm.load()
        # small objects: more loads per round (about 0.2 s), so the medians settle
        loads = max(n, min(200, int(0.2 / max(time.perf_counter() - t, 1e-4))))
        cs, pys, ratios = [], [], []
        for _ in range(rounds):  # alternate, so a busy moment hits both sides
            c = float(subprocess.run([str(exe), obj, str(loads)], capture_output=True, text=True,
                                     check=True).stdout)
            ts = []
            for _ in range(loads):
                t = time.perf_counter()
                o = BpfObject(obj)
                o.load()
                ts.append(time.perf_counter() - t)
                o.close()
            py = statistics.median(ts)
            cs.append(c)
            pys.append(py)
            ratios.append(py / c)
        print(f"{name:<14} {statistics.median(cs) * 1e3:11.2f} {statistics.median(pys) * 1e3:12.2f} "
              f"{statistics.median(ratios):6.2f}")
    shutil.rmtree(exe.parent, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=11, help="runs per measurement (median)")
    ap.add_argument("objects", nargs="*", default=DEFAULT)
    a = ap.parse_args()
    fs = Path(tempfile.mkdtemp(prefix="bench-load-"))
    subprocess.run(["mount", "-t", "bpf", "bpf", str(fs)], check=True)
    try:
        whole_process(a.objects, a.n, fs)
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)
        shutil.rmtree(fs, ignore_errors=True)
    in_process(a.objects, a.n)


if __name__ == "__main__":
    main()
