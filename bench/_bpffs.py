"""A scratch directory with a private bpffs for benchmarks (not a benchmark itself:
``run_all.py`` runs only ``bench_*.py``).

    tmp, bpffs = scratch_bpffs("bench-x-")
    try:
        ...
    finally:
        drop_scratch_bpffs(tmp)
"""

from __future__ import annotations

import os
import subprocess
import tempfile


def scratch_bpffs(prefix: str) -> tuple[str, str]:
    """A new temporary directory and the bpffs mounted at its ``bpffs`` subdirectory."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    bpffs = os.path.join(tmp, "bpffs")
    os.mkdir(bpffs)
    subprocess.run(["mount", "-t", "bpf", "bpf", bpffs], check=True)
    return tmp, bpffs


def drop_scratch_bpffs(tmp: str) -> None:
    """Unmount the bpffs of :func:`scratch_bpffs` and remove the directory."""
    subprocess.run(["umount", os.path.join(tmp, "bpffs")], check=False)
    subprocess.run(["rm", "-rf", tmp], check=False)
