"""The binding to the system's ``libbpf.so.1``: the only module that loads a
shared library with ctypes.

- The library is found by soname; ``PYBPFOBJ_LIBBPF`` may name another file
  (a newer libbpf).
- Every prototype is declared once, here, in sections by area.
- ``check()`` / ``check_ptr()`` turn libbpf's returns (negative errno, or
  NULL with errno set) into :mod:`pybpfobj.errors` exceptions.
- libbpf's own messages go to the ``pybpfobj.libbpf`` logger.

Other modules call ``lib()`` for the loaded library and use the ctypes
structure types defined here; none of them calls ``ctypes.CDLL``.
"""

from __future__ import annotations

import _thread
import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    c_char_p,
    c_int,
    c_size_t,
    c_uint,
    c_uint32,
    c_uint64,
    c_void_p,
)

from pybpfobj.errors import BpfError, LibbpfError

# Start-up cost matters (every CLI run imports this module): typing, logging,
# threading and ctypes.util are imported only when really needed.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from logging import Logger
    from typing import Any

ENV_LIBBPF = "PYBPFOBJ_LIBBPF"
LOGGER_NAME = "pybpfobj.libbpf"

_lock = _thread.RLock()
_lib: ctypes.CDLL | None = None
_libc: ctypes.CDLL | None = None

# libbpf_print_level, and the logging levels they map to
LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG = 0, 1, 2
_PYLEVEL = {LIBBPF_WARN: 30, LIBBPF_INFO: 20, LIBBPF_DEBUG: 10}
# fmt as a plain pointer: most lines are skipped unformatted, so no bytes object is made for
# them; no return value to convert (libbpf ignores what its print function returns).
_PRINT_FN = CFUNCTYPE(None, c_int, c_void_p, c_void_p)
_print_cb: Any = None  # keep the callback alive for the process's lifetime
# Optional per-thread capture of libbpf's warnings and info lines (load errors are read from them).
_capture = _thread._local()
_log: Logger | None = None
_log_setup: list[Callable[[], None]] = []
# the least important libbpf level whose first message runs the _log_setup functions
_first_log_level = LIBBPF_WARN
_modules = sys.modules
# 0 while a captured() call runs whose start found no listener for debug lines (and no
# other call in progress did): debug lines are dropped unread, by the native gate (its
# code holds this byte's address) or first thing in the Python callback; 1 otherwise.
_gate_open = ctypes.c_uint8(1)
# the least pointer value that is an ERR_PTR (a non-strict libbpf build returns those)
ERR_PTR_MIN = (1 << 64) - 4095
# captured() calls in progress whose start found a listener for debug lines
_listening = 0
_count_lock = _thread.allocate_lock()


def _after_fork_in_child() -> None:
    """A forked child starts with no call in progress: the gate open, no lock held
    (a thread of the parent may have held one at the fork, and is gone)."""
    global _listening, _count_lock, _lock
    _listening = 0
    _gate_open.value = 1
    _count_lock = _thread.allocate_lock()
    _lock = _thread.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)
ENV_PY_PRINT = "PYBPFOBJ_PY_PRINT"
_print_gate = "python"  # or "native": what lib() installed as libbpf's print function


