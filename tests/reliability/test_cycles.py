"""Open/load/close cycles leak nothing: no fd (counted in /proc/self/fd), no
kernel object, resident memory growth under 10 MB.

CI: 1,000 cycles (and 200 failing loads); PYBPFOBJ_LONG=1: 10,000 (and 2,000).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from pybpfobj.errors import BpfError, VerifierError
from pybpfobj.kernel.libbpf import LOGGER_NAME
from pybpfobj.loader import BpfObject
from pybpfobj.programs import Program
from reliability.common import fd_targets, open_fds, rss_bytes, size, tree

CYCLES = size("PYBPFOBJ_REL_CYCLES", 1000, 10_000)
FAILING = max(CYCLES // 5, 50)
RSS_LIMIT = 10 * 1024 * 1024
WARMUP = 50  # first loads fill caches (libbpf's feature probes, BTF of vmlinux, allocator arenas)


@pytest.fixture(autouse=True)
def _libbpf_log_not_kept_by_pytest() -> Iterator[None]:
    """Drop libbpf's log records at their logger, before pytest's log capture.

    pytest keeps every log record of a test in memory (its "Captured log"
    report section; its handlers sit on our logger too, propagate or not),
    and each failing or bad-file open logs libbpf warnings: kept, they grow
    resident memory by ~4 KB a cycle (20+ MB in the long run) that is
    pytest's, not ours.  A logger filter still lets the records be made, so
    the library's logging path stays in the measured loop.
    """
    log = logging.getLogger(LOGGER_NAME)

    def drop(record: logging.LogRecord) -> bool:
        return False

    log.addFilter(drop)
    try:
        yield
    finally:
        log.removeFilter(drop)


def _cycle(path: Path, pin_dir: Path | None) -> int:
    with BpfObject(path) as obj:
        obj.load()
        prog = obj.programs["xdp_count"]
        prog_id = prog.id
        prog.test_run(bytes(64))
        obj.maps["stats"].lookup(0)
        if pin_dir is not None:
            obj.pin_programs(pin_dir)
            obj.pin_maps(pin_dir / "maps")
            obj.unpin_all()
    return prog_id


def _assert_no_leak(before_fds: set[int], rss0: int, what: str) -> None:
    after = open_fds()
    leaked = after - before_fds
    # the measurements, shown with -s or -rP (long runs report them)
    print(f"{what}: {len(before_fds)} fds before, {len(after)} after; "
          f"resident memory grew by {(rss_bytes() - rss0) / 1e6:.2f} MB")
    assert not leaked, f"{what}: fds leaked: {fd_targets(leaked)}"
    growth = rss_bytes() - rss0
    assert growth < RSS_LIMIT, f"{what}: resident memory grew by {growth / 1e6:.1f} MB"


def test_load_close_cycles_leak_no_fd_no_program_and_little_memory(objs: Path, bpffs: Path) -> None:
    path = objs / "xdp_counter.o"
    for i in range(WARMUP):
        _cycle(path, bpffs / "warm" if i % 10 == 0 else None)
    fds0, rss0 = open_fds(), rss_bytes()
    ids = []
    for i in range(CYCLES):
        # every 10th cycle also pins programs and maps and takes them back
        ids.append(_cycle(path, bpffs / f"c{i}" if i % 10 == 0 else None))
    _assert_no_leak(fds0, rss0, f"{CYCLES} load cycles")
    assert len(set(ids)) == CYCLES  # each cycle really loaded a new program
    for prog_id in (ids[0], ids[len(ids) // 2], ids[-1]):  # and the kernel freed them
        with pytest.raises(BpfError):
            Program.from_id(prog_id).close()
    assert tree(bpffs) == []


def test_failing_loads_leak_no_fd_and_no_pin(objs: Path, bpffs: Path) -> None:
    path = objs / "bad_verifier.o"
    for _ in range(5):
        with pytest.raises(VerifierError):
            BpfObject(path, pin_root=str(bpffs)).load()
    fds0, rss0 = open_fds(), rss_bytes()
    for _ in range(FAILING):
        obj = BpfObject(path, pin_root=str(bpffs))
        with pytest.raises(VerifierError):
            obj.load()
        obj.close()
    _assert_no_leak(fds0, rss0, f"{FAILING} failing loads")
    assert tree(bpffs) == []


def test_open_close_without_load_and_bad_files_leak_nothing(objs: Path, tmp_path: Path) -> None:
    good = (objs / "maps_all.o").read_bytes()
    bad = tmp_path / "bad.o"
    bad.write_bytes(good[:200])
    fds0, rss0 = open_fds(), rss_bytes()
    for _ in range(CYCLES // 2):
        BpfObject(good, name="maps_all").close()
        with pytest.raises(BpfError):
            BpfObject(bad)
        with pytest.raises(BpfError):
            BpfObject(tmp_path / "missing.o")
    _assert_no_leak(fds0, rss0, "open/close cycles")
