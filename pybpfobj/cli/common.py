"""Shared pieces of the CLI: the run context, errors, bpftool-style keyword
matching and output writers.

Command modules register verbs as ``(name, handler)`` tables; a handler is
``handler(ctx, args) -> int | None`` and raises :class:`CliError` (or lets a
:class:`pybpfobj.errors.BpfError` through) to fail.
"""

from __future__ import annotations

import sys

# typing stays out of the CLI's start-up: annotations are strings, and
# Handler is a real alias only for type checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, Protocol, TextIO, TypeVar

    Handler = Callable[["Context", list[str]], int | None]

    class _Closable(Protocol):
        def close(self) -> None: ...

    _H = TypeVar("_H", bound=_Closable)
else:
    Handler = object


class CliError(Exception):
    """A failure the CLI reports as ``Error: message`` with ``code`` as exit code."""

    def __init__(self, message: str, code: int = 255) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UsageError(CliError):
    """Bad command line: print ``Error: message`` then the group's usage to stderr, exit 255."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message, 255)
        self.usage = usage


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP reached the command line tool: raised where the program was, as
    Ctrl-C's KeyboardInterrupt (of which it is a kind), so the command unwinds the same
    way: whatever it pinned or made is taken back on the way out, and the commands that
    run until interrupted (tracelog, event_pipe, profile) stop and exit 0, as bpftool's
    do on these signals.  Any other command then dies of the signal
    (:func:`pybpfobj.cli.main.entry`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _sig() -> Any:
    """The C signal module: signal.py imports enum, milliseconds of every run's start-up."""
    import _signal  # type: ignore[import-not-found]

    return _signal


# The stop signals the command line tool's entry point handles (SIGINT, SIGTERM, SIGHUP,
# those not ignored by its parent), and whether the command's lasting change has begun
_STOP_SIGNALS: list[int] = []
_committed = False


def commit() -> None:
    """Called just before a command's lasting change (its pins, an attachment): from here
    to the exit the stop signals wait (blocked; the command completes and the process
    exits on its own at once), so a stop can no longer cut that change in half or end
    the process as killed with it made.  A stop handled before this call unwinds the
    command as usual.  Only in the command line tool's own process (nothing is blocked
    for a caller of :func:`pybpfobj.cli.main.run`)."""
    global _committed
    if _STOP_SIGNALS:
        signal = _sig()

        if _deferred:  # a stop that came during the load, still waiting: it unwinds the load
            _deferred[0]()
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        _committed = True


def _in_libbpf_callback(frame: Any) -> bool:
    libbpf = sys.modules.get("pybpfobj.kernel.libbpf")
    # (a stop may come while that module is still being imported)
    check = getattr(libbpf, "in_print_callback", None)
    return check is not None and bool(check(frame))


def _cancel_deferred() -> None:
    """No stop waits any more: the retry timer is stopped (an armed one would end the
    process by SIGALRM once the interpreter restores its default at exit)."""
    if _deferred:
        _deferred.clear()
        signal = _sig()
        signal.setitimer(signal.ITIMER_REAL, 0)


# A stop that came while libbpf was calling back into Python (its print function): an
# exception raised there would be printed and dropped by ctypes.  It waits here, and a
# SIGALRM a millisecond later looks again (see _defer); its raise, or None.
_deferred: list[Callable[[], None]] = []


def _defer(raise_stop: Callable[[], None]) -> None:
    signal = _sig()

    libbpf = sys.modules["pybpfobj.kernel.libbpf"]
    libbpf.stop_pending()  # libbpf's further lines are dropped: the call ends sooner
    if not _deferred:
        _deferred.append(raise_stop)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.001)


def _on_alarm(_signum: int, frame: Any) -> None:
    if not _deferred or _committed:
        return
    if _in_libbpf_callback(frame):
        signal = _sig()

        signal.setitimer(signal.ITIMER_REAL, 0.001)  # still in there: look again soon
        return
    _deferred[0]()


def _now_or_deferred(raise_stop: Callable[[], None], frame: Any) -> None:
    """A stop handler's end: ``raise_stop()`` now, or once libbpf's call has returned
    when the handler runs inside its print callback."""
    if _in_libbpf_callback(frame):
        _defer(raise_stop)
    else:
        raise_stop()


def _on_stop(signum: int, frame: Any) -> None:
    """The stop signals' handler (installed by the entry point)."""
    if _committed:
        return  # blocked since; one handled just before the change began: it completes

    def raise_stop() -> None:
        signal = _sig()

        for sig in _STOP_SIGNALS:  # a second stop must not cut the unwinding short
            signal.signal(sig, signal.SIG_IGN)
        _cancel_deferred()  # nor a first one that waited out of libbpf's callback
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    _now_or_deferred(raise_stop, frame)


def catch_stop_signals() -> list[int]:
    """Install :func:`_on_stop` for SIGINT, SIGTERM and SIGHUP where the parent left them
    at their default (a signal ignored, as under ``nohup``, stays ignored); returns them."""
    signal = _sig()

    caught = []
    for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL),
                         (signal.SIGHUP, signal.SIG_DFL)):
        if signal.getsignal(sig) == default:
            signal.signal(sig, _on_stop)
            caught.append(int(sig))
    _STOP_SIGNALS[:] = caught
    return caught