def _native_gate(target: int) -> int | None:
    """Build, on x86-64, a few instructions that libbpf calls as its print function:
    a debug line (level 2) is dropped right there while ``_gate_open`` is 0, and
    every other call jumps on to ``target`` (the Python callback) with its
    arguments untouched.  libbpf prints two dozen debug lines per small object,
    and each call into Python costs about as much as the rest of a binding's
    work on an open+load.  The code goes in a page of its own, written, then
    made read-only and executable (never writable and executable at once).
    Returns its address, or None where the machine is not x86-64 or the page
    cannot be made executable; the caller then installs ``target`` itself.
    """
    # a 64-bit process on x86-64 (a 32-bit Python on a 64-bit kernel keeps the callback)
    if (os.uname().machine != "x86_64" or ctypes.sizeof(c_void_p) != 8
            or os.environ.get(ENV_PY_PRINT, "") not in ("", "0")):
        return None
    assert _libc is not None
    gate = ctypes.addressof(_gate_open)
    code = (b"\xf3\x0f\x1e\xfa"                          # endbr64 (a no-op without CET)
            b"\x83\xff\x02"                              # cmp edi, 2 (LIBBPF_DEBUG)
            b"\x75\x0f"                                  # jne to_python
            b"\x48\xb8" + gate.to_bytes(8, "little") +   # movabs rax, &_gate_open
            b"\x80\x38\x00"                              # cmp byte [rax], 0
            b"\x74\x0c"                                  # je drop
            b"\x48\xb8" + target.to_bytes(8, "little") + # to_python: movabs rax, target
            b"\xff\xe0"                                  # jmp rax (a tail call)
            b"\x31\xc0"                                  # drop: xor eax, eax
            b"\xc3")                                     # ret
    mmap, mprotect = _libc.mmap, _libc.mprotect
    mmap.restype, mmap.argtypes = c_void_p, [c_void_p, c_size_t, c_int, c_int, c_int, ctypes.c_long]
    mprotect.restype, mprotect.argtypes = c_int, [c_void_p, c_size_t, c_int]
    size = 4096
    page = mmap(None, size, 0x1 | 0x2, 0x02 | 0x20, -1, 0)  # PROT_READ|WRITE, MAP_PRIVATE|ANONYMOUS
    if not page or page == ctypes.c_void_p(-1).value:
        return None
    ctypes.memmove(page, code, len(code))
    if mprotect(page, size, 0x1 | 0x4) != 0:  # PROT_READ|EXEC; refused under some policies
        _libc.munmap.argtypes = [c_void_p, c_size_t]
        _libc.munmap(page, size)
        return None
    return int(page)


def on_first_log(fn: Callable[[], None], *, level: int = LIBBPF_WARN) -> None:
    """Run ``fn`` once, just before libbpf's first message goes to :mod:`logging`.

    An application that configures logging only when a message actually
    comes (the CLI does, to keep :mod:`logging` out of its start-up)
    registers its set-up here.  ``level``: the least important libbpf
    message that triggers it (``LIBBPF_INFO`` also takes info lines, which
    are otherwise dropped while nothing has imported :mod:`logging`).
    """
    global _first_log_level
    with _lock:
        if _log is None:
            _log_setup.append(fn)
            _first_log_level = max(_first_log_level, level)
        else:
            fn()


def logger() -> Logger:
    """The ``pybpfobj.libbpf`` logger (imports :mod:`logging` on first use)."""
    global _log
    if _log is None:
        with _lock:
            if _log is None:
                import logging

                for fn in _log_setup:
                    fn()
                _log_setup.clear()
                _log = logging.getLogger(LOGGER_NAME)
    return _log


def _wanted(level: int) -> bool:
    """Whether a libbpf message of ``level`` would be logged anywhere.

    Warnings always are.  Info and debug lines only when :mod:`logging` is
    already in use and the logger is enabled for them: if nothing imported
    logging, nothing configured it, and its default (WARNING) drops them,
    so skipping them unformatted changes nothing.
    """
    if level == LIBBPF_WARN:
        return True
    if "logging" not in sys.modules:
        # nothing listens yet, unless a set-up waits for messages of this level
        return _log is None and level <= _first_log_level and bool(_log_setup)
    return logger().isEnabledFor(_PYLEVEL.get(level, 10))


def _format(fmt: int, va: int) -> str:
    assert _libc is not None
    out = c_char_p()
    n = _libc.vasprintf(ctypes.byref(out), fmt, va)
    if n < 0 or not out:
        return ctypes.string_at(fmt).decode("utf-8", "replace")
    try:
        return ctypes.string_at(out, n).decode("utf-8", "replace")
    finally:
        _libc.free(out)


# Set once a stop (a signal) is waiting for the libbpf call in progress to return: its
# lines are dropped from then on (see in_print_callback)
_stopping = False


