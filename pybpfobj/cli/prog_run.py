"""``prog run``, ``prog attach``, ``prog detach`` and ``prog tracelog``, as bpftool.

Handlers are ``do_run(ctx, args)`` etc., called by :mod:`pybpfobj.cli.prog`
with the words after the verb.  Output and messages follow bpftool 7.1;
where bpftool's own message is vague (``failed prog attach to map``) the
error says what is wrong instead, with bpftool's exit code.
"""

from __future__ import annotations

import errno as E
import os
import sys
from typing import Any

from pybpfobj.cli.common import CliError, Context, commit, is_keyword, parse_ulong, stop_on_signals

RUN_KEYWORDS = ("data_in", "data_out", "data_size_out", "ctx_in", "ctx_out", "ctx_size_out", "repeat")
DEFAULT_SIZE_OUT = 32 * 1024


def _req(args: list[str], n: int, verb: str, code: int = 255) -> None:
    if len(args) < n:
        raise CliError(f"'{verb}' needs at least {n} arguments, {len(args)} found", code)


def _strtoul(text: str, what: str) -> int:
    try:
        return parse_ulong(text)
    except ValueError:
        raise CliError(f"can't parse {text} as {what}") from None


def _ambiguous(word: str, group: tuple[str, ...]) -> None:
    hits = [k for k in group if k.startswith(word)]
    if len(hits) > 1:
        raise CliError(f"ambiguous prefix: '{word}' could be " + " or ".join(f"'{h}'" for h in hits))


def _read_input(fname: str | None) -> bytes | None:
    if fname is None:
        return None
    if fname == "-":
        return sys.stdin.buffer.read()
    try:
        with open(fname, "rb") as f:
            return f.read()
    except OSError as e:
        raise CliError(f"failed to open {fname}: {os.strerror(e.errno or E.EIO)}") from None


def hex_print(data: bytes) -> str:
    """bpftool's ``hex_print``: offset, 16 bytes as 2-byte groups, then ASCII."""
    out = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        line = f"{i:07x}\t"
        for j, b in enumerate(chunk):
            line += f"{b:02x}" + (" " if (i + j) % 2 else "")
        for j in range(len(chunk), 16):
            line += "  " + (" " if (i + j) % 2 else "")
        line += "| "
        for j, b in enumerate(chunk):
            c = chr(b) if 0x20 <= b <= 0x7E else "."
            line += c + (" " if j == 7 else "")
        out.append(line + "\n")
    return "".join(out)


def _json_bytes(data: bytes, pretty: bool) -> str:
    # bpftool writes the numbers raw into the array; with -p the closing
    # bracket goes on its own line, indented to the object's level.
    body = ",".join(str(b) for b in data)
    return f"[{body}\n    ]" if pretty else f"[{body}]"


