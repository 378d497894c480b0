"""Helpers shared by the loader and skeleton kernel tests: building a BPF object
from C source in the test's tmp dir, and catching libbpf's log records."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from bpfbuild import build_bpf

__all__ = ["Records", "build_bpf", "libbpf_records"]




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
