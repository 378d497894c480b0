"""BpfObject against the real kernel: load, pin, reuse, sizing, variables, rollback."""

from __future__ import annotations

import errno
import gc
import json
import logging
import os
import struct
import subprocess
from pathlib import Path

import pytest
from loader_testutil import build_bpf, libbpf_records

from pybpfobj.errors import (
    BpfError,
    MapError,
    MapIncompatibleError,
    NotFoundError,
    PinError,
    ProgramError,
    VerifierError,
)
from pybpfobj.loader import BpfObject

pytestmark = pytest.mark.kernel

GOOD = ["globals", "heavy", "mapinmap", "maps_all", "progs_all", "tailcall", "xdp_counter", "newsec"]


def fds() -> set[str]:
    # Collect first: handles dropped by earlier tests close their fds when
    # the garbage collector gets to them, which must not look like a change here.
    gc.collect()
    return set(os.listdir("/proc/self/fd"))


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", GOOD)
def test_every_object_loads_and_pins_every_program_and_map(objs: Path, bpffs: Path, name: str) -> None:
    before = fds()
    with BpfObject(objs / f"{name}.o") as obj:
        obj.load()
        progs = obj.pin_programs(bpffs / "progs")
        maps = obj.pin_maps(bpffs / "maps")
        assert [os.path.basename(p) for p in progs] == obj.program_names()
        assert sorted(os.listdir(bpffs / "maps")) == sorted(n.replace(".", "_") for n in obj.maps)
        assert oct((bpffs / "progs").stat().st_mode & 0o777) == "0o700"
        assert all(oct(os.stat(p).st_mode & 0o777) == "0o600" for p in progs + maps)
        handles = obj.programs
        assert list(handles) == obj.program_names()
        map_handles = obj.maps
    # handles outlive the object, and close on their own
    assert handles[obj.program_names()[0]].fd >= 0
    for h in [*handles.values(), *map_handles.values()]:
        h.close()
    assert fds() == before


def test_verifier_rejection_carries_log_insn_and_source_line(objs: Path) -> None:
    before = fds()
    obj = BpfObject(objs / "bad_verifier.o")
    with pytest.raises(VerifierError) as ei:
        obj.load()
    e = ei.value
    assert e.prog == "bad_deref"
    assert "invalid mem access" in e.log and "processed" in e.log
    assert e.insn == 7
    assert e.source is not None and e.source[0].endswith("bad_verifier.bpf.c")
    assert e.source[1] == 29 and "BAD LINE" in e.source[2]
    assert "bad_verifier.bpf.c:29" in str(e)
    assert obj.state == "closed"
    assert fds() == before


def test_unknown_section_fails_clearly_and_loads_with_a_type_override(objs: Path) -> None:
    with BpfObject(objs / "bad_section.o") as obj, pytest.raises(ProgramError, match="foo/bar"):
        obj.load()
    with BpfObject(objs / "bad_section.o") as obj:
        obj.set_prog_type("xdp")
        obj.load()
        assert obj.programs["unknown_sec_prog"].type == "xdp"


def test_sections_newer_than_libbpf_get_their_type_from_the_table(objs: Path) -> None:
    with BpfObject(objs / "newsec.o") as obj:
        obj.load()
        types = {n: p.type for n, p in obj.programs.items()}
    assert types["tcx_in"] == "sched_cls" and types["nf_accept"] == "netfilter"


def test_per_program_type_override(objs: Path) -> None:
    with BpfObject(objs / "bad_section.o") as obj:
        obj.set_prog_type("sched_cls", prog="unknown_sec_prog")
        obj.load()
        assert obj.programs["unknown_sec_prog"].type == "sched_cls"
    with BpfObject(objs / "bad_section.o") as obj, pytest.raises(NotFoundError):
        obj.set_prog_type("xdp", prog="nope")


def test_unsized_maps_are_refused_before_load_naming_the_map(objs: Path) -> None:
    before = fds()
    with BpfObject(objs / "needs_sizing.o") as obj, pytest.raises(MapError, match="unsized_rb"):
        obj.load()
    assert fds() == before


