"""Compiling BPF C sources in tests: clang-19 (or clang) as bpf_progs/ builds them."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path


def clang() -> str:
    cc = shutil.which("clang-19") or shutil.which("clang")
    assert cc is not None, "clang is needed to build the test objects (scripts/setup.sh installs clang-19)"
    return cc


def build_bpf(tmp: Path, name: str, src: str, *flags: str) -> Path:
    """Compile ``src`` as ``<tmp>/<name>.bpf.c`` (``-O2 -g -target bpf`` and ``flags``); the .o path."""
    c = tmp / f"{name}.bpf.c"
    c.write_text(src)
    o = tmp / f"{name}.o"
    subprocess.run([clang(), "-O2", "-g", "-target", "bpf", f"-I/usr/include/{platform.machine()}-linux-gnu",
                    *flags, "-c", str(c), "-o", str(o)], check=True)
    return o
