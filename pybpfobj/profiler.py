"""``prog profile``: hardware counters around every run of a loaded BPF program.

As bpftool does it: an fentry and an fexit program (bpf_progs/profiler.bpf.c,
built to ``build/profiler.o``) are attached to the target program's main
function; per CPU and per selected metric a perf counter is opened and put in
their ``events`` map; fentry reads the counters, fexit reads them again and
accumulates the differences, which are summed over CPUs at the end.

Kernels that refuse fentry/fexit programs (no BTF for the target, lockdown,
or a policy as on the VM these tests run on) fail at load with the kernel's
error, which :func:`profile` reports as :class:`ProfileRefused`.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pybpfobj.errors import BpfError, NotFoundError, UnsupportedError

MAX_METRICS = 4

# perf_event_attr for each metric: (type, config); hardware cache configs are
# cache | op << 8 | result << 16 (read op; access or miss result).
if TYPE_CHECKING:
    from typing import Self

_HW, _CACHE = 0, 3
_L1D, _LL, _DTLB, _ITLB = 0, 2, 3, 4
_ACCESS, _MISS = 0, 1


@dataclass(frozen=True)
class Metric:
    """One ``prog profile`` metric: its perf event and the ratio printed next to it."""

    name: str
    ev_type: int
    config: int
    ratio_of: str | None = None     # metric the ratio divides by
    ratio_desc: str = ""
    ratio_mul: float = 1.0


METRICS: tuple[Metric, ...] = (
    Metric("cycles", _HW, 0),
    Metric("instructions", _HW, 1, "cycles", "insns per cycle", 1.0),
    Metric("l1d_loads", _CACHE, _L1D | _ACCESS << 16),
    Metric("llc_misses", _CACHE, _LL | _MISS << 16, "instructions", "LLC misses per million insns", 1e6),
    Metric("itlb_misses", _CACHE, _ITLB | _MISS << 16, "instructions", "itlb misses per million insns", 1e6),
    Metric("dtlb_misses", _CACHE, _DTLB | _MISS << 16, "instructions", "dtlb misses per million insns", 1e6),
)
_BY_NAME = {m.name: m for m in METRICS}


class ProfileError(BpfError):
    """Bad ``prog profile`` arguments or a step of profiling that failed."""


class ProfileRefused(ProfileError):
    """The kernel would not load or attach the fentry/fexit programs profiling needs."""


def parse_metrics(words: Sequence[str]) -> list[Metric]:
    """Metrics by name or unambiguous-enough prefix (first match, as bpftool), in table order.

    Raises :class:`ProfileError` for none, an unknown or a repeated metric, or more than
    :data:`MAX_METRICS`.
    """
    if not words:
        raise ProfileError("no metric is selected")
    chosen: list[Metric] = []
    for w in words:
        m = next((m for m in METRICS if w and m.name.startswith(w)), None)
        if m is None:
            raise ProfileError(f"unknown metric {w}")
        if m in chosen:
            raise ProfileError(f"duplicated metric: {w}")
        chosen.append(m)
    if len(chosen) > MAX_METRICS:
        raise ProfileError(f"too many ({len(chosen)}) metrics, please specify no more than {MAX_METRICS} "
                           "metrics at a time")
    return [m for m in METRICS if m in chosen]


class Counter:
    """One perf counter of a metric on one CPU (all processes, kernel side only)."""

    def __init__(self, metric: Metric, cpu: int) -> None:
        from pybpfobj.kernel import progops

        self.metric, self.cpu = metric, cpu
        try:
            self.fd: int | None = progops.perf_event_open(metric.ev_type, metric.config, cpu)
        except BpfError as e:
            why = ("this machine has no such hardware counter" if e.errno == 2 else e.message)
            raise type(e)(f"cannot count {metric.name} on cpu {cpu}: {why} "
                          f"(perf_event_open: {os.strerror(e.errno or 0)})", errno=e.errno or 0) from None

    def enable(self) -> None:
        from pybpfobj.kernel import progops

        progops.perf_event_enable(self._fd())

    def read(self) -> tuple[int, int, int]:
        """``(value, time enabled, time running)``."""
        from pybpfobj.kernel import progops

        return progops.perf_event_read(self._fd())

    def _fd(self) -> int:
        if self.fd is None:
            raise ProfileError(f"counter {self.metric.name} on cpu {self.cpu} is closed")
        return self.fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Reading:
    """A metric summed over CPUs and runs."""

    metric: Metric
    value: int = 0
    enabled: int = 0
    running: int = 0


@dataclass
class ProfileResult:
    run_cnt: int
    readings: list[Reading] = field(default_factory=list)

    def text(self) -> str:
        """bpftool's plain table: run count, then one line per metric with its ratio and the
        share of time the counter ran when it was multiplexed."""
        by_name = {r.metric.name: r for r in self.readings}
        out = [f"\n{self.run_cnt:18d} {'run_cnt':<20s}\n"]
        for r in self.readings:
            line = f"{r.value:18d} {r.metric.name:<20s}"
            base = by_name.get(r.metric.ratio_of or "")
            if base is not None and base.value > 0:
                line += f"# {r.value * r.metric.ratio_mul / base.value:8.2f} {r.metric.ratio_desc:<30s}"
            else:
                line += " " * 41
            if r.enabled > r.running:
                line += f"({r.running * 100.0 / r.enabled:4.2f}%)"
            out.append(line + "\n")
        return "".join(out)

    def json(self) -> list[dict[str, object]]:
        return [{"metric": r.metric.name, "run_cnt": self.run_cnt, "value": r.value, "enabled": r.enabled,
                 "running": r.running} for r in self.readings]


def profiler_object() -> Path:
    """The compiled profiler: ``$PYBPFOBJ_PROFILER_OBJ`` or bpf_progs/build/profiler.o of this tree."""
    env = os.environ.get("PYBPFOBJ_PROFILER_OBJ")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "bpf_progs" / "build" / "profiler.o"
    if not path.is_file():
        raise NotFoundError(f"profiler object {path} not found: build it with 'make -C bpf_progs' "
                            "or point PYBPFOBJ_PROFILER_OBJ at it", path=str(path))
    return path


def target_function(prog_fd: int) -> str:
    """The name of the program's main function in its BTF (what fentry/fexit attach to)."""
    from pybpfobj.kernel import info as kinfo

    pi = kinfo.prog_info(prog_fd, func_info=True)
    if not pi.btf_id:
        raise ProfileRefused(f"program {pi.name or pi.id} has no BTF, which fentry/fexit programs need",
                             errno=22, prog=pi.name)
    if not pi.func_info:
        raise ProfileRefused(f"program {pi.name or pi.id} has no BTF function info", errno=22, prog=pi.name)
    from pybpfobj.spec.btf import BTF

    btf = BTF.from_bytes(kinfo.btf_data(pi.btf_id), source=f"BTF id {pi.btf_id}")
    return str(btf.type(pi.func_info[0][1]).name)


