"""``pybpfobj map ...``: bpftool's map command set, grammar and output.

Every verb is a few lines over :class:`pybpfobj.maps.Map`.  Text and JSON
output follow bpftool 7.1 byte for byte where it has a format (hex dumps,
``Found N elements``, BTF-formatted dumps through a json_writer emulation,
the single-object-versus-array JSON rule); where bpftool silently misbehaves
(bytes over 255 wrap, negative numbers, a name matching nothing) we fail
with a clear message instead.
"""

from __future__ import annotations

import errno as _errno
import os
import struct
from collections.abc import Callable
from typing import Any

from pybpfobj import constants as C
from pybpfobj.cli.common import (
    CliError,
    Context,
    UsageError,
    commit,
    dispatch,
    hexbytes,
    is_keyword,
    only_one,
    parse_ulong,
    stop_on_signals,
)
from pybpfobj.errors import BpfError, map_error
from pybpfobj.kernel import info as kinfo
from pybpfobj.maps import Map, check_map_name, possible_cpus

USAGE = """Usage: pybpfobj map { show | list }   [MAP]
       pybpfobj map create     FILE type TYPE key KEY_SIZE value VALUE_SIZE \\
                                  entries MAX_ENTRIES name NAME [flags FLAGS] \\
                                  [inner_map MAP] [dev NAME]
       pybpfobj map dump       MAP
       pybpfobj map update     MAP [key DATA] [value VALUE] [UPDATE_FLAGS]
       pybpfobj map lookup     MAP [key DATA]
       pybpfobj map getnext    MAP [key DATA]
       pybpfobj map delete     MAP  key DATA
       pybpfobj map pin        MAP  FILE
       pybpfobj map event_pipe MAP [cpu N index M] [count N]
       pybpfobj map peek       MAP
       pybpfobj map push       MAP value VALUE
       pybpfobj map pop        MAP
       pybpfobj map enqueue    MAP value VALUE
       pybpfobj map dequeue    MAP
       pybpfobj map freeze     MAP
       pybpfobj map help

       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }
       DATA := { [hex] BYTES }
       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
       VALUE := { DATA | MAP | PROG }
       UPDATE_FLAGS := { any | exist | noexist }
       TYPE := { hash | array | prog_array | perf_event_array | percpu_hash |
                 percpu_array | stack_trace | cgroup_array | lru_hash |
                 lru_percpu_hash | lpm_trie | array_of_maps | hash_of_maps |
                 devmap | devmap_hash | sockmap | cpumap | xskmap | sockhash |
                 cgroup_storage | reuseport_sockarray | percpu_cgroup_storage |
                 queue | stack | sk_storage | struct_ops | ringbuf | inode_storage |
                 task_storage | bloom_filter | user_ringbuf | cgrp_storage | arena }
       OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} |
                    {-f|--bpffs} | {-n|--nomount} }

       BYTES are 0..255 each: 0x.. is hex, a leading 0 octal, else decimal
       (after 'hex' all are hex); negative or larger numbers are refused.
       event_pipe works on perf_event_array and ringbuf maps and runs until
       interrupted, or until 'count N' records were printed.
"""

_RAW = {"key_type": bytes, "value_type": bytes}


def _usage(msg: str = "too few parameters") -> UsageError:
    return UsageError(msg, USAGE)


# ---------------------------------------------------------------------------
# handles

def _open_id(map_id: int) -> Map:
    try:
        return Map.from_id(map_id, **_RAW)
    except BpfError as e:
        raise CliError(f"get map by id ({map_id}): {os.strerror(e.errno or _errno.ENOENT)}") from None


def parse_map_handle(args: list[str]) -> tuple[list[Map], list[str]]:
    """Parse ``MAP := id ID | pinned FILE | name NAME`` off the front of ``args``.

    Returns the matching maps (opened with raw bytes keys/values; one for
    id/pinned, possibly several for name) and the remaining words.  Raises
    CliError with bpftool's messages; a name matching nothing is an error
    (bpftool 7.1 exits 255 silently).
    """
    if not args:
        raise _usage()
    word = args[0]
    if is_keyword(word, "id"):
        if len(args) < 2:
            raise _usage()
        try:
            map_id = parse_ulong(args[1])
        except ValueError:
            raise CliError(f"can't parse {args[1]} as ID") from None
        return [_open_id(map_id)], args[2:]
    if is_keyword(word, "pinned"):
        if len(args) < 2:
            raise _usage()
        path = args[1]
        try:
            return [Map.from_pinned(path, **_RAW)], args[2:]
        except BpfError as e:
            raise CliError(e.message) from None
    if is_keyword(word, "name"):
        if len(args) < 2:
            raise _usage()
        name = args[1]
        if len(name) > 15:
            raise CliError(f"can't parse name: '{name}' is longer than 15 characters")
        maps = Map.by_name(name, **_RAW)
        if not maps:
            raise CliError(f"no map with name '{name}' found")
        return maps, args[2:]
    raise CliError(f"expected 'id', 'name' or 'pinned', got: '{word}'?")


