"""``pybpfobj btf``: bpftool 7.1's ``btf`` command set.

- ``btf { show | list } [id BTF_ID]``: the kernel's BTF objects with the
  programs and maps using each (listed in bpftool's order, see
  :func:`pybpfobj.kernel.info.bpftool_multimap_order`), text or ``-j``.
- ``btf dump BTF_SRC [format {raw|c}]`` with ``BTF_SRC := { id BTF_ID |
  prog PROG | map MAP [{key|value|kv|all}] | file FILE }``.  ``raw`` is
  bpftool's raw format (text, or ``{"types": [...]}`` with ``-j``); ``c`` is
  libbpf's own C printer (:mod:`pybpfobj.kernel.btfdump`).  FILE is a raw
  BTF file or an ELF object (its ``.BTF`` section); files under
  /sys/kernel/btf/ other than vmlinux, and kernel module BTF by id, are split
  BTF on vmlinux, as bpftool does.
"""

from __future__ import annotations

import errno as _errno
import os
import struct
from typing import Any

from pybpfobj.cli.common import CliError, Context, UsageError, is_keyword, match_keyword, parse_ulong
from pybpfobj.errors import BpfError, BTFError
from pybpfobj.spec.btf import BTF, BtfKind, BtfType

USAGE = """Usage: pybpfobj btf { show | list } [id BTF_ID]
       pybpfobj btf dump BTF_SRC [format FORMAT]
       pybpfobj btf help

       BTF_SRC := { id BTF_ID | prog PROG | map MAP [{key | value | kv | all}] | file FILE }
       FORMAT  := { raw | c }
       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }
       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
       OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} }

       show lists 'pids' from /proc/*/fdinfo (bpftool needs a BPF iterator).
       format c is libbpf's btf_dump printer from the system libbpf; a zero-argument
       function prototype prints as '(void)', as bpftool 7.1 does.
"""

_SYSFS_PREFIX = "/sys/kernel/btf/"
_SYSFS_VMLINUX = "/sys/kernel/btf/vmlinux"

_ENC = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
_VAR_LINKAGE = {0: "static", 1: "global", 2: "extern"}
_FUNC_LINKAGE = {0: "static", 1: "global", 2: "extern"}


def _name(s: str) -> str:
    return s if s else "(anon)"


def raw_type_text(btf: BTF, t: BtfType) -> str:
    """One type in bpftool's raw text format (members on tab-indented lines), no final newline."""
    k = t.kind
    head = f"[{t.id}] {k.name} '{_name(t.name)}'"
    if k is BtfKind.INT:
        enc = _ENC.get(t.int_encoding, "UNKN")
        return f"{head} size={t.size} bits_offset={t.int_offset} nr_bits={t.int_bits} encoding={enc}"
    if k in (BtfKind.PTR, BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT, BtfKind.TYPEDEF,
             BtfKind.TYPE_TAG):
        return f"{head} type_id={t.type_id}"
    if k is BtfKind.ARRAY:
        return f"{head} type_id={t.elem_type} index_type_id={t.index_type} nr_elems={t.nelems}"
    if k is BtfKind.STRUCT or k is BtfKind.UNION:
        parts = [f"{head} size={t.size} vlen={t.vlen}"]
        for m in t.members:
            line = f"\t'{_name(m.name)}' type_id={m.type_id} bits_offset={m.bit_offset}"
            if m.bitfield_size:
                line += f" bitfield_size={m.bitfield_size}"
            parts.append(line)
        return "\n".join(parts)
    if k is BtfKind.ENUM or k is BtfKind.ENUM64:
        enc = "SIGNED" if t.kind_flag else "UNSIGNED"
        parts = [f"{head} encoding={enc} size={t.size} vlen={t.vlen}"]
        if k is BtfKind.ENUM:
            parts.extend(f"\t'{_name(v.name)}' val={v.value}" for v in t.enum_values)
        else:
            sfx = "LL" if t.kind_flag else "ULL"
            parts.extend(f"\t'{_name(v.name)}' val={v.value}{sfx}" for v in t.enum_values)
        return "\n".join(parts)
    if k is BtfKind.FWD:
        return f"{head} fwd_kind={'union' if t.kind_flag else 'struct'}"
    if k is BtfKind.FUNC:
        return f"{head} type_id={t.type_id} linkage={_FUNC_LINKAGE.get(t.linkage, '(unknown)')}"
    if k is BtfKind.FUNC_PROTO:
        parts = [f"{head} ret_type_id={t.type_id} vlen={t.vlen}"]
        parts.extend(f"\t'{_name(p.name)}' type_id={p.type_id}" for p in t.params)
        return "\n".join(parts)
    if k is BtfKind.VAR:
        return f"{head} type_id={t.type_id}, linkage={_VAR_LINKAGE.get(t.linkage, '(unknown)')}"
    if k is BtfKind.DATASEC:
        parts = [f"{head} size={t.size} vlen={t.vlen}"]
        for v in t.secinfo:
            line = f"\ttype_id={v.type_id} offset={v.offset} size={v.size}"
            if v.type_id <= len(btf):
                line += f" ({btf.kind_of(v.type_id).name} '{_name(btf.name_of(v.type_id))}')"
            parts.append(line)
        return "\n".join(parts)
    if k is BtfKind.FLOAT:
        return f"{head} size={t.size}"
    if k is BtfKind.DECL_TAG:
        return f"{head} type_id={t.type_id} component_idx={t.component_idx}"
    return head


