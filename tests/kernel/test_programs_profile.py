"""The perf-counter side of ``prog profile`` (the fentry side is refused by this kernel and
tested through the CLI in tests/cli/test_prog_dump.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pybpfobj import profiler
from pybpfobj.errors import UnsupportedError
from pybpfobj.kernel import libbpf, progops
from pybpfobj.spec.elf import ObjectSpec


def test_metrics_parse_by_prefix_in_table_order_with_clear_errors() -> None:
    names = [m.name for m in profiler.parse_metrics(["instructions", "cyc", "d"])]
    assert names == ["cycles", "instructions", "dtlb_misses"]
    for words, message in [([], "no metric is selected"), (["nope"], "unknown metric nope"),
                           (["l1d_loads", "l1"], "duplicated metric: l1"),
                           ([m.name for m in profiler.METRICS], r"too many \(6\) metrics")]:
        with pytest.raises(profiler.ProfileError, match=message):
            profiler.parse_metrics(words)


def test_each_metric_counter_opens_reads_and_closes_or_says_the_machine_lacks_it(need_root: None) -> None:
    cpu = min(os.sched_getaffinity(0))
    for m in profiler.METRICS:
        try:
            c = profiler.Counter(m, cpu)
        except UnsupportedError as e:
            # a VM without a hardware PMU: the message names the metric, the cpu and the reason
            assert str(e.message).startswith(f"cannot count {m.name} on cpu {cpu}: "), e.message
            assert "perf_event_open" in e.message
            continue
        with c:
            fd = c.fd
            c.enable()
            value, enabled, running = c.read()
            assert value >= 0 and enabled >= running >= 0
        assert c.fd is None and not os.path.exists(f"/proc/self/fd/{fd}")


def test_a_software_counter_counts_through_the_same_calls(need_root: None) -> None:
    # cpu-clock exists everywhere: it proves open/enable/read/close work where hardware counters do not
    fd = progops.perf_event_open(progops.PERF_TYPE_SOFTWARE, 0, min(os.sched_getaffinity(0)))
    try:
        progops.perf_event_enable(fd)
        sum(range(200000))
        value, enabled, running = progops.perf_event_read(fd)
        assert value > 0 and enabled >= running > 0
        progops.perf_event_enable(fd, False)
        assert progops.perf_event_read(fd)[0] >= value
    finally:
        os.close(fd)
    assert libbpf.num_possible_cpus() >= os.cpu_count() if os.cpu_count() else True


def test_a_missing_counter_is_an_unsupported_error_naming_the_event(need_root: None) -> None:
    with pytest.raises(UnsupportedError, match=r"perf_event_open \(type 1, config 0xffff, cpu 0\)"):
        progops.perf_event_open(progops.PERF_TYPE_SOFTWARE, 0xFFFF, 0)


def test_the_profiler_object_has_the_fentry_fexit_pair_and_its_maps(objs: Path) -> None:
    spec = ObjectSpec.from_file(profiler.profiler_object())
    assert {(p.name, p.section) for p in spec.programs} == {("fentry_XXX", "fentry/XXX"),
                                                            ("fexit_XXX", "fexit/XXX")}
    assert {"events", "fentry_readings", "accum_readings", "counts"} <= {m.name for m in spec.maps}