def parse_one_map(args: list[str]) -> tuple[Map, list[str]]:
    """A ``MAP`` handle that must match exactly one map (bpftool's map_parse_fd)."""
    maps, rest = parse_map_handle(args)
    return only_one(maps, "maps"), rest


def _prog_fd(args: list[str]) -> tuple[int, list[str]]:
    """A program fd from ``PROG`` words (for prog_array values)."""
    from pybpfobj.cli.prog import parse_one_prog

    p, rest = parse_one_prog(args)
    fd = os.dup(p.fd)
    p.close()
    return fd, rest


# ---------------------------------------------------------------------------
# DATA

def _parse_byte(tok: str, base: int) -> int:
    t = tok
    try:
        if t.startswith("-"):
            raise CliError(f"error parsing byte: {tok} (negative numbers are not bytes)")
        if base == 16:
            v = int(t[2:] if t[:2].lower() == "0x" else t, 16) if t else 0
        elif t[:2].lower() == "0x":
            v = int(t, 0)
        elif len(t) > 1 and t[0] == "0":
            v = int(t[1:], 8)
        else:
            v = int(t, 10) if t else 0
        if not t or t.strip() != t or "_" in t or t.startswith("+"):
            raise ValueError(t)
    except ValueError:
        raise CliError(f"error parsing byte: {tok}") from None
    if v > 255:
        raise CliError(f"error parsing byte: {tok} (a byte is 0..255)")
    return v


def parse_bytes(args: list[str], name: str, n: int) -> tuple[bytes, list[str]]:
    """bpftool's ``[hex] BYTES``: exactly ``n`` byte tokens; returns them and the rest."""
    i = 0
    base = 0
    if args and is_keyword(args[0], "hex"):
        base = 16
        args = args[1:]
    out = bytearray()
    while i < n and i < len(args):
        out.append(_parse_byte(args[i], base))
        i += 1
    if i != n:
        raise CliError(f"{name} expected {n} bytes got {i}")
    return bytes(out), args[i:]


class _Elem:
    key: bytes | None = None
    value: bytes | None = None
    value_fd: int = -1
    flags: int = 0


def parse_elem(args: list[str], m: Map, want_key: bool, want_value: bool, want_flags: bool,
               *, key_always: bool = False, ctx: Context | None = None) -> _Elem:
    """bpftool's parse_elem: ``key DATA``, ``value VALUE`` and flags, in any order.

    A map with no key (or no value) takes none: ``key``/``value`` is then
    "unnecessary" and not asked for, except with ``key_always`` (bpftool's
    delete and getnext always hand a key buffer, so ``key`` with zero bytes
    is still expected there).  ``ctx`` receives bpftool's warning about
    prog_array values given by id.
    """
    e = _Elem()
    want_key = want_key and (m.key_size > 0 or key_always)
    want_value = want_value and m.value_size > 0
    key_pending, value_pending, flags_pending = want_key, want_value, want_flags
    try:
        while True:
            if not args:
                if key_pending or value_pending:
                    raise CliError(f"did not find {'key' if key_pending else 'value'}")
                return e
            w = args[0]
            if is_keyword(w, "key"):
                if not key_pending:
                    raise CliError("duplicate key" if m.key_size else "unnecessary key")
                e.key, args = parse_bytes(args[1:], "key", m.key_size)
                key_pending = False
            elif is_keyword(w, "value"):
                if not value_pending:
                    raise CliError("duplicate value" if m.value_size and want_value else "unnecessary value")
                args = args[1:]
                if m.type in C.MAP_IN_MAP_TYPES:
                    if m.value_size != 4:
                        raise CliError("value smaller than 4B for map in map?")
                    if len(args) < 2:
                        raise CliError("not enough value arguments for map in map")
                    inner, args = parse_one_map(args)
                    e.value_fd = os.dup(inner.fd)
                    inner.close()
                    e.value = struct.pack("<I", e.value_fd)
                elif m.type == C.MAP_TYPE["prog_array"]:
                    if m.value_size != 4:
                        raise CliError("value smaller than 4B for map of progs?")
                    if len(args) < 2:
                        raise CliError("not enough value arguments for map of progs")
                    if ctx is not None and is_keyword(args[0], "id"):
                        ctx.warn("Warning: updating program array via MAP_ID, make sure this map is kept open\n"
                                 "         by some process or pinned otherwise update will be lost")
                    e.value_fd, args = _prog_fd(args)
                    e.value = struct.pack("<I", e.value_fd)
                else:
                    e.value, args = parse_bytes(args, "value", m.value_size)
                value_pending = False
            elif is_keyword(w, "any") or is_keyword(w, "noexist") or is_keyword(w, "exist"):
                if not flags_pending:
                    raise CliError(f"flags specified multiple times: {w}")
                e.flags = 0 if is_keyword(w, "any") else (1 if is_keyword(w, "noexist") else 2)
                flags_pending = False
                args = args[1:]
            else:
                raise CliError(f"expected key or value, got: {w}")
    except BaseException:
        if e.value_fd >= 0:
            os.close(e.value_fd)
        raise


# ---------------------------------------------------------------------------
# output helpers