def test_object_needing_sizes_loads_once_sized(objs: Path, bpffs: Path) -> None:
    before = fds()
    with BpfObject(objs / "needs_sizing.o") as obj:
        obj.set_max_entries("unsized_rb", 4096)
        obj.set_max_entries("unsized_stacks", 128)
        with pytest.raises(MapError, match="unsized_stacks.*value_size"):
            obj.load()  # the stack depth is still missing
    with BpfObject(objs / "needs_sizing.o") as obj:
        obj.set_max_entries("unsized_rb", 4096)
        obj.set_max_entries("unsized_stacks", 128)
        obj.set_value_size("unsized_stacks", 16 * 8)
        obj.load()
        obj.pin_maps(bpffs / "m")
        info = {n: m.info() for n, m in obj.maps.items()}
        assert (info["unsized_rb"].max_entries, info["unsized_rb"].type) == (4096, 27)  # BPF_MAP_TYPE_RINGBUF
        assert (info["unsized_stacks"].max_entries, info["unsized_stacks"].value_size) == (128, 128)
        assert obj.programs["kprobe_sized"].type == "kprobe"
        for h in [*obj.maps.values(), *obj.programs.values()]:
            h.close()
    assert fds() == before


def test_set_max_entries_and_value_size_change_the_created_map(objs: Path, bpffs: Path) -> None:
    with BpfObject(objs / "xdp_counter.o") as obj:
        obj.set_max_entries("stats", 8)
        obj.load()
        info = obj.maps["stats"].info()
        assert info.max_entries == 8
    with BpfObject(objs / "needs_sizing.o") as obj:
        obj.set_max_entries("unsized_rb", 4096)
        obj.set_value_size("unsized_stacks", 64)
        d = obj.map_definition("unsized_stacks")
        assert d["value_size"] == 64 and obj.map_definition("unsized_rb")["max_entries"] == 4096


def _rodata_value(bpftool: str, pin: Path) -> bytes:
    out = subprocess.run([bpftool, "-j", "map", "lookup", "pinned", str(pin), "key", "0", "0", "0", "0"],
                         capture_output=True, text=True, check=True).stdout
    return bytes(int(x, 16) for x in json.loads(out)["value"])


def test_set_var_writes_typed_initial_values(objs: Path, bpffs: Path, bpftool: str) -> None:
    with BpfObject(objs / "globals.o") as obj:
        obj.set_var("verdict", 1)
        obj.set_var("threshold", "0x10")
        obj.set_var("favourite", "BLUE")
        obj.set_var("greeting", "hi")
        obj.set_var("last_len", -7)
        assert obj.get_var("greeting") == b"hi" + b"\0" * 6
        assert obj.get_var("last_len") == (-7).to_bytes(4, "little", signed=True)
        with pytest.raises(BpfError, match="does not fit"):
            obj.set_var("verdict", 1 << 40)
        with pytest.raises(BpfError, match="does not fit"):
            obj.set_var("greeting", "12345678")
        with pytest.raises(NotFoundError):
            obj.set_var("nosuch", 1)
        obj.load()
        obj.pin_maps(bpffs / "m")
    ro = _rodata_value(bpftool, bpffs / "m" / "globals_rodata")
    assert ro[0:4] == (1).to_bytes(4, "little")
    assert int.from_bytes(ro[8:16], "little") == 0x10


def test_reuse_by_name_idx_id_pinned_and_handle_shares_the_map(objs: Path, bpffs: Path) -> None:
    with BpfObject(objs / "xdp_counter.o") as first:
        first.load()
        first.pin_maps(bpffs / "m")
        stats_id = first.maps["stats"].info().id
        for how in ({"id": stats_id}, {"pinned": str(bpffs / "m" / "stats")}, {"source": first.maps["stats"]},
                    {"fd": first.map_fd("stats")}):
            for which in ("stats", 0):
                before = fds()
                with BpfObject(objs / "xdp_counter.o") as second:
                    second.reuse_map(which, **how)  # type: ignore[arg-type]
                    second.load()
                    assert second.maps["stats"].info().id == stats_id
                    for h in second.maps.values():
                        h.close()
                assert fds() == before


def test_incompatible_reuse_lists_every_differing_field_unless_forced(objs: Path, bpffs: Path) -> None:
    with BpfObject(objs / "xdp_counter.o") as first:
        first.load()
        ro = first.maps["xdp_coun.rodata"]
        with BpfObject(objs / "xdp_counter.o") as second:
            with pytest.raises(MapIncompatibleError) as ei:
                second.reuse_map("stats", ro)
            assert {"type", "value_size", "map_flags", "btf_value_type"} <= set(ei.value.differences)
            assert "value_size 16 != 13" in str(ei.value)
        with BpfObject(objs / "xdp_counter.o") as third:
            third.set_max_entries("stats", 2)
            with pytest.raises(MapIncompatibleError, match="max_entries 2 != 1"):
                third.reuse_map("stats", first.maps["stats"])
            third.reuse_map("stats", first.maps["stats"], force=True)
            with pytest.raises(MapError, match="more than once"):
                third.reuse_map(0, first.maps["stats"])


