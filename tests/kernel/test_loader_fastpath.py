"""BpfObject's lean open+load path keeps its behaviour: libbpf's messages reach
logging at every level that is enabled (and only then are they formatted),
the shared verifier log buffer never carries one load's log into another,
objects may be opened on one thread and loaded on another, cached open
options never leak between objects, and names are read lazily."""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from loader_testutil import Records, build_bpf, libbpf_records

from pybpfobj.errors import LibbpfError, UnsupportedError, VerifierError
from pybpfobj.loader import BpfObject

pytestmark = pytest.mark.kernel


@pytest.fixture
def libbpf_log() -> Iterator[tuple[logging.Logger, Records]]:
    with libbpf_records() as got:
        yield got


_INFO_SRC = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
int odd __attribute__((section(".mydata"))) = 1;   /* libbpf: "skipping unrecognized data section" */
SEC("xdp") int pass(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
"""




def test_debug_lines_reach_the_logger_only_while_it_is_enabled_for_debug(
        objs: Path, libbpf_log: tuple[logging.Logger, Records]) -> None:
    logger, handler = libbpf_log
    logger.setLevel(logging.DEBUG)
    with BpfObject(objs / "xdp_counter.o") as obj:
        obj.load()
    debug = [r.getMessage() for r in handler.records if r.levelno == logging.DEBUG]
    assert any("elf: section" in m for m in debug)  # from the open
    assert any("map 'stats'" in m and "created" in m for m in debug)  # from the load
    handler.records.clear()
    logger.setLevel(logging.INFO)
    with BpfObject(objs / "xdp_counter.o") as obj:
        obj.load()
    assert [r for r in handler.records if r.levelno == logging.DEBUG] == []
    # enabled again: the next open asks logging afresh
    logger.setLevel(logging.DEBUG)
    with BpfObject(objs / "xdp_counter.o") as obj:
        obj.load()
    assert any(r.levelno == logging.DEBUG for r in handler.records)


def test_info_lines_of_a_successful_open_reach_the_logger(
        tmp_path: Path, need_root: None, libbpf_log: tuple[logging.Logger, Records]) -> None:
    logger, handler = libbpf_log
    logger.setLevel(logging.INFO)
    o = build_bpf(tmp_path, "info", _INFO_SRC)
    with BpfObject(o) as obj:
        obj.load()
    infos = [r.getMessage() for r in handler.records if r.levelno == logging.INFO]
    assert any("skipping unrecognized data section" in m and ".mydata" in m for m in infos)
    assert all(r.levelno >= logging.INFO for r in handler.records)


def test_open_failure_warnings_reach_the_logger_and_name_the_object(
        tmp_path: Path, need_root: None, libbpf_log: tuple[logging.Logger, Records]) -> None:
    logger, handler = libbpf_log
    logger.setLevel(logging.WARNING)
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an ELF object at all" * 8)
    with pytest.raises(LibbpfError) as info:
        BpfObject(junk)
    assert str(junk) in str(info.value) and info.value.errno
    warnings = [r.getMessage() for r in handler.records if r.levelno == logging.WARNING]
    assert warnings and any(str(junk) in m or "elf" in m for m in warnings)
    with pytest.raises(LibbpfError, match="failed to open object file '<bytes>'") as info:
        BpfObject(b"\x7fELF but not really")
    assert info.value.errno


def test_a_failure_without_a_log_after_a_rejection_does_not_reuse_the_old_log(objs: Path) -> None:
    # Both on this thread, so both use this thread's verifier log buffer.
    with pytest.raises(VerifierError, match="bad_deref"):
        BpfObject(objs / "bad_verifier.o").load()
    with BpfObject(objs / "xdp_counter.o") as obj:
        obj.load()
    obj = BpfObject(objs / "bad_section.o")
    obj.set_prog_type(60)  # refused before the verifier runs: the kernel writes no log
    with pytest.raises(UnsupportedError):
        obj.load()
    with pytest.raises(VerifierError) as info:
        BpfObject(objs / "bad_verifier.o").load()
    assert info.value.insn == 7 and "invalid mem access" in info.value.log


def test_an_object_opened_on_one_thread_loads_on_another_with_its_own_log(objs: Path) -> None:
    obj = BpfObject(objs / "bad_verifier.o")
    seen: list[BaseException] = []

    def load() -> None:
        try:
            obj.load()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            seen.append(e)

    t = threading.Thread(target=load)
    t.start()
    t.join()
    assert len(seen) == 1 and isinstance(seen[0], VerifierError)
    assert seen[0].insn == 7 and "invalid mem access" in seen[0].log
    assert obj.state == "closed"
    with BpfObject(objs / "xdp_counter.o") as good:  # this thread's buffer is unaffected
        good.load()


def test_objects_opened_with_different_options_keep_their_own(objs: Path, bpffs: Path) -> None:
    path = objs / "xdp_counter.o"
    for _ in range(2):  # the second round comes from the cache of open options
        with BpfObject(path, name="first") as a, BpfObject(path, name="second", pin_root=str(bpffs)) as b, \
                BpfObject(path) as c:
            assert (a.name, b.name, c.name) == ("first", "second", "xdp_counter")
            assert a.map_names() == ["stats", "first.rodata"]
            assert b.map_names() == ["stats", "second.rodata"]
            assert c.map_names() == ["stats", "xdp_coun.rodata"]
            for o in (a, b, c):
                o.load()


def test_names_read_before_close_stay_readable_and_a_closed_object_reads_no_more(objs: Path) -> None:
    obj = BpfObject(objs / "tailcall.o")
    obj.load()
    progs = obj.program_names()
    obj.close()
    assert obj.program_names() == progs and len(progs) == 3
    assert obj.map_names() == []  # never read while open: a closed object has no libbpf to ask
    assert obj.name == "tailcall" and "closed" in repr(obj)


def test_a_log_level_of_the_wrong_type_is_refused(objs: Path) -> None:
    from pybpfobj.errors import BpfError

    for bad in (-1, 1 << 32, True, 1.0):
        with pytest.raises(BpfError, match="verifier log level") as info:
            BpfObject(objs / "xdp_counter.o", log_level=bad)  # type: ignore[arg-type]
        assert info.value.errno == errno.EINVAL