def raw_type_json(btf: BTF, t: BtfType) -> dict[str, Any]:
    """One type as an object of bpftool's ``btf dump -j`` output (same key order)."""
    k = t.kind
    d: dict[str, Any] = {"id": t.id, "kind": k.name, "name": _name(t.name)}
    if k is BtfKind.INT:
        d.update(size=t.size, bits_offset=t.int_offset, nr_bits=t.int_bits,
                 encoding=_ENC.get(t.int_encoding, "UNKN"))
    elif k in (BtfKind.PTR, BtfKind.CONST, BtfKind.VOLATILE, BtfKind.RESTRICT, BtfKind.TYPEDEF,
               BtfKind.TYPE_TAG):
        d["type_id"] = t.type_id
    elif k is BtfKind.ARRAY:
        d.update(type_id=t.elem_type, index_type_id=t.index_type, nr_elems=t.nelems)
    elif k is BtfKind.STRUCT or k is BtfKind.UNION:
        d.update(size=t.size, vlen=t.vlen)
        members = []
        for m in t.members:
            md: dict[str, Any] = {"name": _name(m.name), "type_id": m.type_id, "bits_offset": m.bit_offset}
            if m.bitfield_size:
                md["bitfield_size"] = m.bitfield_size
            members.append(md)
        d["members"] = members
    elif k is BtfKind.ENUM or k is BtfKind.ENUM64:
        d.update(encoding="SIGNED" if t.kind_flag else "UNSIGNED", size=t.size, vlen=t.vlen)
        d["values"] = [{"name": _name(v.name), "val": v.value} for v in t.enum_values]
    elif k is BtfKind.FWD:
        d["fwd_kind"] = "union" if t.kind_flag else "struct"
    elif k is BtfKind.FUNC:
        d.update(type_id=t.type_id, linkage=_FUNC_LINKAGE.get(t.linkage, "(unknown)"))
    elif k is BtfKind.FUNC_PROTO:
        d.update(ret_type_id=t.type_id, vlen=t.vlen)
        d["params"] = [{"name": _name(p.name), "type_id": p.type_id} for p in t.params]
    elif k is BtfKind.VAR:
        d.update(type_id=t.type_id, linkage=_VAR_LINKAGE.get(t.linkage, "(unknown)"))
    elif k is BtfKind.DATASEC:
        d.update(size=t.size, vlen=t.vlen)
        d["vars"] = [{"type_id": v.type_id, "offset": v.offset, "size": v.size} for v in t.secinfo]
    elif k is BtfKind.FLOAT:
        d["size"] = t.size
    elif k is BtfKind.DECL_TAG:
        d.update(type_id=t.type_id, component_idx=t.component_idx)
    return d


