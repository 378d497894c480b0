"""The Python API misused the way a demanding user would: every mistake is a pybpfobj error.

Use after close, configuration after load, arguments of the wrong type or
size: each raises an exception from :mod:`pybpfobj.errors` naming the object,
map or program, with ``errno`` set; never a ctypes, Type or Attribute error
from the library's insides, never a crash, never a leaked fd.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pybpfobj import events, tailcall
from pybpfobj.errors import BpfError, MapError, ProgramError
from pybpfobj.loader import BpfObject
from pybpfobj.maps import Map, MapClosedError
from pybpfobj.programs import Program

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent.parent
U32, U64 = ctypes.c_uint32, ctypes.c_uint64


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def loaded(need_root: None, objs: Path) -> Iterator[BpfObject]:
    with BpfObject(objs / "maps_all.o") as obj:
        obj.load()
        yield obj


@pytest.fixture
def hmap(need_root: None) -> Iterator[Map]:
    with Map.create("hash", 4, 8, 64, name="misuse", key_type=U32, value_type=U64) as m:
        yield m


# -- BpfObject ---------------------------------------------------------------


def test_closed_object_refuses_libbpf_pointers_instead_of_reading_freed_memory(objs: Path) -> None:
    # Before: section_of() on a closed object read libbpf's freed program and
    # crashed the interpreter (SIGSEGV); map_definition() returned garbage.
    code = textwrap.dedent(f"""
        from pybpfobj.loader import BpfObject
        from pybpfobj.errors import BpfError
        o = BpfObject({str(objs / "maps_all.o")!r}); o.load()
        progs, maps = o.program_names(), o.map_names()
        o.close()
        for call in (lambda: o.section_of(progs[0]), lambda: o.map_definition(maps[0]),
                     lambda: o.map_definition(0), lambda: o.autoattach(progs[0]),
                     lambda: o.set_autoattach(progs[0], False), lambda: o.section_map_name(".bss"),
                     lambda: o.get_var("x")):
            try:
                call()
            except BpfError as e:
                assert e.errno == 9 and "'maps_all' is closed" in str(e), e
            else:
                raise SystemExit("no error")
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_closed_object_lists_names_read_before_close_and_refuses_the_rest(loaded: BpfObject) -> None:
    names = loaded.program_names()
    loaded.close()
    loaded.close()  # twice is fine
    assert loaded.program_names() == names
    for call in (lambda: loaded.programs, lambda: loaded.maps, lambda: loaded.load(),
                 lambda: loaded.set_max_entries("flows", 1), lambda: loaded.pin_maps("/nonexistent")):
        with pytest.raises(BpfError, match="'maps_all' is closed") as ei:
            call()
        assert ei.value.errno in (errno.EBADF, errno.EBUSY)


@pytest.mark.parametrize("bad", [1.5, None, True])
def test_set_prog_type_of_the_wrong_type_is_a_bpf_error(need_root: None, objs: Path, bad: object) -> None:
    # Before: TypeError ("unsupported operand type(s) for +") for float/None; True meant type 1.
    with BpfObject(objs / "maps_all.o") as obj, pytest.raises(BpfError, match="invalid program type") as ei:
        obj.set_prog_type(bad)  # type: ignore[arg-type]
    assert ei.value.errno == errno.EINVAL


def test_object_configuration_arguments_of_the_wrong_type_are_bpf_errors(need_root: None, objs: Path) -> None:
    # Before: ctypes.ArgumentError (set_ifindex(1.5), set_attach_target(p, "x")), a silently
    # truncated ifindex (1 << 70), TypeError (BpfObject(None), pin paths) and AttributeError (name=5).
    with BpfObject(objs / "maps_all.o") as obj:
        prog = obj.program_names()[0]
        for call, msg in ((lambda: obj.set_ifindex(1.5), "invalid ifindex"),  # type: ignore[arg-type]
                          (lambda: obj.set_ifindex(1 << 70), "invalid ifindex"),
                          (lambda: obj.set_attach_target(prog, "x", "f"), "set_attach_target needs"),  # type: ignore[arg-type]
                          (lambda: obj.reuse_map(0, True), "cannot use True"),
                          (lambda: obj.reuse_map(0, fd="3"), "fd must be an int")):  # type: ignore[arg-type]
            with pytest.raises(BpfError, match=msg) as ei:
                call()
            assert ei.value.errno == errno.EINVAL
    for kw, msg in (({"source": None}, "object file must be a path"),
                    ({"source": 3}, "object file must be a path"),
                    ({"source": objs / "maps_all.o", "name": 5}, "object name must be a str"),
                    ({"source": objs / "maps_all.o", "pin_root": None}, "pin_root must be a str")):
        with pytest.raises(BpfError, match=msg):
            BpfObject(**kw)  # type: ignore[arg-type]


