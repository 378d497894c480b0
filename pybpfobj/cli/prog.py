"""``pybpfobj prog ...``: bpftool's ``prog`` verbs.

show/list, dump and pin live here; load/loadall are in
:mod:`pybpfobj.cli.prog_load`, run/attach/detach/tracelog in
:mod:`pybpfobj.cli.prog_run` (imported only when used).
"""

from __future__ import annotations

import errno as _errno
import importlib
import os
import time
from typing import Any

from pybpfobj.cli.common import (
    CliError,
    Context,
    Handler,
    UsageError,
    commit,
    dispatch,
    is_keyword,
    only_one,
    parse_ulong,
)
from pybpfobj.errors import BpfError, NotFoundError
from pybpfobj.programs import Program

USAGE = """Usage: pybpfobj prog { show | list } [PROG]
       pybpfobj prog dump xlated PROG [{ file FILE | opcodes | visual | linum }]
       pybpfobj prog dump jited  PROG [{ file FILE | opcodes | linum }]
       pybpfobj prog pin   PROG FILE
       pybpfobj prog { load | loadall } OBJ  PATH \\
                         [type TYPE] [dev NAME] \\
                         [map { idx IDX | name NAME } MAP]\\
                         [pinmaps MAP_DIR] \\
                         [size NAME N]... [value_size NAME N]... \\
                         [var NAME VALUE]... [force] [pinroot DIR]
       pybpfobj prog attach PROG ATTACH_TYPE [MAP]
       pybpfobj prog detach PROG ATTACH_TYPE [MAP]
       pybpfobj prog run PROG \\
                         data_in FILE \\
                         [data_out FILE [data_size_out L]] \\
                         [ctx_in FILE [ctx_out FILE [ctx_size_out M]]] \\
                         [repeat N]
       pybpfobj prog profile PROG [duration DURATION] METRICs
       pybpfobj prog tracelog [count N] [timeout S]
       pybpfobj prog help

       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }
       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
       ATTACH_TYPE := { msg_verdict | skb_verdict | stream_verdict |
                        stream_parser | flow_dissector }
       METRIC := { cycles | instructions | l1d_loads | llc_misses | itlb_misses | dtlb_misses }
       OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} |
                    {-f|--bpffs} | {-m|--mapcompat} | {-n|--nomount} }

       dump xlated ... visual FILE.svg|FILE.png|FILE.pdf renders the graph with
       Graphviz; visual FILE.dot writes the DOT text.  `pybpfobj load help` explains
       load's extra keywords (size, value_size, var, force, pinroot).
       show lists 'pids' from /proc/*/fdinfo (bpftool needs a BPF iterator).
       pin (and load) mount a bpffs on the parent directory when it is not on
       one, as bpftool does (-n refuses instead); a name with '.' is refused.
       profile needs fentry/fexit programs and perf counters from the kernel.
"""

BPF_OBJ_NAME_LEN = 16
BPF_TAG_SIZE = 8


# ---------------------------------------------------------------------------
# handles

