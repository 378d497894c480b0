"""The eBPF decoder, one instruction class at a time, built from raw bytes."""

from __future__ import annotations

import struct

import pytest

from pybpfobj import disasm


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def one(raw: bytes, syms: disasm.Symbols | None = None) -> str:
    (i,) = disasm.decode(raw)
    return disasm.format_insn(i, syms)


@pytest.mark.parametrize("raw,text", [
    (insn(0xB7, 0, imm=1), "(b7) r0 = 1"),
    (insn(0x07, 2, imm=-4), "(07) r2 += -4"),
    (insn(0xBF, 6, 1), "(bf) r6 = r1"),
    (insn(0xB4, 1, imm=5), "(b4) w1 = 5"),
    (insn(0xBC, 1, 2), "(bc) w1 = w2"),
    (insn(0x1F, 1, 2), "(1f) r1 -= r2"),
    (insn(0x67, 1, imm=32), "(67) r1 <<= 32"),
    (insn(0xC7, 1, imm=3), "(c7) r1 s>>= 3"),
    (insn(0x87, 3), "(87) r3 = -r3"),
    (insn(0x84, 3), "(84) w3 = -w3"),
    (insn(0xAF, 1, 2), "(af) r1 ^= r2"),
    (insn(0x97, 1, imm=7), "(97) r1 %= 7"),
])
def test_alu_instructions_print_in_verifier_syntax(raw: bytes, text: str) -> None:
    assert one(raw) == text


def test_signed_division_and_modulo_use_off_1() -> None:
    assert one(insn(0x3F, 1, 2, off=1)) == "(3f) r1 s/= r2"
    assert one(insn(0x37, 1, off=1, imm=3)) == "(37) r1 s/= 3"
    assert one(insn(0x9C, 1, 2, off=1)) == "(9c) w1 s%= w2"


def test_sign_extending_moves() -> None:
    assert one(insn(0xBF, 1, 2, off=8)) == "(bf) r1 = (s8)r2"
    assert one(insn(0xBF, 1, 2, off=16)) == "(bf) r1 = (s16)r2"
    assert one(insn(0xBF, 1, 2, off=32)) == "(bf) r1 = (s32)r2"
    assert one(insn(0xBC, 1, 2, off=8)) == "(bc) w1 = (s8)w2"


def test_byte_swaps_and_endianness() -> None:
    assert one(insn(0xD4, 1, imm=16)) == "(d4) r1 = le16 r1"
    assert one(insn(0xDC, 1, imm=32)) == "(dc) r1 = be32 r1"
    assert one(insn(0xD7, 1, imm=64)) == "(d7) r1 = bswap64 r1"


def test_internal_movs_percpu_and_addr_space_cast() -> None:
    assert one(insn(0xBF, 0, 0, off=-1)) == "(bf) r0 = &(void __percpu *)(r0)"
    assert one(insn(0xBF, 1, 2, off=1, imm=1)) == "(bf) r1 = addr_space_cast(r2, 0, 1)"


@pytest.mark.parametrize("raw,text", [
    (insn(0x79, 2, 1, off=0), "(79) r2 = *(u64 *)(r1 +0)"),
    (insn(0x61, 0, 6, off=112), "(61) r0 = *(u32 *)(r6 +112)"),
    (insn(0x69, 2, 2, off=2), "(69) r2 = *(u16 *)(r2 +2)"),
    (insn(0x71, 1, 1, off=-8), "(71) r1 = *(u8 *)(r1 -8)"),
    (insn(0x91, 1, 2, off=4), "(91) r1 = *(s8 *)(r2 +4)"),
    (insn(0x89, 1, 2, off=4), "(89) r1 = *(s16 *)(r2 +4)"),
    (insn(0x81, 1, 2, off=4), "(81) r1 = *(s32 *)(r2 +4)"),
    (insn(0x63, 10, 1, off=-4), "(63) *(u32 *)(r10 -4) = r1"),
    (insn(0x7B, 3, 4, off=8), "(7b) *(u64 *)(r3 +8) = r4"),
    (insn(0x62, 10, off=-8, imm=7), "(62) *(u32 *)(r10 -8) = 7"),
    (insn(0x7A, 10, off=-16, imm=-1), "(7a) *(u64 *)(r10 -16) = -1"),
])
def test_loads_and_stores(raw: bytes, text: str) -> None:
    assert one(raw) == text


