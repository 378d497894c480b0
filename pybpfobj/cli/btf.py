"""``pybpfobj btf``: bpftool's ``btf dump`` of BTF files and object files.

``btf dump file FILE [format raw]`` prints bpftool's raw format (text, or
``{"types": [...]}`` with ``-j``).  FILE is a raw BTF file or an ELF object
(its ``.BTF`` section); files under /sys/kernel/btf/ other than vmlinux are
split BTF and get /sys/kernel/btf/vmlinux as base, as bpftool does.
"""

from __future__ import annotations

import errno as _errno
import os
import struct
from typing import Any

from pybpfobj.cli.common import CliError, Context, UsageError, dispatch, is_keyword
from pybpfobj.errors import BTFError
from pybpfobj.spec.btf import BTF, BtfKind, BtfType

USAGE = """Usage: pybpfobj btf dump BTF_SRC [format FORMAT]
       pybpfobj btf help

       BTF_SRC := { file FILE }
       FORMAT  := { raw }
       OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} }
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


def do_dump(ctx: Context, args: list[str]) -> int:
    """``btf dump file FILE [format raw]``."""
    if len(args) < 2:
        raise UsageError(f"'dump' needs at least 2 arguments, {len(args)} found", USAGE)
    src, rest = args[0], args[1:]
    if is_keyword(src, "file"):
        path = rest[0]
        rest = rest[1:]
    elif any(is_keyword(src, w) for w in ("id", "prog", "map")):
        raise CliError(f"BTF source '{src}' needs the kernel and is not supported by pybpfobj btf dump yet",
                       (-_errno.EOPNOTSUPP) & 0xFF)
    else:
        raise CliError(f"unrecognized BTF source specifier: '{src}'")
    while rest:
        if is_keyword(rest[0], "format"):
            if len(rest) < 2:
                raise CliError("expecting value for 'format' option\n", (-_errno.EINVAL) & 0xFF)
            if rest[1] == "c":
                raise CliError("C-syntax dump is not supported by pybpfobj", (-_errno.EOPNOTSUPP) & 0xFF)
            if rest[1] != "raw":
                raise CliError(f"unrecognized format specifier: '{rest[1]}', possible values: raw, c",
                               (-_errno.EINVAL) & 0xFF)
            rest = rest[2:]
        else:
            raise CliError(f"unrecognized option: '{rest[0]}'", (-_errno.EINVAL) & 0xFF)
    btf = load_btf_file(path)
    try:
        if ctx.json:
            ctx.emit_json({"types": [raw_type_json(btf, t) for t in btf.own_types()]})
        else:
            out = ctx.out
            chunk: list[str] = []
            for t in btf.own_types():
                chunk.append(raw_type_text(btf, t))
                if len(chunk) >= 4096:
                    out.write("\n".join(chunk) + "\n")
                    chunk.clear()
            if chunk:
                out.write("\n".join(chunk) + "\n")
    except BTFError as e:
        raise CliError(f"failed to load BTF from {path}: {e.message}", e.exit_code) from None
    return 0


def do_help(ctx: Context, args: list[str]) -> int:
    ctx.out.write(USAGE)
    return 0


def do_btf(ctx: Context, args: list[str]) -> int:
    """Entry point of the ``btf`` command group."""
    return dispatch(ctx, args, [("dump", do_dump), ("help", do_help)], USAGE)
