#!/usr/bin/env python3
"""Run every benchmark in bench/ and collect their ratios into one report.

    sudo python3 bench/run_all.py [--quick] [--only NAME ...] [--timeout S] [--out DIR]

Each ``bench/bench_*.py`` runs in its own process (in turn, never in
parallel: they measure time).  Their ratios are collected from what they
print:

- the convention, preferred: a line ``RATIO <name> <value> <target>``
  (``<target>`` a number meaning "value <= target", or ``-`` when there is
  none; ``<name>`` without spaces).  Most values are ratios against a
  reference measured in the same run; a name ending in ``_ms``, ``_s``,
  ``_us`` or ``_ns`` is an absolute time in that unit instead (an issue's
  budget such as "40 ms over bpftool" or "generation <= 0.5 s");
- otherwise what they print for people: table rows under a header with a
  ``ratio`` column (and maybe a ``target`` column), and lines with
  ``ratio <number>`` (and maybe ``target <= <number>``).

Writes ``REPORT.md`` (a Markdown table: benchmark, measurement, value,
unit, target, verdict; then each script's run time and failures) and, when
matplotlib is importable, ``report.png`` (bar charts: the ratios with their
targets, and the absolute times as a share of their budgets).  ``--quick`` passes a benchmark's own quick option when it
has one (``--quick``; else fewer runs through ``--runs``/``-n``).
Exits 1 if a benchmark failed to run, 0 otherwise (missed targets are
reported, not fatal: they are measurements, not tests).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent

_NUM = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
_RATIO_LINE = re.compile(rf"^RATIO\s+(\S+)\s+({_NUM})\s+(\S+)\s*$")
_RATIO_WORD = re.compile(rf"\bratio\b[^0-9\n;]*?({_NUM})\s*x?", re.IGNORECASE)
_TARGET = re.compile(rf"target\s*(?:<=|≤|<)\s*({_NUM})", re.IGNORECASE)
_OURS = re.compile(r"pybpfobj|python|bpfobject|\bpy\b", re.IGNORECASE)
_NUM_TOKEN = re.compile(rf"^{_NUM}x?$")
_UNITS = re.compile(rf"(?<![\w.])(?:{_NUM})\s*(?:ms|ns|us|s|x|%|events/s|runs/s)?\b")
_TIME_SUFFIX = re.compile(r"_(ms|s|us|ns)$")


@dataclass
class Ratio:
    """One measurement: ``value`` (a ratio against a reference, or a time: see :attr:`unit`);
    ``target`` the bound it should stay at or under."""

    bench: str
    name: str
    value: float
    target: float | None = None

    @property
    def unit(self) -> str:
        """``ratio``, or the time unit its name ends in (``loadall_heavy_difference_ms``: ``ms``)."""
        m = _TIME_SUFFIX.search(self.name)
        return m.group(1) if m else "ratio"

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "-"
        return "ok" if self.value <= self.target else "MISSED"


@dataclass
class BenchRun:
    """One benchmark script's run."""

    name: str
    argv: list[str]
    returncode: int | None = None
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    ratios: list[Ratio] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _float(text: str) -> float | None:
    try:
        return float(text.rstrip("x"))
    except ValueError:
        return None


def parse_ratio_lines(bench: str, text: str) -> list[Ratio]:
    """The ``RATIO <name> <value> <target>`` lines of a benchmark's output."""
    out = []
    for line in text.splitlines():
        m = _RATIO_LINE.match(line.strip())
        if m:
            out.append(Ratio(bench, m.group(1), float(m.group(2)), _float(m.group(3))))
    return out


