"""ObjectSpec on every object of bpf_progs/: programs, maps, inner specs, initial values, variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pybpfobj import constants
from pybpfobj.errors import NotFoundError, ObjectFormatError
from pybpfobj.spec.elf import ObjectSpec

# every bpf_progs/*.bpf.c, so an object added there is read by these tests at once
ALL_OBJECTS = sorted(p.name[:-len(".bpf.c")]
                     for p in (Path(__file__).resolve().parents[2] / "bpf_progs").glob("*.bpf.c"))


def spec(objs: Path, name: str) -> ObjectSpec:
    return ObjectSpec.from_file(objs / f"{name}.o")


def progs(o: ObjectSpec) -> list[tuple[str, str, str | None, str | None]]:
    return [(p.name, p.section, p.prog_type, p.expected_attach_type) for p in o.programs]


def mapsig(o: ObjectSpec) -> list[tuple[str, str, int, int, int, int]]:
    return [(m.name, m.type_name, m.key_size, m.value_size, m.max_entries, m.flags) for m in o.maps]


@pytest.mark.parametrize("name", ALL_OBJECTS)
def test_every_built_object_parses_and_serialises(objs: Path, name: str) -> None:
    o = spec(objs, name)
    assert o.name == name
    assert o.btf is not None and o.btf_ext is not None
    assert o.license in ("GPL", "Dual BSD/GPL")
    assert o.programs
    for p in o.programs:
        assert p.insn_count == len(p.insns) // 8 > 0
        assert p.license == o.license
        assert p.func_info and p.func_info[0][0] == 0   # each program starts with its FUNC
        assert all(0 <= li.insn_off < p.insn_count for li in p.line_info)
    json.dumps(o.to_dict())


def test_from_bytes_equals_from_file(objs: Path) -> None:
    data = (objs / "globals.o").read_bytes()
    a = ObjectSpec.from_bytes(data, name="globals.o")
    b = spec(objs, "globals")
    assert a.to_dict() | {"path": ""} == b.to_dict() | {"path": ""}


def test_object_name_is_basename_up_to_first_dot(objs: Path) -> None:
    o = ObjectSpec.from_bytes((objs / "xdp_counter.o").read_bytes(), name="/x/y/my.prog.o")
    assert o.name == "my"
    assert o.map(".rodata").name == "my.rodata"


def test_maps_all_map_order_types_and_sizes(objs: Path) -> None:
    o = spec(objs, "maps_all")
    assert mapsig(o) == [
        ("inner_a", "array", 4, 8, 4, 0),
        ("inner_b", "array", 4, 8, 4, 0),
        ("outer_arr", "array_of_maps", 4, 4, 4, 0),
        ("jumps", "prog_array", 4, 4, 4, 0),
        ("flows", "hash", 16, 96, 1024, 0),
        ("sized_array", "array", 4, 8, 8, 0),
        ("plain_array", "array", 4, 8, 4, 0),
        ("pcpu_hash", "percpu_hash", 4, 8, 128, 0),
        ("pcpu_array", "percpu_array", 4, 8, 2, 0),
        ("lru", "lru_hash", 4, 96, 256, 0),
        ("routes", "lpm_trie", 8, 4, 64, constants.BPF_F_NO_PREALLOC),
        ("queue", "queue", 0, 4, 16, 0),
        ("stack", "stack", 0, 8, 16, 0),
        ("bloom", "bloom_filter", 0, 4, 100, 0),
        ("outer_hash", "hash_of_maps", 4, 4, 8, 0),
        ("events", "ringbuf", 0, 0, 4096, 0),
        ("perf_events", "perf_event_array", 4, 4, 0, 0),
        ("jumps_empty", "prog_array", 4, 4, 2, 0),
    ]
    assert o.map_index("flows") == 4
    assert o.map("bloom").map_extra == 3
    assert not any(m.internal for m in o.maps)


def test_maps_all_btf_key_value_types(objs: Path) -> None:
    o = spec(objs, "maps_all")
    btf = o.btf
    assert btf is not None
    names = {m.name: (btf.type_name(m.key_type_id) if m.key_type_id else None,
                      btf.type_name(m.value_type_id) if m.value_type_id else None) for m in o.maps}
    assert names["flows"] == ("struct flow_key", "struct flow_value")
    assert names["pcpu_hash"] == ("flow_id_t", "__u64")
    assert names["plain_array"] == ("__u32", "counter_t")
    assert names["routes"] == ("struct lpm_v4_key", "__u32")
    assert names["sized_array"] == (None, None)   # __uint(key_size/value_size): no BTF types
    assert names["queue"] == (None, "__u32")
    assert names["outer_arr"] == ("__u32", None)


def test_maps_all_value_struct_shapes(objs: Path) -> None:
    from pybpfobj.spec.btf import BtfKind

    o = spec(objs, "maps_all")
    btf = o.btf
    assert btf is not None
    fv = btf.resolve(o.map("flows").value_type_id)
    members = {m.name: m for m in fv.members}
    assert members["flags_syn"].bitfield_size == 1 and members["ttl"].bitfield_size == 8
    assert btf.resolve(members["nexthop"].type_id).kind == BtfKind.UNION
    assert btf.resolve(members["state"].type_id).kind == BtfKind.ENUM
    assert btf.type_name(members["comm"].type_id) == "char[16]"
    assert "" in members and btf.resolve(members[""].type_id).kind == BtfKind.STRUCT  # anonymous


def test_map_in_map_inner_specs_and_initial_values(objs: Path) -> None:
    o = spec(objs, "maps_all")
    outer = o.map("outer_arr")
    assert outer.inner is not None
    assert (outer.inner.name, outer.inner.type_name, outer.inner.key_size, outer.inner.value_size,
            outer.inner.max_entries) == ("outer_arr.inner", "array", 4, 8, 4)
    assert outer.init_values == {0: "inner_a", 1: "inner_b"}
    oh = o.map("outer_hash")
    assert oh.inner is not None and oh.init_values == {}
    assert (oh.inner.type_name, oh.inner.key_size, oh.inner.value_size, oh.inner.max_entries) == (
        "hash", 4, 4, 16)


def test_prog_array_initial_values_name_programs(objs: Path) -> None:
    o = spec(objs, "maps_all")
    assert o.map("jumps").init_values == {0: "xdp_tail_a", 2: "xdp_tail_b"}
    assert o.map("jumps").inner is None
    assert o.map("jumps_empty").init_values == {}


def test_maps_all_programs_in_section_then_offset_order(objs: Path) -> None:
    o = spec(objs, "maps_all")
    assert progs(o) == [
        ("xdp_tail_a", "xdp", "xdp", "xdp"), ("xdp_tail_b", "xdp", "xdp", "xdp"),
        ("xdp_maps", "xdp", "xdp", "xdp"), ("sock_maps", "socket", "socket_filter", None)]
    p = o.program("xdp_maps")
    assert set(p.map_relocs.values()) == {m.name for m in o.maps} - {"inner_a", "inner_b"}
    for insn in p.map_relocs:
        assert p.insns[insn * 8] == 0x18   # ld_imm64


def test_pinning_by_name(objs: Path) -> None:
    o = spec(objs, "pinbyname")
    assert [(m.name, m.pinning) for m in o.maps] == [("pinned_hash", 1), ("unpinned", 0)]


def test_globals_internal_maps_names_flags_and_order(objs: Path) -> None:
    o = spec(objs, "globals")
    ro, rw = constants.BPF_F_MMAPABLE | constants.BPF_F_RDONLY_PROG, constants.BPF_F_MMAPABLE
    assert [(m.name, m.section, m.value_size, m.flags, m.internal) for m in o.maps] == [
        ("globals.rodata", ".rodata", 40, ro, True),
        ("globals.data", ".data", 28, rw, True),
        (".data.custom", ".data.custom", 24, rw, True),
        ("globals.bss", ".bss", 28, rw, True),
    ]
    for m in o.maps:
        assert (m.type_name, m.key_size, m.max_entries) == ("array", 4, 1)
        assert o.btf is not None and o.btf.type(m.value_type_id).name == m.section


def test_globals_variables_and_initial_bytes(objs: Path) -> None:
    o = spec(objs, "globals")
    rodata = o.map(".rodata")
    v = {x.name: x for x in rodata.variables}
    assert list(v) == ["verdict", "threshold", "cfg", "favourite", "bpf_metadata_version",
                       "bpf_metadata_build"]
    assert v["verdict"].initial == (2).to_bytes(4, "little")
    assert v["threshold"].initial == (1000).to_bytes(8, "little")
    assert v["cfg"].initial == b"\x03\x00\x00\x00\x90\x1f\x01abcd\x00"
    assert v["bpf_metadata_version"].initial == b"1.0\x00"
    assert v["bpf_metadata_build"].initial == (42).to_bytes(4, "little")
    assert rodata.data[v["threshold"].offset:v["threshold"].offset + 8] == v["threshold"].initial
    data = {x.name: x for x in o.map(".data").variables}
    assert data["last_len"].initial == b"\xff\xff\xff\xff"
    assert data["greeting"].initial == b"hello\x00\x00\x00"
    assert data["ports"].initial == b"\x16\x00\x50\x00\xbb\x01\x90\x1f"
    bss = o.map(".bss")
    assert [(x.name, x.size) for x in bss.variables] == [("counter", 8), ("bytes_total", 8),
                                                          ("seen_cfg", 12)]
    assert bss.data == bytes(28) and all(x.initial == bytes(x.size) for x in bss.variables)
    custom = o.map(".data.custom")
    assert custom.variable("custom_val").initial == (0xDEADBEEF).to_bytes(4, "little")
    assert custom.variable("custom_arr").offset == 8


def test_globals_program_relocations_point_at_data_maps(objs: Path) -> None:
    o = spec(objs, "globals")
    p = o.program("xdp_globals")
    targets = {r.target for r in p.relocations}
    assert targets == {"globals.rodata", "globals.data", ".data.custom", "globals.bss"}
    assert all(r.kind == "map_value" for r in p.relocations)


def test_internal_map_name_for_long_object_name(objs: Path) -> None:
    o = ObjectSpec.from_bytes((objs / "xdp_counter.o").read_bytes(), name="xdp_counter.o")
    # prefix cut to 8 characters so the name fits the kernel's 15
    assert o.maps[1].name == "xdp_coun.rodata"
    assert o.map(".rodata") is o.maps[1]


def test_progs_all_types_and_sections(objs: Path) -> None:
    o = spec(objs, "progs_all")
    assert progs(o) == [
        ("xdp_count_proto", "xdp", "xdp", "xdp"),
        ("tc_count_proto", "tc", "sched_cls", None),
        ("tc_classifier", "classifier", "sched_cls", None),
        ("socket_filter", "socket", "socket_filter", None),
        ("kprobe_unlinkat", "kprobe/do_unlinkat", "kprobe", None),
        ("tp_openat", "tracepoint/syscalls/sys_enter_openat", "tracepoint", None),
        ("raw_tp_sys_enter", "raw_tracepoint/sys_enter", "raw_tracepoint", None),
        ("cgroup_skb_ingress", "cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"),
        ("sk_msg_redirect", "sk_msg", "sk_msg", "sk_msg_verdict"),
        ("sk_skb_parser", "sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser"),
        ("sk_skb_verdict", "sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict"),
        ("flow_dissect", "flow_dissector", "flow_dissector", "flow_dissector"),
    ]
    assert mapsig(o)[:2] == [("xdp_proto_count", "array", 4, 16, 256, 0),
                             ("tc_proto_count", "array", 4, 16, 256, 0)]
    assert {m.name: m.type_name for m in o.maps}["sock_map"] == "sockmap"
    assert {m.name: m.type_name for m in o.maps}["sock_hash"] == "sockhash"


def test_tailcall_object(objs: Path) -> None:
    o = spec(objs, "tailcall")
    assert [p.name for p in o.programs] == ["main_func", "bpf_func_process", "bpf_func_debug"]
    jt = o.map("jmp_table")
    assert (jt.type_name, jt.key_size, jt.value_size, jt.max_entries, jt.init_values) == (
        "prog_array", 4, 4, 8, {})
    assert o.program("main_func").map_relocs == {0: "jmp_table"}


def test_mapinmap_object(objs: Path) -> None:
    o = spec(objs, "mapinmap")
    assert [m.name for m in o.maps] == ["inner_map0", "outer_array", "outer_hash"]
    assert o.map("outer_array").init_values == {0: "inner_map0"}
    inner = o.map("outer_hash").inner
    assert inner is not None and (inner.type_name, inner.max_entries, inner.value_size) == ("hash", 8, 8)


def test_needs_sizing_maps_have_no_max_entries(objs: Path) -> None:
    o = spec(objs, "needs_sizing")
    assert mapsig(o) == [("unsized_rb", "ringbuf", 0, 0, 0, 0),
                         ("unsized_stacks", "stack_trace", 4, 0, 0, 0)]


def test_bad_section_program_has_no_type(objs: Path) -> None:
    o = spec(objs, "bad_section")
    assert progs(o) == [("unknown_sec_prog", "foo/bar", None, None)]
    assert o.maps == []


def test_newsec_types_come_from_our_table(objs: Path) -> None:
    o = spec(objs, "newsec")
    assert progs(o) == [
        ("tcx_in", "tcx/ingress", "sched_cls", "tcx_ingress"),
        ("tcx_out", "tcx/egress", "sched_cls", "tcx_egress"),
        ("netkit_primary", "netkit/primary", "sched_cls", "netkit_primary"),
        ("netkit_peer", "netkit/peer", "sched_cls", "netkit_peer"),
        ("nf_accept", "netfilter", "netfilter", "netfilter"),
    ]


def test_bad_verifier_has_line_info_for_the_bad_line(objs: Path) -> None:
    o = spec(objs, "bad_verifier")
    p = o.program("bad_deref")
    bad = [li for li in p.line_info if "BAD LINE" in li.line]
    assert len(bad) == 1 and bad[0].file_name.endswith("bad_verifier.bpf.c")
    assert p.insns[bad[0].insn_off * 8] == 0x79   # the ldx through the unchecked pointer


def test_lookups_raise_not_found(objs: Path) -> None:
    o = spec(objs, "tailcall")
    with pytest.raises(NotFoundError, match="no map named 'nope'"):
        o.map("nope")
    with pytest.raises(NotFoundError, match="no program named 'nope'"):
        o.program("nope")


def test_missing_file_is_an_object_format_error_with_errno(tmp_path: Path) -> None:
    with pytest.raises(ObjectFormatError, match="cannot read object file") as ei:
        ObjectSpec.from_file(tmp_path / "missing.o")
    assert ei.value.errno == 2


@pytest.mark.parametrize("data, what", [
    (b"", "not an ELF file"),
    (b"hello world, this is no ELF", "not an ELF file"),
    (b"\x7fELF\x01\x01\x01" + bytes(60), "64-bit"),
])
def test_garbage_is_rejected(data: bytes, what: str) -> None:
    with pytest.raises(ObjectFormatError, match=what) as ei:
        ObjectSpec.from_bytes(data, name="junk.o")
    assert "junk.o" in str(ei.value)


def test_wrong_machine_is_rejected(objs: Path) -> None:
    data = bytearray((objs / "tailcall.o").read_bytes())
    data[18:20] = (62).to_bytes(2, "little")   # EM_X86_64
    with pytest.raises(ObjectFormatError, match="not a BPF object.*EM_BPF 247"):
        ObjectSpec.from_bytes(bytes(data), name="x86.o")


def test_truncated_object_names_the_section(objs: Path) -> None:
    data = (objs / "tailcall.o").read_bytes()
    with pytest.raises(ObjectFormatError, match="tailcall.o"):
        ObjectSpec.from_bytes(data[: len(data) // 2], name="tailcall.o")


def test_host_object_file_is_not_bpf(tmp_path: Path) -> None:
    import shutil
    import subprocess

    cc = shutil.which("clang-19") or shutil.which("clang")
    if cc is None:
        pytest.skip("no clang")
    src = tmp_path / "h.c"
    src.write_text("int f(void) { return 1; }\n")
    subprocess.run([cc, "-c", str(src), "-o", str(tmp_path / "h.o")], check=True)
    with pytest.raises(ObjectFormatError, match="not a BPF object"):
        ObjectSpec.from_file(tmp_path / "h.o")


# -- objects compiled on the fly for the error paths ------------------------------

_HDR = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
_PROG = ('SEC("xdp") int p(struct xdp_md *ctx) { __u32 k = 0; bpf_map_lookup_elem(&m, &k); '
         'return XDP_PASS; }\nchar LICENSE[] SEC("license") = "GPL";\n')


def compile_bpf(tmp_path: Path, src: str, name: str = "t") -> Path:
    import shutil
    import subprocess

    cc = shutil.which("clang-19") or shutil.which("clang")
    if cc is None:
        pytest.skip("no clang")
    c = tmp_path / f"{name}.bpf.c"
    c.write_text(_HDR + src)
    o = tmp_path / f"{name}.o"
    import platform

    incl = f"-I/usr/include/{platform.machine()}-linux-gnu"
    subprocess.run([cc, "-O2", "-g", "-target", "bpf", incl, "-c", str(c), "-o", str(o)], check=True)
    return o


def test_unknown_map_field_raises_unless_mapcompat(tmp_path: Path) -> None:
    o = compile_bpf(tmp_path, """
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32);
         __type(value, __u64); __uint(frobnicate, 3); } m SEC(".maps");
