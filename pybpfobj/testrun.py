"""Test runs of loaded programs (``BPF_PROG_TEST_RUN``).

:func:`test_run` runs a program once (or ``repeat`` times) on a packet and
an optional context, and returns a :class:`TestRunResult`.
``Program.test_run(...)`` delegates here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pybpfobj.errors import ProgramError


class HasFd(Protocol):
    @property
    def fd(self) -> int: ...


ProgLike = int | HasFd

# bpftool's default output buffer size when data_in/ctx_in is given
DEFAULT_SIZE_OUT = 32 * 1024


@dataclass(frozen=True)
class TestRunResult:
    """The outcome of a test run.

    ``retval`` is the program's return value, ``duration_ns`` the average
    run time per repetition; ``data_out``/``ctx_out`` the output packet and
    context (``None`` when no output buffer was asked for).
    """

    __test__ = False  # not a pytest test class

    retval: int
    duration_ns: int
    data_out: bytes | None
    ctx_out: bytes | None


def prog_fd(prog: ProgLike) -> int:
    """The fd of a program given as an int or as an object with ``.fd``."""
    if isinstance(prog, int):
        return prog
    return int(prog.fd)


def prog_label(prog: ProgLike) -> str | None:
    """A name for error messages: the handle's ``name`` when it has one."""
    name = getattr(prog, "name", None)
    return name if isinstance(name, str) and name else None


def test_run(prog: ProgLike, data_in: bytes | None = b"", *, data_size_out: int | None = None,
             ctx_in: bytes | None = None, ctx_size_out: int | None = None, repeat: int = 1,
             flags: int = 0, cpu: int = 0, batch_size: int = 0) -> TestRunResult:
    """Run ``prog`` (a Program or a program fd) with ``BPF_PROG_TEST_RUN``.

    ``data_in`` is the input packet (``None``/``b""`` for program types that
    take no packet); output buffers default to 32 KiB (bpftool's default)
    when there is input, and to none otherwise.  A too-small
    ``data_size_out`` raises :class:`ProgramError` (ENOSPC); a program type
    the kernel cannot test-run raises :class:`ProgramError` saying so.
    """
    from pybpfobj.kernel import attach

    if repeat < 0:
        raise ProgramError(f"repeat must be >= 0, got {repeat}", errno=22, prog=prog_label(prog))
    if data_size_out is None:
        data_size_out = DEFAULT_SIZE_OUT if data_in else 0
    if ctx_size_out is None:
        ctx_size_out = DEFAULT_SIZE_OUT if ctx_in else 0
    raw = attach.prog_test_run(
        prog_fd(prog), data_in if data_in else None, data_size_out, ctx_in, ctx_size_out,
        repeat=repeat, flags=flags, cpu=cpu, batch_size=batch_size, prog=prog_label(prog),
    )
    return TestRunResult(raw.retval, raw.duration_ns, raw.data_out, raw.ctx_out)


__all__ = ["DEFAULT_SIZE_OUT", "TestRunResult", "test_run"]