def test_pin_paths_of_the_wrong_type_are_bpf_errors(loaded: BpfObject) -> None:
    for call in (lambda: loaded.pin_first(None), lambda: loaded.pin_programs(5),  # type: ignore[arg-type]
                 lambda: loaded.pin_maps(None)):  # type: ignore[arg-type]
        with pytest.raises(BpfError, match="must be a path") as ei:
            call()
        assert ei.value.errno == errno.EINVAL


# -- Map -----------------------------------------------------------------------


def test_closed_map_raises_map_closed_error_naming_the_map(hmap: Map) -> None:
    # Before: a bare ValueError (still one: MapClosedError is also a ValueError).
    hmap.update(1, 1)
    hmap.close()
    hmap.close()
    for call in (lambda: hmap.lookup(1), lambda: hmap.update(1, 2), lambda: hmap.items(),
                 lambda: list(hmap), lambda: hmap.delete_batch([1]), lambda: 1 in hmap,
                 lambda: hmap.info(), lambda: hmap.fd):
        with pytest.raises(MapClosedError, match="map 'misuse' is closed") as ei:
            call()
        assert ei.value.errno == errno.EBADF and ei.value.map == "misuse"
        assert isinstance(ei.value, ValueError)


def test_closing_a_map_during_iteration_stops_it_with_a_map_error(hmap: Map) -> None:
    hmap.update_batch(list(range(8)), list(range(8)))
    it = iter(hmap)
    next(it)
    hmap.close()
    with pytest.raises(MapError, match="'misuse'") as ei:
        list(it)
    assert ei.value.errno == errno.EBADF


def test_deleting_while_iterating_visits_every_key_once(hmap: Map) -> None:
    hmap.update_batch(list(range(20)), list(range(20)))
    seen = []
    for k in hmap:
        hmap.delete(k)
        seen.append(k)
    assert sorted(seen) == list(range(20))
    assert hmap.keys() == []


@pytest.mark.parametrize("flags", ["bogus", 1.5, None, [], -1, 1 << 70])
def test_bad_update_flags_are_map_errors_on_every_path(hmap: Map, loaded: BpfObject, flags: object) -> None:
    # Before: KeyError ('bogus'), TypeError (1.5, None, [] on the fast path), ctypes.ArgumentError
    # (push), and 1 << 70 silently truncated by ctypes to 0.
    flows, queue = loaded.maps["flows"], loaded.maps["queue"]
    for call in (lambda: hmap.update(1, 1, flags), lambda: hmap.update_batch([1], [1], flags=flags),  # type: ignore[arg-type]
                 lambda: flows.update(bytes(16), bytes(96), flags),  # type: ignore[arg-type]
                 lambda: queue.push(1, flags)):  # type: ignore[arg-type]
        with pytest.raises(MapError, match="update flag") as ei:
            call()
        assert ei.value.errno == errno.EINVAL and ei.value.map in ("misuse", "flows", "queue")
    assert hmap.keys() == []


def test_batch_inputs_that_are_not_sequences_of_pairs_are_map_errors(hmap: Map) -> None:
    # Before: TypeError ('int' object is not iterable) and IndexError (a 1-tuple as a pair).
    for call, msg in ((lambda: hmap.update_batch(5), "expected an iterable"),  # type: ignore[arg-type]
                      (lambda: hmap.delete_batch(None), "expected an iterable"),  # type: ignore[arg-type]
                      (lambda: hmap.update_batch([(1,)]), "must be \\(key, value\\) pairs"),
                      (lambda: hmap.update_batch([1, 2], [1]), "2 keys but 1 values")):
        with pytest.raises(MapError, match=msg) as ei:
            call()
        assert ei.value.errno == errno.EINVAL
    assert hmap.update_batch([], []) == 0 and hmap.delete_batch([]) == 0


