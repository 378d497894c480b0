"""eBPF instruction decoding in the kernel verifier's syntax, as bpftool's
``prog dump xlated`` prints it, plus the control-flow graph bpftool's
``visual`` draws.

Pure Python, no kernel needed: :func:`decode` turns raw instruction bytes
into :class:`Insn` records, :func:`format_insn` prints one the way the
kernel's ``print_bpf_insn`` does (``(b7) r0 = 1``), with map references
(``map[id:N]``, ``map[id:N][0]+off``), helper calls by name
(``call bpf_map_lookup_elem#1``), BPF-to-BPF calls, atomics,
``ld_abs``/``ld_ind``, signed division, sign-extending moves and loads,
byte swaps, ``gotol`` and ``may_goto``.  :func:`dump_text`,
:func:`dump_json` and :func:`dump_dot` produce bpftool's three xlated
shapes from a :class:`Listing` (instructions + optional BTF func/line info).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# instruction classes
LD, LDX, ST, STX, ALU, JMP, JMP32, ALU64 = range(8)
# sizes (code & 0x18)
SIZE_W, SIZE_H, SIZE_B, SIZE_DW = 0x00, 0x08, 0x10, 0x18
# modes (code & 0xe0)
MODE_IMM, MODE_ABS, MODE_IND, MODE_MEM, MODE_MEMSX, MODE_ATOMIC = 0x00, 0x20, 0x40, 0x60, 0x80, 0xC0
MODE_NOSPEC = 0xC0   # in class ST (kernel-internal)
SRC_X = 0x08
# ALU ops (code & 0xf0)
OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_OR, OP_AND, OP_LSH, OP_RSH = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
OP_NEG, OP_MOD, OP_XOR, OP_MOV, OP_ARSH, OP_END = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
# JMP ops
OP_JA, OP_CALL, OP_EXIT, OP_JCOND = 0x00, 0x80, 0x90, 0xE0
# atomic imm values
FETCH = 0x01
XCHG = 0xE0 | FETCH
CMPXCHG = 0xF0 | FETCH
LOAD_ACQ = 0x100
STORE_REL = 0x110
# ld_imm64 src_reg values
PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, PSEUDO_BTF_ID, PSEUDO_FUNC = 1, 2, 3, 4
PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE = 5, 6
# call src_reg values
PSEUDO_CALL, PSEUDO_KFUNC_CALL = 1, 2
MAY_GOTO = 0

_ALU_OPS = {
    OP_ADD: "+=", OP_SUB: "-=", OP_MUL: "*=", OP_DIV: "/=", OP_OR: "|=", OP_AND: "&=",
    OP_LSH: "<<=", OP_RSH: ">>=", OP_NEG: "neg", OP_MOD: "%=", OP_XOR: "^=", OP_MOV: "=",
    OP_ARSH: "s>>=", OP_END: "endian",
}
_ALU_SIGNED = {OP_DIV: "s/=", OP_MOD: "s%="}
_MOVSX = {8: "(s8)", 16: "(s16)", 32: "(s32)"}
_ATOMIC_OPS = {OP_ADD: "add", OP_AND: "and", OP_OR: "or", OP_XOR: "xor"}
_LDST = {SIZE_W: "u32", SIZE_H: "u16", SIZE_B: "u8", SIZE_DW: "u64"}
_LDSX = {SIZE_W: "s32", SIZE_H: "s16", SIZE_B: "s8"}
_JMP_OPS = {
    0x00: "jmp", 0x10: "==", 0x20: ">", 0x30: ">=", 0x40: "&", 0x50: "!=", 0x60: "s>", 0x70: "s>=",
    0x80: "call", 0x90: "exit", 0xA0: "<", 0xB0: "<=", 0xC0: "s<", 0xD0: "s<=",
}
_CLASS_NAMES = ("ld", "ldx", "st", "stx", "alu", "jmp", "jmp32", "alu64")

# Helper ids -> names, in the order of <linux/bpf.h>'s __BPF_FUNC_MAPPER (index = id).
HELPERS: tuple[str, ...] = (
    "unspec", "map_lookup_elem", "map_update_elem", "map_delete_elem", "probe_read", "ktime_get_ns",
    "trace_printk", "get_prandom_u32", "get_smp_processor_id", "skb_store_bytes", "l3_csum_replace",
    "l4_csum_replace", "tail_call", "clone_redirect", "get_current_pid_tgid", "get_current_uid_gid",
    "get_current_comm", "get_cgroup_classid", "skb_vlan_push", "skb_vlan_pop", "skb_get_tunnel_key",
    "skb_set_tunnel_key", "perf_event_read", "redirect", "get_route_realm", "perf_event_output",
    "skb_load_bytes", "get_stackid", "csum_diff", "skb_get_tunnel_opt", "skb_set_tunnel_opt",
    "skb_change_proto", "skb_change_type", "skb_under_cgroup", "get_hash_recalc", "get_current_task",
    "probe_write_user", "current_task_under_cgroup", "skb_change_tail", "skb_pull_data", "csum_update",
    "set_hash_invalid", "get_numa_node_id", "skb_change_head", "xdp_adjust_head", "probe_read_str",
    "get_socket_cookie", "get_socket_uid", "set_hash", "setsockopt", "skb_adjust_room", "redirect_map",
    "sk_redirect_map", "sock_map_update", "xdp_adjust_meta", "perf_event_read_value",
    "perf_prog_read_value", "getsockopt", "override_return", "sock_ops_cb_flags_set",
    "msg_redirect_map", "msg_apply_bytes", "msg_cork_bytes", "msg_pull_data", "bind", "xdp_adjust_tail",
    "skb_get_xfrm_state", "get_stack", "skb_load_bytes_relative", "fib_lookup", "sock_hash_update",
    "msg_redirect_hash", "sk_redirect_hash", "lwt_push_encap", "lwt_seg6_store_bytes",
    "lwt_seg6_adjust_srh", "lwt_seg6_action", "rc_repeat", "rc_keydown", "skb_cgroup_id",
    "get_current_cgroup_id", "get_local_storage", "sk_select_reuseport", "skb_ancestor_cgroup_id",
    "sk_lookup_tcp", "sk_lookup_udp", "sk_release", "map_push_elem", "map_pop_elem", "map_peek_elem",
    "msg_push_data", "msg_pop_data", "rc_pointer_rel", "spin_lock", "spin_unlock", "sk_fullsock",
    "tcp_sock", "skb_ecn_set_ce", "get_listener_sock", "skc_lookup_tcp", "tcp_check_syncookie",
    "sysctl_get_name", "sysctl_get_current_value", "sysctl_get_new_value", "sysctl_set_new_value",
    "strtol", "strtoul", "sk_storage_get", "sk_storage_delete", "send_signal", "tcp_gen_syncookie",
    "skb_output", "probe_read_user", "probe_read_kernel", "probe_read_user_str",
    "probe_read_kernel_str", "tcp_send_ack", "send_signal_thread", "jiffies64", "read_branch_records",
    "get_ns_current_pid_tgid", "xdp_output", "get_netns_cookie", "get_current_ancestor_cgroup_id",
    "sk_assign", "ktime_get_boot_ns", "seq_printf", "seq_write", "sk_cgroup_id",
    "sk_ancestor_cgroup_id", "ringbuf_output", "ringbuf_reserve", "ringbuf_submit", "ringbuf_discard",
    "ringbuf_query", "csum_level", "skc_to_tcp6_sock", "skc_to_tcp_sock", "skc_to_tcp_timewait_sock",
    "skc_to_tcp_request_sock", "skc_to_udp6_sock", "get_task_stack", "load_hdr_opt", "store_hdr_opt",
    "reserve_hdr_opt", "inode_storage_get", "inode_storage_delete", "d_path", "copy_from_user",
    "snprintf_btf", "seq_printf_btf", "skb_cgroup_classid", "redirect_neigh", "per_cpu_ptr",
    "this_cpu_ptr", "redirect_peer", "task_storage_get", "task_storage_delete", "get_current_task_btf",
    "bprm_opts_set", "ktime_get_coarse_ns", "ima_inode_hash", "sock_from_file", "check_mtu",
    "for_each_map_elem", "snprintf", "sys_bpf", "btf_find_by_name_kind", "sys_close", "timer_init",
    "timer_set_callback", "timer_start", "timer_cancel", "get_func_ip", "get_attach_cookie",
    "task_pt_regs", "get_branch_snapshot", "trace_vprintk", "skc_to_unix_sock", "kallsyms_lookup_name",
    "find_vma", "loop", "strncmp", "get_func_arg", "get_func_ret", "get_func_arg_cnt", "get_retval",
    "set_retval", "xdp_get_buff_len", "xdp_load_bytes", "xdp_store_bytes", "copy_from_user_task",
    "skb_set_tstamp", "ima_file_hash", "kptr_xchg", "map_lookup_percpu_elem", "skc_to_mptcp_sock",
    "dynptr_from_mem", "ringbuf_reserve_dynptr", "ringbuf_submit_dynptr", "ringbuf_discard_dynptr",
    "dynptr_read", "dynptr_write", "dynptr_data", "tcp_raw_gen_syncookie_ipv4",
    "tcp_raw_gen_syncookie_ipv6", "tcp_raw_check_syncookie_ipv4", "tcp_raw_check_syncookie_ipv6",
    "ktime_get_tai_ns", "user_ringbuf_drain", "cgrp_storage_get", "cgrp_storage_delete",
)



# ---------------------------------------------------------------------------
# instructions

@dataclass(frozen=True)
class Insn:
    """One instruction; a 64-bit immediate load spans two slots (``wide``)."""

    index: int          # slot index (8-byte units)
    code: int
    dst: int
    src: int
    off: int            # signed 16-bit
    imm: int            # signed 32-bit
    raw: bytes          # 8 bytes, or 16 for ld_imm64
    next_imm: int = 0   # imm of the second slot of ld_imm64 (signed)

    @property
    def cls(self) -> int:
        return self.code & 0x07

    @property
    def wide(self) -> bool:
        return len(self.raw) == 16

    @property
    def imm64(self) -> int:
        """The full 64-bit immediate of ld_imm64 (unsigned)."""
        return ((self.next_imm & 0xFFFFFFFF) << 32) | (self.imm & 0xFFFFFFFF)


def decode(data: bytes, byte_order: str = "little") -> list[Insn]:
    """Split raw instruction bytes into :class:`Insn` records (ld_imm64 takes two slots).

    A trailing partial instruction is ignored; a ld_imm64 missing its second
    half is decoded as a single slot.
    """
    fmt = "<BBhi" if byte_order == "little" else ">BBhi"
    out: list[Insn] = []
    n = len(data) // 8
    i = 0
    while i < n:
        chunk = data[i * 8:i * 8 + 8]
        code, regs, off, imm = struct.unpack(fmt, chunk)
        if byte_order == "little":
            dst, src = regs & 0x0F, regs >> 4
        else:
            dst, src = regs >> 4, regs & 0x0F
        if code == (LD | MODE_IMM | SIZE_DW) and i + 1 < n:
            nxt = data[i * 8 + 8:i * 8 + 16]
            next_imm = struct.unpack(fmt, nxt)[3]
            out.append(Insn(i, code, dst, src, off, imm, chunk + nxt, next_imm))
            i += 2
            continue
        out.append(Insn(i, code, dst, src, off, imm, chunk))
        i += 1
    return out


# ---------------------------------------------------------------------------
# kernel symbols (for calls in xlated code, which the kernel rewrites to addresses)

class Symbols:
    """Resolves call targets the way bpftool does with /proc/kallsyms.

    ``call_base`` is the address of ``__bpf_call_base`` (helper calls in
    xlated code carry ``address - call_base`` as imm), ``names`` maps
    addresses to symbol names, ``jited_ksyms`` are the program's function
    addresses (BPF-to-BPF calls carry the callee's index in imm).
    """

    def __init__(self, call_base: int = 0, names: dict[int, str] | None = None,
                 jited_ksyms: Sequence[int] = ()) -> None:
        self.call_base = call_base
        self.names = names or {}
        self.jited_ksyms = list(jited_ksyms)

    def call(self, insn: Insn) -> str:
        address = (self.call_base + insn.imm) & 0xFFFFFFFFFFFFFFFF
        if insn.src == PSEUDO_CALL and 0 <= insn.imm < len(self.jited_ksyms):
            address = self.jited_ksyms[insn.imm]
        sym = self.names.get(address)
        if insn.src == PSEUDO_CALL:
            # In xlated code of a jited program the kernel leaves the callee's index
            # in imm and the relative jump in off; without ksyms imm is still relative.
            if not self.jited_ksyms:
                return f"{insn.off:+d}"
            return f"{insn.off:+d}#{sym}" if sym else f"{insn.off:+d}#0x{address:x}"
        return sym if sym else f"0x{address:x}"


_KALLSYMS: dict[int, str] | None = None
_CALL_BASE = 0


def _parse_kallsyms(data: bytes, names: dict[int, str]) -> int:
    """Add ``address -> name`` pairs from kallsyms text; returns ``__bpf_call_base``'s address (or 0)."""
    base = 0
    for line in data.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 3:
            continue
        addr = int(parts[0], 16)
        if not addr:
            continue
        name = parts[2].decode("ascii", "replace")
        names.setdefault(addr, name)
        if name == "__bpf_call_base":
            base = addr
    return base


def kallsyms() -> tuple[int, dict[int, str]]:
    """``(address of __bpf_call_base, address -> name)`` from /proc/kallsyms.

    The kernel's own symbols are read once per process; BPF programs'
    symbols (the ``[bpf]`` lines at the end of the file) are re-read on every
    call, so programs loaded or replaced since the last call are named
    correctly.  Empty when the file is unreadable or addresses are hidden
    (non-root).
    """
    global _KALLSYMS, _CALL_BASE
    try:
        with open("/proc/kallsyms", "rb") as f:
            data = f.read()
    except OSError:
        return 0, {}
    cut = data.find(b"\t[bpf]")
    cut = data.rfind(b"\n", 0, cut) + 1 if cut >= 0 else len(data)
    if _KALLSYMS is None:
        core: dict[int, str] = {}
        _CALL_BASE = _parse_kallsyms(data[:cut], core)
        _KALLSYMS = core
    names = dict(_KALLSYMS)
    bpf: dict[int, str] = {}
    _parse_kallsyms(data[cut:], bpf)
    names.update(bpf)   # a BPF symbol wins over a stale core entry at the same address
    return _CALL_BASE, names


# ---------------------------------------------------------------------------
# formatting one instruction

def _reg(cls: int) -> str:
    return "w" if cls == ALU else "r"


def _call_name(insn: Insn, syms: Symbols | None) -> str:
    if insn.src == 0 and 0 <= insn.imm < len(HELPERS):
        return "bpf_" + HELPERS[insn.imm]
    if syms is not None:
        return syms.call(insn)
    if insn.src == PSEUDO_CALL:
        return f"{insn.imm:+d}"
    if insn.src == PSEUDO_KFUNC_CALL:
        return "kernel-function"
    return "unknown"


def _imm64_text(insn: Insn) -> str:
    if insn.src == PSEUDO_MAP_FD:
        return f"map[id:{insn.imm & 0xFFFFFFFF}]"
    if insn.src == PSEUDO_MAP_VALUE:
        return f"map[id:{insn.imm & 0xFFFFFFFF}][0]+{insn.next_imm & 0xFFFFFFFF}"
    if insn.src == PSEUDO_MAP_IDX_VALUE:
        return f"map[idx:{insn.imm & 0xFFFFFFFF}]+{insn.next_imm & 0xFFFFFFFF}"
    if insn.src == PSEUDO_FUNC:
        return f"subprog[{insn.imm:+d}]"
    return f"0x{insn.imm64:x}"


def format_insn(insn: Insn, syms: Symbols | None = None) -> str:
    """One instruction in the kernel's verifier syntax, e.g. ``(b7) r0 = 1`` (no newline)."""
    c = insn.code
    cls = c & 0x07
    h = f"({c:02x})"
    if cls in (ALU, ALU64):
        op = c & 0xF0
        r = _reg(cls)
        if op == OP_END:
            if cls == ALU64:
                return f"{h} r{insn.dst} = bswap{insn.imm} r{insn.dst}"
            return f"{h} r{insn.dst} = {'be' if c & SRC_X else 'le'}{insn.imm} r{insn.dst}"
        if op == OP_NEG:
            return f"{h} {r}{insn.dst} = -{r}{insn.dst}"
        if c == (ALU64 | OP_MOV | SRC_X) and insn.off == 1:
            return (f"{h} r{insn.dst} = addr_space_cast(r{insn.src}, {(insn.imm & 0xFFFFFFFF) >> 16}, "
                    f"{insn.imm & 0xFFFF})")
        if c == (ALU64 | OP_MOV | SRC_X) and insn.off == -1:
            return f"{h} r{insn.dst} = &(void __percpu *)(r{insn.src})"
        sdiv = op in (OP_DIV, OP_MOD) and insn.off == 1
        opname = _ALU_SIGNED[op] if sdiv else _ALU_OPS.get(op, f"BUG_alu_{op:02x}")
        if c & SRC_X:
            movsx = _MOVSX.get(insn.off, "") if op == OP_MOV else ""
            return f"{h} {r}{insn.dst} {opname} {movsx}{r}{insn.src}"
        return f"{h} {r}{insn.dst} {opname} {insn.imm}"
    size = c & 0x18
    mode = c & 0xE0
    if cls == STX:
        sz = _LDST[size]
        if mode == MODE_MEM:
            return f"{h} *({sz} *)(r{insn.dst} {insn.off:+d}) = r{insn.src}"
        if mode == MODE_ATOMIC:
            imm = insn.imm
            w = "64" if size == SIZE_DW else ""
            if imm in (OP_ADD, OP_AND, OP_OR, OP_XOR):
                return f"{h} lock *({sz} *)(r{insn.dst} {insn.off:+d}) {_ALU_OPS[imm]} r{insn.src}"
            if imm & FETCH and (imm & ~FETCH) in (OP_ADD, OP_AND, OP_OR, OP_XOR):
                return (f"{h} r{insn.src} = atomic{w}_fetch_{_ATOMIC_OPS[imm & ~FETCH]}"
                        f"(({sz} *)(r{insn.dst} {insn.off:+d}), r{insn.src})")
            if imm == CMPXCHG:
                return f"{h} r0 = atomic{w}_cmpxchg(({sz} *)(r{insn.dst} {insn.off:+d}), r0, r{insn.src})"
            if imm == XCHG:
                return (f"{h} r{insn.src} = atomic{w}_xchg(({sz} *)(r{insn.dst} {insn.off:+d}), "
                        f"r{insn.src})")
            if imm == LOAD_ACQ:
                return f"{h} r{insn.dst} = load_acquire(({sz} *)(r{insn.src} {insn.off:+d}))"
            if imm == STORE_REL:
                return f"{h} store_release(({sz} *)(r{insn.dst} {insn.off:+d}), r{insn.src})"
        return f"BUG_{c:02x}"
    if cls == ST:
        if mode == MODE_MEM:
            return f"{h} *({_LDST[size]} *)(r{insn.dst} {insn.off:+d}) = {insn.imm}"
        if mode == MODE_NOSPEC:
            return f"{h} nospec"
        return f"BUG_st_{c:02x}"
    if cls == LDX:
        if mode == MODE_MEM:
            sz = _LDST[size]
        elif mode == MODE_MEMSX and size in _LDSX:
            sz = _LDSX[size]
        else:
            return f"BUG_ldx_{c:02x}"
        return f"{h} r{insn.dst} = *({sz} *)(r{insn.src} {insn.off:+d})"
    if cls == LD:
        if mode == MODE_ABS:
            return f"{h} r0 = *({_LDST[size]} *)skb[{insn.imm}]"
        if mode == MODE_IND:
            return f"{h} r0 = *({_LDST[size]} *)skb[r{insn.src} + {insn.imm}]"
        if mode == MODE_IMM and size == SIZE_DW:
            return f"{h} r{insn.dst} = {_imm64_text(insn)}"
        return f"BUG_ld_{c:02x}"
    # JMP / JMP32
    op = c & 0xF0
    if op == OP_CALL:
        if insn.src == PSEUDO_CALL:
            return f"{h} call pc{_call_name(insn, syms)}"
        return f"{h} call {_call_name(insn, syms)}#{insn.imm}"
    if c == (JMP | OP_JA):
        return f"{h} goto pc{insn.off:+d}"
    if c == (JMP | OP_JCOND) and insn.src == MAY_GOTO:
        return f"{h} may_goto pc{insn.off:+d}"
    if c == (JMP32 | OP_JA):
        return f"{h} gotol pc{insn.imm:+d}"
    if c == (JMP | OP_JA | SRC_X):
        return f"{h} gotox r{insn.dst}"
    if c == (JMP | OP_EXIT):
        return f"{h} exit"
    r = "w" if cls == JMP32 else "r"
    opname = _JMP_OPS.get(op, f"BUG_jmp_{op:02x}")
    if c & SRC_X:
        return f"{h} if {r}{insn.dst} {opname} {r}{insn.src} goto pc{insn.off:+d}"
    return f"{h} if {r}{insn.dst} {opname} 0x{insn.imm & 0xFFFFFFFF:x} goto pc{insn.off:+d}"


# ---------------------------------------------------------------------------
# whole programs

@dataclass(frozen=True)
class SourceLine:
    """A line_info record resolved to text: where instruction ``insn_off`` comes from."""

    insn_off: int
    file: str
    line: str
    line_num: int
    line_col: int


@dataclass
class Listing:
    """A program's instructions with what bpftool shows around them.

    ``funcs``: ``(insn_off, signature)`` from func_info (signature as
    bpftool prints it, "" when BTF cannot express it); ``lines``: line_info
    records in order.
    """

    insns: list[Insn]
    funcs: list[tuple[int, str]] = field(default_factory=list)
    lines: list[SourceLine] = field(default_factory=list)
    symbols: Symbols | None = None


def _lfind(lines: Sequence[SourceLine], insn_off: int, nr_skip: int) -> SourceLine | None:
    # libbpf's bpf_prog_linfo__lfind: the last record at or before insn_off,
    # searching from nr_skip (bpftool advances nr_skip by one per hit).
    if nr_skip >= len(lines) or insn_off < lines[nr_skip].insn_off:
        return None
    j = nr_skip
    while j < len(lines) and lines[j].insn_off <= insn_off:
        j += 1
    return lines[j - 1]


def _annotated(listing: Listing) -> list[tuple[Insn, str, SourceLine | None]]:
    """Each instruction with the function signature and source line printed before it."""
    out: list[tuple[Insn, str, SourceLine | None]] = []
    fi = 0
    nr_skip = 0
    for insn in listing.insns:
        proto = ""
        if fi < len(listing.funcs) and listing.funcs[fi][0] == insn.index:
            proto = listing.funcs[fi][1]
            fi += 1
        src = None
        if listing.lines:
            src = _lfind(listing.lines, insn.index, nr_skip)
            if src is not None:
                nr_skip += 1
        out.append((insn, proto, src))
    return out


def dump_text(listing: Listing, *, opcodes: bool = False, linum: bool = False) -> str:
    """bpftool's plain ``dump xlated`` text (ends with a newline when not empty)."""
    parts: list[str] = []
    for insn, proto, src in _annotated(listing):
        if proto:
            parts.append(f"{proto}:\n")
        if src is not None:
            extra = f" [file:{src.file} line_num:{src.line_num} line_col:{src.line_col}]" if linum else ""
            parts.append(f"; {src.line}{extra}\n")
        parts.append(f"{insn.index: 4d}: {format_insn(insn, listing.symbols)}\n")
        if opcodes:
            parts.append("       " + " ".join(f"{b:02x}" for b in insn.raw) + "\n")
    return "".join(parts)


def dump_json(listing: Listing, *, opcodes: bool = False, linum: bool = False) -> list[dict[str, Any]]:
    """bpftool's JSON ``dump xlated``: one object per instruction."""
    out: list[dict[str, Any]] = []
    for insn, proto, src in _annotated(listing):
        d: dict[str, Any] = {}
        if proto:
            d["proto"] = proto
        if src is not None:
            d["src"] = src.line
            if linum:
                d["file"] = src.file
                d["line_num"] = src.line_num
                if src.line_col:  # bpftool leaves a zero column out of JSON (not out of text)
                    d["line_col"] = src.line_col
        d["disasm"] = format_insn(insn, listing.symbols)
        if opcodes:
            raw = insn.raw
            d["opcodes"] = {
                "code": f"0x{insn.code:02x}",
                "src_reg": f"0x{insn.src:x}",
                "dst_reg": f"0x{insn.dst:x}",
                "off": [f"0x{b:02x}" for b in raw[2:4]],
                "imm": [f"0x{b:02x}" for b in (raw[4:16] if insn.wide else raw[4:8])],
            }
        out.append(d)
    return out


# ---------------------------------------------------------------------------
# control-flow graph (bpftool's cfg.c model, DOT output of bpftool 7.1)

@dataclass
class Block:
    """A basic block: slots ``head..tail``; idx 0 is ENTRY, 1 is EXIT, real blocks from 2."""

    idx: int
    head: int = -1
    tail: int = -1
    succs: list[int] = field(default_factory=list)   # successor block idx, in bpftool's order


@dataclass
class Function:
    idx: int
    start: int
    end: int
    blocks: list[Block] = field(default_factory=list)   # ENTRY, real blocks..., EXIT


def _is_jmp(code: int) -> bool:
    return code & 0x07 in (JMP, JMP32)


def _jump_target(slot: int, insn: Insn) -> int:
    if insn.code == (JMP32 | OP_JA):
        return slot + insn.imm + 1
    return slot + insn.off + 1


def build_cfg(insns: Sequence[Insn]) -> list[Function]:
    """Functions (split at BPF-to-BPF call targets) and their basic blocks and edges."""
    if not insns:
        return []
    by_slot = {i.index: i for i in insns}
    nslots = insns[-1].index + (2 if insns[-1].wide else 1)
    starts = {0}
    for i in insns:
        if i.code == (JMP | OP_CALL) and i.src == PSEUDO_CALL:
            starts.add(i.index + i.off + 1)
    ordered = sorted(s for s in starts if 0 <= s < nslots)
    funcs: list[Function] = []
    for k, s in enumerate(ordered):
        end = ordered[k + 1] - 1 if k + 1 < len(ordered) else nslots - 1
        funcs.append(Function(k, s, end))
    for fn in funcs:
        heads = {fn.start}
        for slot in range(fn.start, fn.end + 1):
            insn = by_slot.get(slot)
            if insn is None or not _is_jmp(insn.code):
                continue
            op = insn.code & 0xF0
            if op in (OP_EXIT, OP_CALL):
                continue
            heads.add(_jump_target(slot, insn))
            if op != OP_JA:
                heads.add(slot + 1)
        hs = sorted(heads)
        real = [Block(idx=2 + k, head=h) for k, h in enumerate(hs)]
        for k, b in enumerate(real):
            b.tail = real[k + 1].head - 1 if k + 1 < len(real) else fn.end
        entry, exit_ = Block(0), Block(1)
        fn.blocks = [entry, *real, exit_]
        head_to_idx = {b.head: b.idx for b in real}
        entry.succs.append(real[0].idx if real else 1)
        for k, b in enumerate(real):
            nxt = real[k + 1].idx if k + 1 < len(real) else 1
            insn = by_slot.get(b.tail)
            code = insn.code if insn is not None else 0
            if not _is_jmp(code) or code & 0xF0 == OP_EXIT:
                b.succs.append(nxt)
                continue
            assert insn is not None
            target = head_to_idx.get(_jump_target(b.tail, insn))
            if code & 0xF0 == OP_JA:
                if target is not None:
                    b.succs.append(target)
                continue
            b.succs.append(nxt)
            if target is not None:
                b.succs.append(target)
    return funcs


def _graph_escape(text: str) -> str:
    # bpftool formats into a 64-byte buffer: the line (with its newline) is cut at 63 bytes.
    s = (text + "\n")[:63]
    out = []
    for ch in s:
        if ch == "\n":
            out.append("\\l\\\n")
        elif ch in "<>|&":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def dump_dot(listing: Listing, *, for_picture: bool = False) -> str:
    """The control-flow graph in DOT, as bpftool 7.1's ``dump xlated ... visual``.

    ``for_picture`` styles the graph for rendering to an image (not for
    comparing with bpftool): monospace fonts, clusters titled with the
    function's prototype where BTF gives one, and conditional branches drawn
    green (jump taken, "T") and red (fall-through, "F").
    """
    by_slot = {i.index: i for i in listing.insns}
    # bpftool names no subprogram in the graph: calls print as bare "call pc+N"
    syms = listing.symbols
    if syms is not None and syms.jited_ksyms:
        syms = Symbols(syms.call_base, syms.names)
    protos = dict(listing.funcs)
    lines = ['digraph "DOT graph for eBPF program" {']
    if for_picture:
        lines.append('	graph [fontname="monospace", fontsize=12];')
        lines.append('	node [fontname="monospace", fontsize=10, fillcolor="#f2f2f2"];')
        lines.append('	edge [fontname="monospace", fontsize=9];')
    for fn in build_cfg(listing.insns):
        lines.append(f'subgraph "cluster_{fn.idx}" {{')
        lines.append('	style="dashed";')
        lines.append('	color="black";')
        title = f"func_{fn.idx} ()"
        if for_picture and protos.get(fn.start):
            title = f"func_{fn.idx}: {protos[fn.start]}".replace('"', '\\"')
        lines.append(f'	label="{title}";')
        for b in fn.blocks:
            shape = "Mdiamond" if b.idx in (0, 1) else "record"
            if b.idx == 0:
                label = "ENTRY"
            elif b.idx == 1:
                label = "EXIT"
            else:
                rows: list[str] = []
                for slot in range(b.head, b.tail + 1):
                    insn = by_slot.get(slot)
                    if insn is None:
                        continue
                    sep = " | " if rows else ""
                    rows.append(f"{sep}{slot - fn.start: 4d}: "
                                + _graph_escape(format_insn(insn, syms)))
                label = "{" + "".join(rows) + "}"
            lines.append(f'\tfn_{fn.idx}_bb_{b.idx} [shape={shape},style=filled,label="{label}"];\n')
        for b in fn.blocks:
            branch = for_picture and len(b.succs) == 2
            for k, s in enumerate(b.succs):
                attrs = 'style="solid,bold", color=black, weight=10, constraint=true'
                if branch:
                    attrs = ('style="solid,bold", color="#1e8449", fontcolor="#1e8449", label=" T", weight=5'
                             if k else
                             'style="solid,bold", color="#c0392b", fontcolor="#c0392b", label=" F", weight=10')
                lines.append(f'\tfn_{fn.idx}_bb_{b.idx}:s -> fn_{fn.idx}_bb_{s}:n [{attrs}];')
        lines.append(f'\tfn_{fn.idx}_bb_0:s -> fn_{fn.idx}_bb_1:n [style="invis", constraint=true];')
        lines.append("}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# BTF function signatures (bpftool's btf_dumper_type_only)

def func_signature(btf: Any, type_id: int) -> str:
    """A FUNC's C signature as bpftool prints it (``int f(struct xdp_md * ctx)``); "" if inexpressible."""
    parts: list[str] = []
    try:
        _type_only(btf, type_id, parts, 0)
    except _Inexpressible:
        return ""
    text = "".join(parts)
    return text.removesuffix(" ")


class _Inexpressible(Exception):
    pass


def _type_only(btf: Any, type_id: int, out: list[str], depth: int) -> None:
    from pybpfobj.spec.btf import BtfKind

    if depth > 64:
        raise _Inexpressible
    if type_id == 0:
        out.append("void ")
        return
    t = btf.type(type_id)
    k = t.kind
    if k in (BtfKind.INT, BtfKind.TYPEDEF, BtfKind.FLOAT):
        out.append(f"{t.name} ")
    elif k == BtfKind.STRUCT:
        out.append(f"struct {t.name} ")
    elif k == BtfKind.UNION:
        out.append(f"union {t.name} ")
    elif k in (BtfKind.ENUM, BtfKind.ENUM64):
        out.append(f"enum {t.name} ")
    elif k == BtfKind.ARRAY:
        _type_only(btf, t.elem_type, out, depth + 1)
        out.append(f"[{t.nelems}]")
    elif k == BtfKind.PTR:
        _type_only(btf, t.type_id, out, depth + 1)
        out.append("* ")
    elif k == BtfKind.FWD:
        out.append(f"{'union' if t.kind_flag else 'struct'} {t.name} ")
    elif k in (BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT):
        out.append({BtfKind.VOLATILE: "volatile ", BtfKind.CONST: "const ",
                    BtfKind.RESTRICT: "restrict "}[k])
        _type_only(btf, t.type_id, out, depth + 1)
    elif k == BtfKind.FUNC_PROTO:
        _func(btf, t, None, out, depth)
    elif k == BtfKind.FUNC:
        _func(btf, btf.type(t.type_id), t.name, out, depth)
    else:
        raise _Inexpressible


def _func(btf: Any, proto: Any, name: str | None, out: list[str], depth: int) -> None:
    _type_only(btf, proto.type_id, out, depth + 1)
    out.append(f"{name}(" if name is not None else "(")
    for k, p in enumerate(proto.params):
        if k:
            out.append(", ")
        if p.type_id:
            _type_only(btf, p.type_id, out, depth + 1)
            if p.name:
                out.append(p.name)
            elif out and out[-1].endswith(" "):
                out[-1] = out[-1][:-1]
        else:
            out.append("...")
    out.append(")")


def listing_from_info(xlated: bytes, *, btf: Any = None, func_info: Sequence[tuple[int, int]] = (),
                      line_info: Sequence[Any] = (), symbols: Symbols | None = None) -> Listing:
    """Build a :class:`Listing` from prog-info parts (line_info records carry BTF string offsets)."""
    funcs: list[tuple[int, str]] = []
    lines: list[SourceLine] = []
    if btf is not None:
        for off, tid in func_info:
            funcs.append((off, func_signature(btf, tid)))
        for li in line_info:
            # bpftool shows source lines left-trimmed (C isspace)
            text = btf.string(li.line_off).lstrip(" \t\n\v\f\r")
            lines.append(SourceLine(li.insn_off, btf.string(li.file_name_off), text, li.line_num,
                                    li.line_col))
    return Listing(decode(xlated), funcs, lines, symbols)


__all__ = [
    "HELPERS", "Block", "Function", "Insn", "Listing", "SourceLine", "Symbols", "build_cfg", "decode",
    "dump_dot", "dump_json", "dump_text", "format_insn", "func_signature", "kallsyms", "listing_from_info",
]
