"""Sizes and measurements shared by the reliability suite.

CI runs moderate sizes; ``PYBPFOBJ_LONG=1`` runs the full campaigns
(10,000 load cycles, 100,000 mutated objects, ...).  Each size can also be
set on its own: ``PYBPFOBJ_REL_CYCLES``, ``PYBPFOBJ_REL_MUTANTS``,
``PYBPFOBJ_REL_THREAD_OPS``.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LONG = os.environ.get("PYBPFOBJ_LONG") == "1"


def size(var: str, ci: int, long: int) -> int:
    """The size of one campaign: ``$var`` if set, else the long or the CI size."""
    v = os.environ.get(var)
    return int(v) if v else (long if LONG else ci)


def open_fds() -> set[int]:
    """This process's open fds (after a garbage collection, so dropped handles are closed)."""
    gc.collect()
    return {int(n) for n in os.listdir("/proc/self/fd")}


def fd_targets(fds: set[int]) -> dict[int, str]:
    out = {}
    for fd in fds:
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return out


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# files a new bpffs starts with (the kernel's bpf_preload iterators)
PRELOADED = {"maps.debug", "progs.debug"}


def tree(path: Path) -> list[str]:
    """Every pin and directory under ``path`` (relative), sorted; the preloaded files left out."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if str(p.relative_to(path)) not in PRELOADED)