def fprint_hex(data: bytes) -> str:
    """bpftool's fprint_hex: bytes as ``01 02``, two spaces every 8, a new line every 16."""
    parts: list[str] = []
    for i, b in enumerate(data):
        if i:
            parts.append("\n" if i % 16 == 0 else ("  " if i % 8 == 0 else " "))
        parts.append(_HEX2[b])
    return "".join(parts)


_HEX2 = [f"{b:02x}" for b in range(256)]
_JHEX = [f'"0x{b:02x}"' for b in range(256)]


def _jhex(data: bytes) -> str:
    return "[" + ",".join([_JHEX[b] for b in data]) + "]"


def entry_plain(m: Map, key: bytes, value: bytes) -> str:
    """One element as bpftool's print_entry_plain (without the trailing newline)."""
    if not m.percpu:
        out = []
        break_names = m.key_size > 16 or m.value_size > 16
        single = m.key_size + m.value_size <= 24 and not break_names
        if m.key_size:
            out.append("key:" + ("\n" if break_names else " ") + fprint_hex(key) + ("  " if single else "\n"))
        if m.value_size:
            out.append("value:" + ("\n" if break_names else " ") + fprint_hex(value))
        return "".join(out)
    step = m.value_stride
    lines = ["key:", fprint_hex(key)]
    for c in range(possible_cpus()):
        lines.append(f"value (CPU {c:02d}):" + ("\n" if m.value_size > 16 else " ")
                     + fprint_hex(value[c * step:c * step + m.value_size]))
    return "\n".join(lines)


def entry_json(m: Map, key: bytes, value: bytes, formatted: Callable[[bytes, bytes], Any] | None) -> dict[str, Any]:
    """One element as bpftool's print_entry_json (hex arrays, per-CPU ``values``, ``formatted``)."""
    d: dict[str, Any] = {"key": hexbytes(key)}
    if not m.percpu:
        d["value"] = hexbytes(value)
    else:
        step = m.value_stride
        d["values"] = [{"cpu": c, "value": hexbytes(value[c * step:c * step + m.value_size])}
                       for c in range(possible_cpus())]
    if formatted is not None:
        d["formatted"] = formatted(key, value)
    return d


def _Raw(text: str) -> Any:
    """A preformatted leaf the pretty writer prints as is."""
    from pybpfobj.spec.btf_format import Raw

    return Raw(text)


def jsonw_pretty(value: Any, depth: int = 0) -> str:
    """``value`` as bpftool's json_writer prints it in pretty mode (``[{`` ``},{`` style)."""
    from pybpfobj.spec.btf_format import pretty_json

    return pretty_json(value, depth)


class _BtfFormatter:
    """bpftool's do_dump_btf: ``{"key": ..., "value"|"values": ...}`` formatted from the map's BTF."""

    def __init__(self, m: Map, text: bool) -> None:
        from pybpfobj.spec import btf_format
        from pybpfobj.spec.btf import BTF

        ki = kinfo.map_info(m.fd)
        self.m = m
        self.key_id = ki.btf_key_type_id
        self.value_id = ki.btf_vmlinux_value_type_id or ki.btf_value_type_id
        if ki.btf_vmlinux_value_type_id:
            self.btf = BTF.from_file("/sys/kernel/btf/vmlinux")
        else:
            self.btf = BTF.from_bytes(kinfo.btf_data(ki.btf_id), source=f"map {m.name!r} BTF")
        self.fmt: Callable[..., Any] = btf_format.format_tree_text if text else btf_format.format_value

    def __call__(self, key: bytes, value: bytes) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.key_id:
            d["key"] = self.fmt(self.btf, self.key_id, key)
        m = self.m
        if not m.percpu:
            d["value"] = self.fmt(self.btf, self.value_id, value)
        else:
            step = m.value_stride
            d["values"] = [{"cpu": c, "value": self.fmt(self.btf, self.value_id,
                                                          value[c * step:c * step + m.value_size])}
                           for c in range(possible_cpus())]
        return d


def _has_btf(m: Map) -> bool:
    ki = kinfo.map_info(m.fd)
    return bool(ki.btf_value_type_id or ki.btf_vmlinux_value_type_id)


def _print_key_value(ctx: Context, m: Map, key: bytes, value: bytes) -> None:
    """bpftool's print_key_value (lookup, peek, pop)."""
    fmt = _BtfFormatter(m, not ctx.json) if _has_btf(m) else None
    if ctx.json:
        ctx.emit_json(entry_json(m, key, value, fmt))
    elif fmt is not None:
        ctx.print(jsonw_pretty(fmt(key, value)))
    else:
        ctx.print(entry_plain(m, key, value))


def _errcode(e: BpfError) -> int:
    return ((-e.errno) & 0xFF) if e.errno else 255


# ---------------------------------------------------------------------------
# show

def _pids_table() -> dict[int, list[tuple[int, str]]]:
    """map id -> [(pid, comm)] for every process but this one, in one /proc walk."""
    me = os.getpid()
    table: dict[int, list[tuple[int, str]]] = {}
    for map_id, holders in kinfo.pids_table("map").items():
        others = [h for h in holders if h[0] != me]
        if others:
            table[map_id] = others
    return table