# libbpf's "BTF/ELF format error" (-LIBBPF_ERRNO__FORMAT): bpftool exits with its low byte (95)
_LIBBPF_ERRNO_FORMAT = 4001


def _fail(path: str, what: str, err: int) -> CliError:
    return CliError(f"failed to load BTF from {path}: {what}", (-err) & 0xFF)


def load_btf_file(path: str) -> BTF:
    """BTF of a raw BTF file or an ELF object, with vmlinux as base for sysfs module BTF.

    Raises CliError with bpftool's exit code, which follows libbpf's
    ``btf__parse``: a file that cannot be opened gives its errno, one too
    short for a magic EIO; a BTF magic makes it raw BTF (malformed: EINVAL);
    anything else is read as ELF, where a file libelf refuses is a format
    error (exit 95) and an ELF without ``.BTF`` ENOENT.
    """
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
    except IsADirectoryError:
        # libbpf's fopen() of a directory succeeds and its fread() fails: EIO
        raise _fail(path, os.strerror(_errno.EIO), _errno.EIO) from None
    except OSError as e:
        err = e.errno or _errno.EIO
        raise _fail(path, os.strerror(err), err) from None
    if len(magic) < 2:
        raise _fail(path, f"{os.strerror(_errno.EIO)} (file shorter than a BTF magic)", _errno.EIO)
    try:
        if magic in (b"\x9f\xeb", b"\xeb\x9f"):
            base = None
            if path.startswith(_SYSFS_PREFIX) and path != _SYSFS_VMLINUX:
                base = BTF.from_file(_SYSFS_VMLINUX)
            return BTF.from_file(path, base=base)
        return _elf_btf(path, magic)
    except BTFError as e:
        raise _fail(path, e.message, e.errno or _errno.EINVAL) from None


def _elf_btf(path: str, magic: bytes) -> BTF:
    """The ``.BTF`` section of an ELF object (only ``.BTF``: bpftool's dump ignores ``.BTF.ext``)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            sec = ELFFile(f).get_section_by_name(".BTF")
            data = sec.data() if sec is not None else None
    except (ELFError, ValueError, struct.error, EOFError) as e:
        what = "not a valid ELF file" if magic == b"\x7fE" else \
            f"neither raw BTF (magic {int.from_bytes(magic, 'little'):#06x}, expected 0xeb9f) nor an ELF file"
        raise _fail(path, f"{what}: {e}", _LIBBPF_ERRNO_FORMAT) from None
    except OSError as e:
        err = e.errno or _errno.EIO
        raise _fail(path, os.strerror(err), err) from None
    if data is None:
        raise _fail(path, f"{os.strerror(_errno.ENOENT)} (no .BTF section)", _errno.ENOENT)
    return BTF.from_bytes(data, source=path)


# ---------------------------------------------------------------------------
# dump

_EINVAL = (-_errno.EINVAL) & 0xFF
_VOID_TEXT = "[0] UNKNOWN '(anon)'"


def _write_types(ctx: Context, btf: BTF, ids: list[int] | None) -> None:
    """bpftool's raw dump: ``ids`` (map key/value roots, 0 being void) or every own type."""
    types: Any = (btf.type(i) for i in ids) if ids is not None else btf.own_types()
    if ctx.json:
        ctx.emit_json({"types": [{"id": 0, "kind": "UNKNOWN", "name": "(anon)"} if t.id == 0
                                 else raw_type_json(btf, t) for t in types]})
        return
    out = ctx.out
    chunk: list[str] = []
    for t in types:
        chunk.append(_VOID_TEXT if t.id == 0 else raw_type_text(btf, t))
        if len(chunk) >= 4096:
            out.write("\n".join(chunk) + "\n")
            chunk.clear()
    if chunk:
        out.write("\n".join(chunk) + "\n")


def _json_error_then(ctx: Context, first: str, second: str, code: int) -> CliError:
    """bpftool reports two errors in a row here: the first is written now (JSON: as the
    first of two comma-joined objects, as its json_writer does), the second returned."""
    if ctx.json:
        import io

        saved, ctx.out = ctx.out, io.StringIO()
        try:
            ctx.emit_json({"error": first})
            text = ctx.out.getvalue()
        finally:
            ctx.out = saved
        ctx.out.write(text.rstrip("\n") + ",")
    else:
        ctx.err.write(f"Error: {first}\n")
    return CliError(second, code)


