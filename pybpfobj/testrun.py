"""Test runs of loaded programs (``BPF_PROG_TEST_RUN``).

:func:`test_run` runs a program once (or ``repeat`` times) on a packet and
an optional context, and returns a :class:`TestRunResult`.
``Program.test_run(...)`` delegates here.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Protocol

from pybpfobj.errors import BpfError, ProgramError


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
    if not data_in and ctx_in and _ctx_only_type(prog):
        return _run_ctx_only(prog, ctx_in, ctx_size_out, repeat, flags, cpu)
    if data_size_out is None:
        data_size_out = DEFAULT_SIZE_OUT if data_in else 0
    if ctx_size_out is None:
        ctx_size_out = DEFAULT_SIZE_OUT if ctx_in else 0
    try:
        raw = attach.prog_test_run(
            prog_fd(prog), data_in if data_in else None, data_size_out, ctx_in, ctx_size_out,
            repeat=repeat, flags=flags, cpu=cpu, batch_size=batch_size, prog=prog_label(prog),
        )
    except ProgramError as e:
        if e.errno == errno.ENOSPC and ctx_size_out and (not data_in or data_size_out >= len(data_in) + _MAX_GROWTH):
            # the kernel's ENOSPC does not say which buffer; name the context one when the
            # packet one cannot be it (no packet, or more room than a program can grow it)
            who = f"program {prog_label(prog)!r}" if prog_label(prog) else "program"
            raise ProgramError(f"test run of {who}: ctx_size_out {ctx_size_out} is too small for the "
                               f"output context ({os.strerror(errno.ENOSPC)})", errno=errno.ENOSPC,
                               prog=prog_label(prog)) from None
        if e.errno == errno.ENOSPC and ctx_size_out and data_in:
            who = f"program {prog_label(prog)!r}" if prog_label(prog) else "program"
            raise ProgramError(f"test run of {who}: data_size_out {data_size_out} or ctx_size_out "
                               f"{ctx_size_out} is too small for the output ({os.strerror(errno.ENOSPC)})",
                               errno=errno.ENOSPC, prog=prog_label(prog)) from None
        raise
    return TestRunResult(raw.retval, raw.duration_ns, raw.data_out, raw.ctx_out)


# Program types whose test run takes only a context: the kernel refuses (EINVAL) a packet,
# output buffers, repeat and duration for them; a syscall program's context is copied back
# into the input buffer.
_CTX_ONLY = frozenset({"raw_tracepoint", "syscall"})
_MAX_GROWTH = 4096  # a program grows a test packet by at most its tailroom (under a page)


def _ctx_only_type(prog: ProgLike) -> bool:
    name = getattr(prog, "type", None)
    if not isinstance(name, str):
        from pybpfobj.constants import prog_type_name
        from pybpfobj.kernel import info

        try:
            name = prog_type_name(int(info.fdinfo(prog_fd(prog)).get("prog_type", "-1")))
        except (OSError, ValueError, BpfError):
            return False
    return name in _CTX_ONLY


def _is_syscall(prog: ProgLike) -> bool:
    name = getattr(prog, "type", None)
    if isinstance(name, str):
        return name == "syscall"
    from pybpfobj.constants import prog_type_name
    from pybpfobj.kernel import info

    return prog_type_name(int(info.fdinfo(prog_fd(prog)).get("prog_type", "-1"))) == "syscall"


def _run_ctx_only(prog: ProgLike, ctx_in: bytes, ctx_size_out: int | None, repeat: int, flags: int,
                  cpu: int) -> TestRunResult:
    """A raw_tracepoint/syscall test run: only ``ctx_in`` goes to the kernel (repeat is not allowed)."""
    from pybpfobj.kernel import attach

    label = prog_label(prog)
    who = f"program {label!r}" if label else "program"
    if repeat > 1:
        raise ProgramError(f"test run of {who}: a raw_tracepoint or syscall program runs once "
                           f"(repeat {repeat} is refused by the kernel)", errno=errno.EINVAL, prog=label)
    retval, duration, ctx_after = attach.prog_test_run_ctx(prog_fd(prog), bytes(ctx_in), flags, cpu,
                                                            f"test run of {who} failed", label)
    want = len(ctx_in) if ctx_size_out is None else ctx_size_out
    if not want or not _is_syscall(prog):
        return TestRunResult(retval, duration, None, None)
    # a syscall program may write its context: the kernel copies it back over ctx_in
    if want < len(ctx_in):  # as for the other types: a short output buffer is an error
        raise ProgramError(f"test run of {who}: ctx_size_out {want} is too small for the output "
                           f"context ({os.strerror(errno.ENOSPC)})", errno=errno.ENOSPC, prog=label)
    return TestRunResult(retval, duration, None, ctx_after)

__all__ = ["DEFAULT_SIZE_OUT", "TestRunResult", "test_run"]