def _header_plain(m: Map) -> str:
    """The first line of ``map show`` (bpftool's show_map_header_plain), which heads each
    map's elements when ``map dump`` matched several maps."""
    mi = m.info()
    tname = C.MAP_TYPES[mi.type] if mi.type < len(C.MAP_TYPES) else None
    s = f"{mi.id}: " + (f"{tname}  " if tname else f"type {mi.type}  ")
    if mi.name:
        s += f"name {mi.name}  "
    s += f"flags 0x{mi.flags:x}"
    if mi.ifindex:
        s += f"  offloaded_to ifindex {mi.ifindex}"
    return s


def _show_one(ctx: Context, m: Map, pinned: dict[int, list[str]], pids: dict[int, list[tuple[int, str]]]) -> Any:
    mi = m.info()
    tname = C.MAP_TYPES[mi.type] if mi.type < len(C.MAP_TYPES) else None
    if ctx.json:
        d: dict[str, Any] = {"id": mi.id, "type": tname if tname else mi.type}
        if mi.name:
            d["name"] = mi.name
        d["flags"] = mi.flags
        d.update(bytes_key=mi.key_size, bytes_value=mi.value_size, max_entries=mi.max_entries)
        if mi.memlock is not None:
            d["bytes_memlock"] = mi.memlock
        if mi.type == C.MAP_TYPE["prog_array"]:
            if mi.owner_prog_type is not None:
                d["owner_prog_type"] = C.prog_type_name(mi.owner_prog_type)
            if mi.owner_jited is not None:
                d["owner_jited"] = mi.owner_jited
        d["frozen"] = int(mi.frozen)
        if mi.btf_id:
            d["btf_id"] = mi.btf_id
        if ctx.bpffs and pinned:  # as bpftool: the key whenever any map is pinned anywhere
            d["pinned"] = pinned.get(mi.id, [])
        if mi.id in pids:
            d["pids"] = [{"pid": p, "comm": c} for p, c in pids[mi.id]]
        return d
    s = _header_plain(m)
    s += f"\n\tkey {mi.key_size}B  value {mi.value_size}B  max_entries {mi.max_entries}"
    if mi.memlock is not None:
        s += f"  memlock {mi.memlock}B"
    if mi.type == C.MAP_TYPE["prog_array"]:
        if mi.owner_prog_type is not None and mi.owner_jited is not None:
            s += "\n\t"
        if mi.owner_prog_type is not None:
            s += f"owner_prog_type {C.prog_type_name(mi.owner_prog_type)}  "
        if mi.owner_jited is not None:
            s += "owner jited" if mi.owner_jited else "owner not jited"
    if ctx.bpffs:
        for p in pinned.get(mi.id, []):
            s += f"\n\tpinned {p}"
    if mi.btf_id or mi.frozen:
        s += "\n\t"
    if mi.btf_id:
        s += f"btf_id {mi.btf_id}"
    if mi.frozen:
        s += ("  " if mi.btf_id else "") + "frozen"
    if mi.id in pids:
        s += "\n\tpids " + ", ".join(f"{c}({p})" for p, c in pids[mi.id])
    ctx.print(s)
    return None


def do_show(ctx: Context, args: list[str]) -> int:
    pinned = kinfo.pinned_table("map") if ctx.bpffs else {}
    pids = _pids_table()
    if args:
        if len(args) != 2:  # bpftool's do_show: any other count is BAD_ARG on the first word
            raise CliError(f"what is '{args[0]}'?")
        maps, _ = parse_map_handle(args)
        try:
            objs = [_show_one(ctx, m, pinned, pids) for m in maps]
        finally:
            for m in maps:
                m.close()
        if ctx.json:
            ctx.emit_json(objs if len(objs) > 1 else objs[0])
        return 0
    results = []
    for mid in kinfo.map_ids():
        try:
            m = Map.from_id(mid, **_RAW)
        except BpfError:
            continue  # gone meanwhile
        try:
            results.append(_show_one(ctx, m, pinned, pids))
        finally:
            m.close()
    if ctx.json:
        ctx.emit_json(results)
    return 0


# ---------------------------------------------------------------------------
# dump

def _dump_elements(m: Map) -> tuple[list[tuple[bytes, bytes]], int, int]:
    """(elements, errors-skipped, final errno) as bpftool's get_next_key + lookup loop sees them.

    Maps that support batch lookup are read in batches (same order as the
    get_next_key walk); the others element by element.
    """
    err = 0
    if m.type in _BATCHABLE:
        try:
            return m.lookup_batch(), 0, 0
        except BpfError:
            pass  # fall back to the plain walk, which reports errors per element
    out: list[tuple[bytes, bytes]] = []
    prev: bytes | None = None
    while True:
        try:
            k = m.get_next_key(prev)
        except BpfError as e:
            if e.errno != _errno.ENOENT:
                err = e.errno or 0
            break
        try:
            out.append((k, m._raw_lookup(k) if not m.percpu else _raw_percpu(m, k)))
        except BpfError as e:
            out.append((k, e))  # type: ignore[arg-type]
        prev = k
    return out, 0, err


_BATCHABLE = frozenset(C.MAP_TYPE[n] for n in ("hash", "percpu_hash", "lru_hash", "lru_percpu_hash",
                                               "array", "percpu_array"))


