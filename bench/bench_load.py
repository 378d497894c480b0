"""Load benchmarks: pybpfobj against bpftool and against libbpf from C, in the same run.

1. Whole process: ``python3 -m pybpfobj loadall OBJ DIR`` vs ``bpftool prog
   loadall OBJ DIR`` for each object (median of N runs each, fresh pin dirs
   in a private bpffs, runs interleaved), printing both medians, the ratio
   and the difference.  Targets: difference <= 40 ms; ratio <= 1.15 on
   heavy.o (a load of 100 ms or more).
2. In process: ``BpfObject(path).load()`` vs bench/c/load_bench.c doing
   bpf_object__open_file + bpf_object__load (median of N).  Target <= 1.1.

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
    ours_cmd = [shutil.which("pybpfobj")] if shutil.which("pybpfobj") else [sys.executable, "-m", "pybpfobj"]
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    print(f"{'object':<14} {'bpftool ms':>10} {'pybpfobj ms':>12} {'ratio':>6} {'diff ms':>8}")
    k = 0
    for name in objs:
        obj = str(BUILD / f"{name}.o")
        ref: list[float] = []
        us: list[float] = []
        for _ in range(n):
            k += 1
            ref.append(timed([bpftool, "prog", "loadall", obj, str(fs / f"t{k}")], env))
            us.append(timed([*ours_cmd, "loadall", obj, str(fs / f"o{k}")], env))
            for d in (fs / f"t{k}", fs / f"o{k}"):
                for p in d.iterdir():
                    p.unlink()
                d.rmdir()
        r, u = statistics.median(ref), statistics.median(us)
        print(f"{name:<14} {r * 1e3:10.1f} {u * 1e3:12.1f} {u / r:6.2f} {(u - r) * 1e3:8.1f}")


def in_process(objs: list[str], n: int) -> None:
    sys.path.insert(0, str(ROOT))
    from pybpfobj.loader import BpfObject

    exe = Path(tempfile.mkdtemp()) / "load_bench"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "bench" / "c" / "load_bench.c"), "-lbpf"],
                   check=True)
    print(f"\n{'object':<14} {'C libbpf ms':>11} {'BpfObject ms':>12} {'ratio':>6}")
    for name in objs:
        obj = str(BUILD / f"{name}.o")
        with BpfObject(obj) as warm:  # first use loads libbpf and declares prototypes
            warm.load()
        c = float(subprocess.run([str(exe), obj, str(n)], capture_output=True, text=True,
                                 check=True).stdout)
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            o = BpfObject(obj)
            o.load()
            ts.append(time.perf_counter() - t)
            o.close()
        py = statistics.median(ts)
        print(f"{name:<14} {c * 1e3:11.2f} {py * 1e3:12.2f} {py / c:6.2f}")
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
