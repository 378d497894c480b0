"""Helpers shared by the loader and skeleton kernel tests: building a BPF object
from C source in the test's tmp dir, and catching libbpf's log records."""

from __future__ import annotations

import contextlib
import logging
import platform
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path


def build_bpf(tmp_path: Path, name: str, src: str) -> Path:
    """Compile ``src`` as ``<tmp_path>/<name>.bpf.c`` with clang (``-O2 -g -target bpf``); the .o path."""
    cc = shutil.which("clang-19") or shutil.which("clang")
    assert cc is not None, "clang is needed to build the test object"
    c = tmp_path / f"{name}.bpf.c"
    c.write_text(src)
    o = tmp_path / f"{name}.o"
    subprocess.run([cc, "-O2", "-g", "-target", "bpf", f"-I/usr/include/{platform.machine()}-linux-gnu",
                    "-c", str(c), "-o", str(o)], check=True)
    return o


class Records(logging.Handler):
    """A handler keeping every record it gets."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def libbpf_records() -> Iterator[tuple[logging.Logger, Records]]:
    """The ``pybpfobj.libbpf`` logger with a :class:`Records` handler on it; its level is restored after."""
    # a handler on the logger itself: the CLI's tests may have stopped propagation to the root
    logger = logging.getLogger("pybpfobj.libbpf")
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