class stop_on_signals:
    """Context manager for the commands that run until stopped (tracelog, event_pipe):
    SIGINT, SIGTERM and SIGHUP raise :class:`Stopped` (a KeyboardInterrupt) once, as
    bpftool's handlers end those commands, whatever the parent set for them (bpftool
    installs its handlers unconditionally); later ones are ignored while the command
    winds down.  The previous handlers come back on exit.  Only in the main thread."""

    def __enter__(self) -> None:
        signal = _sig()

        self.old: dict[int, Any] = {}
        self.fired = False

        def stop(signum: int, frame: Any) -> None:
            if self.fired:
                return
            self.fired = True

            def raise_stop() -> None:
                _cancel_deferred()
                raise Stopped(signum)

            _now_or_deferred(raise_stop, frame)

        try:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self.old[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: no handlers to set
            pass

    def __exit__(self, *exc: object) -> None:
        signal = _sig()

        for sig, h in self.old.items():
            # stopped: later stops are ignored up to the exit (the command has ended)
            signal.signal(sig, signal.SIG_IGN if self.fired else h)


class Stopped(Terminated):
    """A stop signal ended a command that runs until stopped (see :class:`stop_on_signals`);
    that command catches it and exits 0."""


class Context:
    """Global options of one CLI run, and where output goes.

    A plain class rather than a dataclass: importing dataclasses costs
    start-up time every CLI run pays.
    """

    def __init__(self, *, json: bool = False, pretty: bool = False, debug: bool = False,
                 bpffs: bool = False, mapcompat: bool = False, nomount: bool = False,
                 out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.json = json
        self.pretty = pretty
        self.debug = debug
        self.bpffs = bpffs
        self.mapcompat = mapcompat
        self.nomount = nomount
        self.out: TextIO = out if out is not None else sys.stdout
        self.err: TextIO = err if err is not None else sys.stderr

    def emit_json(self, obj: Any) -> None:
        """Print ``obj`` as bpftool does: compact, or with ``-p`` through bpftool's pretty
        writer (``[{`` and ``},{``, array elements on one line).  Non-ASCII text (source
        lines, paths) is written as UTF-8, as bpftool's writer passes it through; text the
        output cannot encode (a file name that is not UTF-8) falls back to ``\\u`` escapes."""
        import functools
        import json

        from pybpfobj.jsonw import pretty

        def dumps(ascii_only: bool) -> str:
            if self.pretty:
                return pretty(obj, functools.partial(json.dumps, ensure_ascii=ascii_only))
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii_only)

        try:
            # a text stream encodes the whole string before writing any of it
            self.out.write(dumps(False) + "\n")
        except UnicodeEncodeError:
            self.out.write(dumps(True) + "\n")

    def emit_null(self) -> None:
        """Success of a mutating command: nothing in text mode, ``null`` in JSON."""
        if self.json:
            self.out.write("null\n")

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def warn(self, text: str) -> None:
        """A warning on stderr; hidden in JSON mode, like bpftool's p_info."""
        if not self.json:
            self.err.write(text + "\n")


def match_keyword(word: str, table: Sequence[str]) -> str | None:
    """bpftool's ``is_prefix``: the first entry of ``table`` that ``word`` is a prefix of."""
    if not word:
        return None
    for name in table:
        if name.startswith(word):
            return name
    return None


def is_keyword(word: str, keyword: str) -> bool:
    """True when ``word`` is a (non-empty) prefix of ``keyword``, as bpftool's ``is_prefix``."""
    return bool(word) and keyword.startswith(word)


def dispatch(ctx: Context, args: list[str], commands: Sequence[tuple[str, Handler]], usage: str,
             default: str | None = None) -> int:
    """Run the handler whose name ``args[0]`` is a prefix of (table order).

    With no words left, runs ``default`` (bpftool's ``prog`` alone means
    ``show``) or fails with the usage text.
    """
    if not args:
        if default is None:
            raise UsageError("too few parameters", usage)
        name: str | None = default
        rest: list[str] = []
    else:
        name = match_keyword(args[0], [n for n, _ in commands])
        rest = args[1:]
        if name is None:
            raise UsageError(f"unknown command '{args[0]}'", usage)
    assert name is not None
    handler = dict(commands)[name]
    rc = handler(ctx, rest)
    return 0 if rc is None else rc


def hexbytes(data: bytes) -> list[str]:
    """Bytes as bpftool's JSON byte arrays: ``["0x01","0x00"]``."""
    return [f"0x{b:02x}" for b in data]



def only_one(handles: list[_H], what: str) -> _H:
    """The one object a ``PROG``/``MAP`` handle matched, for verbs that take exactly one
    (bpftool's ``prog_parse_fd``/``map_parse_fd``): when several matched (a
    shared name or tag), all are closed and ``several WHAT match this handle``
    is raised."""
    if len(handles) > 1:
        for h in handles:
            h.close()
        raise CliError(f"several {what} match this handle")
    return handles[0]



_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")


def parse_ulong(text: str, limit: int = 0xFFFFFFFF) -> int:
    """A number as bpftool reads one with ``strtoul(text, &end, 0)`` and ``*end == 0``.

    Leading white space and a ``+`` are allowed, then ``0x`` hex, a leading-0
    octal, or decimal; the whole word must be consumed.  Unlike strtoul, a
    negative number or one above ``limit`` raises ValueError instead of
    wrapping.
    """
    s = text.lstrip(" \t\n\v\f\r")
    s = s.removeprefix("+")
    if s[:2] in ("0x", "0X") and len(s) > 2 and all(c in _HEX for c in s[2:]):
        value = int(s, 16)
    elif s.startswith("0"):
        if not all(c in _OCT for c in s):  # strtoul stops at the first non-octal digit
            raise ValueError(f"not a number: {text!r}")
        value = int(s, 8)
    elif s.isascii() and s.isdigit():
        value = int(s, 10)
    else:
        raise ValueError(f"not a number: {text!r}")
    if value > limit:
        raise ValueError(f"{text!r} is out of range (at most {limit})")
    return value