def test_pin_by_name_pins_under_pin_root_and_reuses_on_next_load(objs: Path, bpffs: Path) -> None:
    root = bpffs / "root"
    with BpfObject(objs / "pinbyname.o", pin_root=str(root)) as a:
        a.load()
        assert (root / "pinned_hash").exists() and not (root / "unpinned").exists()
        map_id = a.maps["pinned_hash"].info().id
        with BpfObject(objs / "pinbyname.o", pin_root=str(root)) as b:
            b.load()
            assert b.maps["pinned_hash"].info().id == map_id
        a.unpin_all()
    assert not root.exists()


def test_pin_by_name_outside_bpffs_is_refused_before_load(objs: Path, tmp_path: Path) -> None:
    with BpfObject(objs / "pinbyname.o", pin_root=str(tmp_path)) as a, \
            pytest.raises(PinError, match="not on a BPF file system"):
        a.load()


def test_failed_pin_rolls_back_what_the_call_pinned(objs: Path, bpffs: Path) -> None:
    with BpfObject(objs / "maps_all.o") as obj:
        obj.load()
        d = bpffs / "progs"
        d.mkdir(mode=0o700)
        last = obj.program_names()[-1]
        obj.pin_first(d / last)  # occupies the last program's name
        before = tree(bpffs)
        with pytest.raises(PinError, match="already exists"):
            obj.pin_programs(d)
        assert tree(bpffs) == before
        with pytest.raises(PinError, match=r"'\.'"):
            obj.pin_programs(bpffs / "a.b")
        obj.unpin_all()
    assert tree(bpffs) - {"maps.debug", "progs.debug"} == {"progs"}  # the test's own dir only


def test_configuring_after_load_is_refused(objs: Path) -> None:
    with BpfObject(objs / "xdp_counter.o") as obj:
        obj.load()
        with pytest.raises(BpfError, match="before load"):
            obj.set_max_entries("stats", 2)


def test_open_from_bytes_and_missing_file(objs: Path) -> None:
    data = (objs / "xdp_counter.o").read_bytes()
    with BpfObject(data, name="fromb") as obj:
        assert obj.map_names() == ["stats", "fromb.rodata"]
        obj.load()
    with pytest.raises(BpfError, match="nosuch.o"):
        BpfObject(objs / "nosuch.o")


def test_pin_maps_leaves_by_name_maps_at_their_one_pin(objs: Path, bpffs: Path) -> None:
    root = bpffs / "root"
    with BpfObject(objs / "pinbyname.o", pin_root=str(root)) as obj:
        obj.load()
        assert obj.pinned_by_name == {"pinned_hash": str(root / "pinned_hash")}
        assert obj.pin_maps(bpffs / "m") == [str(bpffs / "m" / "unpinned")]
        assert sorted(os.listdir(bpffs / "m")) == ["unpinned"]
        assert sorted(os.listdir(root)) == ["pinned_hash"]


def test_log_level_logs_every_programs_verifier_log(objs: Path) -> None:
    with libbpf_records() as (logger, handler):
        logger.setLevel(logging.DEBUG)
        with BpfObject(objs / "tailcall.o", log_level=1) as obj:
            obj.load()
    logs = [r for r in handler.records if "BEGIN PROG LOAD LOG" in r.getMessage()]
    assert sorted(r.getMessage().split("'")[1] for r in logs) == ["bpf_func_debug", "bpf_func_process",
                                                                   "main_func"]
    assert all("processed " in r.getMessage() and r.levelno == logging.DEBUG for r in logs)


def test_verifier_error_with_a_log_level_still_carries_log_and_source(objs: Path) -> None:
    before = fds()
    with pytest.raises(VerifierError) as ei:
        BpfObject(objs / "bad_verifier.o", log_level=2).load()
    e = ei.value
    assert e.prog == "bad_deref" and e.insn == 7 and "invalid mem access" in e.log
    assert "END PROG LOAD LOG" not in e.log and e.source is not None and e.source[1] == 29
    assert fds() == before
    with pytest.raises(BpfError, match="log level"):
        BpfObject(objs / "xdp_counter.o", log_level=-1)


