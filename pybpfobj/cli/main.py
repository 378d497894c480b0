"""Entry point of the ``pybpfobj`` command: global options anywhere on the
line, bpftool's prefix matching of object words, and error reporting with
bpftool's exit codes and never a traceback (unless ``-d``).

Command groups are imported only when their word is used, so start-up stays
light.
"""

from __future__ import annotations

import sys

from pybpfobj.cli.common import CliError, Context, Terminated, UsageError, is_keyword, match_keyword

# Every run pays for what this module imports: typing and logging stay out
# (logging is set up on the first libbpf message, or at once with -d).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Sequence
    from typing import Any

USAGE = """Usage: pybpfobj [OPTIONS] OBJECT { COMMAND | help }
       pybpfobj load OBJ PATH ...     (same as: pybpfobj prog load)
       pybpfobj loadall OBJ PATH ...  (same as: pybpfobj prog loadall)
       pybpfobj inspect OBJ
       pybpfobj version

       OBJECT := { prog | map | btf | gen }
       OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} |
                    {-f|--bpffs} | {-m|--mapcompat} | {-n|--nomount} |
                    {-V|--version} | {-h|--help} }
"""

# (word, module, function): table order decides prefix matches, as in bpftool.
GROUPS: list[tuple[str, str, str]] = [
    ("prog", "pybpfobj.cli.prog", "do_prog"),
    ("map", "pybpfobj.cli.map", "do_map"),
    ("load", "pybpfobj.cli.prog_load", "do_load"),
    ("loadall", "pybpfobj.cli.prog_load", "do_loadall"),
    ("inspect", "pybpfobj.cli.inspect", "do_inspect"),
    ("btf", "pybpfobj.cli.btf", "do_btf"),
    ("gen", "pybpfobj.cli.gen", "do_gen"),
    ("version", "pybpfobj.cli.main", "do_version"),
    ("help", "pybpfobj.cli.main", "do_help"),
]

_LONG = {"--json": "j", "--pretty": "p", "--debug": "d", "--bpffs": "f", "--mapcompat": "m",
         "--nomount": "n", "--version": "V", "--help": "h"}
_SHORT = set("jpdfmnVh")
# Options of one command, passed through to it as words: ``gen skeleton``'s
# ``-o FILE`` (also ``--output``) and ``--no-embed`` (its ``path`` keyword).
_PASSTHROUGH_WITH_VALUE = {"-o": "-o", "--output": "-o"}
_PASSTHROUGH = {"--no-embed": "path"}


class OptionError(UsageError):
    """A bad global option; ``opts`` are the options seen before it (bpftool answers in
    JSON, pretty with -p, when -j/-p came first)."""

    def __init__(self, message: str, opts: set[str]) -> None:
        super().__init__(message, USAGE)
        self.json = bool(opts & {"j", "p"})
        self.pretty = "p" in opts


def parse_options(argv: Sequence[str]) -> tuple[set[str], list[str]]:
    """Split global options (anywhere on the line, as GNU getopt permutes) from words.

    ``-jp`` style clusters work; ``--`` ends options.  A token that looks
    like a negative number stays a word, so the DATA parser can reject it
    with a clear message instead of calling it an unknown option.  ``-h``
    ends the parse at once, as bpftool's getopt loop returns the help there:
    it wins over ``-V`` and over bad options after it, and only the options
    before it (``-j``) shape the answer.
    """
    opts: set[str] = set()
    words: list[str] = []
    it = iter(argv)
    for tok in it:
        if tok == "--":
            words.extend(it)
            break
        # gen's own options, only after the word 'gen': elsewhere they are unknown options
        # (not words that would make 'object -o is unknown' or 'got: path')
        if tok in _PASSTHROUGH_WITH_VALUE and words and is_keyword(words[0], "gen"):
            value = next(it, None)
            if value is None:
                raise OptionError(f"option '{tok}' requires an argument", opts)
            words.extend([_PASSTHROUGH_WITH_VALUE[tok], value])
            continue
        if tok in _PASSTHROUGH and words and is_keyword(words[0], "gen"):
            words.append(_PASSTHROUGH[tok])
            continue
        if tok.startswith("--"):
            # none of the global options takes a value: '--json=1' is refused, as bpftool does
            name = tok
            matches = [k for k in _LONG if k.startswith(name)]
            if name in _LONG:
                matches = [name]
            if len(matches) != 1 or "=" in tok:
                raise OptionError(f"unrecognized option '{tok}'", opts)
            opts.add(_LONG[matches[0]])
            if "h" in opts:
                return opts, words
        elif tok.startswith("-") and len(tok) > 1 and not tok[1:2].isdigit():
            for ch in tok[1:]:
                if ch not in _SHORT:
                    # bpftool names the whole token, and answers in JSON if -j came first
                    raise OptionError(f"unrecognized option '{tok}'", opts)
                opts.add(ch)
                if ch == "h":
                    return opts, words
        else:
            words.append(tok)
    return opts, words


