"""bench/run_all.py: collects the ratios every benchmark prints (the ``RATIO``
convention, tables with a ratio column, ``ratio N`` lines) into one Markdown
report.  Offline: fake benchmark scripts in a temp dir, printing what the real
ones print."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_run_all"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


# the formats bench_maps.py and bench_load.py print
MAPS_LIKE = "\n".join([
    f"{'operation':45s} {'python':>12s} {'reference':>12s} {'ratio':>7s} {'target':>7s}",
    f"{'per-element update (typed API)':45s} {1234.5:12.1f} {1000.0:12.1f} {1.23:7.2f} {1.9:7.2f}",
    f"{'items() vs C batch dump':45s} {900.0:12.1f} {400.0:12.1f} {2.25:7.2f} {1.6:7.2f}  MISSED",
]) + "\n"

LOAD_LIKE = "\n".join([
    f"{'object':<14} {'bpftool ms':>10} {'pybpfobj ms':>12} {'ratio':>6} {'diff ms':>8}",
    f"{'xdp_counter':<14} {12.0:10.1f} {30.0:12.1f} {2.5:6.2f} {18.0:8.1f}",
    f"{'heavy':<14} {150.0:10.1f} {160.0:12.1f} {1.07:6.2f} {10.0:8.1f}",
    "",
    f"{'object':<14} {'C libbpf ms':>11} {'BpfObject ms':>12} {'ratio':>6}",
    f"{'heavy':<14} {9.5:11.2f} {10.0:12.2f} {1.05:6.2f}",
]) + "\n"

LINES_LIKE = """\
BTF file: /sys/kernel/btf/vmlinux (120000 types), median of 3 runs
bpftool btf dump file (whole process):    300.0 ms
full parse (index + decode all):          900.0 ms  ratio  3.00x  (target <= 10x)
generation (whole process):   250.0 ms   target <= 500 ms
  reference python3 -c pass:    20.0 ms   ratio  12.5x
ring buffer consumption, 192000 samples of 8 bytes, best of 3:
  ratio Python/C: 0.125  (C is 8.0x faster)
CPU time (user+sys), robust when the machine is busy:
  bpftool 250.0 ms; full parse 800.0 ms ratio 3.20x; lookup 2.0 ms ratio 0.01x