def test_struct_keys_given_as_dicts_with_unknown_fields_are_refused(loaded: BpfObject) -> None:
    # Before: setattr added a Python attribute, and an all-zero key was looked up silently.
    with pytest.raises(MapError, match=r"no member 'nope' \(members: prefixlen, addr\)") as ei:
        loaded.maps["routes"].lookup({"nope": 1})
    assert ei.value.errno == errno.EINVAL and ei.value.map == "routes"


def test_per_cpu_values_of_the_wrong_count_name_the_map(loaded: BpfObject) -> None:
    m = loaded.maps["pcpu_hash"]
    for vals in ([1] * (m.ncpus + 1), []):
        with pytest.raises(MapError, match=f"'pcpu_hash' needs {m.ncpus} values") as ei:
            m.update(1, vals)
        assert ei.value.errno == errno.EINVAL
    with pytest.raises(MapError, match=f"needs {m.ncpus} values"):
        m.update_batch([1, 2], [1, [1] * (m.ncpus + 1)])
    assert m.keys() == []


def test_keyless_maps_refuse_listing_with_a_clear_error(loaded: BpfObject) -> None:
    # Before: items()/clear() on a queue failed with "Unknown error 524" "after 16 elements".
    q = loaded.maps["queue"]
    q.push(7)
    for call in (q.items, q.keys, q.clear, lambda: list(q)):
        with pytest.raises(MapError, match="'queue' is a queue map: it has no keys") as ei:
            call()
        assert ei.value.errno == errno.EOPNOTSUPP
    assert q.pop() == (7).to_bytes(4, "little")


def test_fd_slot_helpers_on_the_wrong_map_type_or_value_are_map_errors(loaded: BpfObject, hmap: Map) -> None:
    # Before: struct.error ("argument out of range", "unpack requires a buffer of 4 bytes")
    # and AttributeError for a str program.
    jumps = loaded.maps["jumps"]
    for call, msg in ((lambda: hmap.set_prog(0, fd=-1), "hash map: it holds no prog fds"),
                      (lambda: hmap.prog_id(1), "prog_id: map 'misuse' is a hash map"),
                      (lambda: hmap.open_inner(1), "not array_of_maps or hash_of_maps"),
                      (lambda: jumps.set_prog(0, fd=-1), "invalid prog fd -1"),
                      (lambda: jumps.set_prog(0, "xdp_tail_a"), "give a prog handle or fd")):
        with pytest.raises(MapError, match=msg) as ei:
            call()
        assert ei.value.errno == errno.EINVAL


def test_map_constructors_refuse_arguments_of_the_wrong_type(need_root: None) -> None:
    # Before: ctypes.ArgumentError (sizes 4.0/None), TypeError (flags "x", name 5, fd "3", id "1",
    # value_type "x"), OverflowError (fd 1 << 40); negative sizes reached the kernel as huge u32s.
    # And a Map.__init__ failing after it took the fd (a value_type of the wrong size) let both
    # create() and Map.__del__ close it: the second close hit whatever fd came next.
    gc.collect()  # earlier tests' garbage
    before = open_fds()
    for call, msg in ((lambda: Map.create("hash", 4.0, 8, 1), "invalid key_size 4.0"),  # type: ignore[arg-type]
                      (lambda: Map.create("hash", 4, None, 1), "invalid value_size None"),  # type: ignore[arg-type]
                      (lambda: Map.create("hash", -1, 8, 1), "invalid key_size -1"),
                      (lambda: Map.create("hash", 4, 8, 1, flags="x"), "invalid flags 'x'"),  # type: ignore[arg-type]
                      (lambda: Map.create("hash", 4, 8, 1, name=5), "map name must be a str"),  # type: ignore[arg-type]
                      (lambda: Map.create("array_of_maps", 4, 4, 1, inner_map="x"), "invalid inner_map fd"),  # type: ignore[arg-type]
                      (lambda: Map.create("hash", 4, 8, 1, value_type="x"), "is not a ctypes type"),
                      (lambda: Map.from_fd("3"), "invalid map fd '3'"),  # type: ignore[arg-type]
                      (lambda: Map.from_fd(1 << 40), "invalid map fd"),
                      (lambda: Map.from_id("1"), "invalid map id '1'"),  # type: ignore[arg-type]
                      (lambda: Map.from_pinned(None), "must be a path"),  # type: ignore[arg-type]
                      (lambda: Map.create("hash", 4, 8, 1, value_type=U32), "is 4 bytes but map")):
        with pytest.raises(MapError, match=msg) as ei:
            call()
        assert ei.value.errno == errno.EINVAL
    with open(os.devnull) as f:  # takes the fd number a double close would hit
        gc.collect()
        os.fstat(f.fileno())
    assert open_fds() == before