def _columns(line: str) -> list[tuple[int, int, str]]:
    """Whitespace-separated tokens of ``line`` with their start and end columns."""
    return [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", line)]


def _parse_table(bench: str, header: str, rows: list[str]) -> list[Ratio]:
    # Columns are right-aligned under their labels: a number belongs to the
    # label that ends where it ends.
    hcols = _columns(header)
    ratio_end = next(e for s, e, t in hcols if t.lower() == "ratio")
    target_end = next((e for s, e, t in hcols if t.lower() == "target"), None)
    out = []
    for row in rows:
        toks = _columns(row)
        nums = [(s, e, t) for s, e, t in toks if _NUM_TOKEN.match(t)]
        if not nums:
            continue
        name = row[:nums[0][0]].strip()
        value = next((_float(t) for s, e, t in nums if abs(e - ratio_end) <= 1), None)
        if not name or value is None:
            continue
        target = None
        if target_end is not None:
            target = next((_float(t) for s, e, t in nums if abs(e - target_end) <= 1), None)
        # the two measured columns before the ratio say what was compared, in
        # the order whose quotient is the ratio
        labels: list[tuple[str, float]] = []
        prev = 0  # header tokens before index prev are used up (the first one names the rows)
        for s, e, t in nums:
            if e >= ratio_end - 1:
                break
            j = next((k for k, (hs, he, ht) in enumerate(hcols) if abs(he - e) <= 1 and k >= prev), None)
            v = _float(t)
            if j is None or v is None:
                continue
            labels.append((" ".join(ht for hs, he, ht in hcols[max(prev, 1):j + 1]), v))
            prev = j + 1
        what = ""
        if len(labels) >= 2:
            (la, a), (lb, b) = labels[-2], labels[-1]
            a_over_b = abs(a / b - value) if b else float("inf")
            b_over_a = abs(b / a - value) if a else float("inf")
            if abs(a_over_b - b_over_a) < 0.05 * max(value, 1e-9):
                # the quotients cannot tell (values close to 1): our side is the numerator
                a_first = bool(_OURS.search(la)) or not _OURS.search(lb)
            else:
                a_first = a_over_b <= b_over_a
            what = f" ({la} vs {lb})" if a_first else f" ({lb} vs {la})"
        out.append(Ratio(bench, f"{name}{what}", value, target))
    return out


def _label(text: str) -> str:
    text = _UNITS.sub("", text)
    text = re.sub(r"\s+", " ", text).strip(" :;,-=")
    return text


def parse_human(bench: str, text: str) -> list[Ratio]:
    """Ratios from the output people read: tables with a ``ratio`` column, ``ratio N`` lines."""
    out: list[Ratio] = []
    lines = text.splitlines()
    i = 0
    parent = ""
    while i < len(lines):
        line = lines[i]
        words = [t.lower() for t in line.split()]
        if "ratio" in words and not any(_NUM_TOKEN.match(w) for w in words):  # a table's header
            rows = []
            i += 1
            while i < len(lines) and lines[i].strip():
                rows.append(lines[i])
                i += 1
            out.extend(_parse_table(bench, line, rows))
            continue
        if not line.startswith((" ", "\t")) and line.strip():
            parent = line.split(":", 1)[0].strip()
        for seg in line.split(";"):
            m = _RATIO_WORD.search(seg)
            if not m:
                continue
            before = seg[:m.start()]
            name = _label(before)
            if not name:  # "ratio Python/C: 0.12": the name sits between the word and the colon
                after = seg[m.start() + len("ratio"):]
                name = _label(after.split(":", 1)[0]) if ":" in after else ""
            t = _TARGET.search(seg)
            target = float(t.group(1)) if t else None
            if line.startswith((" ", "\t")) and parent:  # a detail line under a headline
                name = f"{parent} - {name}" if name else parent
            out.append(Ratio(bench, name or "ratio", float(m.group(1)), target))
        i += 1
    return out


def parse_output(bench: str, text: str) -> list[Ratio]:
    """A benchmark's ratios: its ``RATIO`` lines if it prints any, else what people read."""
    return parse_ratio_lines(bench, text) or parse_human(bench, text)


def discover(bench_dir: Path) -> list[Path]:
    return sorted(p for p in bench_dir.glob("bench_*.py") if p.is_file())


def quick_args(script: Path) -> list[str]:
    """The script's own quick mode, found in its argument parser."""
    src = script.read_text(errors="replace")
    if re.search(r"add_argument\(\s*['\"]--quick['\"]", src):
        return ["--quick"]
    if re.search(r"add_argument\(\s*['\"]--runs['\"]", src):
        return ["--runs", "3"]
    if re.search(r"add_argument\(\s*['\"]-n['\"]", src):
        return ["-n", "3"]
    return []


def run_bench(script: Path, *, quick: bool, timeout: float) -> BenchRun:
    argv = [sys.executable, str(script), *(quick_args(script) if quick else [])]
    r = BenchRun(script.stem, argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    t = time.perf_counter()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env, check=False)
        r.returncode, r.stdout, r.stderr = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        r.returncode = None
        r.stdout = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        r.stderr = f"timed out after {timeout:.0f} s"
    r.seconds = time.perf_counter() - t
    r.ratios = parse_output(r.name, r.stdout)
    return r


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if abs(v) < 100 else f"{v:.0f}"  # 1.102 against 1.1 reads as missed


def machine() -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        from pybpfobj.kernel import libbpf

        lb = libbpf.version()
    except Exception:  # noqa: BLE001 - the report is still useful without it
        lb = "?"
    return (f"{platform.node()}: Linux {platform.release()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, libbpf {lb}")


def render_markdown(runs: list[BenchRun], *, quick: bool, when: str) -> str:
    lines = [
        "# Benchmark report",
        "",
        f"Generated by `bench/run_all.py{' --quick' if quick else ''}` on {when}, {machine()}.",
        ("A value of unit `ratio` is pybpfobj's cost against a reference measured in the same run "
         "(time over time; a name with `throughput` is a rate over a rate: higher is faster); "
         "`ms` and `s` are absolute times (e.g. a difference to the reference) with an absolute budget "
         "(see each script's docstring).  A target is the value it should stay at or under."),
        "",
        "| benchmark | measurement | value | unit | target | verdict |",
        "| --- | --- | ---: | --- | ---: | --- |",
    ]
    for r in runs:
        for x in r.ratios:
            name = x.name.replace("|", "\\|")
            lines.append(f"| {r.name} | {name} | {_fmt(x.value)} | {x.unit} | {_fmt(x.target)} | {x.verdict} |")
    missed = [x for r in runs for x in r.ratios if x.verdict == "MISSED"]
    n_targets = sum(1 for r in runs for x in r.ratios if x.target is not None)
    lines += ["", f"Targets met: {n_targets - len(missed)} of {n_targets}"
              + (f"; missed: {', '.join(f'{x.bench} {x.name}' for x in missed)}." if missed else ".")]
    lines += ["", "## Runs", "", "| benchmark | command | exit | seconds | values |", "| --- | --- | ---: | ---: | ---: |"]
    for r in runs:
        cmd = " ".join(["python3", str(Path(r.argv[1]).relative_to(ROOT)) if Path(r.argv[1]).is_relative_to(ROOT)
                        else r.argv[1], *r.argv[2:]])
        code = "timeout" if r.returncode is None else str(r.returncode)
        lines.append(f"| {r.name} | `{cmd}` | {code} | {r.seconds:.1f} | {len(r.ratios)} |")
    failed = [r for r in runs if not r.ok]
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            tail = "\n".join(r.stderr.strip().splitlines()[-15:])
            if not tail:
                tail = ("(nothing on stderr: the script's own verdict, e.g. a missed target)\n"
                        + "\n".join(r.stdout.strip().splitlines()[-5:]))
            lines += [f"### {r.name}", "", "```", tail, "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def render_png(runs: list[BenchRun], path: Path) -> bool:
    """Bar charts of the report; False without matplotlib (or with nothing to draw).

    Top: every ratio (log scale), its target a black tick.  Bottom: the
    absolute times that have a budget, as a share of it (1 = on budget),
    each labelled with its value and budget: milliseconds and seconds do not
    belong on a ratio axis.
    """
    try:
        import matplotlib  # type: ignore[import-not-found,unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return False
    ratios = [x for r in runs for x in r.ratios if x.unit == "ratio" and x.value > 0]
    times = [x for r in runs for x in r.ratios if x.unit != "ratio" and x.target]
    if not ratios and not times:
        return False

    def color(x: Ratio) -> str:
        return "tab:red" if x.verdict == "MISSED" else "tab:green" if x.verdict == "ok" else "tab:blue"

    def label(x: Ratio) -> str:
        return _short(f"{x.bench.removeprefix('bench_')}: {x.name}", 64)

    panels = [p for p in (ratios, times) if p]
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(13, 0.3 * (len(ratios) + len(times)) + 1.6 * len(panels)),
                             gridspec_kw={"height_ratios": [len(p) + 3 for p in panels]})
    for ax, items in zip((a for row in axes for a in row), panels):
        ys = list(range(len(items)))
        if items is ratios:
            ax.barh(ys, [x.value for x in items], color=[color(x) for x in items])
            for y, x in zip(ys, items):
                if x.target is not None:
                    ax.plot([x.target, x.target], [y - 0.42, y + 0.42], color="black", linewidth=2.5)
                # right of the bar or of its target tick, whichever is further right
                ax.annotate(_fmt(x.value), (max(x.value, x.target or 0.0), y), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=6.5)
            ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
            ax.set_xscale("log")
            lo = min([x.value for x in items] + [x.target for x in items if x.target])
            hi = max([x.value for x in items] + [x.target for x in items if x.target])
            ax.set_xlim(lo / 2, hi * 3)  # room for the value labels right of the bars
            ax.set_xlabel("ratio to the reference measured in the same run (log scale; 1 = as fast; time over "
                          "time, but rate over rate for names with 'throughput')\n"
                          "black tick: target; green ok, red missed, blue no target", fontsize=8)
            ax.set_title("pybpfobj benchmarks: ratios", fontsize=10)
        else:
            shares = [x.value / x.target for x in items if x.target]
            ax.barh(ys, shares, color=[color(x) for x in items])
            ax.axvline(1.0, color="black", linewidth=2)
            for y, x, v in zip(ys, items, shares):
                ax.annotate(f"{_fmt(x.value)} {x.unit} (budget {_fmt(x.target)} {x.unit})", (max(v, 0), y),
                            xytext=(3, 0), textcoords="offset points", va="center", fontsize=6.5)
            ax.set_xlim(min(0.0, min(shares) * 1.1), max(1.0, max(shares)) * 1.45)
            ax.set_xlabel("share of the absolute budget (value / target; black line: the budget); "
                          "green ok, red missed", fontsize=8)
            ax.set_title("pybpfobj benchmarks: absolute times against their budgets", fontsize=10)
        ax.set_yticks(ys)
        ax.set_yticklabels([label(x) for x in items], fontsize=7)
        ax.set_ylim(len(items) - 0.5, -0.5)  # first measurement on top
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # long labels are not cut off
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="pass each benchmark's quick mode / fewer runs")
    ap.add_argument("--only", nargs="*", default=None, help="benchmark names (bench_maps or maps)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per benchmark")
    ap.add_argument("--bench-dir", type=Path, default=BENCH, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=BENCH, help="where REPORT.md and report.png go")
    ap.add_argument("--no-png", action="store_true")
    args = ap.parse_args(argv)

    scripts = discover(args.bench_dir)
    if args.only:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.only}
        scripts = [s for s in scripts if s.stem in wanted]
    if not scripts:
        print("no benchmark to run", file=sys.stderr)
        return 1
    runs = []
    for s in scripts:
        print(f"== {s.name} {' '.join(quick_args(s)) if args.quick else ''}", flush=True)
        r = run_bench(s, quick=args.quick, timeout=args.timeout)
        sys.stdout.write(r.stdout)
        if not r.ok:
            print(f"!! {s.name} failed ({'timeout' if r.returncode is None else r.returncode}): "
                  f"{r.stderr.strip()[-500:]}", flush=True)
        print(f"   {len(r.ratios)} values in {r.seconds:.1f} s", flush=True)
        runs.append(r)
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.out / "REPORT.md"
    report.write_text(render_markdown(runs, quick=args.quick, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print(f"wrote {report}")
    if not args.no_png:
        png = args.out / "report.png"
        print(f"wrote {png}" if render_png(runs, png) else "no report.png (matplotlib is not installed)")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