class _Reported(Exception):
    """A failure already printed in full; :func:`do_btf` returns ``code``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _usage_error(ctx: Context, message: str) -> Exception:
    """bpftool's ``usage()`` after an error: text prints ``Error:`` and the usage on
    stderr; JSON prints the error object and, for the usage, ``null``, comma-joined."""
    if not ctx.json:
        return UsageError(message, USAGE)
    _json_error_then(ctx, message, "", 255)
    ctx.out.write("null\n")
    return _Reported(255)


def _kernel_btf(ctx: Context, btf_id: int) -> tuple[BTF, bytes, bytes | None]:
    """BTF object ``btf_id`` from the kernel, with vmlinux as base for module BTF, as
    bpftool does (with its warning); returns the BTF and the raw blobs (own, base)."""
    from pybpfobj.kernel import info as kinfo

    try:
        fd = kinfo.btf_fd_by_id(btf_id)
    except BpfError as e:
        err = e.errno or _errno.ENOENT
        raise _json_error_then(ctx, f"can't get BTF object by id ({btf_id}): {os.strerror(err)}",
                               f"get btf by id ({btf_id}): {os.strerror(err)}", (-err) & 0xFF) from None
    try:
        bi = kinfo.btf_info(fd, data=True)
    except BpfError as e:
        raise CliError(f"get btf by id ({btf_id}): {os.strerror(e.errno or _errno.EINVAL)}",
                       (-(e.errno or _errno.EINVAL)) & 0xFF) from None
    finally:
        os.close(fd)
    assert bi.data is not None
    base: BTF | None = None
    base_data: bytes | None = None
    if bi.kernel_btf and bi.name != "vmlinux":
        ctx.warn("Warning: valid base BTF was not specified with -B option, falling back to "
                 f"standard base BTF ({_SYSFS_VMLINUX})")
        with open(_SYSFS_VMLINUX, "rb") as f:
            base_data = f.read()
        base = BTF.from_bytes(base_data, source=_SYSFS_VMLINUX)
    try:
        return BTF.from_bytes(bi.data, source=f"BTF id {btf_id}", base=base), bi.data, base_data
    except BTFError as e:
        raise CliError(f"get btf by id ({btf_id}): {e.message}", e.exit_code) from None


def _c_text(text: str) -> str:
    # bpftool 7.1's bundled libbpf prints a prototype without parameters as '(void)', the
    # system libbpf 1.1.2 as '()'.  In btf_dump's output '()' only comes from such
    # prototypes (names cannot hold parentheses; attributes print '((...))').
    return text.replace("()", "(void)")


def do_dump(ctx: Context, args: list[str]) -> int:
    """``btf dump BTF_SRC [format {raw|c}]``, words checked in bpftool's order: the
    source first (a map or program is opened, a file parsed), then the options, then
    the kernel BTF is fetched."""
    if len(args) < 2:
        raise _usage_error(ctx, f"'dump' needs at least 2 arguments, {len(args)} found")
    src, rest = args[0], args[1:]
    btf: BTF | None = None
    path: str | None = None
    btf_id = 0
    roots: list[int] | None = None
    if is_keyword(src, "map"):
        if len(rest) < 2:  # bpftool names the word before the missing ones
            raise _usage_error(ctx, f"'{src}' needs at least 2 arguments, {len(rest)} found")
        from pybpfobj.cli.map import parse_one_map
        from pybpfobj.kernel import info as kinfo

        m, rest = parse_one_map(rest)
        with m:
            mi = kinfo.map_info(m.fd)
        btf_id = mi.btf_id
        kv = [mi.btf_key_type_id, mi.btf_value_type_id]
        if rest and is_keyword(rest[0], "key"):
            roots, rest = kv[:1], rest[1:]
        elif rest and is_keyword(rest[0], "value"):
            roots, rest = kv[1:], rest[1:]
        elif rest and is_keyword(rest[0], "all"):
            rest = rest[1:]
        elif rest and is_keyword(rest[0], "kv"):
            roots, rest = kv, rest[1:]
        else:
            roots = kv
    elif is_keyword(src, "prog"):
        if len(rest) < 2:
            raise _usage_error(ctx, f"'{src}' needs at least 2 arguments, {len(rest)} found")
        from pybpfobj.cli.prog import parse_one_prog

        prog, rest = parse_one_prog(rest)
        with prog:
            try:
                btf_id = prog.info().btf_id
            except BpfError as e:
                raise CliError(f"can't get prog info: {os.strerror(e.errno or _errno.EINVAL)}") from None
    elif is_keyword(src, "id"):
        try:
            btf_id = parse_ulong(rest[0])
        except ValueError:
            raise CliError(f"can't parse {rest[0]} as ID") from None
        rest = rest[1:]
    elif is_keyword(src, "file"):
        path = rest[0]
        btf = load_btf_file(path)
        rest = rest[1:]
    else:
        raise CliError(f"unrecognized BTF source specifier: '{src}'")
    dump_c = False
    while rest:
        if is_keyword(rest[0], "format"):
            if len(rest) < 2:
                raise CliError("expecting value for 'format' option\n", _EINVAL)
            if rest[1] not in ("raw", "c"):
                raise CliError(f"unrecognized format specifier: '{rest[1]}', possible values: raw, c",
                               _EINVAL)
            dump_c = rest[1] == "c"
            rest = rest[2:]
        else:
            raise CliError(f"unrecognized option: '{rest[0]}'", _EINVAL)
    data = base_data = None
    if btf is None:
        btf, data, base_data = _kernel_btf(ctx, btf_id)
    if dump_c:
        if ctx.json:
            raise CliError("JSON output for C-syntax dump is not supported", (-_errno.EOPNOTSUPP) & 0xFF)
        return _dump_c(ctx, path, data, base_data, roots)
    try:
        _write_types(ctx, btf, roots)
    except BTFError as e:
        raise CliError(f"failed to load BTF from {path or f'id {btf_id}'}: {e.message}", e.exit_code) from None
    return 0


def _dump_c(ctx: Context, path: str | None, data: bytes | None, base_data: bytes | None,
            roots: list[int] | None) -> int:
    from pybpfobj.kernel import btfdump

    try:
        if path is not None:
            base_path = _SYSFS_VMLINUX if path.startswith(_SYSFS_PREFIX) and path != _SYSFS_VMLINUX \
                else None
            text, err = btfdump.dump_c(b"", path=path, base_path=base_path, root_ids=roots)
        else:
            assert data is not None
            text, err = btfdump.dump_c(data, base_data=base_data, root_ids=roots)
    except BTFError as e:
        raise CliError(e.message, e.exit_code) from None
    ctx.out.write(_c_text(text))
    return (-err) & 0xFF if err else 0


# ---------------------------------------------------------------------------
# show

def _users(kind: str) -> dict[int, list[int]]:
    """BTF id -> ids of the programs (``kind="prog"``) or maps using it, in bpftool's order."""
    from pybpfobj.kernel import info as kinfo

    ids = kinfo.prog_ids() if kind == "prog" else kinfo.map_ids()
    pairs: list[tuple[int, int]] = []
    for obj_id in ids:
        try:
            fd = kinfo.prog_fd_by_id(obj_id) if kind == "prog" else kinfo.map_fd_by_id(obj_id)
        except BpfError:
            continue  # gone meanwhile (bpftool skips ENOENT too)
        try:
            btf_id = kinfo.prog_info(fd).btf_id if kind == "prog" else kinfo.map_info(fd).btf_id
        except BpfError as e:
            raise CliError(f"can't get {kind} info: {e.message}") from None
        finally:
            os.close(fd)
        if btf_id:
            pairs.append((btf_id, obj_id))
    return kinfo.bpftool_multimap_order(pairs)