def parse_prog_handle(args: list[str]) -> tuple[list[Program], list[str]]:
    """Parse ``PROG := id ID | pinned FILE | tag TAG | name NAME`` off the front of ``args``.

    Returns the matching programs (one for id/pinned, possibly several for
    tag/name) and the remaining words.  Errors are :class:`CliError` with
    bpftool's messages; a tag or name matching nothing is an error too
    (bpftool 7.1 fails silently there).
    """
    if not args:
        raise CliError("expected 'id', 'tag', 'name' or 'pinned', got: '(null)'?")
    word = args[0]
    if is_keyword(word, "id"):
        if len(args) < 2:
            raise CliError("expected PROG_ID")
        try:
            prog_id = parse_ulong(args[1])
        except ValueError:
            raise CliError(f"can't parse {args[1]} as ID") from None
        try:
            return [Program.from_id(prog_id)], args[2:]
        except NotFoundError as e:
            raise CliError(f"get by id ({prog_id}): {os.strerror(e.errno or _errno.ENOENT)}") from None
        except BpfError as e:
            raise CliError(f"get by id ({prog_id}): {os.strerror(e.errno)}" if e.errno else e.message) \
                from None
    if is_keyword(word, "tag"):
        if len(args) < 2:
            raise CliError("expected PROG_TAG")
        tag = args[1].lower()
        if len(tag) != 2 * BPF_TAG_SIZE or any(c not in "0123456789abcdef" for c in tag):
            raise CliError("can't parse tag")
        progs = Program.by_tag(tag)
        if not progs:
            raise CliError(f"no program with tag {tag} found")
        return progs, args[2:]
    if is_keyword(word, "name"):
        if len(args) < 2:
            raise CliError("expected PROG_NAME")
        name = args[1]
        if len(name) > 127:
            raise CliError("can't parse name")
        progs = Program.by_name(name)
        if not progs:
            raise CliError(f"no program with name '{name}' found")
        return progs, args[2:]
    if is_keyword(word, "pinned"):
        if len(args) < 2:
            raise CliError("expected FILE")
        path = args[1]
        try:
            return [Program.from_pinned(path)], args[2:]
        except BpfError as e:
            raise CliError(e.message) from None
    raise CliError(f"expected 'id', 'tag', 'name' or 'pinned', got: '{word}'?")


def parse_one_prog(args: list[str]) -> tuple[Program, list[str]]:
    """A handle that must match exactly one program (bpftool's prog_parse_fd)."""
    progs, rest = parse_prog_handle(args)
    return only_one(progs, "programs"), rest


# ---------------------------------------------------------------------------
# show

def _loaded_at_text(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(epoch))


def _metadata(prog_map_ids: list[int]) -> list[tuple[str, Any, str]] | None:
    """``(name, json value, text value)`` of the ``bpf_metadata_*`` variables, or None.

    As bpftool: the metadata map is the program's first map that is a one-entry
    array with a 4-byte key, a BTF value type and ".rodata" in its name; its
    DATASEC's ``bpf_metadata_*`` variables are shown, whatever the section is
    called, and no other map is looked at.
    """
    from pybpfobj.kernel import info as kinfo
    from pybpfobj.kernel import progops

    prefix = "bpf_metadata_"
    for map_id in prog_map_ids:
        try:
            fd = kinfo.map_fd_by_id(map_id)
        except BpfError:
            continue
        try:
            mi = kinfo.map_info(fd)
            if (mi.type_name != "array" or mi.key_size != 4 or mi.max_entries != 1
                    or not mi.btf_value_type_id or ".rodata" not in mi.name):
                continue
            from pybpfobj.spec.btf import BTF, BtfKind
            from pybpfobj.spec.btf_format import format_value, format_value_compact

            btf = BTF.from_bytes(kinfo.btf_data(mi.btf_id), source=f"BTF id {mi.btf_id}")
            sec = btf.type(mi.btf_value_type_id)
            if sec.kind != BtfKind.DATASEC:
                return None
            variables = [(btf.type(si.type_id), si) for si in sec.secinfo]
            if not any(v.name.startswith(prefix) for v, _ in variables):
                return None
            value = progops.map_lookup_bytes(fd, b"\0\0\0\0", mi.value_size)
            out = []
            for var, si in variables:
                if var.name.startswith(prefix):
                    data = value[si.offset:si.offset + si.size]
                    out.append((var.name[len(prefix):], format_value(btf, var.type_id, data),
                                format_value_compact(btf, var.type_id, data)))
            return out
        except BpfError:
            return None
        finally:
            os.close(fd)
    return None


def header_line(pi: Any) -> str:
    """The first line of ``prog show`` text (also printed above each of several dumps)."""
    tname = pi.type_name if not pi.type_name.startswith("unknown") else f"type {pi.type}"
    line = f"{pi.id}: {tname}  "
    if pi.name:
        line += f"name {pi.name}  "
    line += f"tag {pi.tag}"
    if pi.gpl_compatible:
        line += "  gpl"
    if pi.run_time_ns:
        line += f" run_time_ns {pi.run_time_ns} run_cnt {pi.run_cnt}"
    if pi.recursion_misses:
        line += f" recursion_misses {pi.recursion_misses}"
    return line


