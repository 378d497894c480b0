"""QA sweep of tail-call swapping: programs the kernel refuses past our type/JIT checks
(expected attach type, XDP frags), rollback, threads, handles of every kind, orphaned
pinned tables, fds, and the CLI's ``map update ... value pinned PROG`` against bpftool."""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pybpfobj.errors import ProgramError
from pybpfobj.loader import BpfObject
from pybpfobj.maps import Map
from pybpfobj.programs import Program
from pybpfobj.tailcall import slots, swap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clirun import ours, theirs

# an xdp table with programs the kernel tells apart beyond type and JIT state
SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jt SEC(".maps");
SEC("xdp") int entry(struct xdp_md *ctx) { bpf_tail_call(ctx, &jt, 0); return XDP_DROP; }
SEC("xdp") int plain(struct xdp_md *ctx) { return XDP_PASS; }
SEC("xdp") int plain2(struct xdp_md *ctx) { return XDP_TX; }
SEC("xdp/devmap") int devmap(struct xdp_md *ctx) { return XDP_PASS; }
SEC("xdp.frags") int frags(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def probe_obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bpfbuild import build_bpf

    return build_bpf(tmp_path_factory.mktemp("tailcall_sweep"), "probe", SOURCE)


@pytest.fixture
def probe(need_root: None, probe_obj: Path) -> Iterator[Any]:
    with BpfObject(probe_obj) as obj:
        obj.load()
        yield obj


@pytest.mark.parametrize("name", ["devmap", "frags"])
def test_program_with_other_expected_attach_type_or_frags_is_a_clear_error_and_changes_nothing(
        probe: Any, name: str) -> None:
    jt, p = probe.maps["jt"], probe.programs
    swap(jt, {0: p["plain"]})  # plain becomes the owner
    with pytest.raises(ProgramError, match=f"prog_array jt refused program {name} in slot 1: its expected "
                                           "attach type or XDP frags support differs"):
        swap(jt, {1: p[name]})
    assert slots(jt) == {0: p["plain"].id}


def test_slots_written_before_a_refused_one_are_put_back(probe: Any) -> None:
    jt, p = probe.maps["jt"], probe.programs
    swap(jt, {0: p["plain"], 2: p["plain2"]})
    with pytest.raises(ProgramError, match="refused program devmap in slot 1"):
        swap(jt, {0: None, 2: p["plain"], 1: p["devmap"]})
    assert slots(jt) == {0: p["plain"].id, 2: p["plain2"].id}


def test_concurrent_swaps_from_two_threads_each_report_the_programs_they_replaced(probe: Any) -> None:
    jt, p = probe.maps["jt"], probe.programs
    a, b = p["plain"], p["plain2"]
    log: list[Any] = []

    def worker(prog: Any) -> None:
        for _ in range(200):
            log.append(swap(jt, {0: prog, 1: prog}))

    threads = [threading.Thread(target=worker, args=(x,)) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # swaps never interleave: both slots always held the same program before each swap
    assert all(ch[0].old_prog_id == ch[1].old_prog_id for ch in log)
    final = slots(jt)
    assert final[0] == final[1] in (a.id, b.id)


def test_swap_takes_handles_opened_by_pin_and_by_id_and_plain_fds(probe: Any, bpffs: Path) -> None:
    jt, p = probe.maps["jt"], probe.programs
    p["plain"].pin(str(bpffs / "plain"))
    with Program.from_pinned(str(bpffs / "plain")) as pinned, Program.from_id(p["plain2"].id) as by_id:
        changes = swap(jt, {0: pinned, 1: by_id, 2: p["plain"].fd})
    assert [(c.slot, c.new_name) for c in changes] == [(0, "plain"), (1, "plain2"), (2, "plain")]
    with pytest.raises(ProgramError, match="cannot use 'plain' as a program: give a handle"):
        swap(jt, {3: "plain"})  # type: ignore[dict-item]
    assert 3 not in slots(jt)


def test_pinned_table_whose_owner_is_gone_still_checks_the_owner_type(
        need_root: None, objs: Path, probe_obj: Path, bpffs: Path) -> None:
    with BpfObject(objs / "tailcall.o") as obj:
        obj.load()
        obj.maps["jmp_table"].pin(str(bpffs / "jt"))
    with Map.from_pinned(str(bpffs / "jt")) as jt, BpfObject(probe_obj) as other:
        other.load()
        swap(jt, {0: other.programs["plain"]})
        with pytest.raises(ProgramError, match="refused program devmap in slot 1"):
            swap(jt, {1: other.programs["devmap"]})
        assert slots(jt) == {0: other.programs["plain"].id}


def test_swap_then_closing_and_unpinning_everything_leaves_no_fd(need_root: None, probe_obj: Path,
                                                                bpffs: Path) -> None:
    def run() -> None:
        with BpfObject(probe_obj) as obj:
            obj.load()
            jt = obj.maps["jt"]
            jt.pin(str(bpffs / "jt"))
            swap(jt, {0: obj.programs["plain"], 1: obj.programs["plain2"]})
            swap(jt, {0: None})
            os.unlink(bpffs / "jt")

    pins = sorted(os.listdir(bpffs))  # the kernel's progs.debug / maps.debug
    run()  # first use opens libbpf's lasting fds (feature probes)
    gc.collect()
    before = set(os.listdir("/proc/self/fd"))
    run()
    gc.collect()
    assert set(os.listdir("/proc/self/fd")) <= before
    assert sorted(os.listdir(bpffs)) == pins


def test_cli_prog_array_update_matches_bpftool(need_root: None, probe_obj: Path, bpffs: Path,
                                               bpftool: str) -> None:
    """The README's one-liner and its failures: same exit codes, messages and table after."""
    for side in ("ours", "theirs"):
        d = bpffs / side
        d.mkdir()
        rc, _, err = ours("prog", "loadall", str(probe_obj), str(d / "p"), "pinmaps", str(d / "m"))
        assert rc == 0, err
    results: dict[str, list[tuple[int, str, str]]] = {"ours": [], "theirs": []}
    for side in ("ours", "theirs"):
        d = bpffs / side
        jt = str(d / "m" / "jt")

        def cli(*argv: str, _side: str = side) -> tuple[int, str, str]:
            return ours(*argv) if _side == "ours" else theirs(bpftool, *argv)

        for key, prog in (("0", "plain"), ("1", "plain2"), ("1", "devmap"), ("9", "plain"),
                          ("2", "missing"), ("0", "plain2")):
            rc, out, err = cli("map", "update", "pinned", jt, "key", key, "0", "0", "0",
                               "value", "pinned", str(d / "p" / prog))
            results[side].append((rc, out, err.replace(str(d), "D")))
        with Map.from_pinned(jt) as m, Program.from_pinned(str(d / "p" / "plain2")) as p2:
            assert slots(m) == {0: p2.id, 1: p2.id}
    assert [r[0] for r in results["ours"]] == [r[0] for r in results["theirs"]] == [0, 0, 234, 249, 255, 0]
    assert [r[2].splitlines()[:1] for r in results["ours"]] == [r[2].splitlines()[:1] for r in results["theirs"]]