@pytest.mark.parametrize("raw,text", [
    (insn(0xDB, 4, 3, imm=0x00), "(db) lock *(u64 *)(r4 +0) += r3"),
    (insn(0xC3, 4, 3, off=8, imm=0x50), "(c3) lock *(u32 *)(r4 +8) &= r3"),
    (insn(0xDB, 4, 3, imm=0x01), "(db) r3 = atomic64_fetch_add((u64 *)(r4 +0), r3)"),
    (insn(0xC3, 4, 3, imm=0xA1), "(c3) r3 = atomic_fetch_xor((u32 *)(r4 +0), r3)"),
    (insn(0xDB, 4, 3, imm=0xE1), "(db) r3 = atomic64_xchg((u64 *)(r4 +0), r3)"),
    (insn(0xDB, 4, 3, imm=0xF1), "(db) r0 = atomic64_cmpxchg((u64 *)(r4 +0), r0, r3)"),
    (insn(0xDB, 1, 2, imm=0x100), "(db) r1 = load_acquire((u64 *)(r2 +0))"),
    (insn(0xDB, 1, 2, imm=0x110), "(db) store_release((u64 *)(r1 +0), r2)"),
])
def test_atomics(raw: bytes, text: str) -> None:
    assert one(raw) == text


def test_legacy_packet_loads() -> None:
    assert one(insn(0x30, imm=12)) == "(30) r0 = *(u8 *)skb[12]"
    assert one(insn(0x28, imm=12)) == "(28) r0 = *(u16 *)skb[12]"
    assert one(insn(0x40, src=7, imm=2)) == "(40) r0 = *(u32 *)skb[r7 + 2]"


def test_ld_imm64_forms_take_two_slots() -> None:
    raw = insn(0x18, 1, 0, imm=0x55667788) + insn(0, imm=0x11223344)
    (i,) = disasm.decode(raw)
    assert i.wide and i.index == 0
    assert disasm.format_insn(i) == "(18) r1 = 0x1122334455667788"
    assert one(insn(0x18, 2, 1, imm=264) + insn(0)) == "(18) r2 = map[id:264]"
    assert one(insn(0x18, 3, 2, imm=228) + insn(0, imm=20)) == "(18) r3 = map[id:228][0]+20"
    assert one(insn(0x18, 3, 6, imm=1) + insn(0, imm=8)) == "(18) r3 = map[idx:1]+8"
    assert one(insn(0x18, 3, 4, imm=5) + insn(0)) == "(18) r3 = subprog[+5]"
    nxt = disasm.decode(raw + insn(0x95))
    assert [x.index for x in nxt] == [0, 2]


@pytest.mark.parametrize("raw,text", [
    (insn(0x05, off=1), "(05) goto pc+1"),
    (insn(0x05, off=-3), "(05) goto pc-3"),
    (insn(0x06, imm=70000), "(06) gotol pc+70000"),
    (insn(0xE5, off=4), "(e5) may_goto pc+4"),
    (insn(0x15, 0, imm=0, off=2), "(15) if r0 == 0x0 goto pc+2"),
    (insn(0x55, 1, imm=0x68, off=13), "(55) if r1 != 0x68 goto pc+13"),
    (insn(0x2D, 2, 1, off=8), "(2d) if r2 > r1 goto pc+8"),
    (insn(0x35, 0, imm=5, off=3), "(35) if r0 >= 0x5 goto pc+3"),
    (insn(0xA5, 1, imm=-1, off=1), "(a5) if r1 < 0xffffffff goto pc+1"),
    (insn(0x6D, 1, 2, off=-2), "(6d) if r1 s> r2 goto pc-2"),
    (insn(0xD6, 1, imm=3, off=1), "(d6) if w1 s<= 0x3 goto pc+1"),
    (insn(0x4E, 1, 2, off=1), "(4e) if w1 & w2 goto pc+1"),
    (insn(0x95), "(95) exit"),
])
def test_jumps(raw: bytes, text: str) -> None:
    assert one(raw) == text