def in_print_callback(frame: Any) -> bool:
    """Whether ``frame`` (a signal handler's) runs inside libbpf's print callback: an
    exception raised there would be printed and dropped by ctypes, not reach the caller.
    A handler that finds itself there calls :func:`stop_pending` and raises later, once
    the call into libbpf has returned."""
    code = _on_print.__code__
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def stop_pending() -> None:
    """A stop waits for the libbpf call in progress: drop its further lines (each would
    otherwise run the waiting signal's handler again, in the callback)."""
    global _stopping
    _stopping = True


def _on_print(level: int, fmt: int, va: int) -> None:
    # libbpf calls this for every line, two dozen debug lines per small object
    # at open; the first test drops those at the cost of one global lookup.
    if _stopping or (level == 2 and (not _gate_open.value or (_log is None and "logging" not in _modules))):
        return  # a debug line nobody can be listening to, left unformatted (or a stop waits)
    if getattr(_capture, "quiet", False):
        return  # an open made only to look at an object's bytes (quiet())
    sink = getattr(_capture, "lines", None)
    log_it = _wanted(level)
    if not log_it and (sink is None or level == LIBBPF_DEBUG):
        return  # a debug line nobody reads, left unformatted
    text = _format(fmt, va)
    if sink is not None and level != LIBBPF_DEBUG:
        sink.append(text)
    if log_it:
        logger().log(_PYLEVEL.get(level, 10), "%s", text.rstrip("\n"))


def captured(fn: Callable[..., Any], *args: Any) -> tuple[Any, list[str]]:
    """Call the libbpf function ``fn(*args)``; return its result and the warning and
    info lines libbpf printed meanwhile on this thread (they are logged as well).

    For the loader's hot calls (open, load): whether anyone listens to debug
    lines is asked of :mod:`logging` once here, not once per line.  The
    answer holds until the call returns; a logging level changed meanwhile
    by another thread applies from the next call.  Debug lines are dropped
    early (``_gate_open``) only while no call in progress, on any thread,
    found a listener.
    """
    result, _, lines = capture_session(fn, args, None, None)
    return result, lines


def capture_session(fn: Callable[..., Any], args: tuple[Any, ...], then: Callable[[int], Any] | None,
                    owner: Any, debug_fn: Callable[..., Any] | None = None,
                    debug_args: tuple[Any, ...] = ()) -> tuple[Any, Any, list[str]]:
    """:func:`captured`'s session: ``fn(*args)`` with this thread's libbpf lines collected.

    Without ``then``: returns fn's result, None and the lines.  With it (the
    loader's hottest pair, open_mem then load, in one session): fn returns an
    object pointer; when it is one (not NULL, not an ERR_PTR), it is stored as
    ``owner._handle`` (its owner frees it, whatever happens) and ``then(ptr)``
    runs; returns the pointer (0 for NULL), then's result (None when fn failed)
    and the lines.  ``debug_fn(*debug_args)`` replaces fn while someone listens
    to libbpf's debug lines (the loader opens the path then, not the bytes kept
    from it, so those lines name the file as libbpf's open of it does).
    """
    global _listening
    local = _capture
    prev = getattr(local, "lines", None)
    lines: list[str] = []
    local.lines = lines
    # _wanted(LIBBPF_DEBUG), inlined: this runs twice per object
    off = "logging" not in _modules or not logger().isEnabledFor(10)
    if off:
        if not _listening:
            _gate_open.value = 0
    else:
        with _count_lock:
            _listening += 1
        _gate_open.value = 1
    if debug_fn is not None and not off:
        fn, args = debug_fn, debug_args
    try:
        r = fn(*args)
        if then is None:
            return r, None, lines
        if not r or r >= ERR_PTR_MIN:
            return r or 0, None, lines
        owner._handle = r
        return r, then(r), lines
    finally:
        if not off:
            with _count_lock:
                _listening -= 1
        # back to the per-line check (right whatever other threads set meanwhile:
        # an open gate only makes their lines take the longer path)
        _gate_open.value = 1
        local.lines = prev


def captured_lines() -> list[str]:
    """Inside a :func:`captured` call: the lines libbpf printed so far in it."""
    lines: list[str] = getattr(_capture, "lines", None) or []
    return lines