def _show_one(ctx: Context, fd: int, progs: dict[int, list[int]], maps: dict[int, list[int]],
              pids: dict[int, list[tuple[int, str]]]) -> Any:
    from pybpfobj.kernel import info as kinfo

    try:
        bi = kinfo.btf_info(fd)
    except BpfError as e:
        raise CliError(f"can't get BTF object info: {os.strerror(e.errno or _errno.EINVAL)}") from None
    holders = pids.get(bi.id, [])
    if ctx.json:
        d: dict[str, Any] = {"id": bi.id, "size": bi.btf_size, "prog_ids": progs.get(bi.id, []),
                             "map_ids": maps.get(bi.id, [])}
        if holders:
            d["pids"] = [{"pid": p, "comm": c} for p, c in holders]
        d["kernel"] = bi.kernel_btf
        if bi.name:
            d["name"] = bi.name
        return d
    if bi.kernel_btf:
        s = f"{bi.id}: name [{bi.name}]  "
    else:
        s = f"{bi.id}: name {bi.name or '<anon>'}  "
    s += f"size {bi.btf_size}B"
    if progs.get(bi.id):
        s += "  prog_ids " + ",".join(map(str, progs[bi.id]))
    if maps.get(bi.id):
        s += "  map_ids " + ",".join(map(str, maps[bi.id]))
    if holders:
        s += "\n\tpids " + ", ".join(f"{c}({p})" for p, c in holders)
    ctx.print(s)
    return None