def _format_record(record: logging.LogRecord) -> str:
    msg = record.getMessage().rstrip("\n")
    if record.name.startswith("pybpfobj.libbpf") and not msg.startswith("libbpf: "):
        return f"libbpf: {msg}"
    return msg


# Command groups whose work goes through libbpf (whose messages need logging).
_LIBBPF_GROUPS = frozenset(("prog", "map", "load", "loadall"))


def _setup_logging_when_needed(ctx: Context, group: str) -> None:
    """With -d, set logging up now; else only when libbpf first has something to say."""
    if ctx.debug or "logging" in sys.modules:
        _setup_logging(ctx)
    elif group in _LIBBPF_GROUPS:
        from pybpfobj.kernel import libbpf

        libbpf.on_first_log(lambda: _setup_logging(ctx), level=libbpf.LIBBPF_INFO)


def _setup_logging(ctx: Context) -> None:
    import logging

    class _Formatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return _format_record(record)

    logger = logging.getLogger("pybpfobj")
    for h in list(logger.handlers):
        if getattr(h, "_pybpfobj_cli", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(ctx.err)
    handler._pybpfobj_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(_Formatter())
    # Only libbpf's lines come this way: as with bpftool (libbpf's default print
    # function), its warnings and info lines go to stderr, in JSON mode too, and
    # its debug lines with -d.
    level = logging.DEBUG if ctx.debug else logging.INFO
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def do_version(ctx: Context, args: list[str]) -> int:
    from pybpfobj import __version__

    libbpf_version: str | None
    try:
        from pybpfobj.kernel import libbpf

        libbpf_version = libbpf.version()
    except Exception:  # noqa: BLE001 - version must work even without libbpf
        libbpf_version = None
    if ctx.json:
        ctx.emit_json({"version": __version__, "libbpf_version": libbpf_version})
    else:
        ctx.print(f"pybpfobj v{__version__}")
        ctx.print(f"using libbpf v{libbpf_version}" if libbpf_version else "libbpf: not found")
    return 0


def do_help(ctx: Context, args: list[str]) -> int:
    """``help``, ``-h``: the usage on stdout like every group's ``help`` here (bpftool
    writes it to stderr), exit 0; in JSON mode only ``null``, as bpftool."""
    if ctx.json:
        ctx.out.write("null\n")
    else:
        ctx.out.write(USAGE)
    return 0


def run(argv: Sequence[str], ctx: Context | None = None) -> int:
    """Run one command line (without the program name); return the exit code."""
    ctx = ctx or Context()
    try:
        opts, words = parse_options(argv)
    except OptionError as e:
        if e.json:
            ctx.json = True
            ctx.pretty = e.pretty
            _report(ctx, e.message)
        else:
            ctx.err.write(f"Error: {e.message}\n{USAGE}")
        return 255
    ctx.json = "j" in opts or "p" in opts
    ctx.pretty = "p" in opts
    ctx.debug = "d" in opts
    ctx.bpffs = "f" in opts
    ctx.mapcompat = "m" in opts
    ctx.nomount = "n" in opts
    if "h" in opts:
        return do_help(ctx, [])
    if not words and "V" not in opts:
        # no object at all: bpftool's help, exit 0; the usage on stderr (nobody asked for it)
        if not ctx.json:
            ctx.err.write(USAGE)
            return 0
        return do_help(ctx, [])
    if "V" in opts:
        return do_version(ctx, [])
    try:
        name = match_keyword(words[0], [g[0] for g in GROUPS])
        if name is None:
            raise UsageError(f"object '{words[0]}' is unknown", USAGE)
        _, modname, funcname = next(g for g in GROUPS if g[0] == name)
        _setup_logging_when_needed(ctx, name)
        __import__(modname)
        rc = getattr(sys.modules[modname], funcname)(ctx, words[1:])
        return 0 if rc is None else int(rc)
    except UsageError as e:
        _report(ctx, e.message)
        if not ctx.json and e.usage:
            ctx.err.write(e.usage if e.usage.endswith("\n") else e.usage + "\n")
        return e.code
    except CliError as e:
        _report(ctx, e.message)
        return e.code
    except Terminated:
        raise  # SIGTERM/SIGHUP: unwound; entry() ends the process by that signal
    except KeyboardInterrupt:
        # interrupted mid-command (tracelog and event_pipe stop on Ctrl-C themselves, and
        # exit 0): the shell's code for SIGINT, as bpftool killed by it; what the command
        # made was taken back on the way out
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - every library error, and anything unexpected: no traceback
        from pybpfobj.errors import BpfError

        if ctx.debug:
            import traceback

            traceback.print_exc(file=ctx.err)
        if isinstance(e, BpfError):
            _report(ctx, e.message)
            return e.exit_code
        _report(ctx, f"internal error: {type(e).__name__}: {e}")
        return 255


def _report(ctx: Context, message: str) -> None:
    try:
        if ctx.json:
            ctx.emit_json({"error": message})
        else:
            ctx.err.write(f"Error: {message}\n")
    except (OSError, ValueError):
        pass  # stderr (or stdout) cannot be written: the exit code still says it (as bpftool)


def _die_of(signum: int) -> None:
    """After the unwinding: end as the signal would have ended us (the parent sees it)."""
    import os

    from pybpfobj.cli.common import _sig

    signal = _sig()

    _flush_quietly()
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # not reached: the signal's default action ends the process


def _flush_quietly() -> None:
    """Flush stdout and stderr; a stream that cannot be written (a full disk) is pointed at /dev/null, so the interpreter's own flush at exit is quiet too (bpftool's
    exit code does not depend on its output being written)."""
    import os

    for f in (sys.stdout, sys.stderr):
        try:
            getattr(f, "_f", f).flush()  # (the file under a _Tolerant stream)
        except (OSError, ValueError):
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, f.fileno())
                os.close(null)
            except (OSError, ValueError):
                pass