def header_json(pi: Any) -> dict[str, Any]:
    """The leading keys of a ``prog show`` JSON object (also heading each of several dumps)."""
    d: dict[str, Any] = {"id": pi.id}
    d["type"] = pi.type_name if not pi.type_name.startswith("unknown") else pi.type
    if pi.name:
        d["name"] = pi.name
    d["tag"] = pi.tag
    d["gpl_compatible"] = pi.gpl_compatible
    if pi.run_time_ns:
        d["run_time_ns"] = pi.run_time_ns
        d["run_cnt"] = pi.run_cnt
    if pi.recursion_misses:
        d["recursion_misses"] = pi.recursion_misses
    return d


def _show_one(ctx: Context, prog: Program, pinned: dict[int, list[str]] | None,
              pids: dict[int, list[tuple[int, str]]] | None) -> Any:
    from pybpfobj.kernel import info as kinfo

    pi = prog.info()
    pi.name = kinfo.prog_full_name(prog.fd, pi)
    memlock = kinfo.fdinfo(prog.fd).get("memlock")
    meta = _metadata(pi.map_ids) if pi.map_ids else None
    if ctx.json:
        d = header_json(pi)
        if pi.load_time:
            d["loaded_at"] = pi.load_time_epoch()
            d["uid"] = pi.created_by_uid
        d["bytes_xlated"] = pi.xlated_prog_len
        d["jited"] = pi.jited_prog_len > 0
        if pi.jited_prog_len:
            d["bytes_jited"] = pi.jited_prog_len
        if memlock is not None:
            d["bytes_memlock"] = int(memlock)
        if pi.map_ids:
            d["map_ids"] = pi.map_ids
        if pi.btf_id:
            d["btf_id"] = pi.btf_id
        if pinned:  # as bpftool: the key whenever any program is pinned anywhere
            d["pinned"] = pinned.get(pi.id, [])
        if pids and pids.get(pi.id):
            d["pids"] = [{"pid": pid, "comm": comm} for pid, comm in pids[pi.id]]
        if meta is not None:
            d["metadata"] = {name: jv for name, jv, _ in meta}
        return d
    out = [header_line(pi)]
    if pi.load_time:
        out.append(f"\tloaded_at {_loaded_at_text(pi.load_time_epoch())}"
                   f"  uid {pi.created_by_uid}")
    line = f"\txlated {pi.xlated_prog_len}B"
    line += f"  jited {pi.jited_prog_len}B" if pi.jited_prog_len else "  not jited"
    if memlock is not None:
        line += f"  memlock {memlock}B"
    if pi.map_ids:
        line += "  map_ids " + ",".join(str(m) for m in pi.map_ids)
    out.append(line)
    if pinned:
        out.extend(f"\tpinned {p}" for p in pinned.get(pi.id, []))
    if pi.btf_id:
        out.append(f"\tbtf_id {pi.btf_id}")
    if pids and pids.get(pi.id):
        out.append("\tpids " + ", ".join(f"{comm}({pid})" for pid, comm in pids[pi.id]))
    if meta is not None:
        out.append("\tmetadata:")
        out.extend(f"\t\t{name} = {tv}" for name, _, tv in meta)
    ctx.print("\n".join(out))
    return None


def do_show(ctx: Context, args: list[str]) -> int:
    """``prog show|list [PROG]``."""
    from pybpfobj.kernel import info as kinfo

    if len(args) not in (0, 2):
        raise CliError(f"what is '{args[0]}'?")
    if args:
        progs, _ = parse_prog_handle(args)
        single = len(progs) == 1
    else:
        progs = Program.all()
        single = False
    try:
        pinned = kinfo.pinned_table("prog") if ctx.bpffs else None
        pids = kinfo.pids_table("prog", ignore_fds=[p.fd for p in progs])
        results = []
        for p in progs:
            try:
                results.append(_show_one(ctx, p, pinned, pids))
            except BpfError as e:
                if single:
                    raise
                ctx.warn(f"Error: can't get prog info: {e.message}")
        if ctx.json:
            ctx.emit_json(results[0] if single and results else results)
    finally:
        for p in progs:
            p.close()
    return 0


