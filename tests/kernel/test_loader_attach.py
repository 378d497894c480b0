"""BpfObject's public attach and configuration API against the real kernel:
section-driven attach (links kept, pinnable, detached on close), attach_all
with autoattach and all-or-nothing rollback, initial values of global-data
maps, attach targets."""

from __future__ import annotations

import ctypes
import gc
import os
from pathlib import Path

import pytest
from loader_testutil import build_bpf

from pybpfobj.errors import BpfError, MapError, NotFoundError, ProgramError
from pybpfobj.kernel import info
from pybpfobj.links import LibbpfLink, Link
from pybpfobj.loader import BpfObject, auto_attachable
from pybpfobj.maps import Map

pytestmark = pytest.mark.kernel

EV_TRACEPOINT, EV_RAW_TP = 1, 2


def fds() -> set[str]:
    gc.collect()
    return set(os.listdir("/proc/self/fd"))


def links_of(prog_ids: set[int]) -> set[int]:
    """Ids of the kernel's links whose program is one of ``prog_ids``."""
    out = set()
    for lid in info.link_ids():
        try:
            fd = info.link_fd_by_id(lid)
        except BpfError:
            continue  # gone meanwhile
        try:
            if int(info.fdinfo(fd).get("prog_id", "0") or 0) in prog_ids:
                out.add(lid)
        finally:
            os.close(fd)
    return out


def syscalls() -> None:
    """Make the tracepoint (openat) and the raw tracepoint (sys_enter) fire."""
    os.close(os.open("/etc/hostname", os.O_RDONLY))


def counts(obj: BpfObject) -> tuple[int, int]:
    with Map.from_fd(obj.map_fd("event_count"), owned=False, key_type=ctypes.c_uint32,
                     value_type=ctypes.c_uint64) as m:
        return int(m.lookup(EV_TRACEPOINT)), int(m.lookup(EV_RAW_TP))


def prog_ids(obj: BpfObject) -> set[int]:
    return {info.prog_info(obj.prog_fd(n)).id for n in obj.program_names()}


def test_attach_follows_the_section_and_close_detaches(need_root: None, objs: Path) -> None:
    before = fds()
    with BpfObject(objs / "progs_all.o") as obj:
        obj.load()
        ids = prog_ids(obj)
        tp = obj.attach("tp_openat")
        raw = obj.attach("raw_tp_sys_enter")
        assert isinstance(tp, LibbpfLink) and isinstance(tp, Link)
        assert tp.prog == "tp_openat" and tp.fd >= 0 and raw.fd >= 0
        assert tp.prog_id == info.prog_info(obj.prog_fd("tp_openat")).id
        assert raw.kind == "raw_tracepoint"
        assert {tp.id, raw.id} == links_of(ids)
        syscalls()
        tp_n, raw_n = counts(obj)
        assert tp_n > 0 and raw_n > 0
        tp.close()
        raw.close()
        raw.close()  # idempotent
        assert links_of(ids) == set()
        after = counts(obj)  # (the raw tracepoint sees every syscall until its close returns)
        syscalls()
        assert counts(obj) == after  # detached: nothing counts any more
    assert fds() == before


def test_links_outlive_the_object_and_a_pinned_link_outlives_its_handle(need_root: None, objs: Path,
                                                                         bpffs: Path) -> None:
    obj = BpfObject(objs / "progs_all.o")
    obj.load()
    ids = prog_ids(obj)
    stats = obj.maps["event_count"]
    link = obj.attach("raw_tp_sys_enter")
    obj.close()
    syscalls()
    assert links_of(ids) == {link.id}  # still attached after the object closed
    link.pin(str(bpffs / "raw_link"))
    lid = link.id
    link.close()
    assert links_of(ids) == {lid}  # the pin holds it
    with Link.from_pinned(str(bpffs / "raw_link")) as again:
        assert again.id == lid
        again.unpin()
    gc.collect()
    assert links_of(ids) == set()
    stats.close()


def test_attach_refuses_sections_without_a_target_and_names_the_program(need_root: None,
                                                                         objs: Path) -> None:
    with BpfObject(objs / "progs_all.o") as obj:
        with pytest.raises(BpfError, match="not loaded"):
            obj.attach("tp_openat")
        obj.load()
        with pytest.raises(ProgramError, match=r"cannot attach program 'xdp_count_proto' \(section 'xdp'\) "
                                               r"of object 'progs_all': its section does not say where"):
            obj.attach("xdp_count_proto")
        with pytest.raises(NotFoundError, match="no program 'nope'"):
            obj.attach("nope")
    assert auto_attachable("tracepoint/syscalls/sys_enter_openat") and not auto_attachable("xdp")