def do_run(ctx: Context, args: list[str]) -> int:
    """``prog run PROG data_in FILE [data_out FILE [data_size_out L]] [ctx_in FILE [ctx_out FILE
    [ctx_size_out M]]] [repeat N]``."""
    from pybpfobj.cli.prog import parse_one_prog
    from pybpfobj.errors import BpfError
    from pybpfobj.testrun import test_run

    _req(args, 4, "run")
    prog, rest = parse_one_prog(args)
    try:
        files: dict[str, str | None] = {"data_in": None, "data_out": None, "ctx_in": None, "ctx_out": None}
        data_size_out = ctx_size_out = 0
        repeat = 1
        while rest:
            word = rest[0]
            _ambiguous(word, ("data_in", "data_out", "data_size_out"))
            _ambiguous(word, ("ctx_in", "ctx_out", "ctx_size_out"))
            key = next((k for k in RUN_KEYWORDS if is_keyword(word, k)), None)
            if key is None:
                raise CliError("expected no more arguments, 'data_in', 'data_out', 'data_size_out', "
                               "'ctx_in', 'ctx_out', 'ctx_size_out' or 'repeat', got: "
                               f"'{word}'?")
            rest = rest[1:]
            _req(rest, 1, word)
            value = rest[0]
            rest = rest[1:]
            if key in files:
                files[key] = value
                if files["data_in"] == "-" and files["ctx_in"] == "-":
                    raise CliError("cannot use standard input for both data_in and ctx_in")
            elif key == "data_size_out":
                data_size_out = _strtoul(value, "output data size")
            elif key == "ctx_size_out":
                ctx_size_out = _strtoul(value, "output context size")
            else:
                repeat = _strtoul(value, "repeat number")
        data_in = _read_input(files["data_in"])
        ctx_in = _read_input(files["ctx_in"])
        if data_in is not None and not data_size_out:
            data_size_out = DEFAULT_SIZE_OUT
        if ctx_in is not None and not ctx_size_out:
            ctx_size_out = DEFAULT_SIZE_OUT
        try:
            res = test_run(prog, data_in, data_size_out=data_size_out if data_in is not None else 0,
                           ctx_in=ctx_in, ctx_size_out=ctx_size_out if ctx_in is not None else 0,
                           repeat=repeat)
        except BpfError as e:
            reason = os.strerror(e.errno) if e.errno else e.message
            if e.errno == 524:
                reason = (f"program type {prog.type} cannot be test-run "
                          "(the kernel has no BPF_PROG_TEST_RUN for it)")
            elif e.errno == E.ENOSPC:
                which = ("ctx_size_out" if "ctx_size_out" in e.message and "data_size_out" not in e.message
                         else "data_size_out" if "ctx_size_out" not in e.message else "data_size_out/ctx_size_out")
                reason = f"{reason}: {which} too small for the program's output"
            raise CliError(f"failed to run program: {reason}", (-e.errno) & 0xFF if e.errno else 255) \
                from None
        return _print_run(ctx, res, files, repeat)
    finally:
        prog.close()


def _print_run(ctx: Context, res: Any, files: dict[str, str | None], repeat: int) -> int:
    failures = 0
    parts: list[tuple[str, str]] = []
    for key, data in (("data_out", res.data_out), ("ctx_out", res.ctx_out)):
        fname = files[key]
        if not data or fname is None:
            continue
        if fname == "-":
            if ctx.json:
                parts.append((key, _json_bytes(data, ctx.pretty)))
            else:
                ctx.out.write(hex_print(data))
            continue
        try:
            with open(fname, "wb") as f:
                f.write(data)
        except OSError as e:
            ctx.err.write(f"Error: failed to open {fname}: {os.strerror(e.errno or E.EIO)}\n")
            failures += 1
    if ctx.json:
        fields = parts + [("retval", str(res.retval)), ("duration", str(res.duration_ns))]
        if ctx.pretty:
            body = ",\n".join(f'    "{k}": {v}' for k, v in fields)
            ctx.out.write("{\n" + body + "\n}\n")
        else:
            ctx.out.write("{" + ",".join(f'"{k}":{v}' for k, v in fields) + "}\n")
    else:
        avg = " (average)" if repeat > 1 else ""
        ctx.out.write(f"Return value: {res.retval}, duration{avg}: {res.duration_ns}ns\n")
    return 255 if failures else 0


# ---------------------------------------------------------------------------
# attach / detach


def _attach_detach(ctx: Context, args: list[str], verb: str) -> int:
    from pybpfobj import links
    from pybpfobj.cli.prog import parse_one_prog
    from pybpfobj.constants import ATTACH_TYPE, attach_type_name
    from pybpfobj.errors import BpfError

    _req(args, 3, verb, 234)
    prog, rest = parse_one_prog(args)
    target = None
    try:
        if not rest:
            raise CliError(f"'{verb}' needs at least 3 arguments, 2 found", 234)
        at = links.parse_attach_type(rest[0])
        if at is None:
            raise CliError("invalid attach/detach type", 234)
        if at != ATTACH_TYPE["flow_dissector"]:
            _req(rest[1:], 2, rest[0], 234)
            from pybpfobj.cli.map import parse_one_map

            target, _ = parse_one_map(rest[1:])
        if at not in [ATTACH_TYPE[full] for _, full in links.PROG_ATTACH_KEYWORDS]:
            raise CliError(f"attach type {attach_type_name(at)} is not supported by 'prog {verb}' "
                           "(msg_verdict, skb_verdict, stream_verdict, stream_parser, flow_dissector)", 234)
        try:
            if verb == "attach":
                commit()  # the attachment is the command's change: no stop cuts it
                links.prog_attach(prog, at, target)
            else:
                links.prog_detach(prog, at, target)
        except BpfError as e:
            what = "attach to" if verb == "attach" else "detach from"
            where = "map" if target is not None else "the network namespace"
            raise CliError(f"failed prog {what} {where}: {e.message}", 234) from None
        ctx.emit_null()
        return 0
    finally:
        prog.close()
        if target is not None:
            target.close()