def test_calls_helpers_tail_calls_and_subprograms() -> None:
    assert one(insn(0x85, imm=1)) == "(85) call bpf_map_lookup_elem#1"
    assert one(insn(0x85, imm=12)) == "(85) call bpf_tail_call#12"
    assert one(insn(0x85, imm=211)) == "(85) call bpf_cgrp_storage_delete#211"
    assert one(insn(0x85, imm=999999)) == "(85) call unknown#999999"
    assert one(insn(0x85, src=1, imm=3)) == "(85) call pc+3"
    assert one(insn(0x85, src=2, imm=77)) == "(85) call kernel-function#77"
    syms = disasm.Symbols(0x1000, {0x1000 + 5000: "htab_map_lookup_elem", 0xABC: "bpf_prog_x_f"}, [0xABC])
    assert one(insn(0x85, imm=5000), syms) == "(85) call htab_map_lookup_elem#5000"
    assert one(insn(0x85, imm=6000), syms) == f"(85) call 0x{0x1000 + 6000:x}#6000"
    assert one(insn(0x85, src=1, imm=0), syms) == "(85) call pc+0#bpf_prog_x_f"


def test_unknown_encodings_are_reported_not_raised() -> None:
    assert one(insn(0x2B)) == "BUG_2b"          # stx with the abs mode
    assert one(insn(0x29)) == "BUG_ldx_29"      # ldx with the abs mode
    assert one(insn(0x2A)) == "BUG_st_2a"
    assert one(insn(0xDB, imm=0x42)) == "BUG_db"  # unknown atomic op


def test_text_dump_prints_prototype_source_lines_and_opcodes() -> None:
    raw = insn(0xB7, 0, imm=2) + insn(0x95)
    lst = disasm.Listing(disasm.decode(raw), [(0, "int f(void * ctx)")],
                         [disasm.SourceLine(0, "a.c", "return 2;", 3, 2)])
    assert disasm.dump_text(lst) == "int f(void * ctx):\n; return 2;\n   0: (b7) r0 = 2\n   1: (95) exit\n"
    assert "       b7 00 00 00 02 00 00 00\n" in disasm.dump_text(lst, opcodes=True)
    assert "; return 2; [file:a.c line_num:3 line_col:2]\n" in disasm.dump_text(lst, linum=True)
    js = disasm.dump_json(lst, opcodes=True, linum=True)
    assert js[0]["proto"] == "int f(void * ctx)" and js[0]["line_col"] == 2
    assert js[0]["opcodes"]["imm"] == ["0x02", "0x00", "0x00", "0x00"]
    assert js[1] == {"disasm": "(95) exit", "opcodes": {"code": "0x95", "src_reg": "0x0", "dst_reg": "0x0",
                                                         "off": ["0x00", "0x00"],
                                                         "imm": ["0x00", "0x00", "0x00", "0x00"]}}


def test_cfg_splits_blocks_at_jumps_and_targets() -> None:
    raw = (insn(0x35, 0, imm=5, off=2)   # 0: if r0 >= 5 goto 3
           + insn(0xB7, 0, imm=1)         # 1
           + insn(0x05, off=1)            # 2: goto 4
           + insn(0xB7, 0, imm=0)         # 3
           + insn(0x95))                  # 4
    (fn,) = disasm.build_cfg(disasm.decode(raw))
    real = {b.idx: (b.head, b.tail, b.succs) for b in fn.blocks if b.idx >= 2}
    assert real == {2: (0, 0, [3, 4]), 3: (1, 2, [5]), 4: (3, 3, [5]), 5: (4, 4, [1])}
    dot = disasm.dump_dot(disasm.Listing(disasm.decode(raw)))
    assert dot.startswith('digraph "DOT graph for eBPF program" {\nsubgraph "cluster_0" {\n')
    assert "if r0 \\>= 0x5 goto pc+2\\l\\\n" in dot
    assert "\tfn_0_bb_2:s -> fn_0_bb_4:n [style=\"solid,bold\"" in dot
    assert dot.endswith("}\n}\n")


