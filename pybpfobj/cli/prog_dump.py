"""``prog dump xlated|jited`` and ``prog profile``.

Kept apart from :mod:`pybpfobj.cli.prog` so ``prog show`` does not import
the decoder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from pybpfobj.cli.common import CliError, Context, is_keyword, parse_ulong
from pybpfobj.cli.prog import USAGE, header_json, header_line, parse_one_prog, parse_prog_handle
from pybpfobj.errors import BpfError
from pybpfobj.programs import Program


def listing_for(prog: Program) -> tuple[Any, Any]:
    """``(ProgInfo, disasm.Listing)`` of a loaded program's xlated code, with its BTF
    function prototypes and source lines where the program has them."""
    from pybpfobj import disasm
    from pybpfobj.kernel import info as kinfo

    pi = prog.info(xlated=True, func_info=True, line_info=True, jited_ksyms=True)
    pi.name = kinfo.prog_full_name(prog.fd, pi)
    btf = _prog_btf(pi)
    symbols = None
    if _needs_symbols(pi.xlated or b""):
        base, names = disasm.kallsyms()
        symbols = disasm.Symbols(base, names, pi.jited_ksyms or ())
    listing = disasm.listing_from_info(pi.xlated or b"", btf=btf, func_info=pi.func_info or (),
                                       line_info=pi.line_info or (), symbols=symbols)
    return pi, listing


def _prog_btf(pi: Any) -> Any:
    """The program's BTF (function prototypes, source lines), or None when it has none."""
    if not pi.btf_id:
        return None
    from pybpfobj.kernel import info as kinfo
    from pybpfobj.spec.btf import BTF

    return BTF.from_bytes(kinfo.btf_data(pi.btf_id), source=f"BTF id {pi.btf_id}")


def _needs_symbols(xlated: bytes) -> bool:
    # /proc/kallsyms is big: read it only when a call cannot be named from the helper table.
    from pybpfobj import disasm

    for insn in disasm.decode(xlated):
        if insn.code == 0x85 and not (insn.src == 0 and 0 <= insn.imm < len(disasm.HELPERS)):
            return True
    return False