class quiet:
    """Context manager dropping every line libbpf prints on this thread meanwhile (not
    logged, not captured): for an open made only to look at an object's bytes, whose
    lines the real open printed already."""

    def __enter__(self) -> None:
        self.prev = getattr(_capture, "quiet", False)
        _capture.quiet = True

    def __exit__(self, *exc: object) -> None:
        _capture.quiet = self.prev


class capture_output:
    """Context manager collecting libbpf's warning and info lines on this thread (still logged too)."""

    def __enter__(self) -> list[str]:
        self.prev = getattr(_capture, "lines", None)
        _capture.lines = []
        return _capture.lines  # type: ignore[no-any-return]

    def __exit__(self, *exc: object) -> None:
        _capture.lines = self.prev


def _find_library() -> str:
    override = os.environ.get(ENV_LIBBPF)
    if override:
        return override
    return "libbpf.so.1"


def lib() -> ctypes.CDLL:
    """The loaded libbpf, with every prototype declared (loaded on first use)."""
    global _lib, _libc, _print_cb, _print_gate
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        name = _find_library()
        try:
            handle = ctypes.CDLL(name, use_errno=True)
        except OSError as e:
            from pybpfobj.errors import UnsupportedError

            raise UnsupportedError(
                f"cannot load libbpf ({name}): {e}; install libbpf1 or set {ENV_LIBBPF}", path=name
            ) from None
        if not hasattr(handle, "libbpf_set_print"):
            from pybpfobj.errors import UnsupportedError

            raise UnsupportedError(f"{name} is not libbpf (it has no libbpf_set_print); install libbpf1 "
                                   f"or point {ENV_LIBBPF} at a libbpf.so", path=name)
        _libc = _load_libc()
        _libc.vasprintf.argtypes = [POINTER(c_char_p), c_void_p, c_void_p]
        _libc.vasprintf.restype = c_int
        _libc.free.argtypes = [c_void_p]
        _libc.free.restype = None
        for declare in _DECLARATIONS:
            declare(handle)
        _print_cb = _PRINT_FN(_on_print)
        gate = _native_gate(ctypes.cast(_print_cb, c_void_p).value or 0)
        if gate is None:
            handle.libbpf_set_print(_print_cb)
        else:
            handle.libbpf_set_print(ctypes.cast(gate, _PRINT_FN))
            _print_gate = "native"
        _lib = handle
        return handle


def print_gate() -> str:
    """How libbpf's debug lines nobody listens to are dropped: ``native`` (before
    they reach Python; x86-64) or ``python`` (in the callback; elsewhere, or
    with ``PYBPFOBJ_PY_PRINT=1`` in the environment)."""
    lib()
    return _print_gate


def _load_libc() -> ctypes.CDLL:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not glibc: ask ctypes.util (slow to import, so only here)
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c"), use_errno=True)


def libc() -> ctypes.CDLL:
    lib()
    assert _libc is not None
    return _libc


def version() -> str:
    """libbpf's version as ``major.minor``."""
    lb = lib()
    return f"{lb.libbpf_major_version()}.{lb.libbpf_minor_version()}"


# ---------------------------------------------------------------------------
# error checking

FS_ENCODING = sys.getfilesystemencoding()


def c_path(path: str | bytes) -> bytes:
    """``path`` as C sees it (:func:`os.fsencode`), refusing a NUL byte: C would stop
    there and act on a shorter path (pin there, open another object)."""
    if isinstance(path, str):  # os.fsencode's own steps, without its type dispatch
        raw = path.encode(FS_ENCODING, "surrogateescape")
    else:
        raw = os.fsencode(path)
    if b"\0" in raw:
        raise BpfError(f"invalid path {os.fsdecode(raw)!r}: it contains a NUL byte",
                       errno=22, path=os.fsdecode(raw))
    return raw