# ---------------------------------------------------------------------------
# pin

def do_pin(ctx: Context, args: list[str]) -> int:
    """``prog pin PROG FILE``: mounts a bpffs on FILE's directory if needed (unless ``-n``)."""
    if len(args) < 3:
        raise CliError(f"'pin' needs at least 3 arguments, {len(args)} found", (-_errno.EINVAL) & 0xFF)
    prog, rest = parse_one_prog(args)
    with prog:
        if not rest:
            raise CliError(f"what is '{args[0]}'?")
        path = rest[0]  # words after FILE are ignored, as bpftool does
        from pybpfobj.kernel import bpffs

        bpffs.check_pin_name(path)
        if os.path.lexists(path):
            raise CliError(f"can't pin the object ({path}): {os.strerror(_errno.EEXIST)}",
                           (-_errno.EEXIST) & 0xFF)
        commit()  # the pin (and any bpffs mounted for it) is the command's change: no stop cuts it
        bpffs.pin_mounting(prog.fd, path, nomount=ctx.nomount)
    ctx.emit_null()
    return 0


# ---------------------------------------------------------------------------
# delegated verbs

def _delegate(module: str, func: str, what: str) -> Handler:
    def run(ctx: Context, args: list[str]) -> int | None:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            raise CliError(f"'prog {what}' is not available in this build ({module} is missing)") from None
        fn = getattr(mod, func, None)
        if fn is None:
            raise CliError(f"'prog {what}' is not available in this build ({module}.{func} is missing)")
        rc: int | None = fn(ctx, args)
        return rc
    return run


def do_dump(ctx: Context, args: list[str]) -> int | None:
    """``prog dump {xlated|jited} PROG ...`` (in :mod:`pybpfobj.cli.prog_dump`)."""
    prog_dump: Any = importlib.import_module("pybpfobj.cli.prog_dump")
    rc: int | None = prog_dump.do_dump(ctx, args)
    return rc


def do_profile(ctx: Context, args: list[str]) -> int | None:
    """``prog profile PROG [duration D] METRIC...``."""
    prog_dump: Any = importlib.import_module("pybpfobj.cli.prog_dump")
    rc: int | None = prog_dump.do_profile(ctx, args)
    return rc


def do_help(ctx: Context, args: list[str]) -> int:
    ctx.out.write(USAGE) if not ctx.json else ctx.emit_json(None)
    return 0


COMMANDS: list[tuple[str, Handler]] = [
    ("show", do_show),
    ("list", do_show),
    ("help", do_help),
    ("dump", do_dump),
    ("pin", do_pin),
    ("load", _delegate("pybpfobj.cli.prog_load", "do_load", "load")),
    ("loadall", _delegate("pybpfobj.cli.prog_load", "do_loadall", "loadall")),
    ("attach", _delegate("pybpfobj.cli.prog_run", "do_attach", "attach")),
    ("detach", _delegate("pybpfobj.cli.prog_run", "do_detach", "detach")),
    ("tracelog", _delegate("pybpfobj.cli.prog_run", "do_tracelog", "tracelog")),
    ("run", _delegate("pybpfobj.cli.prog_run", "do_run", "run")),
    ("profile", do_profile),
]


def do_prog(ctx: Context, args: list[str]) -> int:
    """The ``prog`` command group; ``prog`` alone is ``prog show``."""
    return dispatch(ctx, args, COMMANDS, USAGE, default="show")


__all__ = ["USAGE", "UsageError", "do_prog", "header_json", "header_line", "parse_one_prog", "parse_prog_handle"]