def do_show(ctx: Context, args: list[str]) -> int:
    """``btf { show | list } [id BTF_ID]``."""
    from pybpfobj.kernel import info as kinfo

    fd = -1
    if len(args) == 2:
        if not is_keyword(args[0], "id"):
            raise CliError(f"expected 'id', got: '{args[0]}'?")
        try:
            btf_id = parse_ulong(args[1])
        except ValueError:
            raise CliError(f"can't parse {args[1]} as ID") from None
        try:
            fd = kinfo.btf_fd_by_id(btf_id)
        except BpfError as e:
            raise CliError(f"can't get BTF object by id ({btf_id}): "
                           f"{os.strerror(e.errno or _errno.ENOENT)}") from None
    elif args:
        raise CliError(f"what is '{args[0]}'?")
    try:
        me = os.getpid()
        pids = {k: [h for h in v if h[0] != me] for k, v in kinfo.pids_table("btf").items()}
        progs, maps = _users("prog"), _users("map")
        if fd >= 0:
            obj = _show_one(ctx, fd, progs, maps, pids)
            if ctx.json:
                ctx.emit_json(obj)
            return 0
        results = []
        for btf_id in kinfo.btf_ids():
            try:
                one = kinfo.btf_fd_by_id(btf_id)
            except BpfError as e:
                if e.errno in (0, _errno.ENOENT):
                    continue  # unloaded meanwhile
                raise CliError(f"can't get BTF object by id ({btf_id}): {os.strerror(e.errno or 0)}") \
                    from None
            try:
                results.append(_show_one(ctx, one, progs, maps, pids))
            finally:
                os.close(one)
        if ctx.json:
            ctx.emit_json(results)
    finally:
        if fd >= 0:
            os.close(fd)
    return 0


def do_help(ctx: Context, args: list[str]) -> int:
    """``btf help``: the usage on stdout like every group's ``help`` here (bpftool writes
    it to stderr); ``null`` with ``-j``."""
    if ctx.json:
        ctx.emit_json(None)
    else:
        ctx.out.write(USAGE)
    return 0


_COMMANDS = {"show": do_show, "list": do_show, "help": do_help, "dump": do_dump}


def do_btf(ctx: Context, args: list[str]) -> int:
    """Entry point of the ``btf`` command group; ``btf`` alone is ``btf show``.

    An unknown verb exits 255 with the usage, as bpftool does, after an
    ``Error:`` line naming the verb (bpftool prints the usage alone), like
    the other command groups.
    """
    if not args:
        return do_show(ctx, [])
    name = match_keyword(args[0], list(_COMMANDS))
    if name is None:
        raise UsageError(f"unknown command '{args[0]}'", USAGE)
    try:
        return _COMMANDS[name](ctx, args[1:])
    except _Reported as e:
        return e.code