def check(ret: int, what: str, cls: type[BpfError] = LibbpfError, **names: Any) -> int:
    """Return ``ret`` if non-negative, else raise ``cls`` naming ``what`` with errno ``-ret``."""
    if ret >= 0:
        return ret
    err = -ret
    raise cls(f"{what}: {os.strerror(err)}", errno=err, **names)


def check_ptr(ptr: int | None, what: str, cls: type[BpfError] = LibbpfError, **names: Any) -> int:
    """For pointer-returning calls: NULL (or libbpf's encoded -errno) raises ``cls``."""
    if ptr is None or ptr == 0:
        err = ctypes.get_errno() or 22
        raise cls(f"{what}: {os.strerror(err)}", errno=err, **names)
    if ptr >= (1 << 64) - 4095:  # ERR_PTR from a non-strict build
        err = (1 << 64) - ptr
        raise cls(f"{what}: {os.strerror(err)}", errno=err, **names)
    return ptr


# ---------------------------------------------------------------------------
# prototypes: each area appends a function declaring its own.

_DECLARATIONS: list[Callable[[ctypes.CDLL], None]] = []


def declares(fn: Callable[[ctypes.CDLL], None]) -> Callable[[ctypes.CDLL], None]:
    """Register a function declaring prototypes; runs now if libbpf is already loaded.

    Modules of ``pybpfobj.kernel`` declare their own areas' prototypes this
    way; the ``pybpfobj.kernel`` package is the one place that talks to
    libbpf through ctypes.
    """
    with _lock:
        _DECLARATIONS.append(fn)
        if _lib is not None:
            fn(_lib)
    return fn


def _proto(lb: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> None:
    try:
        f = getattr(lb, name)
    except AttributeError:
        return  # older libbpf: callers check has()
    f.restype = restype
    f.argtypes = list(argtypes)


def has(name: str) -> bool:
    """Whether the loaded libbpf exports ``name``."""
    return hasattr(lib(), name)


@declares
def _core(lb: ctypes.CDLL) -> None:
    _proto(lb, "libbpf_major_version", c_uint32)
    _proto(lb, "libbpf_minor_version", c_uint32)
    _proto(lb, "libbpf_set_print", c_void_p, _PRINT_FN)
    _proto(lb, "libbpf_strerror", c_int, c_int, c_char_p, c_size_t)
    _proto(lb, "libbpf_num_possible_cpus", c_int)
    _proto(lb, "libbpf_probe_bpf_prog_type", c_int, c_int, c_void_p)


@declares
def _fd_and_ids(lb: ctypes.CDLL) -> None:
    """Objects by fd, id and path: BPF_OBJ_PIN/GET, *_GET_FD_BY_ID, *_GET_NEXT_ID, OBJ_GET_INFO_BY_FD."""
    _proto(lb, "bpf_obj_pin", c_int, c_int, c_char_p)
    _proto(lb, "bpf_obj_get", c_int, c_char_p)
    _proto(lb, "bpf_obj_get_info_by_fd", c_int, c_int, c_void_p, POINTER(c_uint32))
    for kind in ("prog", "map", "btf", "link"):
        _proto(lb, f"bpf_{kind}_get_fd_by_id", c_int, c_uint32)
        _proto(lb, f"bpf_{kind}_get_next_id", c_int, c_uint32, POINTER(c_uint32))
    _proto(lb, "bpf_enable_stats", c_int, c_int)


def num_possible_cpus() -> int:
    return check(lib().libbpf_num_possible_cpus(), "libbpf_num_possible_cpus")


def strerror(err: int) -> str:
    buf = ctypes.create_string_buffer(256)
    lib().libbpf_strerror(err, buf, len(buf))
    return buf.value.decode("utf-8", "replace")


__all__ = [
    "LOGGER_NAME",
    "c_int",
    "c_path",
    "c_uint",
    "c_uint64",
    "capture_output",
    "capture_session",
    "captured",
    "check",
    "check_ptr",
    "declares",
    "has",
    "in_print_callback",
    "lib",
    "libc",
    "logger",
    "num_possible_cpus",
    "on_first_log",
    "print_gate",
    "quiet",
    "stop_pending",
    "strerror",
    "version",
]
