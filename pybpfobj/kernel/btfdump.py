"""libbpf's ``btf_dump`` C-syntax printer, for ``pybpfobj btf dump ... format c``.

The printer is libbpf's own (what bpftool uses), so the C text matches it
without re-implementing libbpf's type ordering and naming rules.  libbpf
calls its print function as ``fn(ctx, fmt, va_list)``, which is exactly
``vfprintf(FILE *, fmt, va_list)``: we pass libc's ``vfprintf`` with a
``open_memstream`` FILE as context, so the (hundreds of thousands of) print
calls for vmlinux never enter Python.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, c_char_p, c_int, c_size_t, c_uint32, c_void_p

from pybpfobj.errors import BTFError
from pybpfobj.kernel import libbpf


@libbpf.declares
def _btf_dump_protos(lb: ctypes.CDLL) -> None:
    libbpf._proto(lb, "btf__new", c_void_p, c_void_p, c_uint32)
    libbpf._proto(lb, "btf__new_split", c_void_p, c_void_p, c_uint32, c_void_p)
    libbpf._proto(lb, "btf__parse_split", c_void_p, c_char_p, c_void_p)
    libbpf._proto(lb, "btf__free", None, c_void_p)
    libbpf._proto(lb, "btf__type_cnt", c_uint32, c_void_p)
    libbpf._proto(lb, "btf_dump__new", c_void_p, c_void_p, c_void_p, c_void_p, c_void_p)
    libbpf._proto(lb, "btf_dump__dump_type", c_int, c_void_p, c_uint32)
    libbpf._proto(lb, "btf_dump__free", None, c_void_p)


_HEADER = (
    "#ifndef __VMLINUX_H__\n"
    "#define __VMLINUX_H__\n"
    "\n"
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n"
    "#endif\n\n"
)
_FOOTER = (
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute pop\n"
    "#endif\n"
    "\n"
    "#endif /* __VMLINUX_H__ */\n"
)


def _libc() -> ctypes.CDLL:
    c = libbpf.libc()
    if c.open_memstream.restype is not c_void_p:
        c.open_memstream.argtypes = [POINTER(c_void_p), POINTER(c_size_t)]
        c.open_memstream.restype = c_void_p
        c.fclose.argtypes = [c_void_p]
        c.fclose.restype = c_int
    return c


def _new_btf(data: bytes, base: int | None, what: str) -> int:
    lb = libbpf.lib()
    buf = ctypes.create_string_buffer(data, len(data))
    ptr = lb.btf__new_split(buf, len(data), base) if base else lb.btf__new(buf, len(data))
    return libbpf.check_ptr(ptr, f"parse {what}", BTFError)


def dump_c(data: bytes, *, base_data: bytes | None = None, root_ids: list[int] | None = None,
           path: str | None = None, base_path: str | None = None, what: str = "BTF") -> tuple[str, int]:
    """The C-syntax dump of a BTF blob, as ``bpftool btf dump ... format c`` prints it.

    ``data`` is a raw BTF blob (split BTF on ``base_data`` when given); or,
    with ``path``, the file is parsed by libbpf itself (raw BTF or ELF), on
    ``base_path`` when given.  ``root_ids`` dumps just those types (and what
    they need), as bpftool does for ``map ... key|value|kv``; otherwise every
    type.  Returns the text and 0, or, when libbpf fails on a type, the text
    printed up to there (no footer) and libbpf's negative errno, as bpftool
    prints what it has and fails.  Raises :class:`BTFError` when the BTF
    cannot be parsed or the dumper made.
    """
    lb = libbpf.lib()
    c = _libc()
    base = btf = dumper = 0
    try:
        if path is not None:
            if base_path is not None:
                base = libbpf.check_ptr(lb.btf__parse_split(libbpf.c_path(base_path), None),
                                        f"parse base BTF {base_path}", BTFError)
            btf = libbpf.check_ptr(lb.btf__parse_split(libbpf.c_path(path), base or None),
                                   f"parse BTF {path}", BTFError)
        else:
            if base_data is not None:
                base = _new_btf(base_data, None, f"base of {what}")
            btf = _new_btf(data, base or None, what)
        out_ptr = c_void_p()
        out_len = c_size_t()
        stream = c.open_memstream(ctypes.byref(out_ptr), ctypes.byref(out_len))
        if not stream:
            err = ctypes.get_errno() or 12
            raise BTFError(f"dump {what} as C: open_memstream: {os.strerror(err)}", errno=err)
        vfprintf = ctypes.cast(c.vfprintf, c_void_p)
        err = 0
        try:
            dumper = libbpf.check_ptr(lb.btf_dump__new(btf, vfprintf, stream, None),
                                      f"dump {what} as C", BTFError)
            ids = root_ids if root_ids else range(1, lb.btf__type_cnt(btf))
            for type_id in ids:
                err = lb.btf_dump__dump_type(dumper, type_id)
                if err:
                    break
        finally:
            c.fclose(stream)
            text = ctypes.string_at(out_ptr, out_len.value).decode("utf-8", "replace") \
                if out_ptr.value else ""
            c.free(out_ptr)
        if err:
            return _HEADER + text, err
        return _HEADER + text + _FOOTER, 0
    finally:
        if dumper:
            lb.btf_dump__free(dumper)
        if btf:
            lb.btf__free(btf)
        if base:
            lb.btf__free(base)


__all__ = ["dump_c"]