def _raw_percpu(m: Map, key: bytes) -> bytes:
    r, raw = m._raw_value(key)
    if r:
        raise map_error(-r, f"lookup of key {key!r}", m.name)
    return raw


def _percpu_join(m: Map, v: Any) -> bytes:
    if isinstance(v, list):
        pad = b"\0" * (m.value_stride - m.value_size)
        return b"".join(x + pad for x in v)
    return bytes(v)


def _entry_error_plain(m: Map, key: bytes, err: int) -> str | None:
    if (m.type in C.MAP_IN_MAP_TYPES or m.type == C.MAP_TYPE["prog_array"]) and err == _errno.ENOENT:
        return None
    if err == _errno.ENOENT:
        msg = "<no entry>"
    elif err == _errno.ENOSPC and m.type == C.MAP_TYPE["reuseport_sockarray"]:
        msg = "<cannot read>"  # its 8-byte socket cookies only fit an 8-byte value
    else:
        msg = os.strerror(err)
    break_names = m.key_size > 16 or len(msg) > 16
    single = m.key_size + len(msg) <= 24 and not break_names
    return ("key:" + ("\n" if break_names else " ") + fprint_hex(key) + ("  " if single else "\n")
            + "value:" + ("\n" if break_names else " ") + msg)


def _dump_one(ctx: Context, m: Map, btf_mode: bool, header: bool) -> tuple[Any, int]:
    """Returns (JSON or pretty-writer object or None, exit status)."""
    if m.type == C.MAP_TYPE["reuseport_sockarray"] and m.value_size != 8:
        ctx.warn("Warning: cannot read values from reuseport_sockarray map with value_size != 8")
    elems, _, err = _dump_elements(m)
    fmt = None
    if (ctx.json or btf_mode) and _has_btf(m):
        fmt = _BtfFormatter(m, not ctx.json)
    if ctx.json or btf_mode:
        entries: list[Any] = []
        for k, v in elems:
            if isinstance(v, BpfError):
                if (m.type in C.MAP_IN_MAP_TYPES or m.type == C.MAP_TYPE["prog_array"]) \
                        and v.errno == _errno.ENOENT:
                    continue
                if ctx.json:
                    entries.append({"key": hexbytes(k), "value": {"error": os.strerror(v.errno)}})
                else:
                    entries.append(_Raw(_entry_error_plain(m, k, v.errno) or ""))
                continue
            v = _percpu_join(m, v) if m.percpu else v
            if ctx.json:
                entries.append(entry_json(m, k, v, fmt))
            elif fmt is not None:
                entries.append(fmt(k, v))
            else:
                entries.append(_Raw(entry_plain(m, k, v)))
        if header:
            mi = kinfo.map_info(m.fd)
            hd: dict[str, Any] = {"id": mi.id, "type": mi.type_name}
            if mi.name:
                hd["name"] = mi.name
            hd["flags"] = mi.map_flags
            hd["elements"] = entries
            return hd, err
        return entries, err
    lines = [_header_plain(m)] if header else []
    n = 0
    for k, v in elems:
        if isinstance(v, BpfError):
            s = _entry_error_plain(m, k, v.errno)
            if s is not None:
                lines.append(s)
            continue
        lines.append(entry_plain(m, k, _percpu_join(m, v) if m.percpu else v))
        n += 1
    lines.append(f"Found {n} element{'s' if n != 1 else ''}")
    ctx.out.write("\n".join(lines) + "\n")
    return None, err


def _hex_items(raw: bytes, size: int) -> list[str]:
    """Each ``size``-byte element of ``raw`` as bpftool's JSON byte list body (``"0x01","0x02"``).

    The whole buffer is formatted at once (every byte takes exactly 7
    characters with its comma), then cut per element: no per-byte Python work.
    """
    if not raw:
        return []
    text = '"0x' + raw.hex(",").replace(",", '","0x') + '",'
    w = 7 * size
    return [text[i:i + w - 1] for i in range(0, len(text), w)]


def _fast_json_dump(ctx: Context, m: Map) -> int | None:
    """The common big case (no BTF, not per-CPU, batchable, compact JSON): strings joined directly."""
    if ctx.pretty or m.percpu or m.type not in _BATCHABLE or _has_btf(m) or not m.key_size or not m.value_size:
        return None
    try:
        kchunks, vchunks = m._batch_read(False, decode=False)
    except BpfError:
        return None
    keys = _hex_items(b"".join(kchunks), m.key_size)
    values = _hex_items(b"".join(vchunks), m.value_size)
    parts = ['{"key":[' + k + '],"value":[' + v + "]}" for k, v in zip(keys, values)]
    ctx.out.write("[" + ",".join(parts) + "]\n")
    return 0