def do_attach(ctx: Context, args: list[str]) -> int:
    """``prog attach PROG ATTACH_TYPE [MAP]``."""
    return _attach_detach(ctx, args, "attach")


def do_detach(ctx: Context, args: list[str]) -> int:
    """``prog detach PROG ATTACH_TYPE [MAP]``."""
    return _attach_detach(ctx, args, "detach")


# ---------------------------------------------------------------------------
# tracelog

TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def find_trace_pipe(mount: bool = True) -> str:
    """Path of ``trace_pipe``; mounts tracefs on /sys/kernel/tracing when none is mounted (unless ``mount`` is False)."""
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[2] == "tracefs":
                    return os.path.join(parts[1], "trace_pipe")
                if len(parts) > 2 and parts[2] == "debugfs":
                    cand = os.path.join(parts[1], "tracing", "trace_pipe")
                    if os.path.exists(cand):
                        return cand
    except OSError:
        pass
    if not mount:
        raise CliError("could not find trace pipe, tracefs not mounted?")
    import subprocess

    target = TRACEFS_DIRS[0]
    r = subprocess.run(["mount", "-t", "tracefs", "tracefs", target], check=False, capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise CliError(f"could not mount tracefs on {target}: {r.stderr.strip() or 'mount failed'}")
    return os.path.join(target, "trace_pipe")


def do_tracelog(ctx: Context, args: list[str]) -> int:
    """``prog tracelog [count N] [timeout SECONDS]``: stream trace_pipe until interrupted.

    ``count`` and ``timeout`` are pybpfobj extras (scripts and tests).
    """
    import select

    count: int | None = None
    timeout: float | None = None
    rest = list(args)
    while rest:
        word = rest[0]
        if is_keyword(word, "count") and len(rest) > 1:
            count = _strtoul(rest[1], "count")
        elif is_keyword(word, "timeout") and len(rest) > 1:
            try:
                timeout = float(rest[1])
            except ValueError:
                raise CliError(f"can't parse {rest[1]} as timeout") from None
        else:
            raise CliError(f"expected no more arguments, 'count' or 'timeout', got: '{word}'?")
        rest = rest[2:]
    path = find_trace_pipe(mount=not ctx.nomount)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise CliError(f"could not open trace pipe: {os.strerror(e.errno or E.EIO)}") from None
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    first = True
    buf = b""
    if ctx.json:
        ctx.out.write("[")
    stop = stop_on_signals()  # Ctrl-C, SIGTERM, SIGHUP end it, exit 0, as bpftool's handlers
    stop.__enter__()
    try:
        while count is None or seen < count:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if wait == 0.0:
                break
            r, _, _ = select.select([fd], [], [], wait)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            buf += chunk
            while b"\n" in buf and (count is None or seen < count):
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace") + "\n"
                if ctx.json:
                    import json

                    ctx.out.write(("" if first else ",") + json.dumps(text))
                    first = False
                else:
                    ctx.out.write(text)
                ctx.out.flush()
                seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        os.close(fd)
        if ctx.json:
            ctx.out.write("]\n")
        stop.__exit__()
    return 0


__all__ = ["do_attach", "do_detach", "do_run", "do_tracelog", "find_trace_pipe", "hex_print"]