class _Tolerant:
    """stdout or stderr for the command line tool: a write the file refuses (a full
    disk, an I/O error) drops the rest of the output instead of failing the command,
    whose exit code then still says what it did (as bpftool, which ignores its write
    errors).  (A pipe nobody reads ends the process by SIGPIPE before any error.)"""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._broken = False

    def write(self, text: str) -> int:
        if not self._broken:
            try:
                self._f.write(text)
            except OSError:
                self._broken = True
        return len(text)

    def flush(self) -> None:
        if not self._broken:
            try:
                self._f.flush()
            except OSError:
                self._broken = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _fill_closed_std_fds() -> None:
    """A standard descriptor the parent closed (``>&-``) is opened on /dev/null: Python
    has no stream for it then (sys.stdout is None), and the first fd libbpf opens (a map,
    a program) would take its number."""
    import os

    while True:
        try:
            fd = os.open(os.devnull, os.O_RDWR)
        except OSError:
            return
        if fd > 2:
            os.close(fd)
            break
    if sys.stdin is None:
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own stream
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def entry() -> None:
    """Console-script entry point.

    SIGINT, SIGTERM and SIGHUP (Ctrl-C, ``timeout``, ``kill``, systemd stopping a unit,
    a closed terminal) unwind a command (:func:`pybpfobj.cli.common.catch_stop_signals`):
    a load stopped between its pins takes them back (bpftool leaves them); Ctrl-C then
    exits 130, the others end the process by their signal.  A signal the parent set to
    be ignored (``nohup``) stays ignored.
    """
    from pybpfobj.cli.common import _sig, catch_stop_signals

    # A write to a pipe nobody reads ends the process by SIGPIPE, as it ends bpftool
    # (`pybpfobj prog show | head -1` exits 141 under pipefail); Python ignores it.
    signal = _sig()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    _fill_closed_std_fds()
    sys.stdout, sys.stderr = _Tolerant(sys.stdout), _Tolerant(sys.stderr)
    catch_stop_signals()
    try:
        code = run(sys.argv[1:])
        _flush_quietly()
    except Terminated as t:
        _die_of(t.signum)
        return
    except KeyboardInterrupt:  # Ctrl-C as an error was being reported: no traceback
        _flush_quietly()
        code = 130
    sys.exit(code)