def do_dump(ctx: Context, args: list[str]) -> int:
    if len(args) != 2:
        raise _usage("too few parameters" if len(args) < 2 else f"what is '{args[2]}'?")
    maps, _ = parse_map_handle(args)
    try:
        if ctx.json and len(maps) == 1:
            rc = _fast_json_dump(ctx, maps[0])
            if rc is not None:
                return rc
        btf_mode = not ctx.json and all(kinfo.map_info(m.fd).btf_id for m in maps)
        results = []
        rc = 0
        for i, m in enumerate(maps):
            obj, err = _dump_one(ctx, m, btf_mode, len(maps) > 1)
            if not ctx.json and not btf_mode and i != len(maps) - 1:
                ctx.print()
            results.append(obj)
            if err:
                rc = (-err) & 0xFF
                break
        if ctx.json or btf_mode:
            out = results if len(maps) > 1 else results[0]
            if ctx.json:
                ctx.emit_json(out)
            else:
                ctx.print(jsonw_pretty(out))
        return rc
    finally:
        for m in maps:
            m.close()


# ---------------------------------------------------------------------------
# element verbs

def _map_operand(args: list[str], least: int = 2) -> tuple[Map, list[str]]:
    """The one map a verb works on (bpftool's usage error below ``least`` words) and the rest."""
    if len(args) < least:
        raise _usage()
    return parse_one_map(args)


def _print_found(ctx: Context, m: Map, key: bytes, r: int, raw: bytes, verb: str, missing: str) -> int:
    """Print a lookup/pop result as bpftool: the element, or on ENOENT ``missing`` (JSON
    ``null``) with exit code ENOENT; other errors are ``VERB failed: ...``."""
    if r:
        if -r == _errno.ENOENT:
            if ctx.json:
                ctx.out.write("null\n")
            else:
                ctx.print(missing)
            return int(r) & 0xFF
        raise CliError(f"{verb} failed: {os.strerror(-r)}", r & 0xFF)
    _print_key_value(ctx, m, key, raw)
    return 0


def do_update(ctx: Context, args: list[str]) -> int:
    m, rest = _map_operand(args)
    e = None
    try:
        e = parse_elem(rest, m, True, True, True, ctx=ctx)
        value = e.value
        if value is None:  # a map with no value (ringbuf): bpftool hands the kernel NULL
            pass
        elif m.percpu:
            pad = b"\0" * (m.value_stride - m.value_size)
            value = (value + pad) * m.ncpus
        r = m._f_update(m.fd, e.key if m.key_size else None, value, e.flags)
        if r:
            raise CliError(f"update failed: {os.strerror(-r)}", (r & 0xFF))
        ctx.emit_null()
        return 0
    finally:
        if e is not None and e.value_fd >= 0:
            os.close(e.value_fd)
        m.close()


def do_lookup(ctx: Context, args: list[str]) -> int:
    m, rest = _map_operand(args)
    with m:
        e = parse_elem(rest, m, True, False, False)
        key = e.key or b""
        r, raw = m._raw_value(key if m.key_size else None)
        return _print_found(ctx, m, key, r, raw, "lookup", f"key:\n{fprint_hex(key)}\n\nNot found")


def do_getnext(ctx: Context, args: list[str]) -> int:
    m, rest = _map_operand(args)
    with m:
        key: bytes | None = None
        if rest:
            e = parse_elem(rest, m, True, False, False, key_always=True)
            key = e.key
        r, nxt = m._raw_next_key(key)
        if r:
            raise CliError(f"can't get next key: {os.strerror(-r)}", r & 0xFF)
        if ctx.json:
            ctx.emit_json({"key": hexbytes(key) if key is not None else None, "next_key": hexbytes(nxt)})
        else:
            ctx.print(("key:\n" + fprint_hex(key) if key is not None else "key: None")
                      + "\nnext key:\n" + fprint_hex(nxt))
        return 0


def do_delete(ctx: Context, args: list[str]) -> int:
    m, rest = _map_operand(args)
    with m:
        e = parse_elem(rest, m, True, False, False, key_always=True)
        r = m._f_delete(m.fd, e.key)
        if r:
            raise CliError(f"delete failed: {os.strerror(-r)}", r & 0xFF)
        ctx.emit_null()
        return 0


def _pin_fd(ctx: Context, fd: int, path: str) -> None:
    from pybpfobj.kernel import bpffs

    commit()  # the pin (and any bpffs mounted for it) is the command's change: no stop cuts it
    bpffs.pin_mounting(fd, path, nomount=ctx.nomount)


def do_pin(ctx: Context, args: list[str]) -> int:
    if len(args) < 3:  # bpftool's REQ_ARGS(3): its message and -EINVAL
        raise CliError(f"'pin' needs at least 3 arguments, {len(args)} found", (-_errno.EINVAL) & 0xFF)
    m, rest = _map_operand(args, 3)
    with m:
        if not rest:
            raise _usage()
        if len(rest) > 1:  # bpftool ignores them; a stray word is more likely a mistake
            raise CliError(f"what is '{rest[1]}'?")
        _pin_fd(ctx, m.fd, rest[0])
        ctx.emit_null()
        return 0


def do_push(ctx: Context, args: list[str]) -> int:
    """``push``/``enqueue``: bpftool runs its ``update`` (a keyed map asks for a key, flags allowed)."""
    return do_update(ctx, args)


def do_peek(ctx: Context, args: list[str]) -> int:
    """``peek``: bpftool runs its ``lookup`` (a keyed map asks for a key)."""
    return do_lookup(ctx, args)