"""


def _names(ratios: list) -> dict[str, tuple[float, float | None]]:  # type: ignore[type-arg]
    return {r.name: (r.value, r.target) for r in ratios}


def test_ratio_convention_lines_win_over_human_output(run_all: ModuleType) -> None:
    out = "full parse ratio 3.0x (target <= 10x)\nRATIO btf_full_parse 3.0 10\nRATIO events_py_vs_c 0.125 -\n"
    assert _names(run_all.parse_output("bench_btf", out)) == {
        "btf_full_parse": (3.0, 10.0), "events_py_vs_c": (0.125, None)}


def test_table_with_ratio_and_target_columns(run_all: ModuleType) -> None:
    got = run_all.parse_output("bench_maps", MAPS_LIKE)
    assert _names(got) == {
        "per-element update (typed API) (python vs reference)": (1.23, 1.90),
        "items() vs C batch dump (python vs reference)": (2.25, 1.60),
    }
    assert [r.verdict for r in got] == ["ok", "MISSED"]


def test_two_tables_with_ratio_columns_name_what_they_compare(run_all: ModuleType) -> None:
    got = _names(run_all.parse_output("bench_load", LOAD_LIKE))
    assert got == {
        "xdp_counter (pybpfobj ms vs bpftool ms)": (2.5, None),
        "heavy (pybpfobj ms vs bpftool ms)": (1.07, None),
        "heavy (BpfObject ms vs C libbpf ms)": (1.05, None),
    }


def test_ratio_lines_with_targets_and_headlines(run_all: ModuleType) -> None:
    got = _names(run_all.parse_output("bench_x", LINES_LIKE))
    assert got["full parse (index + decode all)"] == (3.0, 10.0)
    assert got["generation (whole process) - reference python3 -c pass"] == (12.5, None)
    assert got["ring buffer consumption, 192000 samples of 8 bytes, best of 3 - Python/C"] == (0.125, None)
    assert got["CPU time (user+sys), robust when the machine is busy - full parse"] == (3.2, None)
    assert got["CPU time (user+sys), robust when the machine is busy - lookup"] == (0.01, None)
    assert len(got) == 5


def test_runs_every_bench_script_and_writes_the_report(run_all: ModuleType, tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "bench_maps.py").write_text(f"print({MAPS_LIKE!r})\n")
    (bench / "bench_quick.py").write_text(textwrap.dedent("""
        import argparse
        ap = argparse.ArgumentParser()
        ap.add_argument("--quick", action="store_true")
        a = ap.parse_args()
        print(f"RATIO quick_mode {1.0 if a.quick else 2.0} 1.5")
    """))
    (bench / "bench_broken.py").write_text("import sys\nsys.exit('no kernel here')\n")
    (bench / "helper.py").write_text("raise SystemExit('not a benchmark')\n")
    out = tmp_path / "out"
    rc = run_all.main(["--quick", "--bench-dir", str(bench), "--out", str(out)])
    assert rc == 1  # bench_broken failed
    report = (out / "REPORT.md").read_text()
    assert "| bench_quick | quick_mode | 1 | ratio | 1.5 | ok |" in report
    assert "| bench_maps | items() vs C batch dump (python vs reference) | 2.25 | ratio | 1.6 | MISSED |" in report
    assert "### bench_broken" in report and "no kernel here" in report
    assert "helper" not in report
    png = out / "report.png"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not png.exists()
    else:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_selects_benchmarks_by_short_name(run_all: ModuleType, tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "bench_a.py").write_text("print('RATIO a 1 -')\n")
    (bench / "bench_b.py").write_text("print('RATIO b 2 -')\n")
    assert run_all.main(["--only", "b", "--bench-dir", str(bench), "--out", str(tmp_path), "--no-png"]) == 0
    report = (tmp_path / "REPORT.md").read_text()
    assert "| bench_b | b | 2 | ratio | - | - |" in report and "bench_a" not in report


def test_names_ending_in_a_time_unit_are_absolute_values_not_ratios(run_all: ModuleType) -> None:
    out = ("RATIO loadall_heavy_difference_ms 35.5 40\nRATIO skeleton_generation_process_s 0.62 0.5\n"
           "RATIO loadall_heavy_vs_bpftool 1.1 1.15\nRATIO ringbuf_read_batch_throughput_vs_C 0.2 -\n")
    got = run_all.parse_output("bench_x", out)
    assert [(r.name, r.unit, r.verdict) for r in got] == [
        ("loadall_heavy_difference_ms", "ms", "ok"),
        ("skeleton_generation_process_s", "s", "MISSED"),
        ("loadall_heavy_vs_bpftool", "ratio", "ok"),
        ("ringbuf_read_batch_throughput_vs_C", "ratio", "-"),
    ]


def test_report_table_has_value_and_unit_columns_and_lists_missed_targets(
        run_all: ModuleType, tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "bench_load.py").write_text(
        "print('RATIO loadall_heavy_difference_ms 55.25 40')\nprint('RATIO loadall_heavy_vs_bpftool 1.1 1.15')\n"
        "print('RATIO loadall_python_startup_floor_ms 9.5 -')\n")
    assert run_all.main(["--bench-dir", str(bench), "--out", str(tmp_path)]) == 0  # a miss is not a failure
    report = (tmp_path / "REPORT.md").read_text()
    assert "| benchmark | measurement | value | unit | target | verdict |" in report
    assert "| bench_load | loadall_heavy_difference_ms | 55.25 | ms | 40 | MISSED |" in report
    assert "| bench_load | loadall_heavy_vs_bpftool | 1.1 | ratio | 1.15 | ok |" in report
    assert "| bench_load | loadall_python_startup_floor_ms | 9.5 | ms | - | - |" in report
    assert "Targets met: 1 of 2; missed: bench_load loadall_heavy_difference_ms." in report
    png = tmp_path / "report.png"
    if png.exists():  # with matplotlib: the ms budget is drawn too, on its own panel
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