# -- tail calls, events, programs, links ---------------------------------------


def test_tailcall_swap_refuses_what_is_not_a_slot_or_a_program(loaded: BpfObject) -> None:
    # Before: TypeError (slot "0" or 0.0), AttributeError (a program or table given by name, a
    # list of slots), True taken as slot 1, and slots() listed an array map's zeros as programs.
    jumps, prog = loaded.maps["jumps"], loaded.programs["xdp_tail_a"]
    before = tailcall.slots(jumps)
    for call, cls, msg in (
            (lambda: tailcall.swap(jumps, {"0": prog}), MapError, "slot '0' of prog_array jumps is not an int"),
            (lambda: tailcall.swap(jumps, {True: prog}), MapError, "slot True"),
            (lambda: tailcall.swap(jumps, [prog]), MapError, "slots must be a mapping"),  # type: ignore[arg-type]
            (lambda: tailcall.swap(jumps, {0: "xdp_tail_a"}), ProgramError, "cannot use 'xdp_tail_a' as a program"),  # type: ignore[dict-item]
            (lambda: tailcall.swap("jumps", {0: prog}), MapError, "cannot use 'jumps' as a prog_array"),  # type: ignore[arg-type]
            (lambda: tailcall.swap(-1, {0: prog}), MapError, "fd -1 is not a BPF map"),
            (lambda: tailcall.slots(loaded.maps["plain_array"]), MapError, "not a prog_array")):
        with pytest.raises(cls, match=msg) as ei:
            call()
        assert ei.value.errno == errno.EINVAL
    assert tailcall.slots(jumps) == before  # nothing written


def test_tailcall_swap_with_closed_handles_names_them(loaded: BpfObject) -> None:
    jumps, prog = loaded.maps["jumps_empty"], loaded.programs["xdp_tail_b"]
    prog.close()
    with pytest.raises(ProgramError, match="xdp_tail_b is closed") as ei:
        tailcall.swap(jumps, {0: prog})
    assert ei.value.errno == errno.EBADF
    jumps.close()
    with pytest.raises(MapClosedError, match="'jumps_empty' is closed"):
        tailcall.swap(jumps, {0: loaded.programs["xdp_tail_a"]})


def test_event_readers_refuse_bad_maps_timeouts_and_formats(loaded: BpfObject) -> None:
    # Before: AttributeError (a map given by name), TypeError/OverflowError (timeout "x", 1 << 40),
    # ctypes.ArgumentError (PerfBuffer.poll(1.5)), struct.error (a bad format), TypeError (page_cnt 1.5).
    with pytest.raises(MapError, match="cannot read events from 'events'"):
        events.RingBuffer("events")  # type: ignore[arg-type]
    with events.RingBuffer(loaded.maps["events"]) as rb:
        assert rb.poll(1.5) == 0  # a float of ms is fine
        for call in (lambda: rb.poll("x"), lambda: rb.poll(1 << 40), lambda: rb.read_batch("x")):  # type: ignore[arg-type]
            with pytest.raises(BpfError, match="invalid timeout_ms") as ei:
                call()
            assert ei.value.errno == errno.EINVAL
        with pytest.raises(BpfError, match="bad struct format 'zz'"):
            rb.read_structs("zz")
    with pytest.raises(BpfError, match="reader is closed"):
        rb.poll(0)
    with pytest.raises(MapError, match="page_cnt must be a power of two, got 1.5"):
        events.PerfBuffer(loaded.maps["perf_events"], page_cnt=1.5)  # type: ignore[arg-type]
    with events.PerfBuffer(loaded.maps["perf_events"]) as pb:
        assert pb.poll(1.5) == 0
        with pytest.raises(BpfError, match="invalid timeout_ms 'x'"):
            pb.poll("x")  # type: ignore[arg-type]
    pe = loaded.maps["perf_events"]
    pe.close()
    with pytest.raises(MapClosedError, match="'perf_events' is closed"):
        events.PerfBuffer(pe)