def do_pop(ctx: Context, args: list[str]) -> int:
    """``pop``/``dequeue``: BPF_MAP_LOOKUP_AND_DELETE_ELEM with a key buffer of the map's key size.

    As in bpftool the key is not asked for: a keyed map gets an all-zero key
    and the kernel answers (ENOTSUPP for arrays, ENOENT "empty map" for a
    hash without that key).
    """
    m, rest = _map_operand(args)
    with m:
        if rest:  # bpftool ignores them; a stray word is more likely a mistake
            raise CliError(f"what is '{rest[0]}'?")
        key = bytes(m.key_size)
        r, raw = m._raw_value(key if m.key_size else None, delete=True)
        return _print_found(ctx, m, key, r, raw, "pop", "Error: empty map")


def do_freeze(ctx: Context, args: list[str]) -> int:
    if len(args) < 2:  # bpftool's REQ_ARGS(2)
        raise CliError(f"'freeze' needs at least 2 arguments, {len(args)} found")
    m, rest = _map_operand(args)
    with m:
        if rest:
            raise CliError(f"what is '{rest[0]}'?")
        try:
            m.freeze()
        except BpfError as e:
            raise CliError(f"failed to freeze map: {os.strerror(e.errno or 0)}", _errcode(e)) from None
        ctx.emit_null()
        return 0


# ---------------------------------------------------------------------------
# create

def do_create(ctx: Context, args: list[str]) -> int:
    if len(args) < 7:
        raise CliError(f"'create' needs at least 7 arguments, {len(args)} found")
    path = args[0]
    args = args[1:]
    mtype: int | None = None
    name: str | None = None
    key = value = entries = 0
    flags = 0
    inner: Map | None = None
    ifindex = 0
    try:
        while args:
            w = args[0]
            if len(args) < 2:
                raise CliError(f"'{w}' needs at least 2 arguments, 1 found")
            arg = args[1]
            if is_keyword(w, "type"):
                if mtype is not None:
                    raise CliError("map type already specified")
                if arg not in C.MAP_TYPE or arg == "unspec":
                    raise CliError(f"unrecognized map type: {arg}")
                mtype = C.MAP_TYPE[arg]
                args = args[2:]
            elif is_keyword(w, "name"):
                name = arg
                args = args[2:]
            elif is_keyword(w, "key") or is_keyword(w, "value") or is_keyword(w, "entries") \
                    or is_keyword(w, "flags"):
                what = {"k": "key size", "v": "value size", "e": "max entries", "f": "flags"}[w[0]]
                # bpftool refuses a second key/value/entries once the first set a non-zero
                # size (checked before parsing the new one); a repeated 'flags' just overrides
                if w[0] != "f" and {"k": key, "v": value, "e": entries}[w[0]]:
                    raise CliError(f"{what} already specified")
                try:
                    n = parse_ulong(arg)
                except ValueError:
                    raise CliError(f"can't parse {arg} as {what}") from None
                if w[0] == "k":
                    key = n
                elif w[0] == "v":
                    value = n
                elif w[0] == "e":
                    entries = n
                else:
                    flags = n
                args = args[2:]
            elif is_keyword(w, "dev"):
                if ifindex:
                    raise CliError("offload device already specified")
                try:
                    ifindex = _ifindex(arg)
                except OSError:
                    raise CliError(f"unrecognized netdevice '{arg}': {os.strerror(_errno.ENODEV)}") from None
                args = args[2:]
            elif is_keyword(w, "inner_map"):
                if inner is not None:
                    raise CliError("inner_map already specified")
                inner, args = parse_one_map(args[1:])
            else:
                raise CliError(f"unknown arg {w}")
        if not name:
            raise CliError("map name not specified")
        try:
            check_map_name(name)
        except BpfError as e:
            raise CliError(e.message) from None
        try:
            m = Map.create(mtype or 0, key, value, entries, name=name, flags=flags, inner_map=inner,
                           ifindex=ifindex, key_type=bytes, value_type=bytes)
        except BpfError as e:
            raise CliError(f"map create failed: {os.strerror(e.errno or _errno.EINVAL)}") from None
        try:
            try:
                _pin_fd(ctx, m.fd, path)
            except BpfError as e:
                raise CliError(e.message, e.exit_code) from None
        finally:
            m.close()
        ctx.emit_null()
        return 0
    finally:
        if inner is not None:
            inner.close()


def _ifindex(name: str) -> int:
    import socket

    return socket.if_nametoindex(name)


# ---------------------------------------------------------------------------
# event_pipe

def do_event_pipe(ctx: Context, args: list[str]) -> int:
    m, rest = _map_operand(args)
    with m:
        ringbuf = m.type == C.MAP_TYPE["ringbuf"]
        if not ringbuf and m.type != C.MAP_TYPE["perf_event_array"]:
            raise CliError("map type must be perf_event_array or ringbuf", 255)
        cpu = index = -1
        count = 0
        while rest:
            w = rest[0]
            if len(rest) < 2:
                raise CliError(f"what is '{w}'?")
            what = ("CPU ID" if is_keyword(w, "cpu") else "index" if is_keyword(w, "index")
                    else "count" if is_keyword(w, "count") else None)
            if what is None:
                raise CliError(f"what is '{w}'?")
            try:
                n = parse_ulong(rest[1])
            except ValueError:
                raise CliError(f"can't parse {rest[1]} as {what}") from None
            if what == "CPU ID":
                cpu = n
            elif what == "index":
                index = n
            else:
                count = n
            rest = rest[2:]
        if (cpu < 0) != (index < 0):
            raise CliError("cpu and index must be specified together")
        if ringbuf and cpu >= 0:
            raise CliError("cpu and index apply to perf_event_array maps only")
        return _event_pipe(ctx, m, ringbuf, {cpu: index} if cpu >= 0 else None, count)


