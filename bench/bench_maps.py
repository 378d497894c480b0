"""Map operations from Python against a C loop over libbpf, in the same run.

All on a 100,000-entry u32 -> u64 hash map (needs root, cc and libbpf-dev):
- per-element update and lookup through the typed API (target <= 1.9x C);
- items() (batch lookup into Python ints) vs C's batch dump (<= 1.6x);
- batch update (<= 1.0x);
- an mmapable array element and a global variable read from Python vs C's
  syscall lookup of an array element (<= 0.5x);
- ``pybpfobj map dump -j`` vs ``bpftool map dump -j``, whole processes (<= 1.0x).

Times are CPU times (user + system) of the measuring process, Python's and
C's alike, and of the child for whole-process runs: on a shared 2-core
machine wall time mostly measures the neighbours.  C and Python rounds
alternate; each figure is the median of its rounds.  Both sides update keys
that already exist, read the whole map in batches of the map's size, and
batch-update all 100,000 elements in one call (Python from array.array
buffers, passed without copying).  Prints every ratio.
"""

from __future__ import annotations

import ctypes
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pybpfobj.maps import Map

N = 100_000


def build_c(tmp: Path) -> Path:
    exe = tmp / "map_bench"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "bench" / "c" / "map_bench.c"), "-lbpf"], check=True)
    return exe


ROUNDS = 5


def cpu_ns(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.process_time_ns()
    fn()
    return float(time.process_time_ns() - t0)


def child_cpu_ns(cmd: list[str], **kw: Any) -> float:
    """User + system CPU time of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, **kw)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1e9


def best(fn, reps: int = 3) -> float:  # type: ignore[no-untyped-def]
    return min(cpu_ns(fn) for _ in range(reps))


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-maps-"))
    fs = tmp / "fs"
    fs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(fs)], check=True)
    try:
        exe = build_c(tmp)
        keys = list(range(N))
        vals = [i * 3 for i in range(N)]
        akeys, avals = array("I", keys), array("Q", vals)  # packed once, as the C side fills its arrays
        items: list[tuple[int, int]] = []

        def python_round() -> tuple[Map, dict[str, float]]:
            """What map_bench.c does, in the same order, on a fresh map."""
            nonlocal items
            m = Map.create("hash", 4, 8, N, name="pybench", key_type=ctypes.c_uint32,
                           value_type=ctypes.c_uint64)
            upd, lkp = m.update, m.lookup

            def update_loop() -> None:
                for i in range(N):
                    upd(i, i * 2)

            def lookup_loop() -> None:
                for i in range(N):
                    lkp(i)

            def read_all() -> None:
                nonlocal items
                items = m.items()

            update_loop()  # first pass inserts; the timed one updates, as in C
            r = {"update": cpu_ns(update_loop) / N, "lookup": cpu_ns(lookup_loop) / N,
                 "items": best(read_all),
                 "bupd": best(lambda: m.update_batch(keys=akeys, values=avals)),
                 "bupd_lists": best(lambda: m.update_batch(keys=keys, values=vals))}
            return m, r

        # Rounds alternate the C run and the Python round so that both see the same machine
        # load; each figure is the median of its rounds (batches: the best of 3 within a round,
        # on both sides).
        runs, pys = [], []
        m = None
        for _ in range(ROUNDS):
            runs.append(json.loads(subprocess.run([str(exe), str(N)], check=True, capture_output=True,
                                                  text=True).stdout))
            if m is not None:
                m.close()
            m, r = python_round()
            pys.append(r)
        assert m is not None
        med = statistics.median
        c = {k: med(r[k] for r in runs) for k in runs[0]}
        py = {k: med(r[k] for r in pys) for k in pys[0]}
        py_update, py_lookup, py_items = py["update"], py["lookup"], py["items"]
        py_bupd, py_bupd_lists = py["bupd"], py["bupd_lists"]
        assert len(items) == N and dict(items)[7] == 14 and m[5] == 15  # type: ignore[index]

        arr = Map.create("array", 4, 8, 16, name="pymm", flags=1 << 10, value_type=ctypes.c_uint64)
        view = arr.mmap()
        view[3] = 42

        def mmap_loop() -> None:
            for i in range(N):
                _ = view[i & 15]
        py_mmap = best(mmap_loop) / N

        subprocess.run(["bpftool", "prog", "loadall", str(ROOT / "bpf_progs/build/globals.o"), str(fs / "g"),
                        "pinmaps", str(fs / "gm")], check=True)
        bss = Map.from_pinned(str(fs / "gm" / "globals_bss")).mmap()
        bss.counter = 9

        def global_loop() -> None:
            for _ in range(N):
                _ = bss.counter
        py_global = best(global_loop) / N

        m.pin(str(fs / "bench"))
        # the project's interpreter (scripts/setup.sh) when there is one: a global one may load
        # site .pth files (certifi...) that every process then pays for
        venv_py = ROOT / ".venv" / "bin" / "python"
        py_exe = str(venv_py) if venv_py.exists() else sys.executable
        # An installed package has its bytecode compiled (pip does it); a source tree run with
        # PYTHONDONTWRITEBYTECODE=1 would recompile every module in every process otherwise.
        subprocess.run([py_exe, "-m", "compileall", "-q", str(ROOT / "pybpfobj")], check=True,
                       stdout=subprocess.DEVNULL)
        cmd_ours = [py_exe, "-m", "pybpfobj", "map", "dump", "-j", "pinned", str(fs / "bench")]
        cmd_bt = ["bpftool", "map", "dump", "-j", "pinned", str(fs / "bench")]
        out_ours = subprocess.run(cmd_ours, capture_output=True, text=True, cwd=ROOT, check=True).stdout
        out_bt = subprocess.run(cmd_bt, capture_output=True, text=True, check=True).stdout
        assert json.loads(out_ours) == json.loads(out_bt), "dump -j outputs differ"
        t_ours_l, t_bt_l = [], []
        for _ in range(ROUNDS):
            t_ours_l.append(child_cpu_ns(cmd_ours, cwd=ROOT))
            t_bt_l.append(child_cpu_ns(cmd_bt))
        t_ours, t_bt = statistics.median(t_ours_l), statistics.median(t_bt_l)

        rows = [
            ("per-element update (typed)", py_update, c["update"], 1.9),
            ("per-element lookup (typed)", py_lookup, c["lookup"], 1.9),
            ("items() vs C batch dump", py_items, c["batch_dump"], 1.6),
            ("batch update (array.array keys/values)", py_bupd, c["batch_update"], 1.0),
            ("batch update (lists of ints, info)", py_bupd_lists, c["batch_update"], 9.9),
            ("mmap array element read vs C array lookup", py_mmap, c["array_lookup"], 0.5),
            ("global variable read vs C array lookup", py_global, c["array_lookup"], 0.5),
            ("map dump -j process vs bpftool", t_ours, t_bt, 1.0),
        ]
        ok = True
        print(f"{'operation':45s} {'python':>12s} {'reference':>12s} {'ratio':>7s} {'target':>7s}")
        for name, py, ref, target in rows:
            ratio = py / ref
            ok &= ratio <= target
            print(f"{name:45s} {py:12.1f} {ref:12.1f} {ratio:7.2f} {target:7.2f}{'' if ratio <= target else '  MISSED'}")
        return 0 if ok else 1
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