def test_cfg_separates_bpf_to_bpf_functions() -> None:
    raw = insn(0x85, src=1, off=1, imm=1) + insn(0x95) + insn(0xB7, imm=0) + insn(0x95)
    fns = disasm.build_cfg(disasm.decode(raw))
    assert [(f.start, f.end) for f in fns] == [(0, 1), (2, 3)]


def test_decode_ignores_a_partial_trailing_instruction() -> None:
    assert len(disasm.decode(insn(0x95) + b"\x01\x02")) == 1
    assert disasm.decode(b"") == []


# -- every class and the rarely seen encodings ---------------------------------------------------

@pytest.mark.parametrize("raw,text", [
    # atomics without fetch: add/or/and/xor, 32 and 64 bit
    (insn(0xC3, 1, 2, off=-8, imm=0x00), "(c3) lock *(u32 *)(r1 -8) += r2"),
    (insn(0xC3, 1, 2, imm=0x40), "(c3) lock *(u32 *)(r1 +0) |= r2"),
    (insn(0xDB, 1, 2, imm=0x50), "(db) lock *(u64 *)(r1 +0) &= r2"),
    (insn(0xDB, 1, 2, imm=0xA0), "(db) lock *(u64 *)(r1 +0) ^= r2"),
    # with fetch, both widths
    (insn(0xC3, 1, 2, imm=0x01), "(c3) r2 = atomic_fetch_add((u32 *)(r1 +0), r2)"),
    (insn(0xDB, 1, 2, imm=0x41), "(db) r2 = atomic64_fetch_or((u64 *)(r1 +0), r2)"),
    (insn(0xC3, 1, 2, imm=0x51), "(c3) r2 = atomic_fetch_and((u32 *)(r1 +0), r2)"),
    (insn(0xDB, 1, 2, imm=0xA1), "(db) r2 = atomic64_fetch_xor((u64 *)(r1 +0), r2)"),
    (insn(0xC3, 1, 2, off=4, imm=0xE1), "(c3) r2 = atomic_xchg((u32 *)(r1 +4), r2)"),
    (insn(0xC3, 1, 2, imm=0xF1), "(c3) r0 = atomic_cmpxchg((u32 *)(r1 +0), r0, r2)"),
    # load-acquire / store-release (6.15+) at every size
    (insn(0xD3, 1, 2, imm=0x100), "(d3) r1 = load_acquire((u8 *)(r2 +0))"),
    (insn(0xCB, 1, 2, off=2, imm=0x100), "(cb) r1 = load_acquire((u16 *)(r2 +2))"),
    (insn(0xC3, 1, 2, imm=0x100), "(c3) r1 = load_acquire((u32 *)(r2 +0))"),
    (insn(0xD3, 1, 2, imm=0x110), "(d3) store_release((u8 *)(r1 +0), r2)"),
    (insn(0xC3, 1, 2, off=-4, imm=0x110), "(c3) store_release((u32 *)(r1 -4), r2)"),
])
def test_every_atomic_operation_and_width(raw: bytes, text: str) -> None:
    assert one(raw) == text


def test_every_legacy_packet_load_size_and_mode() -> None:
    assert one(insn(0x20, imm=14)) == "(20) r0 = *(u32 *)skb[14]"
    assert one(insn(0x48, src=3, imm=0)) == "(48) r0 = *(u16 *)skb[r3 + 0]"
    assert one(insn(0x50, src=3, imm=-2)) == "(50) r0 = *(u8 *)skb[r3 + -2]"


def test_signed_division_and_modulo_in_both_widths_and_operand_kinds() -> None:
    assert one(insn(0x97, 1, off=1, imm=-5)) == "(97) r1 s%= -5"
    assert one(insn(0x34, 1, off=1, imm=3)) == "(34) w1 s/= 3"
    assert one(insn(0x3C, 1, 2, off=1)) == "(3c) w1 s/= w2"
    assert one(insn(0x9F, 1, 2, off=1)) == "(9f) r1 s%= r2"
    assert one(insn(0x9F, 1, 2, off=0)) == "(9f) r1 %= r2"     # off 0: the unsigned form


