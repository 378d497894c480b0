"""Tail-call swapping: prog_array slots set from Python and the CLI while the entry program runs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pybpfobj.errors import MapError, ProgramError
from pybpfobj.loader import BpfObject
from pybpfobj.tailcall import SlotChange, slots, swap

ROOT = Path(__file__).resolve().parent.parent.parent
XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3
PACKET = bytes(64)


@pytest.fixture
def tailcall(need_root: None, objs: Path) -> Iterator[Any]:
    with BpfObject(objs / "tailcall.o") as obj:
        obj.load()
        yield obj


def test_targets_have_distinct_verdicts_and_empty_slot_falls_through(tailcall: Any) -> None:
    p = tailcall.programs
    assert p["bpf_func_process"].test_run(PACKET).retval == XDP_PASS
    assert p["bpf_func_debug"].test_run(PACKET).retval == XDP_TX
    assert p["main_func"].test_run(PACKET).retval == XDP_DROP


def test_item_assignment_puts_program_in_slot(tailcall: Any) -> None:
    p, jt = tailcall.programs, tailcall.maps["jmp_table"]
    jt[0] = p["bpf_func_debug"]
    assert p["main_func"].test_run(PACKET).retval == XDP_TX
    assert slots(jt) == {0: p["bpf_func_debug"].id}


def test_swap_sets_several_slots_and_reports_changes(tailcall: Any) -> None:
    p, jt = tailcall.programs, tailcall.maps["jmp_table"]
    first = swap(jt, {0: p["bpf_func_process"], 3: p["bpf_func_debug"]})
    assert first == [
        SlotChange(0, None, p["bpf_func_process"].id, None, "bpf_func_process"),
        SlotChange(3, None, p["bpf_func_debug"].id, None, "bpf_func_debug"),
    ]
    second = swap(jt, {0: p["bpf_func_debug"], 3: None})
    assert [(c.slot, c.old_prog_id, c.new_prog_id, c.changed) for c in second] == [
        (0, p["bpf_func_process"].id, p["bpf_func_debug"].id, True),
        (3, p["bpf_func_debug"].id, None, True),
    ]
    assert slots(jt) == {0: p["bpf_func_debug"].id}
    assert p["main_func"].test_run(PACKET).retval == XDP_TX


def test_swap_refuses_program_of_other_type_and_writes_nothing(tailcall: Any, objs: Path) -> None:
    p, jt = tailcall.programs, tailcall.maps["jmp_table"]
    with BpfObject(objs / "progs_all.o") as other:
        other.load()
        tc = other.programs["tc_classifier"]
        with pytest.raises(ProgramError, match=r"tc_classifier is of type sched_cls .* holds xdp programs"):
            swap(jt, {0: p["bpf_func_process"], 1: tc})
    assert slots(jt) == {}


def test_swap_refuses_map_that_is_not_a_prog_array(tailcall: Any, objs: Path) -> None:
    with BpfObject(objs / "progs_all.o") as other:
        other.load()
        with pytest.raises(MapError, match="event_count is of type array, not a prog_array"):
            swap(other.maps["event_count"], {0: tailcall.programs["bpf_func_debug"]})


def test_swap_refuses_slot_past_max_entries(tailcall: Any) -> None:
    jt = tailcall.maps["jmp_table"]
    with pytest.raises(MapError, match=r"slot 8 is out of range .*max_entries 8"):
        swap(jt, {0: tailcall.programs["bpf_func_debug"], 8: tailcall.programs["bpf_func_process"]})
    assert slots(jt) == {}


def test_runs_during_10000_swaps_always_reach_one_of_the_two_targets(tailcall: Any) -> None:
    p, jt = tailcall.programs, tailcall.maps["jmp_table"]
    main, a, b = p["main_func"], p["bpf_func_process"], p["bpf_func_debug"]
    jt[0] = a
    verdicts: Counter[int] = Counter()
    errors: list[BaseException] = []
    done = threading.Event()

    def runner() -> None:
        try:
            while not done.is_set():
                verdicts[main.test_run(PACKET, data_size_out=0).retval] += 1
        except BaseException as e:  # noqa: BLE001  # report in the main thread
            errors.append(e)

    t = threading.Thread(target=runner)
    t.start()
    try:
        for i in range(10_000):
            jt[0] = b if i % 2 == 0 else a
    finally:
        done.set()
        t.join()
    assert not errors
    assert set(verdicts) <= {XDP_PASS, XDP_TX}, f"fall-through or bad verdicts: {verdicts}"
    assert sum(verdicts.values()) > 0
    print(f"runs during swaps: XDP_PASS {verdicts[XDP_PASS]}, XDP_TX {verdicts[XDP_TX]}")


def test_python_example_runs(need_root: None, objs: Path, bpffs: Path) -> None:
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "tailcall_swap.py"), str(bpffs)],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "empty slot 0: XDP_DROP"
    assert "slot 0 = bpf_func_debug: XDP_TX" in r.stdout
    assert not (bpffs / "tailcall_jmp_table").exists()


def test_shell_example_swaps_with_cli_only(need_root: None, objs: Path, bpffs: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYBPFOBJ": f"{sys.executable} -m pybpfobj"}
    r = subprocess.run(["sh", str(ROOT / "examples" / "tailcall_swap.sh"), str(bpffs)],
                       capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0, r.stderr
    rets = [line.split(",")[0] for line in r.stdout.splitlines() if line.startswith("Return value")]
    assert rets == ["Return value: 1", "Return value: 2", "Return value: 3"]
    assert not (bpffs / "tailcall_progs").exists()


def test_swap_refuses_mixed_program_types_on_an_ownerless_prog_array(tailcall: Any, objs: Path) -> None:
    from pybpfobj.maps import Map

    with Map.create("prog_array", 4, 4, 4, name="fresh_jt") as jt, BpfObject(objs / "progs_all.o") as other:
        other.load()
        with pytest.raises(ProgramError, match="programs of different types cannot share prog_array fresh_jt: "
                                               "sched_cls, xdp") as ei:
            swap(jt, {0: tailcall.programs["bpf_func_process"], 1: other.programs["tc_classifier"]})
        assert ei.value.errno == 22
        assert slots(jt) == {}