def _event_pipe(ctx: Context, m: Map, ringbuf: bool, cpus: dict[int, int] | None, count: int) -> int:
    """Print records as bpftool's event_pipe does until interrupted or ``count`` were printed.

    perf_event_array records carry the kernel's timestamp (PERF_SAMPLE_TIME,
    as bpftool asks for); ringbuf records have none, so they carry the time
    they were read (CLOCK_MONOTONIC) under ``== @TIME ringbuf =====``
    headers (bpftool 7.1 has no ringbuf support).  JSON output is one
    array, closed when the command stops.
    """
    import time

    from pybpfobj import events

    printed = 0
    first = True
    out = ctx.out

    def json_item(d: dict[str, Any]) -> None:
        nonlocal first
        if ctx.pretty:
            text = jsonw_pretty(d, 1)
            out.write(("" if first else ",") + text)
        else:
            import json

            out.write(("" if first else ",") + json.dumps(d, separators=(",", ":")))
        first = False

    def emit(rec: Any) -> None:
        nonlocal printed
        if count and printed >= count:
            return
        if ringbuf:
            ts = time.monotonic_ns()
            if ctx.json:
                json_item({"type": "ringbuf", "timestamp": ts, "data": list(rec)})
            else:
                out.write(f"== @{ts // 1_000_000_000}.{ts % 1_000_000_000:09d} ringbuf =====\n"
                          f"{fprint_hex(rec)}\n")
            printed += 1
        elif isinstance(rec, events.PerfEvent):
            if ctx.json:
                json_item({"type": 9, "cpu": rec.cpu, "index": rec.index, "timestamp": rec.time,
                           "data": list(rec.data)})
            else:
                out.write(f"== @{rec.time // 1_000_000_000}.{rec.time % 1_000_000_000:09d} "
                          f"CPU: {rec.cpu} index: {rec.index} =====\n{fprint_hex(rec.data)}\n")
            printed += 1
        elif ctx.json:
            json_item({"type": 2, "cpu": rec.cpu, "index": rec.index,
                       "lost": {"id": rec.id, "count": rec.count}})
        else:
            out.write(f"lost {rec.count} events\n")
        out.flush()

    stop = stop_on_signals()  # Ctrl-C, SIGTERM, SIGHUP end it, exit 0, as bpftool's handlers
    stop.__enter__()
    try:
        # 16 pages per CPU, as bpftool
        reader = (events.RingBuffer(m, emit) if ringbuf
                  else events.PerfBuffer(m, page_cnt=16, cpus=cpus, record_callback=emit))
    except BpfError as e:
        stop.__exit__()
        err = e.errno or _errno.EINVAL
        raise CliError(f"failed to create {'ring' if ringbuf else 'perf'} buffer: {os.strerror(err)} ({err})",
                       255) from None
    if ctx.json:
        out.write("[")
        out.flush()
    try:
        while not count or printed < count:
            reader.poll(200)
    except KeyboardInterrupt:
        ctx.err.write("Stopping...\n")
    finally:
        reader.close()
        stop.__exit__()
        if ctx.json:
            # bpftool's json_writer: a non-empty pretty array closes on a line of its own
            out.write("\n]\n" if ctx.pretty and not first else "]\n")
            out.flush()
    return 0


# ---------------------------------------------------------------------------

def do_help(ctx: Context, args: list[str]) -> int:
    if ctx.json:
        ctx.out.write("null\n")
    else:
        ctx.out.write(USAGE)
    return 0


COMMANDS: list[tuple[str, Callable[[Context, list[str]], int | None]]] = [
    ("show", do_show),
    ("list", do_show),
    ("help", do_help),
    ("dump", do_dump),
    ("update", do_update),
    ("lookup", do_lookup),
    ("getnext", do_getnext),
    ("delete", do_delete),
    ("pin", do_pin),
    ("event_pipe", do_event_pipe),
    ("create", do_create),
    ("peek", do_peek),
    ("push", do_push),
    ("enqueue", do_push),
    ("pop", do_pop),
    ("dequeue", do_pop),
    ("freeze", do_freeze),
]


def do_map(ctx: Context, args: list[str]) -> int:
    """Entry of ``pybpfobj map``."""
    return dispatch(ctx, args, COMMANDS, USAGE, default="show")


__all__ = [
    "USAGE",
    "do_map",
    "entry_json",
    "entry_plain",
    "fprint_hex",
    "jsonw_pretty",
    "parse_bytes",
    "parse_elem",
    "parse_map_handle",
    "parse_one_map",
]
