"""Generated skeletons against the real kernel: phases, typed maps, data
sections, map-in-map, prog_array slots, attach, errors, and the examples."""

from __future__ import annotations

import ctypes
import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from loader_testutil import build_bpf

from pybpfobj.errors import BpfError, KeyNotFoundError, MapError, MapFrozenError, ProgramError
from pybpfobj.skeleton.generator import generate_file

ROOT = Path(__file__).resolve().parent.parent.parent
PKT = bytes(64)
XDP_PASS, XDP_DROP = 2, 1

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def skel(objs: Path, tmp_path_factory: pytest.TempPathFactory) -> types.SimpleNamespace:
    """Generated, imported skeleton modules of our objects (by object stem)."""
    d = tmp_path_factory.mktemp("kskel")
    mods = {}
    for stem in ("xdp_counter", "globals", "mapinmap", "maps_all", "progs_all", "pinbyname", "needs_sizing"):
        path = d / f"{stem}_kskel.py"
        generate_file(objs / f"{stem}.o", path)
        spec = importlib.util.spec_from_file_location(f"{stem}_kskel", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods[stem] = mod
    return types.SimpleNamespace(**mods)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_xdp_counter_rodata_config_percpu_stats(need_root: None, skel: Any) -> None:
    before = open_fds()
    with skel.xdp_counter.XdpCounter.open() as s:
        assert s.rodata.verdict == XDP_PASS  # the object's initial value
        s.rodata.verdict = XDP_DROP
        s.load()
        assert s.rodata.verdict == XDP_DROP
        r = s.progs.xdp_count.test_run(PKT, repeat=5)
        assert r.retval == XDP_DROP
        per_cpu = s.maps.stats[0]
        assert all(isinstance(v, skel.xdp_counter.stats) for v in per_cpu)
        assert sum(v.packets for v in per_cpu) == 5
        assert sum(v.bytes for v in per_cpu) == 5 * len(PKT)
        with pytest.raises(MapFrozenError):
            s.rodata.verdict = XDP_PASS  # .rodata is frozen after load
    assert open_fds() <= before


def test_data_and_bss_are_live_views_after_load(need_root: None, skel: Any) -> None:
    with skel.globals.Globals.open() as s:
        s.rodata.cfg.port = 1000
        s.rodata.cfg.label = b"xy"
        assert s.data.greeting == b"hello" and list(s.data.ports) == [22, 80, 443, 8080]
        s.load()
        assert s.rodata.cfg.port == 1000 and s.rodata.cfg.label == b"xy"
        assert s.bss.counter == 0 and s.data.packets_seen == 5
        s.data.packets_seen = 100
        s.progs.xdp_globals.test_run(PKT)
        # the program's writes are visible without a syscall, and saw ours
        assert s.bss.counter == 1 and s.data.packets_seen == 101
        assert s.bss.seen_cfg.port == 1000 + 80
        assert s.data.last_len == len(PKT)
        assert s.data_custom.custom_val == 0xDEADBEEF + 1
        assert s.data_custom.custom_arr[1] == 2 + len(PKT)


def test_typed_maps_round_trip_generated_types(need_root: None, skel: Any) -> None:
    m = skel.maps_all
    with m.MapsAll.open_and_load() as s:
        k = m.flow_key(sport=1, dport=2, proto=6)
        k.addrs.src = 0x0A000001
        v = m.flow_value(packets=3, state=m.flow_state.FLOW_ESTABLISHED)
        v.flags_syn, v.ttl, v.vlan = 1, 64, 7
        v.nexthop.ipv4 = 0x01020304
        s.maps.flows[k] = v
        got = s.maps.flows[k]
        assert isinstance(got, m.flow_value)
        assert (got.packets, got.state, got.flags_syn, got.ttl, got.vlan, got.nexthop.ipv4) == \
            (3, 1, 1, 64, 7, 0x01020304)
        assert k in s.maps.flows and bytes(s.maps.flows.keys()[0]) == bytes(k)
        del s.maps.flows[k]
        with pytest.raises(KeyNotFoundError):
            _ = s.maps.flows[k]
        s.maps.plain_array[2] = 42
        assert s.maps.plain_array[2] == 42 and s.maps.plain_array.get(9) is None
        s.maps.pcpu_array[1] = m.addr_pair(src=5, dst=6)
        assert [(a.src, a.dst) for a in s.maps.pcpu_array[1]] == [(5, 6)] * len(s.maps.pcpu_array[1])
        s.maps.routes[m.lpm_v4_key(prefixlen=24, addr=0x0A0000)] = 9
        assert s.maps.routes[m.lpm_v4_key(prefixlen=32, addr=0x0A0000)] == 9
        s.maps.queue.push(7)
        assert s.maps.queue.pop() == 7
        s.maps.sized_array[(1).to_bytes(4, "little")] = (5).to_bytes(8, "little")
        assert s.maps.sized_array[(1).to_bytes(4, "little")] == (5).to_bytes(8, "little")


def test_map_in_map_initial_values_new_install_swap(need_root: None, skel: Any) -> None:
    with skel.mapinmap.Mapinmap.open_and_load() as s:
        outer = s.maps.outer_array
        # declared initial value: slot 0 holds inner_map0
        assert outer.inner_id(0) == s.maps.inner_map0.map.id
        s.progs.lookup_inner.test_run(PKT)
        assert outer.inner(0)[0] == 1 == s.maps.inner_map0[0]
        fresh = outer.new_inner()
        fresh[0] = 100
        outer[0] = fresh  # swap
        s.progs.lookup_inner.test_run(PKT)
        assert fresh[0] == 101 and s.maps.inner_map0[0] == 1
        assert outer.inner(0).map.id == fresh.map.id
        with pytest.raises(MapError, match="max_entries 4"):
            outer.new_inner(max_entries=8)  # array inner maps must match the template
        big = s.maps.outer_hash.new_inner(max_entries=64)  # hash inner maps may differ
        s.maps.outer_hash[0] = big
        big[0] = 1
        s.progs.lookup_inner.test_run(PKT)
        inner = s.maps.outer_hash.inner(0)
        assert inner[0] == 2 and inner.map.max_entries == 64
        del s.maps.outer_hash[0]
        with pytest.raises(KeyError):
            s.maps.outer_hash.inner(0)


def test_prog_array_slots_by_program_name_and_type_checks(need_root: None, skel: Any) -> None:
    with skel.maps_all.MapsAll.open_and_load() as s:
        jumps = s.maps.jumps
        assert jumps.prog_type == "xdp"
        assert jumps.prog_id(0) == s.progs.xdp_tail_a.program.id  # declared initial values
        assert jumps.prog_id(2) == s.progs.xdp_tail_b.program.id and 1 not in jumps
        jumps[1] = "xdp_tail_b"
        jumps[3] = s.progs.xdp_tail_a
        assert jumps.prog_id(1) == s.progs.xdp_tail_b.program.id
        with pytest.raises(ProgramError, match="socket_filter.*xdp"):
            jumps[1] = "sock_maps"
        assert jumps.prog_id(1) == s.progs.xdp_tail_b.program.id  # unchanged
        with pytest.raises(ProgramError, match="no program 'nope'"):
            jumps[1] = "nope"
        del jumps[3]
        assert 3 not in jumps


def test_configure_before_load_and_errors_by_phase(need_root: None, skel: Any) -> None:
    with skel.needs_sizing.NeedsSizing.open() as sized, pytest.raises(BpfError):
        sized.load()  # max_entries 0: the kernel refuses, the error comes back
    with skel.needs_sizing.NeedsSizing.open() as sized:
        sized.maps.unsized_rb.set_max_entries(4096)
        assert sized.object.map_definition("unsized_rb")["max_entries"] == 4096
    with skel.maps_all.MapsAll.open() as s:
        with pytest.raises(MapError, match="before load"):
            _ = s.maps.plain_array[0]
        with pytest.raises(ProgramError, match="not loaded"):
            _ = s.progs.xdp_maps.fd
        s.maps.flows.set_max_entries(77)
        s.load()
        assert s.maps.flows.map.max_entries == 77
        with pytest.raises(BpfError, match="already loaded"):
            s.maps.flows.set_max_entries(5)
        with pytest.raises(BpfError, match="already loaded"):
            s.load()
    with pytest.raises(BpfError, match="closed"):
        _ = s.maps.plain_array[0]
    s.close()  # idempotent


def test_map_reuse_and_pin_root(need_root: None, skel: Any, bpffs: Path) -> None:
    from pybpfobj.maps import Map

    with skel.xdp_counter.XdpCounter.open_and_load() as first:
        first.progs.xdp_count.test_run(PKT)
        with skel.xdp_counter.XdpCounter.open() as second:
            second.maps.stats.reuse(first.maps.stats.map)
            second.load()
            assert second.maps.stats.map.id == first.maps.stats.map.id
    with skel.pinbyname.Pinbyname.open(pin_root=str(bpffs)) as s:
        s.load()
        assert (bpffs / "pinned_hash").exists()
        s.maps.pinned_hash[1] = 2
        with Map.from_pinned(str(bpffs / "pinned_hash")) as m:
            assert m.id == s.maps.pinned_hash.map.id
    os.unlink(bpffs / "pinned_hash")


def _kernel_links_of(prog_ids: set[int]) -> set[int]:
    from pybpfobj.kernel import info

    out = set()
    for lid in info.link_ids():
        try:
            fd = info.link_fd_by_id(lid)
        except BpfError:
            continue
        try:
            if int(info.fdinfo(fd).get("prog_id", "0") or 0) in prog_ids:
                out.add(lid)
        finally:
            os.close(fd)
    return out


def test_attach_follows_sections_and_keeps_the_links(need_root: None, skel: Any) -> None:
    with skel.progs_all.ProgsAll.open() as s:
        # this kernel has no kprobes (CONFIG_KPROBES unset): attach() leaves the kprobe out
        s.progs.kprobe_unlinkat.autoattach = False
        s.load()
        ids = {ref.program.id for ref in s.progs.values()}
        link = s.progs.raw_tp_sys_enter.attach()
        assert link in s.links and link.fd >= 0 and link.prog == "raw_tp_sys_enter"
        with pytest.raises(ProgramError, match="needs an interface"):
            s.progs.xdp_count_proto.attach()
        s.detach()
        assert s.links == [] and _kernel_links_of(ids) == set()
        made = s.attach()
        assert sorted(x.prog for x in made) == ["raw_tp_sys_enter", "tp_openat"] and s.links == made
        assert _kernel_links_of(ids) == {x.id for x in made}
        os.close(os.open("/etc/hostname", os.O_RDONLY))
        assert s.maps.event_count[1] > 0 and s.maps.event_count[2] > 0  # EV_TRACEPOINT, EV_RAW_TP
    assert _kernel_links_of(ids) == set()  # close() detached them


_ROLLBACK_SRC = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tracepoint/syscalls/sys_enter_openat")
int first_tp(void *ctx) { return 0; }

SEC("raw_tracepoint/sys_enter")
int second_raw(void *ctx) { return 0; }

/* no kernel has this tracepoint: attaching fails after the two above */
SEC("tracepoint/pybpfobj_none/no_such_event")
int third_missing(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
"""


def test_attach_failure_rolls_back_every_link(need_root: None, tmp_path: Path) -> None:
    o = build_bpf(tmp_path, "rollback", _ROLLBACK_SRC)
    generate_file(o, tmp_path / "rollback_skel.py")
    spec = importlib.util.spec_from_file_location("rollback_skel", tmp_path / "rollback_skel.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with mod.Rollback.open_and_load() as s:
        ids = {ref.program.id for ref in s.progs.values()}
        with pytest.raises(ProgramError, match="cannot attach program 'third_missing'"):
            s.attach()
        assert s.links == [] and _kernel_links_of(ids) == set()
        s.progs.third_missing.autoattach = False
        assert [x.prog for x in s.attach()] == ["first_tp", "second_raw"]


def test_examples_run_as_their_docstrings_say(need_root: None, objs: Path, bpffs: Path,
                                               tmp_path: Path) -> None:
    """As a user runs them: from any directory, with the package on the path, defaults first."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = [["xdp_counter_app.py"], ["mapinmap_app.py"],
            ["xdp_counter_app.py", "--drop", "--pin-root", str(bpffs), "--skel-dir", str(tmp_path / "s")],
            ["mapinmap_app.py", "--objs", str(objs), "--skel-dir", str(tmp_path / "s")]]
    for ex, *args in runs:
        assert "python" in ((ROOT / "examples" / ex).read_text().split('"""')[1]), ex  # says how to run it
        r = subprocess.run([sys.executable, str(ROOT / "examples" / ex), *args], capture_output=True, text=True,
                           check=False, cwd=tmp_path, env=env)
        assert r.returncode == 0, ex + r.stdout + r.stderr
        assert r.stdout.splitlines()[-1] == "ok", r.stdout
    # --skel-dir keeps the generated modules, as an application's build would
    assert sorted(p.name for p in (tmp_path / "s").glob("*.py")) == ["mapinmap_skel.py", "xdp_counter_skel.py"]
    assert not [p for p in bpffs.iterdir() if not p.name.endswith(".debug")]  # pins cleaned up


def test_layout_matches_kernel_btf_view(need_root: None, skel: Any) -> None:
    """The generated value type of a loaded map has the size the kernel reports."""
    with skel.maps_all.MapsAll.open_and_load() as s:
        assert ctypes.sizeof(skel.maps_all.flow_value) == s.maps.flows.map.value_size
        assert ctypes.sizeof(skel.maps_all.flow_key) == s.maps.flows.map.key_size