def _parse_dump_opts(kind: str, rest: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {"file": None, "opcodes": False, "linum": False, "visual": False}
    i = 0
    while i < len(rest):
        w = rest[i]
        if is_keyword(w, "file"):
            if i + 1 >= len(rest):
                raise CliError("expected file path")
            opts["file"] = rest[i + 1]
            i += 2
            continue
        if is_keyword(w, "opcodes"):
            opts["opcodes"] = True
        elif is_keyword(w, "visual") and kind == "xlated":
            opts["visual"] = True
        elif is_keyword(w, "linum"):
            opts["linum"] = True
        else:
            raise CliError(f"what is '{w}'?")
        i += 1
    if opts["file"] is not None and (opts["opcodes"] or opts["linum"] or opts["visual"]):
        raise CliError("'file' cannot be combined with opcodes, linum or visual")
    return opts


def do_dump(ctx: Context, args: list[str]) -> int:
    """``prog dump {xlated|jited} PROG [file FILE | opcodes | visual [OUT.svg|OUT.png] | linum]``.

    Unlike bpftool 7.1, ``opcodes``, ``linum`` and ``visual`` combine (as in
    upstream bpftool); ``visual FILE.svg``/``FILE.png`` renders with Graphviz.
    """
    if not args:
        raise CliError("expected 'xlated' or 'jited', got: (null)")
    if is_keyword(args[0], "xlated"):
        kind = "xlated"
    elif is_keyword(args[0], "jited"):
        kind = "jited"
    else:
        raise CliError(f"expected 'xlated' or 'jited', got: {args[0]}")
    if len(args) < 3:
        from pybpfobj.cli.common import UsageError

        raise UsageError("too few parameters", USAGE)
    render_to: str | None = None
    progs, rest = parse_prog_handle(args[1:])
    try:
        # 'visual OUT.svg': the word after visual naming an image file
        for k, w in enumerate(rest):
            if is_keyword(w, "visual") and k + 1 < len(rest) and \
                    rest[k + 1].lower().endswith((".svg", ".png", ".pdf", ".dot")):
                render_to = rest[k + 1]
                rest = rest[:k + 1] + rest[k + 2:]
                break
        opts = _parse_dump_opts(kind, rest)
        if len(progs) > 1 and (opts["file"] or opts["visual"]):
            raise CliError("several programs matched")
        if opts["visual"] and ctx.json:
            raise CliError("'visual' is not compatible with JSON output")
        if kind == "jited":
            return _dump_jited(ctx, progs, opts)
        dumps: list[Any] = []
        for prog in progs:
            pi, listing = listing_for(prog)
            if opts["file"]:
                _write_file(opts["file"], pi.xlated or b"")
                ctx.emit_null()
                return 0
            if opts["visual"]:
                from pybpfobj import disasm

                if render_to and not render_to.lower().endswith(".dot"):
                    render_dot(disasm.dump_dot(listing, for_picture=True), render_to)
                elif render_to:
                    _write_file(render_to, disasm.dump_dot(listing).encode())
                else:
                    ctx.out.write(disasm.dump_dot(listing))
                return 0
            from pybpfobj import disasm

            dump = disasm.dump_json if ctx.json else disasm.dump_text
            dumps.append(_headed(ctx, pi, dump(listing, opcodes=opts["opcodes"], linum=opts["linum"]),
                                 len(progs) > 1))
        _emit_dumps(ctx, dumps, len(progs) > 1)
        return 0
    finally:
        for p in progs:
            p.close()


def _write_file(path: str, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise CliError(f"can't open file {path}: {os.strerror(e.errno or 0)}") from None


def render_dot(dot: str, out_path: str) -> None:
    """Render DOT text to ``out_path`` (.svg/.png/.pdf by extension; .dot writes the text)."""
    fmt = out_path.rsplit(".", 1)[-1].lower()
    if fmt == "dot":
        _write_file(out_path, dot.encode())
        return
    exe = shutil.which("dot")
    if exe is None:
        raise CliError("rendering the graph needs Graphviz's 'dot' program (apt-get install graphviz); "
                       "without a file name 'visual' prints the DOT text instead")
    proc = subprocess.run([exe, f"-T{fmt}", "-o", out_path], input=dot.encode(), capture_output=True,
                          check=False)
    if proc.returncode != 0:
        try:
            os.unlink(out_path)
        except OSError:
            pass
        raise CliError(f"dot failed to render {out_path}: {proc.stderr.decode(errors='replace').strip()}")


def _dump_jited(ctx: Context, progs: list[Program], opts: dict[str, Any]) -> int:
    """``dump jited``: the native image, disassembled with capstone (text or JSON), or raw to a file."""
    from pybpfobj.kernel import info as kinfo

    infos = []
    for prog in progs:
        pi = prog.info(jited=True, jited_ksyms=True, func_info=True, line_info=True)
        if not pi.jited_prog_len or not pi.jited:
            raise CliError("no instructions returned")
        pi.name = kinfo.prog_full_name(prog.fd, pi)
        if opts["file"]:
            _write_file(opts["file"], pi.jited)
            ctx.emit_null()
            return 0
        infos.append(pi)
    from pybpfobj import jitdisasm

    dumps: list[Any] = []
    try:
        for pi in infos:
            funcs = jitdisasm.functions_from_info(pi, _prog_btf(pi))
            dump = jitdisasm.dump_json if ctx.json else jitdisasm.dump_text
            dumps.append(_headed(ctx, pi, dump(funcs, opcodes=opts["opcodes"], linum=opts["linum"]),
                                 len(infos) > 1))
    except BpfError as e:   # capstone missing, or an architecture we cannot decode
        raise CliError(e.message, e.exit_code) from None
    _emit_dumps(ctx, dumps, len(infos) > 1)
    return 0


def _headed(ctx: Context, pi: Any, body: Any, several: bool) -> Any:
    """One program's dump; when several programs matched, headed by its ``prog show``
    line (text) or keys (JSON, the instructions under ``insns``)."""
    if not several:
        return body
    if ctx.json:
        d = header_json(pi)
        d["insns"] = body
        return d
    return header_line(pi) + "\n" + body


def _emit_dumps(ctx: Context, dumps: list[Any], several: bool) -> None:
    """Print the dumps: JSON, one program's instructions or an array of headed dumps; text, joined."""
    if ctx.json:
        ctx.emit_json(dumps if several or not dumps else dumps[0])
    else:
        ctx.out.write("\n".join(dumps))


def do_profile(ctx: Context, args: list[str]) -> int:
    """``prog profile PROG [duration D] METRIC...``: counts the metrics over the program's runs
    for D seconds (until Ctrl-C without a duration) through fentry/fexit programs, as bpftool.

    On kernels that refuse fentry programs (as this project's VM does) it fails with a
    message saying so and the kernel's error."""
    from pybpfobj import profiler

    if len(args) < 3:
        from pybpfobj.cli.common import UsageError

        raise UsageError("too few parameters", USAGE)
    prog, rest = parse_one_prog(args)
    try:
        duration: int | None = None
        if rest and is_keyword(rest[0], "duration"):
            if len(rest) < 2:
                raise CliError("expected duration")
            try:
                duration = parse_ulong(rest[1])
            except ValueError:
                raise CliError(f"invalid duration: {rest[1]}") from None
            if duration == 0:
                raise CliError(f"invalid duration: {rest[1]}")
            rest = rest[2:]
        try:
            metrics = profiler.parse_metrics(rest)
            result = profiler.profile(prog.fd, metrics, duration)
        except BpfError as e:
            raise CliError(e.message, e.exit_code) from None
        if ctx.json:
            ctx.emit_json(result.json())
        else:
            ctx.out.write(result.text())
        return 0
    finally:
        prog.close()