def test_every_byte_swap() -> None:
    assert one(insn(0xD4, 2, imm=32)) == "(d4) r2 = le32 r2"
    assert one(insn(0xD4, 2, imm=64)) == "(d4) r2 = le64 r2"
    assert one(insn(0xDC, 2, imm=16)) == "(dc) r2 = be16 r2"
    assert one(insn(0xDC, 2, imm=64)) == "(dc) r2 = be64 r2"
    assert one(insn(0xD7, 2, imm=16)) == "(d7) r2 = bswap16 r2"
    assert one(insn(0xD7, 2, imm=32)) == "(d7) r2 = bswap32 r2"


def test_sign_extending_loads_and_moves_in_every_size() -> None:
    assert one(insn(0xBC, 1, 2, off=16)) == "(bc) w1 = (s16)w2"
    assert one(insn(0x91, 3, 10, off=-1)) == "(91) r3 = *(s8 *)(r10 -1)"
    assert one(insn(0x99, 3, 10)) == "BUG_ldx_99"               # no 64-bit sign-extending load


def test_long_jumps_may_goto_and_address_space_casts() -> None:
    assert one(insn(0x06, imm=-70000)) == "(06) gotol pc-70000"
    # may_goto is BPF_JMP | BPF_JCOND (0xe5) with src_reg BPF_MAY_GOTO (0); off is the exit target
    assert one(insn(0xE5, off=-2)) == "(e5) may_goto pc-2"
    assert one(insn(0xE5, src=1, off=2)).startswith("(e5) if r0 BUG_jmp_e0")   # unknown JCOND kind
    assert one(insn(0xBF, 1, 2, off=1, imm=1 << 16)) == "(bf) r1 = addr_space_cast(r2, 1, 0)"


@pytest.mark.parametrize("raw,text", [
    (insn(0xC4, 1, imm=3), "(c4) w1 s>>= 3"),
    (insn(0xCC, 1, 2), "(cc) w1 s>>= w2"),
    (insn(0x74, 1, imm=4), "(74) w1 >>= 4"),
    (insn(0x64, 1, imm=4), "(64) w1 <<= 4"),
    (insn(0x2C, 1, 2), "(2c) w1 *= w2"),
    (insn(0x94, 1, imm=10), "(94) w1 %= 10"),
    (insn(0x44, 1, imm=0xFF), "(44) w1 |= 255"),
    (insn(0x54, 1, imm=-1), "(54) w1 &= -1"),
    (insn(0xA4, 1, imm=1), "(a4) w1 ^= 1"),
    (insn(0x16, 1, imm=7, off=2), "(16) if w1 == 0x7 goto pc+2"),
    (insn(0x1E, 1, 2, off=2), "(1e) if w1 == w2 goto pc+2"),
    (insn(0xBE, 1, 2, off=-4), "(be) if w1 <= w2 goto pc-4"),
    (insn(0x45, 1, imm=8, off=1), "(45) if r1 & 0x8 goto pc+1"),
    (insn(0xCD, 1, 2, off=1), "(cd) if r1 s< r2 goto pc+1"),
    (insn(0x72, 1, off=3, imm=9), "(72) *(u8 *)(r1 +3) = 9"),
    (insn(0x6A, 1, off=2, imm=-1), "(6a) *(u16 *)(r1 +2) = -1"),
    (insn(0x73, 1, 2), "(73) *(u8 *)(r1 +0) = r2"),
    (insn(0x6B, 1, 2, off=6), "(6b) *(u16 *)(r1 +6) = r2"),
])
def test_32_bit_alu_jmp32_and_narrow_stores(raw: bytes, text: str) -> None:
    assert one(raw) == text


def test_every_instruction_class_decodes_without_raising() -> None:
    # all 256 opcodes with a few operand patterns: text for each, never an exception
    for code in range(256):
        for src, off, imm in ((0, 0, 0), (1, 1, 1), (2, -1, 0x110), (4, 8, 0xF1)):
            raw = insn(code, 1, src, off, imm) + insn(0)
            for i in disasm.decode(raw):
                assert disasm.format_insn(i).startswith(("(", "BUG_")), (code, src, off, imm)
