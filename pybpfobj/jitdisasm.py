"""Disassembly of JIT-compiled (native) BPF program images, as bpftool's
``prog dump jited`` prints them, using the capstone disassembler.

capstone is an optional dependency (``pip install pybpfobj[jited]``); it is
imported only when an image is disassembled, and its absence raises
:class:`pybpfobj.errors.UnsupportedError` with a message saying how to get it.

A program's image is split into its functions (main program first, then
BPF-to-BPF subprograms) by the kernel's ``jited_ksyms``/``jited_func_lens``;
``jited_line_info`` gives the native address of each BTF line_info record,
so source lines can be printed above the instructions they compiled to.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pybpfobj.disasm import SourceLine
from pybpfobj.errors import UnsupportedError

CAPSTONE_HINT = ("dump jited needs the capstone disassembler: pip install 'capstone>=5' "
                 "(or pybpfobj[jited]); 'file FILE' writes the raw image without it")


@dataclass(frozen=True)
class JitInsn:
    """One native instruction: ``pc`` is its offset in its function."""

    pc: int
    raw: bytes
    mnemonic: str
    op_str: str

    @property
    def text(self) -> str:
        return f"{self.mnemonic}\t{self.op_str}" if self.op_str else self.mnemonic


@dataclass
class JitFunction:
    """One jited function: its kernel symbol, BTF prototype, address and code.

    ``lines`` are ``(native address, source line)`` pairs in line_info order.
    """

    name: str
    address: int
    code: bytes
    proto: str = ""
    lines: list[tuple[int, SourceLine]] = field(default_factory=list)
    labelled: bool = True   # False for an image the kernel gave no function symbols for


def _capstone() -> Any:
    import importlib

    try:
        # by name: mypy sees no capstone types whether or not it is installed
        return importlib.import_module("capstone")
    except ImportError:
        raise UnsupportedError(CAPSTONE_HINT) from None


def _engine(arch: str | None = None) -> Any:
    cs = _capstone()
    machine = (arch or platform.machine()).lower()
    if machine in ("x86_64", "amd64", "x86-64"):
        md = cs.Cs(cs.CS_ARCH_X86, cs.CS_MODE_64)
    elif machine in ("aarch64", "arm64"):
        md = cs.Cs(cs.CS_ARCH_ARM64, cs.CS_MODE_ARM)
    else:
        raise UnsupportedError(f"dump jited: no disassembler set up for architecture {machine}")
    return md


def disassemble(code: bytes, address: int = 0, *, arch: str | None = None) -> list[JitInsn]:
    """Native instructions of ``code`` loaded at ``address`` (branch targets print as addresses).

    Bytes capstone cannot decode become one-byte ``(bad)`` entries, so the
    sizes always add up to ``len(code)``.
    """
    md = _engine(arch)
    out: list[JitInsn] = []
    pc = 0
    while pc < len(code):
        for a, size, mnemonic, op_str in md.disasm_lite(code[pc:], address + pc):
            off = a - address
            out.append(JitInsn(off, code[off:off + size], mnemonic, op_str))
            pc = off + size
        if pc < len(code):
            # capstone stops at the first byte it cannot decode: show it and go on after it
            out.append(JitInsn(pc, code[pc:pc + 1], "(bad)", ""))
            pc += 1
    return out


def split_functions(image: bytes, ksyms: Sequence[int], func_lens: Sequence[int],
                    names: dict[int, str], protos: Sequence[str] = (),
                    line_addrs: Sequence[int] = (), lines: Sequence[SourceLine] = ()) -> list[JitFunction]:
    """The image cut into its functions; source lines go to the function whose code holds
    their native address.  Without ksyms the whole image is one function named ``unknown``."""
    if not ksyms or not func_lens:
        return [JitFunction("unknown", 0, image, labelled=False)]
    funcs: list[JitFunction] = []
    pos = 0
    for k, (addr, n) in enumerate(zip(ksyms, func_lens)):
        fn = JitFunction(names.get(addr, "unknown"), addr, image[pos:pos + n],
                         protos[k] if k < len(protos) else "")
        pos += n
        funcs.append(fn)
    for a, src in zip(line_addrs, lines):
        for fn in funcs:
            if fn.address <= a < fn.address + max(len(fn.code), 1):
                fn.lines.append((a, src))
                break
    return funcs


def _annotated(fn: JitFunction, arch: str | None) -> list[tuple[JitInsn, SourceLine | None]]:
    # libbpf's bpf_prog_linfo__lfind_addr_func as bpftool uses it: the last
    # line at or before the instruction's address, searched from nr_skip,
    # which advances by one on every hit.
    out: list[tuple[JitInsn, SourceLine | None]] = []
    nr_skip = 0
    for insn in disassemble(fn.code, fn.address, arch=arch):
        addr = fn.address + insn.pc
        src = None
        if nr_skip < len(fn.lines) and addr >= fn.lines[nr_skip][0]:
            j = nr_skip
            while j < len(fn.lines) and fn.lines[j][0] <= addr:
                j += 1
            src = fn.lines[j - 1][1]
            nr_skip += 1
        out.append((insn, src))
    return out


def dump_text(funcs: Sequence[JitFunction], *, opcodes: bool = False, linum: bool = False,
              arch: str | None = None) -> str:
    """bpftool's ``dump jited`` text: per function its prototype, ``symbol:``, then
    ``  pc:\\tmnemonic\\toperands`` lines (``opcodes`` adds the bytes), and a blank line."""
    parts: list[str] = []
    for fn in funcs:
        if fn.labelled:
            if fn.proto:
                parts.append(f"{fn.proto}:\n")
            parts.append(f"{fn.name}:\n")
        for insn, src in _annotated(fn, arch):
            if src is not None:
                extra = f" [file:{src.file} line_num:{src.line_num} line_col:{src.line_col}]" if linum else ""
                parts.append(f"; {src.line}{extra}\n")
            parts.append(f"{insn.pc:4x}:\t{insn.text}")
            if opcodes:
                parts.append("\n\t" + "".join(f"{b:02x} " for b in insn.raw))
            parts.append("\n")
        if fn.labelled:
            parts.append("\n")
    return "".join(parts)


def _operands(op_str: str) -> list[str | None]:
    # upstream splits the operand text on blanks, commas and parentheses
    toks: list[str | None] = []
    cur = ""
    for ch in op_str:
        if ch in " \t,()":
            if cur:
                toks.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        toks.append(cur)
    return toks or [None]


def dump_json(funcs: Sequence[JitFunction], *, opcodes: bool = False, linum: bool = False,
              arch: str | None = None) -> list[dict[str, Any]]:
    """bpftool's JSON ``dump jited``: ``[{"proto"?, "name", "insns": [{"pc", "operation",
    "operands", "opcodes"?} ...]} ...]`` (source-line keys as in ``dump xlated``); a bare
    instruction list for an image without function symbols."""
    out: list[dict[str, Any]] = []
    for fn in funcs:
        insns: list[dict[str, Any]] = []
        for insn, src in _annotated(fn, arch):
            d: dict[str, Any] = {}
            if src is not None:
                d["src"] = src.line
                if linum:
                    d["file"] = src.file
                    d["line_num"] = src.line_num
                    if src.line_col:
                        d["line_col"] = src.line_col
            d["pc"] = f"0x{insn.pc:x}"
            d["operation"] = insn.mnemonic
            d["operands"] = _operands(insn.op_str)
            if opcodes:
                d["opcodes"] = [f"0x{b:02x}" for b in insn.raw]
            insns.append(d)
        if not fn.labelled:   # bpftool prints a bare instruction list then
            return insns
        entry: dict[str, Any] = {}
        if fn.proto:
            entry["proto"] = fn.proto
        entry["name"] = fn.name
        entry["insns"] = insns
        out.append(entry)
    return out


def functions_from_info(pi: Any, btf: Any = None) -> list[JitFunction]:
    """:func:`split_functions` from a :class:`pybpfobj.kernel.info.ProgInfo` fetched with
    ``jited``, ``jited_ksyms``, ``func_info`` and ``line_info``; symbol names from /proc/kallsyms."""
    from pybpfobj import disasm

    _, names = disasm.kallsyms() if pi.jited_ksyms else (0, {})
    protos: list[str] = []
    lines: list[SourceLine] = []
    if btf is not None:
        protos = [disasm.func_signature(btf, tid) for _, tid in (pi.func_info or ())]
        lines = disasm.listing_from_info(b"", btf=btf, line_info=pi.line_info or ()).lines
    return split_functions(pi.jited or b"", pi.jited_ksyms or (), pi.jited_func_lens or (), names,
                           protos, pi.jited_line_info or (), lines)


__all__ = ["CAPSTONE_HINT", "JitFunction", "JitInsn", "disassemble", "dump_json", "dump_text",
           "functions_from_info", "split_functions"]