_NORMALISED_SRC = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __uint(max_entries, 4); __type(key, __u32); __type(value, __u32); }
    devs SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 5000); } rb SEC(".maps");
SEC("xdp") int redir(struct xdp_md *ctx)
{
    void *e = bpf_ringbuf_reserve(&rb, 4, 0);
    if (e)
        bpf_ringbuf_discard(e, 0);
    return bpf_redirect_map(&devs, 0, 0);
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_reuse_check_ignores_the_kernels_devmap_flag_and_ringbuf_rounding(tmp_path: Path, bpffs: Path) -> None:
    o = build_bpf(tmp_path, "norm", _NORMALISED_SRC)
    with BpfObject(o) as first:
        first.load()
        info = {n: m.info() for n, m in first.maps.items()}
        # what the kernel made differs from the definition: the false alarms to ignore
        assert info["devs"].flags & 0x80 and info["rb"].max_entries == 8192  # BPF_F_RDONLY_PROG
        with BpfObject(o) as second:
            second.reuse_map("devs", first.maps["devs"])
            second.reuse_map("rb", first.maps["rb"])
            second.load()
            assert second.maps["rb"].info().id == info["rb"].id
        with BpfObject(o) as third:  # a real difference is still one
            third.set_max_entries("rb", 20000)
            with pytest.raises(MapIncompatibleError, match="max_entries 32768 != 8192"):
                third.reuse_map("rb", first.maps["rb"])
        for h in first.maps.values():
            h.close()


def test_a_program_type_the_kernel_lacks_is_named_as_such(objs: Path) -> None:
    from pybpfobj.errors import UnsupportedError

    before = fds()
    obj = BpfObject(objs / "bad_section.o")
    obj.set_prog_type(60)  # no kernel has program type 60 (yet)
    with pytest.raises(UnsupportedError, match=r"program 'unknown_sec_prog' .* has type unknown \(60\), which this kernel rejected \(it may not support it\)"):
        obj.load()
    assert fds() == before


def test_a_directory_as_object_is_refused_before_libbpf_and_leaks_no_fd(tmp_path: Path,
                                                                          need_root: None) -> None:
    from pybpfobj.errors import ObjectOpenError

    before = fds()
    with pytest.raises(ObjectOpenError) as info:
        BpfObject(tmp_path)
    assert info.value.errno == errno.EISDIR and str(tmp_path) in str(info.value)
    assert info.value.exit_code == 255
    assert fds() == before


def test_a_path_with_a_nul_byte_is_refused_not_cut_short(objs: Path, need_root: None) -> None:
    # C sees the path only up to the NUL: libbpf would quietly open xdp_counter.o
    from pybpfobj.errors import ObjectOpenError

    before = fds()
    with pytest.raises(ObjectOpenError) as info:
        BpfObject(f"{objs / 'xdp_counter.o'}\0.bak")
    assert info.value.errno == errno.EINVAL and "NUL byte" in str(info.value)
    assert fds() == before


def test_a_file_name_that_is_not_utf8_loads(objs: Path, tmp_path: Path, need_root: None) -> None:
    # os.listdir and friends hand such names over with surrogate escapes
    raw = os.fsencode(tmp_path) + b"/counter-\xff.o"
    with open(raw, "wb") as f:
        f.write((objs / "xdp_counter.o").read_bytes())
    with BpfObject(os.fsdecode(raw)) as obj:
        obj.load()
        assert obj.program_names() == ["xdp_count"]


def test_a_pin_root_with_a_nul_byte_is_refused(objs: Path, bpffs: Path) -> None:
    with pytest.raises(BpfError, match="contains a NUL byte"):
        BpfObject(objs / "pinbyname.o", pin_root=f"{bpffs}\0/elsewhere")


def test_a_program_failure_names_libbpfs_first_cause_not_its_follow_ups(objs: Path, need_root: None) -> None:
    # profiler.o's fentry/XXX targets a function no kernel has: libbpf says so first, then
    # "failed to prepare load attributes" and "failed to load object": the error keeps the cause
    obj = BpfObject(objs / "profiler.o")
    with pytest.raises(ProgramError) as info:
        obj.load()
    assert str(info.value) == ("failed to load object file: program 'fentry_XXX': "
                               "failed to find kernel BTF type ID of 'XXX': -3")
    assert info.value.errno == errno.ESRCH and obj.state == "closed"


def test_a_load_refused_before_verification_is_no_verifier_rejection(objs: Path) -> None:
    # xdp code loaded as struct_ops: the kernel answers ENOTSUPP (524) with a log of
    # statistics only ("processed 0 insns"); nothing was rejected by the verifier
    obj = BpfObject(objs / "xdp_counter.o")
    obj.set_prog_type("struct_ops")
    with pytest.raises(ProgramError) as info:
        obj.load()
    assert not isinstance(info.value, VerifierError) and info.value.errno == 524
    assert str(info.value) == ("failed to load object file: program 'xdp_count': the kernel refused it as "
                               "type struct_ops: operation not supported (ENOTSUPP)")
    assert obj.state == "closed"


def test_a_type_this_kernel_forbids_is_named_with_its_section(tmp_path: Path) -> None:
    # fentry and lsm programs are refused here with EPERM (the note in ProgramError replaces
    # libbpf's "try raising 'ulimit -l'", which misleads as root)
    from loader_testutil import build_bpf

    src = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("fentry/do_nanosleep") int fe(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"""
    with BpfObject(build_bpf(tmp_path, "fe", src)) as obj, pytest.raises(ProgramError) as info:
        obj.load()
    e = info.value
    assert e.errno == errno.EPERM  # this machine's kernel refuses fentry/fexit/lsm programs
    assert str(e) == ("failed to load object file: program 'fe': the kernel refused it as type tracing "
                      "(section 'fentry/do_nanosleep'): Operation not permitted (a security policy, "
                      "lockdown or this kernel's build may forbid the type)")
    assert e.prog == "fe" and e.obj == "fe"


_KEYED = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct pair { __u32 a; __u32 b; };
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8);
    __type(key, KEY);
    __type(value, __u64);
} keyed SEC(".maps");
SEC("xdp") int use(struct xdp_md *ctx)
{
    KEY k = {};
    return bpf_map_lookup_elem(&keyed, &k) ? XDP_PASS : XDP_DROP;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_the_reuse_check_compares_key_size_and_btf_key_type(tmp_path: Path) -> None:
    from pybpfobj.maps import Map

    u64 = build_bpf(tmp_path, "key_u64", "#define KEY __u64\n" + _KEYED)
    pair = build_bpf(tmp_path, "key_pair", "#define KEY struct pair\n" + _KEYED)
    with BpfObject(u64) as base, Map.create("hash", 4, 8, 8, name="keyed") as small:
        base.load()
        with BpfObject(pair) as o:  # same sizes, another key type
            with pytest.raises(MapIncompatibleError) as ei:
                o.reuse_map("keyed", base.maps["keyed"])
            assert set(ei.value.differences) == {"btf_key_type"}
        with BpfObject(u64) as o:  # a 4-byte key (no BTF on that side: sizes only)
            with pytest.raises(MapIncompatibleError) as ei:
                o.reuse_map("keyed", small)
            assert set(ei.value.differences) == {"key_size"} and "key_size 8 != 4" in str(ei.value)
        with BpfObject(u64) as o:  # the same map's own type: compatible
            o.reuse_map("keyed", base.maps["keyed"])
            o.load()


_NESTED = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct inner { __u8 a; char n[4]; };
struct outer {
    struct inner in[2];
    union { __u32 x; __u16 y; };
    __u8 bits : 3;
    __u8 more : 5;
    __s16 neg;
};
const volatile struct outer conf = { .in = { { 1, "ab" }, { 2, "cd" } }, .x = 0x11223344, .bits = 5,
                                     .more = 9, .neg = -3 };
const volatile __u32 grid[2][3] = { { 1, 2, 3 }, { 4, 5, 6 } };
SEC("xdp") int use(struct xdp_md *ctx) { return conf.in[1].a + grid[1][2] ? XDP_PASS : XDP_DROP; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_set_var_takes_dicts_and_lists_nested_and_keeps_what_they_leave_out(tmp_path: Path) -> None:
    from pybpfobj.spec.btf import BtfKind
    from pybpfobj.spec.ctypes_types import CTypesBuilder
    from pybpfobj.spec.elf import ObjectSpec

    obj = build_bpf(tmp_path, "nested", _NESTED)
    with BpfObject(obj) as o:
        o.set_var("conf", {"in": [{"n": "xy"}, {"a": 9}], "y": 0x5566, "bits": 7, "neg": -300})
        o.set_var("grid", [[10], []])
        conf, grid = o.get_var("conf"), o.get_var("grid")
        with pytest.raises(BpfError, match=r"conf\.bits: 8 does not fit"):
            o.set_var("conf", {"bits": 8})  # a 3-bit field
        with pytest.raises(BpfError, match=r"conf\.in\[0\]\.n: a string of 4 bytes does not fit char\[4\] with its NUL"):
            o.set_var("conf", {"in": [{"n": "wxyz"}]})
        with pytest.raises(BpfError, match=r"grid\[0\]: an array needs a list, got int"):
            o.set_var("grid", [1])
        assert o.get_var("conf") == conf  # a refused value changes nothing
        o.load()
    btf = ObjectSpec.from_file(obj).btf
    assert btf is not None
    conf_type = next(t.type_id for t in btf.types() if t.kind == BtfKind.VAR and t.name == "conf")
    c = CTypesBuilder(btf).build(conf_type).from_buffer_copy(conf)
    ins = getattr(c, "in")
    assert (ins[0].a, ins[0].n, ins[1].a, ins[1].n) == (1, b"xy", 9, b"cd")  # a and n as compiled
    assert (c.y, c.x >> 16, c.bits, c.more, c.neg) == (0x5566, 0x1122, 7, 9, -300)
    assert [int.from_bytes(grid[i:i + 4], "little") for i in range(0, 24, 4)] == [10, 2, 3, 4, 5, 6]


_SHAPES = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
enum color { RED = 1, GREEN = 2, BLUE = -4 };
struct odd {
    int _fields_; int _pack_; int _pack__; int _objects;          /* ctypes' own attribute names */
    unsigned int c : 11; unsigned long long d : 49; unsigned char sc : 4; unsigned ng : 4;
    char ch : 4; _Bool flag : 1; signed char s : 3;
    __int128 big;
    unsigned char raw[4];
    enum color col;
    union { __u32 x; struct { __u16 lo, hi; }; };
    float f;
};
/* what C makes of the values set below: the two must be byte for byte the same */
const volatile struct odd expect = { ._fields_ = 1, ._pack_ = 2, ._pack__ = 3, ._objects = 4,
    .c = 2047, .d = 0x1ffffffffffffULL, .sc = 15, .ng = 9, .ch = -2, .flag = 1, .s = -4,
    .big = ((__int128)1 << 100) + 5, .raw = "ab", .col = BLUE, .lo = 0x1234, .hi = 0x5678, .f = 1.5f };
const volatile struct odd got = {};
const volatile _Bool yes = 0;
const volatile _Bool flags[4] = {};
const volatile char text[8] = "";
const volatile float fl = 0;
SEC("xdp") int use(struct xdp_md *ctx) { return expect.c + got.c + yes + flags[0] + text[0] ? XDP_PASS : XDP_DROP; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_set_var_writes_what_c_would_for_every_shape(tmp_path: Path) -> None:
    obj = build_bpf(tmp_path, "shapes", _SHAPES)
    with BpfObject(obj) as o:
        o.set_var("got", {"_fields_": 1, "_pack_": 2, "_pack__": 3, "_objects": 4,
                          "c": 2047, "d": (1 << 49) - 1, "sc": 15, "ng": 9, "ch": -2, "flag": True, "s": -4,
                          "big": (1 << 100) + 5, "raw": "ab", "col": "BLUE", "lo": 0x1234, "hi": 0x5678,
                          "f": 1.5})
        assert o.get_var("got") == o.get_var("expect")
        before = o.get_var("got")
        for value, message in (
                ({"c": 2048}, r"got\.c: 2048 does not fit an unsigned 11-bit integer"),
                ({"ch": 8}, r"got\.ch: 8 does not fit a signed 4-bit integer"),
                ({"flag": 2}, r"got\.flag: a bool needs true or false"),
                ({"f": 1e300}, r"got\.f: 1e\+300 does not fit a 32-bit float"),
                ({"f": 10 ** 400}, r"got\.f: \d+ does not fit a 32-bit float"),
                ({"col": "PURPLE"}, r"got\.col: 'PURPLE' is none of RED, GREEN, BLUE"),
                ({"raw": "abcd"}, r"got\.raw: a string of 4 bytes does not fit char\[4\]"),
                ({"raw": "\ud800"}, r"got\.raw: surrogates not allowed"),
                ({"_fields__": 1}, r"struct odd\): no member '_fields__'"),
                ({"x": None}, r"got\.x: an integer needs an int, got None"),
                ({"x": b"\x01"}, r"got\.x: 1 bytes given for a 4-byte value"),
        ):
            with pytest.raises(BpfError, match=message):
                o.set_var("got", value)
        assert o.get_var("got") == before  # nothing written by a refused value
        with pytest.raises(BpfError, match=r"variable 'yes' \(const volatile _Bool\): a bool needs true or false"):
            o.set_var("yes", 2)
        o.set_var("yes", "true")  # a command line's word
        assert o.get_var("yes") == b"\x01"
        with pytest.raises(BpfError, match=r"\): an array needs a list, got str"):
            o.set_var("flags", "abc")  # a bool array is no byte array
        with pytest.raises(BpfError, match=r"\): surrogates not allowed"):
            o.set_var("text", "\ud800")
        with pytest.raises(BpfError, match=r"\): 1e400 does not fit a 32-bit float"):
            o.set_var("fl", "1e400")  # a command line's word: no infinity unless it says so
        o.set_var("fl", "-inf")
        assert o.get_var("fl") == b"\x00\x00\x80\xff"
        from pybpfobj.cli.common import CliError
        from pybpfobj.cli.prog_load import _set_var

        with pytest.raises(CliError, match=r"var got: invalid JSON value .*: number 1e400 is out of range"):
            _set_var(o, "got", '{"f": 1e400}')
        o.load()


def test_map_values_given_as_dicts_are_laid_out_as_c_would(tmp_path: Path) -> None:
    obj = build_bpf(tmp_path, "shapes_map", _SHAPES + """
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, __u32);
         __type(value, struct odd); } odds SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32);
         __type(value, char[8]); } names SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, __u32);
         __type(value, __u32[2]); } pairs SEC(".maps");