def test_attach_all_honours_autoattach(need_root: None, objs: Path) -> None:
    with BpfObject(objs / "progs_all.o") as obj:
        assert obj.autoattach("kprobe_unlinkat")
        # this kernel has no kprobes (CONFIG_KPROBES unset): leave the kprobe out
        obj.set_autoattach("kprobe_unlinkat", False)
        assert not obj.autoattach("kprobe_unlinkat")
        obj.load()
        made = obj.attach_all()
        assert sorted(link.prog for link in made) == ["raw_tp_sys_enter", "tp_openat"]
        assert links_of(prog_ids(obj)) == {link.id for link in made}
        for link in made:
            link.close()


_ROLLBACK_SRC = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} hits SEC(".maps");

static void hit(__u32 k) { __u64 *v = bpf_map_lookup_elem(&hits, &k); if (v) __sync_fetch_and_add(v, 1); }

SEC("tracepoint/syscalls/sys_enter_openat")
int first_tp(void *ctx) { hit(0); return 0; }

SEC("raw_tracepoint/sys_enter")
int second_raw(void *ctx) { hit(1); return 0; }

/* no kernel has this tracepoint: attaching fails (ENOENT) after the two above */
SEC("tracepoint/pybpfobj_none/no_such_event")
int third_missing(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
"""


def test_attach_all_failure_rolls_back_every_link_it_made(need_root: None, tmp_path: Path) -> None:
    o = build_bpf(tmp_path, "rollback", _ROLLBACK_SRC)
    before = fds()
    with BpfObject(o) as obj:
        obj.load()
        assert obj.program_names() == ["first_tp", "second_raw", "third_missing"]
        ids = prog_ids(obj)
        with pytest.raises(ProgramError, match=r"cannot attach program 'third_missing' \(section "
                                               r"'tracepoint/pybpfobj_none/no_such_event'\) of object 'rollback'"):
            obj.attach_all()
        assert links_of(ids) == set()  # the two links made first are gone
        obj.set_autoattach("third_missing", False)
        made = obj.attach_all()
        assert [link.prog for link in made] == ["first_tp", "second_raw"]
        for link in made:
            link.close()
        assert links_of(ids) == set()
    assert fds() == before


def test_initial_values_of_global_data_maps(need_root: None, objs: Path) -> None:
    with BpfObject(objs / "globals.o") as obj:
        rodata = obj.section_map_name(".rodata")
        assert rodata.endswith(".rodata") and obj.section_map_name(rodata) == rodata
        data = obj.initial_value(".data")
        assert b"hello" in data and obj.initial_value(obj.section_map_name(".data")) == data
        size = obj.map_definition(rodata)["value_size"]
        new = bytes(range(1, size + 1))
        obj.set_initial_value(".rodata", new)
        assert obj.initial_value(".rodata") == new
        with pytest.raises(MapError, match=f"is {size} bytes, the data {size + 1}"):
            obj.set_initial_value(".rodata", new + b"x")
        with pytest.raises(NotFoundError, match="no map for section '.nosuch'"):
            obj.initial_value(".nosuch")
        with BpfObject(objs / "xdp_counter.o") as other, \
                pytest.raises(MapError, match="map 'stats' .* is not a global-data map"):
            other.initial_value("stats")
        obj.load()
        with Map.from_fd(obj.map_fd(rodata), owned=False) as m:
            assert bytes(m.lookup((0).to_bytes(4, "little"))) == new  # created with our bytes
        with pytest.raises(BpfError, match="before load"):
            obj.set_initial_value(".rodata", new)


def test_set_attach_target_checks_the_target_before_load(need_root: None, objs: Path) -> None:
    with BpfObject(objs / "xdp_counter.o") as target:
        target.load()
        tfd = target.prog_fd("xdp_count")
        with BpfObject(objs / "profiler.o", name="profiler") as obj:
            fentry = next(n for n in obj.program_names() if n.startswith("fentry"))
            obj.set_attach_target(fentry, tfd, "xdp_count")  # the target's BTF has it
            with pytest.raises(ProgramError, match=f"program '{fentry}' of object 'profiler': cannot set "
                                                   f"attach target 'no_such_func'"):
                obj.set_attach_target(fentry, tfd, "no_such_func")
            with pytest.raises(NotFoundError):
                obj.set_attach_target("nope", tfd, "xdp_count")
        with BpfObject(objs / "profiler.o", name="profiler") as obj:
            with pytest.raises(BpfError):
                obj.load()  # fentry/fexit need targets (and this kernel refuses them)
            with pytest.raises(BpfError, match="before load"):
                obj.set_attach_target(fentry, tfd, "xdp_count")
