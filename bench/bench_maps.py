"""Map operations from Python against a C loop over libbpf, in the same run.

All on a 100,000-entry u32 -> u64 hash map (needs root, cc and libbpf-dev):
- per-element update and lookup through the typed API (target <= 1.9x C);
- items() (batch lookup into Python ints) vs C's batch dump (<= 1.6x);
- batch update (<= 1.0x);
- an mmapable array element and a global variable read from Python vs C's
  syscall lookup of an array element (<= 0.5x);
- ``pybpfobj map dump -j`` vs ``bpftool map dump -j``, whole processes (<= 1.0x).

Batches and process runs take the best of 3.  Prints every ratio.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pybpfobj.maps import Map

N = 100_000


def build_c(tmp: Path) -> Path:
    exe = tmp / "map_bench"
    subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "bench" / "c" / "map_bench.c"), "-lbpf"], check=True)
    return exe


def best(fn, reps: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return float(min(times))


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-maps-"))
    fs = tmp / "fs"
    fs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(fs)], check=True)
    try:
        exe = build_c(tmp)
        m = Map.create("hash", 4, 8, N, name="pybench", key_type=ctypes.c_uint32, value_type=ctypes.c_uint64)
        upd = m.update
        lkp = m.lookup
        keys = list(range(N))
        vals = [i * 3 for i in range(N)]
        akeys, avals = array("I", keys), array("Q", vals)  # packed once, as the C side fills its arrays
        items: list[tuple[int, int]] = []

        def update_loop() -> None:
            for i in range(N):
                upd(i, i * 2)

        def lookup_loop() -> None:
            for i in range(N):
                lkp(i)

        def read_all() -> None:
            nonlocal items
            items = m.items()

        # Rounds interleave the C run and the Python runs so that both see the
        # same machine load; each figure is the best of its rounds.
        runs = []
        py: dict[str, list[float]] = {"update": [], "lookup": [], "items": [], "bupd": [], "bupd_lists": []}
        for _ in range(3):
            runs.append(json.loads(subprocess.run([str(exe), str(N)], check=True, capture_output=True,
                                                  text=True).stdout))
            py["update"].append(best(update_loop, 1) / N)
            py["lookup"].append(best(lookup_loop, 1) / N)
            py["items"].append(best(read_all, 1))
            py["bupd"].append(best(lambda: m.update_batch(keys=akeys, values=avals), 1))
            py["bupd_lists"].append(best(lambda: m.update_batch(keys=keys, values=vals), 1))
        c = {k: min(r[k] for r in runs) for k in runs[0]}
        py_update, py_lookup, py_items = min(py["update"]), min(py["lookup"]), min(py["items"])
        py_bupd, py_bupd_lists = min(py["bupd"]), min(py["bupd_lists"])
        assert len(items) == N and dict(items)[7] == 14 and m[5] == 15

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
        cmd_ours = [sys.executable, "-m", "pybpfobj", "map", "dump", "-j", "pinned", str(fs / "bench")]
        cmd_bt = ["bpftool", "map", "dump", "-j", "pinned", str(fs / "bench")]
        out_ours = subprocess.run(cmd_ours, capture_output=True, text=True, cwd=ROOT, check=True).stdout
        out_bt = subprocess.run(cmd_bt, capture_output=True, text=True, check=True).stdout
        assert json.loads(out_ours) == json.loads(out_bt), "dump -j outputs differ"
        t_ours_l, t_bt_l = [], []
        for _ in range(3):
            t_ours_l.append(best(lambda: subprocess.run(cmd_ours, stdout=subprocess.DEVNULL, cwd=ROOT, check=True), 1))
            t_bt_l.append(best(lambda: subprocess.run(cmd_bt, stdout=subprocess.DEVNULL, check=True), 1))
        t_ours, t_bt = min(t_ours_l), min(t_bt_l)

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