def _percpu(map_fd: int, key: int, value_size: int, ncpu: int) -> list[bytes]:
    from pybpfobj.kernel import progops

    slot = (value_size + 7) & ~7
    raw = progops.map_lookup_bytes(map_fd, struct.pack("<I", key), slot * ncpu)
    return [raw[i * slot:i * slot + value_size] for i in range(ncpu)]


def profile(prog_fd: int, metrics: Sequence[Metric], duration: float | None = None, *,
            wait: Callable[[float | None], None] | None = None) -> ProfileResult:
    """Count ``metrics`` over every run of the program behind ``prog_fd`` for ``duration``
    seconds (until Ctrl-C / KeyboardInterrupt when None) and return the sums.

    Raises :class:`ProfileRefused` when the kernel refuses the fentry/fexit
    programs, :class:`UnsupportedError` when a counter does not exist here.
    Everything it opened is closed on every path.
    """
    from pybpfobj.kernel import attach, libbpf, progops
    from pybpfobj.loader import BpfObject

    if not metrics:
        raise ProfileError("no metric is selected")
    ncpu = libbpf.num_possible_cpus()
    func = target_function(prog_fd)
    obj = BpfObject(profiler_object(), name="profiler")
    counters: list[Counter] = []
    links: list[int] = []
    try:
        obj.set_var("num_cpu", ncpu)
        obj.set_var("num_metric", len(metrics))
        obj.set_max_entries("events", len(metrics) * ncpu)
        obj.set_max_entries("fentry_readings", len(metrics))
        obj.set_max_entries("accum_readings", len(metrics))
        for name in obj.program_names():
            obj.set_attach_target(name, prog_fd, func)
        from pybpfobj.kernel import libbpf

        log = libbpf.logger()
        level = log.level
        log.setLevel(100)   # libbpf's load warnings (e.g. its 'ulimit -l' guess) would only mislead here
        try:
            obj.load()
        except BpfError as e:
            err = e.errno or 0
            why = os.strerror(err) if err else e.message.splitlines()[0]
            hint = " (this kernel does not allow fentry/fexit programs)" if err == 1 else ""
            raise ProfileRefused(f"prog profile needs fentry/fexit programs attached to {func}, and the "
                                 f"kernel refused to load them: {why}{hint}", errno=err) from None
        finally:
            log.setLevel(level)
        events_fd = obj.map_fd("events")
        for k, m in enumerate(metrics):
            for cpu in range(ncpu):
                try:
                    c = Counter(m, cpu)
                except BpfError as e:
                    if e.errno == 19:   # ENODEV: cpu offline, as bpftool skips it
                        continue
                    raise
                counters.append(c)
                progops.map_update_bytes(events_fd, struct.pack("<I", k * ncpu + cpu), struct.pack("<i", c._fd()))
                c.enable()
        for name in obj.program_names():
            at = progops.BPF_TRACE_FEXIT if name.startswith("fexit") else progops.BPF_TRACE_FENTRY
            try:
                links.append(attach.link_create(obj.prog_fd(name), 0, at, what=f"attach {name} to {func}"))
            except BpfError as e:
                raise ProfileRefused(f"attaching {name} to {func} failed: {e.message}",
                                     errno=e.errno or 0) from None
        try:
            (wait or _sleep)(duration)
        except KeyboardInterrupt:
            pass
        for c in counters:
            c.close()
        runs = sum(struct.unpack("<Q", v)[0] for v in _percpu(obj.map_fd("counts"), 0, 8, ncpu))
        result = ProfileResult(runs)
        acc = obj.map_fd("accum_readings")
        for k, m in enumerate(metrics):
            r = Reading(m)
            for v in _percpu(acc, k, 24, ncpu):
                c_, e_, r_ = struct.unpack("<QQQ", v)
                r.value += c_
                r.enabled += e_
                r.running += r_
            result.readings.append(r)
        return result
    finally:
        for fd in links:
            os.close(fd)
        for c in counters:
            c.close()
        obj.close()


def _sleep(duration: float | None) -> None:
    if duration is None:
        while True:
            time.sleep(3600)
    time.sleep(duration)


__all__ = ["MAX_METRICS", "METRICS", "Counter", "Metric", "ProfileError", "ProfileRefused", "ProfileResult",
           "Reading", "UnsupportedError", "parse_metrics", "profile", "profiler_object", "target_function"]