struct rt { char ch : 4; unsigned char raw[4]; __int128 big; float f; };
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32);
         __type(value, struct rt); } rts SEC(".maps");
""")
    with BpfObject(obj) as o:
        o.load()
        m = o.maps["odds"]
        m[1] = {"_fields_": 1, "_pack_": 2, "_pack__": 3, "_objects": 4, "c": 2047, "d": (1 << 49) - 1,
                "sc": 15, "ng": 9, "ch": -2, "flag": True, "s": -4, "big": (1 << 100) + 5, "raw": "ab",
                "col": "BLUE", "lo": 0x1234, "hi": 0x5678, "f": 1.5}
        assert bytes(m[1]) == o.get_var("expect")  # the compiler's own bytes for the same values
        with pytest.raises(MapError, match=r"of map 'odds': c: 2048 does not fit an unsigned 11-bit integer"):
            m[2] = {"c": 2048}
        assert 2 not in m
        assert isinstance(m[1], bytes)  # a layout ctypes cannot reproduce reads as bytes
        rts = o.maps["rts"]
        rts[0] = {"ch": -2, "raw": "ab", "big": (1 << 100) + 5, "f": 1.5}
        read = rts[0]
        assert read.ch == -2  # a signed char bitfield reads signed
        rts[1] = {"ch": read.ch, "big": read.big, "raw": read.raw, "f": read.f}  # a read's values, written back
        assert bytes(rts[1]) == bytes(read)
        pairs = o.maps["pairs"]
        pairs[0] = [1, 2]  # one array value: for every CPU
        assert [list(v) for v in pairs[0]] == [[1, 2]] * pairs.ncpus
        pairs[0] = [[c, c + 1] for c in range(pairs.ncpus)]  # one array value per CPU
        assert [list(v) for v in pairs[0]] == [[c, c + 1] for c in range(pairs.ncpus)]
        pairs[0] = [memoryview(struct.pack("<II", c, 7)) for c in range(pairs.ncpus)]  # buffers, per CPU
        assert [list(v) for v in pairs[0]] == [[c, 7] for c in range(pairs.ncpus)]
        names = o.maps["names"]
        names[0] = "hi"  # a char array value takes a string (NUL-padded), and short bytes
        names[1] = b"xy"
        assert (bytes(names[0]), bytes(names[1])) == (b"hi".ljust(8, b"\0"), b"xy".ljust(8, b"\0"))