def test_program_handles_refuse_arguments_of_the_wrong_type(loaded: BpfObject) -> None:
    # Before: TypeError (Program("x"), from_id("1"), from_pinned(None), by_name(5), test_run("abc"),
    # repeat=1.5), AttributeError (by_tag(5)), ValueError/MemoryError (data_size_out -1 / 1 << 40),
    # OverflowError (attach_xdp(-1)), TypeError (attach_xdp(None), attach(1.5, ...)).
    prog = loaded.programs["xdp_tail_a"]
    for call, msg in ((lambda: Program("x"), "program fd must be an int"),  # type: ignore[arg-type]
                      (lambda: Program.from_id("1"), "invalid program id '1'"),  # type: ignore[arg-type]
                      (lambda: Program.from_fd(-1), "invalid program fd -1"),
                      (lambda: Program.from_pinned(None), "pin path must be"),  # type: ignore[arg-type]
                      (lambda: Program.by_name(5), "program name must be a str"),  # type: ignore[arg-type]
                      (lambda: Program.by_tag(5), "program tag must be"),  # type: ignore[arg-type]
                      (lambda: prog.test_run("abc"), "data_in must be bytes"),  # type: ignore[arg-type]
                      (lambda: prog.test_run(bytes(64), repeat=1.5), "invalid test_run repeat 1.5"),  # type: ignore[arg-type]
                      (lambda: prog.test_run(bytes(64), data_size_out=-1), "invalid test_run data_size_out"),
                      (lambda: prog.test_run(bytes(64), data_size_out=1 << 40), "invalid test_run data_size_out"),
                      (lambda: prog.attach(1.5, None), "invalid attach/detach type 1.5"),  # type: ignore[arg-type]
                      (lambda: prog.attach_xdp(None), "network interface must be a name or an index"),  # type: ignore[arg-type]
                      (lambda: prog.attach_xdp(-1), "network interface with index -1 not found")):
        with pytest.raises(BpfError, match=msg) as ei:
            call()
        assert ei.value.errno in (errno.EINVAL, errno.ENOENT)
    assert prog.test_run(bytes(64)).retval >= 0


# -- mmap views and skeletons ----------------------------------------------------


def test_a_field_of_a_read_only_view_keeps_the_mapping_alive(objs: Path, tmp_path: Path) -> None:
    # Before: a nested structure taken from a read-only view (.rodata after load) pointed into
    # pages that were unmapped when the view was dropped: reading it crashed (SIGSEGV).
    from pybpfobj.skeleton.generator import generate_file

    generate_file(objs / "globals.o", tmp_path / "globals_skel.py")
    code = textwrap.dedent(f"""
        import gc, sys
        sys.path.insert(0, {str(tmp_path)!r})
        from pybpfobj.loader import BpfObject
        from globals_skel import Globals
        s = Globals.open_and_load()
        cfg = s.rodata.cfg
        s.close(); del s
        o = BpfObject({str(objs / "globals.o")!r}); o.load()
        m = [m for n, m in o.maps.items() if n.endswith(".rodata")][0]
        sub = m.mmap().cfg
        m.close(); o.close(); del m, o
        gc.collect()
        print(cfg.mode == sub.mode, bytes(cfg) == bytes(sub))
    """)
    r = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True"]