""" + _PROG)
    with pytest.raises(ObjectFormatError, match="map 'm': unknown field 'frobnicate'"):
        ObjectSpec.from_file(o)
    spec = ObjectSpec.from_file(o, mapcompat=True)
    assert (spec.maps[0].type_name, spec.maps[0].max_entries) == ("array", 2)


def test_conflicting_key_size_raises(tmp_path: Path) -> None:
    o = compile_bpf(tmp_path, """
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 2); __type(key, __u32);
         __uint(key_size, 8); __type(value, __u64); } m SEC(".maps");
""" + _PROG)
    with pytest.raises(ObjectFormatError, match="map 'm': conflicting key size 8 != 4"):
        ObjectSpec.from_file(o)


def test_invalid_pinning_value_raises(tmp_path: Path) -> None:
    o = compile_bpf(tmp_path, """
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 2); __type(key, __u32);
         __uint(pinning, 5); __type(value, __u64); } m SEC(".maps");
""" + _PROG)
    with pytest.raises(ObjectFormatError, match="invalid pinning value 5"):
        ObjectSpec.from_file(o)


def test_static_program_is_refused_like_libbpf(tmp_path: Path) -> None:
    o = compile_bpf(tmp_path, """
SEC("xdp") static __attribute__((used)) int hidden(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
""")
    with pytest.raises(ObjectFormatError, match="program 'hidden' in section 'xdp' is static"):
        ObjectSpec.from_file(o)


def test_text_subprograms_are_not_programs(tmp_path: Path) -> None:
    o = compile_bpf(tmp_path, """
__attribute__((noinline)) int helper(int x) { return x + 1; }
SEC("xdp") int p(struct xdp_md *ctx) { return helper(ctx->ingress_ifindex) & 1; }
char LICENSE[] SEC("license") = "GPL";
""")
    spec = ObjectSpec.from_file(o)
    assert [p.name for p in spec.programs] == ["p"]
    assert [p.name for p in spec.subprograms] == ["helper"]
    assert [(r.kind, r.target) for r in spec.programs[0].relocations] == [("call", "helper")]


def test_a_bss_subsection_is_a_map_of_its_own_as_the_system_libbpf_makes_it(tmp_path: Path) -> None:
    # libbpf 1.1.2 (Debian's libbpf1) maps .bss.* sections; bpftool 7.1's bundled libbpf refuses them
    from pybpfobj.loader import BpfObject

    o = compile_bpf(tmp_path, """
int x SEC(".bss.extra");
SEC("xdp") int p(struct xdp_md *ctx) { x++; return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
""")
    spec = ObjectSpec.from_file(o)
    with BpfObject(o) as obj:  # libbpf's open: no root needed
        assert [m.name for m in spec.maps] == obj.map_names() == [".bss.extra"]


def test_corrupt_btf_raises_btf_error_naming_the_file(objs: Path) -> None:
    from pybpfobj.errors import BTFError

    data = bytearray((objs / "tailcall.o").read_bytes())
    pos = data.find(b"\x9f\xeb\x01")     # the .BTF header
    data[pos + 8:pos + 24] = b"\xff" * 16   # type/string offsets and lengths
    with pytest.raises(BTFError, match="btfbad.o"):
        ObjectSpec.from_bytes(bytes(data), name="btfbad.o")


def test_bad_relocation_symbol_index_raises(objs: Path) -> None:
    import struct as _s

    from elftools.elf.elffile import ELFFile

    data = bytearray((objs / "tailcall.o").read_bytes())
    import io

    elf = ELFFile(io.BytesIO(bytes(data)))
    rel = elf.get_section_by_name(".relxdp")
    off = rel.header["sh_offset"]
    _s.pack_into("<Q", data, off + 8, (0xFFFF << 32) | 1)
    with pytest.raises(ObjectFormatError, match="symbol index 65535 out of range"):
        ObjectSpec.from_bytes(bytes(data), name="badrel.o")