@pytest.fixture(scope="module")
def maps_all_skel(objs: Path, tmp_path_factory: pytest.TempPathFactory) -> type:
    import importlib.util

    from pybpfobj.skeleton.generator import generate_file

    path = tmp_path_factory.mktemp("misuse_skel") / "maps_all_misuse_skel.py"
    generate_file(objs / "maps_all.o", path)
    spec = importlib.util.spec_from_file_location("maps_all_misuse_skel", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.MapsAll  # type: ignore[no-any-return]


def test_skeleton_maps_refuse_values_of_the_wrong_type_naming_the_map(need_root: None, maps_all_skel: type) -> None:
    # Before: TypeError from the generated codecs (a str value, a float key, a str pushed) and
    # AttributeError for a prog_array or map-in-map slot given None, an int or a name.
    with maps_all_skel.open_and_load() as skel:
        m = skel.maps
        for call, cls, msg in (
                (lambda: m.plain_array.__setitem__(0, "x"), MapError, "value 'x' does not fit .* map 'plain_array'"),
                (lambda: m.plain_array.__setitem__(1.5, 1), MapError, "key 1.5 does not fit .* map 'plain_array'"),
                (lambda: m.queue.push("x"), MapError, "value 'x' does not fit .* map 'queue'"),
                (lambda: m.jumps.__setitem__(0, None), ProgramError, "map 'jumps': cannot install None"),
                (lambda: m.outer_arr.__setitem__(0, "x"), MapError, "map 'outer_arr': cannot install 'x'"),
                (lambda: m.outer_hash.new_inner("x"), MapError, "max_entries must be an int")):
            with pytest.raises(cls, match=msg) as ei:
                call()
            assert ei.value.errno == errno.EINVAL


def test_closed_skeleton_refuses_everything_and_makes_nothing(need_root: None, maps_all_skel: type) -> None:
    # Before: new_inner() on a closed skeleton created a map nobody would close (a leaked fd), and
    # a program's autoattach read libbpf's freed program.
    gc.collect()
    before = open_fds()
    skel = maps_all_skel.open_and_load()
    ref, pa = skel.progs.xdp_tail_a, skel.maps.plain_array
    skel.close()
    for call in (lambda: ref.autoattach, lambda: skel.maps.outer_hash.new_inner(), lambda: pa[0],
                 lambda: ref.program, lambda: skel.load(), lambda: skel.rodata if hasattr(skel, "rodata") else pa.fd):
        with pytest.raises(BpfError, match="'maps_all' is closed") as ei:
            call()
        assert ei.value.errno == errno.EBADF
    skel.close()
    gc.collect()
    assert open_fds() == before


def test_push_pop_peek_on_a_keyed_map_say_which_call_to_use(need_root: None) -> None:
    # the kernel's answer would be a bare EFAULT/EINVAL
    h = Map.create("hash", 4, 4, 4, name="keyed")
    bloom = Map.create("bloom_filter", 0, 4, 16, name="bloom")
    try:
        with pytest.raises(MapError, match=r"push: map 'keyed' is a hash map; .*use update\(key, value\)"):
            h.push(1)
        with pytest.raises(MapError, match=r"pop: map 'keyed' is a hash map; .*use lookup_and_delete\(key\)"):
            h.pop()
        with pytest.raises(MapError, match=r"peek: map 'keyed' is a hash map; .*use lookup\(key\)") as info:
            h.peek()
        assert info.value.errno == errno.EINVAL
        with pytest.raises(MapError, match=r"pop: map 'bloom' is a bloom_filter map; .*bloom_contains"):
            bloom.pop()
        bloom.push(5)  # a bloom filter takes values without a key
        assert bloom.bloom_contains(5)
    finally:
        h.close()
        bloom.close()


def test_enotsupp_from_the_kernel_reads_as_words_not_unknown_error_524(need_root: None) -> None:
    bloom = Map.create("bloom_filter", 0, 4, 16, name="bloom524")
    try:
        with pytest.raises(MapError) as info:
            bloom.lookup_and_delete(b"\x01\x00\x00\x00")
        assert info.value.errno == 524
        assert "Unknown error" not in str(info.value) and "not supported" in str(info.value)
    finally:
        bloom.close()


def test_a_prog_array_slot_refused_by_the_kernel_says_what_must_match(objs: Path) -> None:
    from pybpfobj.loader import BpfObject

    with BpfObject(objs / "tailcall.o") as t, BpfObject(objs / "progs_all.o") as p:
        t.load()
        p.load()
        other = next(prog for prog in p.programs.values() if prog.type != "xdp")
        with pytest.raises(MapError, match=r"Invalid argument \(a prog_array takes only programs with its "
                                           r"owner program's type") as info:
            t.maps["jmp_table"].set_prog(0, other)
        assert info.value.errno == errno.EINVAL
