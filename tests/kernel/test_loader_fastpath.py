"""BpfObject's lean open+load path keeps its behaviour: libbpf's messages reach
logging at every level that is enabled (and only then are they formatted),
the shared verifier log buffer never carries one load's log into another,
objects may be opened on one thread and loaded on another, cached open
options never leak between objects, and names are read lazily."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from loader_testutil import Records, build_bpf, libbpf_records

from pybpfobj.errors import BpfError, LibbpfError, MapError, ProgramError, UnsupportedError, VerifierError
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


def test_libbpf_debug_lines_are_gated_natively_on_x86_64() -> None:
    import platform

    from pybpfobj.kernel import libbpf

    want = "native" if platform.machine() in ("x86_64", "AMD64") else "python"
    assert libbpf.print_gate() == want
    assert libbpf._gate_open.value == 1  # open between calls: other libbpf calls print as ever


_GATE_CHILD = """
import logging, sys
from pybpfobj.kernel import libbpf
from pybpfobj.loader import BpfObject
from pybpfobj.errors import LibbpfError
got = []
class H(logging.Handler):
    def emit(self, r): got.append((r.levelno, r.getMessage()))
log = logging.getLogger("pybpfobj.libbpf"); log.addHandler(H()); log.propagate = False
log.setLevel(logging.DEBUG)
with BpfObject(sys.argv[1]) as o:
    o.load()
debug = [m for lv, m in got if lv == logging.DEBUG]
got.clear()
log.setLevel(logging.WARNING)
with BpfObject(sys.argv[1]) as o:
    o.load()
quiet = list(got)
try:
    BpfObject(sys.argv[2])
except LibbpfError as e:
    err = str(e)
print(libbpf.print_gate(), any("elf: section" in m for m in debug), quiet == [],
      any(lv == logging.WARNING for lv, _ in got), "failed to open object file" in err)
"""


@pytest.mark.parametrize("env", [{}, {"PYBPFOBJ_PY_PRINT": "1"}, {"PYBPFOBJ_PY_PRINT": "0"}],
                         ids=["default", "python-gate", "zero-is-off"])
def test_both_gates_pass_debug_lines_when_asked_and_warnings_always(
        objs: Path, tmp_path: Path, env: dict[str, str]) -> None:
    import os
    import platform
    import subprocess
    import sys

    junk = tmp_path / "junk.o"
    junk.write_bytes(b"\x7fELF" + b"\0" * 60)
    out = subprocess.run([sys.executable, "-c", _GATE_CHILD, str(objs / "xdp_counter.o"), str(junk)],
                         env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout.split()
    native = platform.machine() in ("x86_64", "AMD64") and env.get("PYBPFOBJ_PY_PRINT", "0") == "0"
    assert out == ["native" if native else "python", "True", "True", "True", "True"]


@pytest.fixture
def remember_fresh_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test are seconds old: let the memo take them (the two-second
    rule for fresh files has its own test)."""
    from pybpfobj import loader

    monkeypatch.setattr(loader, "_FRESH_NS", 0)


def _key(path: Path) -> tuple[int, int, int, int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _copy_over(src: Path, dst: Path) -> None:
    tmp = dst.with_suffix(".new")
    tmp.write_bytes(src.read_bytes())
    os.replace(tmp, dst)  # a new file at the same path, as a rebuild makes


def test_a_file_rebuilt_after_a_clean_load_is_scanned_again(objs: Path, tmp_path: Path, bpffs: Path,
                                                             remember_fresh_files: None) -> None:
    obj = tmp_path / "prog.o"
    _copy_over(objs / "xdp_counter.o", obj)
    for _ in range(2):  # the second load takes the remembered "nothing to do"
        with BpfObject(obj) as o:
            o.load()
    from pybpfobj import loader

    assert _key(obj) in loader._CLEAN_FILES
    _copy_over(objs / "needs_sizing.o", obj)  # now unsized maps: refused before the kernel sees them
    with BpfObject(obj) as o, pytest.raises(MapError, match="'unsized_rb' of object 'prog' has no max_entries"):
        o.load()
    _copy_over(objs / "pinbyname.o", obj)  # now a by-name pin: checked and recorded
    with BpfObject(obj, pin_root=str(bpffs)) as o:
        o.load()
        assert o.pinned_by_name == {"pinned_hash": f"{bpffs}/pinned_hash"}
        o.unpin_all()
    _copy_over(objs / "newsec.o", obj)  # sections libbpf 1.1 cannot place: typed from the table
    with BpfObject(obj) as o:
        o.load()
        assert o.programs


def test_a_map_sized_zero_before_load_is_refused_also_for_a_file_loaded_cleanly_before(objs: Path) -> None:
    path = objs / "xdp_counter.o"
    for _ in range(2):
        with BpfObject(path) as o:
            o.load()
    with BpfObject(path) as o:
        o.set_max_entries("stats", 0)
        with pytest.raises(MapError, match="map 'stats' of object 'xdp_counter' has no max_entries"):
            o.load()


def test_a_load_made_clean_by_configuration_is_not_remembered_for_the_file(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    # Each configuration below hides what the file needs (a type, a size) from the scan;
    # a later unconfigured load of the same file must still find it.
    for name, configure in (
            ("bad_section", lambda o: o.set_prog_type("xdp")),
            ("needs_sizing", lambda o: (o.set_max_entries("unsized_rb", 4096),
                                        o.set_value_size("unsized_stacks", 8 * 127),
                                        o.set_max_entries("unsized_stacks", 16)))):
        obj = tmp_path / f"{name}.o"
        _copy_over(objs / f"{name}.o", obj)
        with BpfObject(obj) as o:
            configure(o)
            o.load()
        with BpfObject(obj) as o, pytest.raises((ProgramError, MapError)) as info:
            o.load()
        assert ("foo/bar" if name == "bad_section" else "has no max_entries") in str(info.value)


def test_a_reused_map_does_not_make_the_file_remembered_as_clean(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    from pybpfobj.maps import Map

    obj = tmp_path / "needs_sizing.o"
    _copy_over(objs / "needs_sizing.o", obj)
    with Map.create("ringbuf", 0, 0, 4096, name="unsized_rb") as rb, \
            Map.create("stack_trace", 4, 8 * 127, 16, name="unsized_stacks") as st, BpfObject(obj) as o:
        o.reuse_map("unsized_rb", rb, force=True)  # the object leaves both unsized
        o.reuse_map("unsized_stacks", st, force=True)
        o.load()
    with BpfObject(obj) as o, pytest.raises(MapError, match="has no max_entries"):
        o.load()


def test_a_file_changed_in_the_last_two_seconds_is_not_remembered(objs: Path, tmp_path: Path) -> None:
    # the kernel stamps file times from a clock that moves in ticks: a rewrite of the
    # same size soon after may keep every time, so a fresh file is scanned on each load
    from pybpfobj import loader

    obj = tmp_path / "fresh.o"
    _copy_over(objs / "xdp_counter.o", obj)
    with BpfObject(obj) as o:
        o.load()
    assert _key(obj) not in loader._CLEAN_FILES


def test_times_in_whole_seconds_are_not_trusted(objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    from pybpfobj import loader

    obj = tmp_path / "coarse.o"
    _copy_over(objs / "xdp_counter.o", obj)
    with BpfObject(obj) as o:
        o._file = (*o._file[:4], o._file[4] - o._file[4] % 1_000_000_000)  # as ext3 or vfat stamp it
        o.load()
        assert o._file not in loader._CLEAN_FILES


def test_a_path_re_pointed_between_stat_and_open_is_not_remembered(
        objs: Path, tmp_path: Path, remember_fresh_files: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # current.o -> v1.o (needs a size) at the stat, -> v2.o (clean) at libbpf's open: the
    # clean scan of v2 must not be remembered under v1's key
    from pybpfobj import loader

    v1, v2, cur = tmp_path / "v1.o", tmp_path / "v2.o", tmp_path / "current.o"
    _copy_over(objs / "needs_sizing.o", v1)
    _copy_over(objs / "xdp_counter.o", v2)
    cur.symlink_to(v1)
    real_open = loader._o.open_object

    def swap_then_open(*a: object, **k: object) -> int:
        cur.unlink()
        cur.symlink_to(v2)
        return real_open(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(loader._o, "open_object", swap_then_open)
    with BpfObject(str(cur)) as o:
        o.load()
    monkeypatch.setattr(loader._o, "open_object", real_open)
    assert _key(v1) not in loader._CLEAN_FILES
    with BpfObject(v1) as o, pytest.raises(MapError, match="has no max_entries"):
        o.load()


def test_a_value_size_of_zero_is_refused_before_load_for_maps_that_need_a_value(objs: Path) -> None:
    with BpfObject(objs / "xdp_counter.o") as o:
        o.set_value_size("stats", 0)
        with pytest.raises(MapError, match="map 'stats' of object 'xdp_counter' has no value_size"):
            o.load()


_DEBUG_CHILD = """
import logging, os, sys, threading
from pybpfobj.loader import BpfObject
heavy, small, mode = sys.argv[1], sys.argv[2], sys.argv[3]
seen = {}
class H(logging.Handler):
    def emit(self, r):
        if r.levelno == logging.DEBUG:
            seen[threading.get_ident()] = seen.get(threading.get_ident(), 0) + 1
log = logging.getLogger("pybpfobj.libbpf"); log.addHandler(H()); log.propagate = False
log.setLevel(logging.WARNING)
started = threading.Event()
def slow():
    o = BpfObject(heavy)
    started.set()
    o.load(); o.close()
a = threading.Thread(target=slow); a.start(); started.wait()
import time; time.sleep(0.05)        # the other thread is in its load (170 ms of verifier)
log.setLevel(logging.DEBUG)          # while that load runs without listeners
if mode == "fork":
    pid = os.fork()
    if pid == 0:
        seen.clear()
        with BpfObject(small) as o:
            o.load()
        os._exit(0 if seen.get(threading.get_ident(), 0) >= 20 else 3)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
else:
    with BpfObject(small) as o:
        o.load()
    print("lines", seen.get(threading.get_ident(), 0))
a.join()
"""


@pytest.mark.parametrize("mode", ["thread", "fork"])
@pytest.mark.parametrize("env", [{}, {"PYBPFOBJ_PY_PRINT": "1"}], ids=["default", "python-gate"])
def test_debug_lines_reach_a_listener_while_another_thread_loads_without_one(
        objs: Path, mode: str, env: dict[str, str]) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-W", "ignore", "-c", _DEBUG_CHILD, str(objs / "heavy.o"),
                          str(objs / "xdp_counter.o"), mode], env={**os.environ, **env}, capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    if mode == "fork":
        assert out == ["child", "0"]
    else:  # every debug line of the small object's open and load (27 with libbpf 1.1)
        assert out[0] == "lines" and int(out[1]) >= 20


_FORK_LOCK_CHILD = """
import os, threading, time
from pybpfobj.kernel import libbpf
held = threading.Event()
def hold():
    with libbpf._lock:       # as a thread running libbpf's first load or logging set-up
        held.set()
        time.sleep(1)
threading.Thread(target=hold).start()
held.wait()
pid = os.fork()
if pid == 0:
    libbpf.on_first_log(lambda: None)    # takes the lock: must not wait for a thread gone with the fork
    os._exit(0)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_child_forked_while_a_thread_holds_the_binding_lock_does_not_hang() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-W", "ignore", "-c", _FORK_LOCK_CHILD], capture_output=True,
                         text=True, check=True, timeout=30).stdout.split()
    assert out == ["0"]


# -- the bytes of a file loaded cleanly before ---------------------------------------------

def _data_map_bytes(o: BpfObject) -> bytes:
    m = o.maps[o.section_map_name(".data")]
    raw = m.lookup(0)
    return bytes(raw) if not isinstance(raw, bytes) else raw


@pytest.mark.parametrize("fname", ["globals.o", "glob.als.v2.o", "averyveryverylongname_globals.o",
                                   "ünïcödé_glöbåls.o"])
def test_an_unchanged_file_loaded_cleanly_before_is_opened_from_its_bytes_as_libbpf_names_it(
        objs: Path, tmp_path: Path, fname: str, remember_fresh_files: None) -> None:
    from pybpfobj import loader

    obj = tmp_path / fname
    _copy_over(objs / "globals.o", obj)
    seen = []
    for _ in range(2):
        o = BpfObject(obj)
        seen.append(o._pending is not None)  # the second open is deferred, from the remembered bytes
        with o:
            o.load()
            infos = {n: (m.info().name, m.info().type) for n, m in o.maps.items()}
            seen.append((o.name, list(o.programs), infos, o.get_var("greeting"), _data_map_bytes(o)))
    assert seen[0] is False and seen[2] is True
    assert seen[1] == seen[3]  # object, program and map names as libbpf gives them from the path
    assert _key(obj) in loader._CONTENTS


def test_a_file_rewritten_in_place_with_its_old_times_is_read_again(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    obj = tmp_path / "g.o"
    _copy_over(objs / "globals.o", obj)
    for _ in range(2):
        with BpfObject(obj) as o:
            o.load()
    st = obj.stat()
    data = obj.read_bytes()
    assert data.count(b"hello\0\0\0") == 1
    with open(obj, "r+b") as f:  # same inode, same size, mtime put back: only ctime tells
        f.write(data.replace(b"hello\0\0\0", b"howdy\0\0\0"))
    os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns))
    o = BpfObject(obj)
    assert o._pending is None
    with o:
        o.load()
        assert _data_map_bytes(o).find(b"howdy\0") >= 0


def test_a_deferred_open_happens_on_first_use_and_configuration_applies(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    obj = _kept_twice(objs, "globals.o", tmp_path / "g.o")
    o = BpfObject(obj)
    assert o._pending is not None
    with o:
        assert o.name == "g" and "xdp_globals" in list(o)  # opened for these
        assert o._pending is None
        o.set_var("greeting", b"hey\0\0\0\0\0")
        o.load()
        assert b"hey\0" in _data_map_bytes(o)


def test_closing_a_deferred_object_before_load_opens_nothing_and_keeps_its_name(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    from reliability.common import open_fds

    obj = _kept_twice(objs, "xdp_counter.o", tmp_path / "some.thing.o")
    before = open_fds()
    o = BpfObject(obj)
    o.close()
    assert o.name == "some" and o._handle == 0 and o._pending is None
    assert open_fds() == before
    with pytest.raises(BpfError, match="is closed"):
        o.load()
    del o
    o = BpfObject(obj)  # dropped unopened: nothing to free
    del o
    assert open_fds() == before


def test_a_deferred_object_loads_on_another_thread(objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    obj = _kept_twice(objs, "xdp_counter.o", tmp_path / "t.o")
    o = BpfObject(obj)
    assert o._pending is not None
    errs: list[BaseException] = []

    def run() -> None:
        try:
            o.load()
        except BaseException as e:  # noqa: BLE001
            errs.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert errs == []
    with o:
        assert list(o.programs) == ["xdp_count"]


def test_large_files_are_remembered_as_clean_but_not_kept(
        objs: Path, tmp_path: Path, remember_fresh_files: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpfobj import loader

    monkeypatch.setattr(loader, "_CONTENTS_MAX", 1000)
    obj = tmp_path / "big.o"
    _copy_over(objs / "xdp_counter.o", obj)
    for _ in range(2):
        with BpfObject(obj) as o:
            o.load()
    assert _key(obj) in loader._CLEAN_FILES and _key(obj) not in loader._CONTENTS
    assert BpfObject(obj)._pending is None


def test_the_kept_bytes_stay_within_their_budget(
        objs: Path, tmp_path: Path, remember_fresh_files: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpfobj import loader

    size = (objs / "xdp_counter.o").stat().st_size
    monkeypatch.setattr(loader, "_CONTENTS", {})
    monkeypatch.setattr(loader, "_contents_size", 0)
    monkeypatch.setattr(loader, "_CONTENTS_BUDGET", 3 * size)
    for i in range(5):
        obj = tmp_path / f"o{i}.o"
        _copy_over(objs / "xdp_counter.o", obj)
        with BpfObject(obj) as o:
            o.load()
        assert loader._contents_size == sum(len(d) for d in loader._CONTENTS.values()) <= 3 * size
    assert 1 <= len(loader._CONTENTS) <= 3


def _kept_twice(objs: Path, src: str, dst: Path) -> Path:
    _copy_over(objs / src, dst)
    with BpfObject(dst) as o:
        o.load()
    return dst


def test_a_file_reached_by_another_link_is_named_by_the_path_given(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    a = tmp_path / "alpha.o"
    _copy_over(objs / "globals.o", a)
    os.link(a, tmp_path / "beta.o")  # (a new link changes the file's ctime: made first)
    (tmp_path / "gamma.o").symlink_to("alpha.o")
    with BpfObject(a) as o:
        o.load()
    for link, name in (("beta.o", "beta"), ("gamma.o", "gamma")):
        o = BpfObject(tmp_path / link)
        assert o._pending is not None
        with o:
            o.load()
            assert o.name == name and f"{name}.rodata" in o.map_names()
            assert o.maps[f"{name}.rodata"].info().name == f"{name}.rodata"


def test_names_read_during_a_deferred_load_wait_for_its_open_not_left_empty(
        objs: Path, tmp_path: Path, remember_fresh_files: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpfobj import loader

    obj = _kept_twice(objs, "progs_all.o", tmp_path / "p.o")
    o = BpfObject(obj)
    seen: list[object] = []
    real = loader._o.open_load_cached
    started = threading.Event()

    def reader() -> None:  # another thread, while this load has not opened the object yet
        started.set()
        seen.append((o.name, repr(o)))
        seen.append(o.program_names())

    t = threading.Thread(target=reader)

    def read_then_load(*a: object, **k: object) -> tuple[int, list[str]]:
        t.start()
        started.wait()
        time.sleep(0.05)  # the reader is waiting for the object by now
        assert t.is_alive()
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(loader._o, "open_load_cached", read_then_load)
    with o:
        o.load()
        t.join(10)
        assert not t.is_alive()
        assert seen[0] == ("p", f"<BpfObject 'p' from '{obj}', loading>")
        names = seen[1]
        assert isinstance(names, list) and len(names) > 1 and names == o.program_names()


def test_a_file_loaded_with_mapcompat_is_not_handed_over_to_a_default_open(
        tmp_path: Path, remember_fresh_files: None) -> None:
    from pybpfobj import loader
    from pybpfobj.errors import ObjectOpenError

    obj = build_bpf(tmp_path, "unk", """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32);
         __type(value, __u64); __uint(frobnicate, 3); } m SEC(".maps");
SEC("xdp") int p(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
""")
    for _ in range(2):
        with BpfObject(obj, mapcompat=True) as o:
            o.load()
    assert _key(obj) not in loader._CONTENTS  # (remembered as clean: the scan holds for any open)
    with pytest.raises(ObjectOpenError, match="unknown field 'frobnicate'"):
        BpfObject(obj)


def test_only_files_anyone_may_read_are_kept(objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    from pybpfobj import loader

    obj = tmp_path / "private.o"
    _copy_over(objs / "xdp_counter.o", obj)
    obj.chmod(0o640)
    for _ in range(2):
        with BpfObject(obj) as o:
            o.load()
    assert _key(obj) in loader._CLEAN_FILES and _key(obj) not in loader._CONTENTS


def test_a_deferred_load_interrupted_before_the_open_keeps_the_name_and_closes(
        objs: Path, tmp_path: Path, remember_fresh_files: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpfobj import loader

    obj = _kept_twice(objs, "xdp_counter.o", tmp_path / "k.o")

    def interrupted(*a: object, **k: object) -> tuple[int, list[str]]:
        raise KeyboardInterrupt

    monkeypatch.setattr(loader._o, "open_load_cached", interrupted)
    o = BpfObject(obj)
    with pytest.raises(KeyboardInterrupt):
        o.load()
    assert o.state == "closed" and o.name == "k" and repr(o) == f"<BpfObject 'k' from '{obj}', closed>"


def test_kept_bytes_libbpf_cannot_open_raise_libbpfs_reason(
        objs: Path, tmp_path: Path, remember_fresh_files: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpfobj import loader
    from pybpfobj.errors import LibbpfOpenError

    obj = _kept_twice(objs, "xdp_counter.o", tmp_path / "j.o")
    monkeypatch.setitem(loader._CONTENTS, _key(obj), b"\x7fELF" + b"\0" * 60)  # as if kept so
    o = BpfObject(obj)
    with pytest.raises(LibbpfOpenError, match=r"failed to open object file '.*j\.o': elf: .*") as info:
        o.load()
    assert "libbpf:" not in str(info.value) and o.state == "closed" and o.name == "j"
    with pytest.raises(LibbpfOpenError) as same:  # the same bytes through the library's plain call
        BpfObject(b"\x7fELF" + b"\0" * 60, name="j")
    assert info.value.errno == same.value.errno == 4001  # libbpf's LIBBPF_ERRNO__LIBELF, through errno


def test_a_pin_root_with_a_nul_byte_is_refused_at_once_also_for_a_kept_file(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    obj = _kept_twice(objs, "xdp_counter.o", tmp_path / "n.o")
    with pytest.raises(BpfError, match="NUL"):
        BpfObject(obj, pin_root="/sys/fs/bpf\0x")


def test_the_kept_size_counts_a_file_kept_again_once(
        objs: Path, tmp_path: Path, remember_fresh_files: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpfobj import loader

    monkeypatch.setattr(loader, "_CONTENTS", {})
    monkeypatch.setattr(loader, "_contents_size", 0)
    obj = _kept_twice(objs, "xdp_counter.o", tmp_path / "s.o")
    loader._CLEAN_FILES.pop(_key(obj), None)  # forgotten as clean (256 other files), bytes still kept
    with BpfObject(obj, name="s") as o:
        o.load()
    assert loader._contents_size == len(loader._CONTENTS[_key(obj)]) == obj.stat().st_size


def test_keeping_file_contents_can_be_turned_off(objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    from pybpfobj import loader

    obj = _kept_twice(objs, "xdp_counter.o", tmp_path / "off.o")
    assert _key(obj) in loader._CONTENTS
    loader.keep_file_contents(False)
    try:
        assert loader._CONTENTS == {} and loader._contents_size == 0
        with BpfObject(obj) as o:
            assert o._pending is None
            o.load()
        assert loader._CONTENTS == {}
    finally:
        loader.keep_file_contents(True)


def test_an_object_is_neither_pickled_nor_copied(objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    import copy
    import pickle

    obj = _kept_twice(objs, "xdp_counter.o", tmp_path / "c.o")
    for o in (BpfObject(obj), BpfObject(str(obj), pin_root="/sys/fs/bpf/x")):  # deferred, opened
        with o:
            for f in (pickle.dumps, copy.copy, copy.deepcopy):
                with pytest.raises(TypeError, match="cannot pickle or copy a BpfObject"):
                    f(o)


def test_a_forked_child_writes_its_verifier_logs_into_its_own_buffer() -> None:
    from pybpfobj.kernel.objects import LogBuffer

    buf = LogBuffer(1 << 16)
    buf.buf[0:7] = b"parent\0"
    pid = os.fork()
    if pid == 0:  # the child's log would go into its copy
        buf.buf[0:6] = b"child\0"
        os._exit(0)
    os.waitpid(pid, 0)
    assert buf.text() == "parent"


def test_variables_are_found_in_an_object_whose_name_is_not_utf8(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    obj = tmp_path / os.fsdecode(b"g\xffob.o")
    _copy_over(objs / "globals.o", obj)
    for _ in range(2):  # opened from the path, then from the kept bytes
        with BpfObject(obj) as o:
            assert o.section_map_name(".rodata") == "g_ob.rodata"
            assert o.get_var("greeting").startswith(b"hello")
            o.set_var("last_len", -7)
            o.load()


def test_bytes_dropped_are_kept_again_on_the_next_load(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    from pybpfobj import loader

    obj = _kept_twice(objs, "xdp_counter.o", tmp_path / "again.o")
    loader.keep_file_contents(False)
    loader.keep_file_contents(True)
    assert _key(obj) not in loader._CONTENTS and _key(obj) not in loader._CLEAN_FILES  # scanned again
    with BpfObject(obj) as o:
        o.load()
    assert BpfObject(obj)._pending is not None


def test_a_file_whose_load_fails_is_neither_remembered_nor_kept(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    from pybpfobj import loader

    obj = tmp_path / "bad.o"
    _copy_over(objs / "bad_verifier.o", obj)
    for _ in range(2):
        o = BpfObject(obj)
        assert o._pending is None
        with pytest.raises(VerifierError):
            o.load()
    assert _key(obj) not in loader._CONTENTS and _key(obj) not in loader._CLEAN_FILES


def test_a_kept_files_open_and_load_reach_the_logger_at_every_enabled_level(
        objs: Path, tmp_path: Path, remember_fresh_files: None,
        libbpf_log: tuple[logging.Logger, Records]) -> None:
    from pybpfobj import loader

    logger, handler = libbpf_log
    info = build_bpf(tmp_path, "info", _INFO_SRC)
    for _ in range(2):  # the second load is already a deferred one
        with BpfObject(info) as o:
            o.load()
    assert _key(info) in loader._CONTENTS
    small = _kept_twice(objs, "xdp_counter.o", tmp_path / "small.o")
    handler.records.clear()
    logger.setLevel(logging.DEBUG)
    o = BpfObject(small)
    assert o._pending is not None  # deferred: opened and loaded in the one captured call
    with o:
        o.load()
    debug = [r.getMessage() for r in handler.records if r.levelno == logging.DEBUG]
    assert any("elf: section" in m for m in debug)  # from the open
    assert any("map 'stats'" in m and "created" in m for m in debug)  # from the load
    # with debug lines read, the path is opened, not the kept bytes: they read as for the file
    assert f"libbpf: loading object from {small}" in debug and f"libbpf: license of {small} is GPL" in debug
    handler.records.clear()
    logger.setLevel(logging.INFO)
    o = BpfObject(info)
    assert o._pending is not None
    with o:
        o.load()
    infos = [r.getMessage() for r in handler.records if r.levelno == logging.INFO]
    assert any("skipping unrecognized data section" in m and ".mydata" in m for m in infos)
    assert all(r.levelno >= logging.INFO for r in handler.records)


def test_the_open_options_kept_per_log_buffer_stay_bounded_and_name_each_object(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    from pybpfobj import loader

    buf = loader._thread_log_buffer()
    paths = [_kept_twice(objs, "xdp_counter.o", tmp_path / f"n{i}_x.o") for i in range(4)]
    for p in paths[:3]:
        with BpfObject(p) as o:
            o.load()
            assert o.name == p.name.split(".")[0]
            assert o.maps["stats"].info().id > 0
    assert {b"n0_x", b"n1_x", b"n2_x"} <= set(buf.opts)
    assert len(buf.kept) >= 3
    buf.opts.update({str(i).encode(): 0 for i in range(300)})  # past the bound: started afresh
    with BpfObject(paths[3]) as o:
        assert o._pending is not None
        o.load()
        assert o.name == "n3_x"
    assert set(buf.opts) == {b"n3_x"} and len(buf.kept) == 1


def test_a_path_re_pointed_to_another_file_and_back_during_a_load_remembers_nothing_wrong(
        objs: Path, tmp_path: Path, remember_fresh_files: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stat says newsec.o (its sections need types from our table), libbpf opens
    xdp_counter.o (the link re-pointed, then back before the load ends): xdp_counter's
    clean scan must not be remembered for newsec's key, nor newsec's bytes kept."""
    from pybpfobj import loader

    a, b = tmp_path / "a.o", tmp_path / "b.o"
    _copy_over(objs / "newsec.o", a)
    _copy_over(objs / "xdp_counter.o", b)
    link = tmp_path / "obj.o"
    link.symlink_to("a.o")
    real = loader._o.open_object

    def open_the_other(*args: object, **kw: object) -> int:
        link.unlink()
        link.symlink_to("b.o")
        try:
            return real(*args, **kw)  # type: ignore[arg-type]
        finally:
            link.unlink()
            link.symlink_to("a.o")

    monkeypatch.setattr(loader._o, "open_object", open_the_other)
    with BpfObject(link) as o:
        o.load()
        assert o.program_names() == ["xdp_count"]  # what libbpf opened
    monkeypatch.setattr(loader._o, "open_object", real)
    assert _key(a) not in loader._CLEAN_FILES and _key(a) not in loader._CONTENTS
    for _ in range(2):  # the file the link names loads, typed from the table, every time
        with BpfObject(link) as o:
            o.load()
            assert "tcx_in" in o.program_names()


def test_a_file_known_clean_while_keeping_was_off_has_its_bytes_kept_later(
        objs: Path, tmp_path: Path, remember_fresh_files: None) -> None:
    from pybpfobj import loader

    obj = tmp_path / "late.o"
    _copy_over(objs / "xdp_counter.o", obj)
    loader.keep_file_contents(False)
    try:
        with BpfObject(obj) as o:
            o.load()
    finally:
        loader.keep_file_contents(True)
    assert loader._CLEAN_FILES.get(_key(obj)) is True and _key(obj) not in loader._CONTENTS
    with BpfObject(obj) as o:  # scan skipped; the bytes read and kept now
        o.load()
    assert _key(obj) in loader._CONTENTS
    o = BpfObject(obj)
    assert o._pending is not None
    with o:
        o.load()


# A child script's start: the file given is loaded twice, so its bytes are kept
_KEPT_PRELUDE = """
import sys
from pybpfobj import loader
from pybpfobj.loader import BpfObject
loader._FRESH_NS = 0
path = sys.argv[1]
for _ in range(2):
    with BpfObject(path) as o:
        o.load()
"""

_FORK_DURING_DEFERRED_OPEN = _KEPT_PRELUDE + """
import os, signal, threading
stop = False
def reader():
    while not stop:
        o = BpfObject(path)          # deferred: opened by the read, on this thread
        o.program_names()
        o.close()
t = threading.Thread(target=reader)
t.start()
hung = 0
for _ in range(30):
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)             # a child stuck on a lock the reader held dies of SIGALRM
        with BpfObject(path) as o:
            o.load()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    hung += os.waitstatus_to_exitcode(status) != 0
stop = True
t.join()
print(hung)
"""


def test_a_child_forked_while_another_thread_opens_a_deferred_object_loads(objs: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    obj = tmp_path / "f.o"
    _copy_over(objs / "xdp_counter.o", obj)
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", _FORK_DURING_DEFERRED_OPEN, str(obj)],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    assert out.split() == ["0"]


_GC_DURING_DEFERRED_OPEN = _KEPT_PRELUDE + """
import gc, logging
class Collecting(logging.Handler):
    def emit(self, record):
        gc.collect()                 # any allocation in a handler may run the collector
log = logging.getLogger("pybpfobj.libbpf")
log.addHandler(Collecting())
log.setLevel(logging.DEBUG)
for _ in range(3):
    class Cycle:
        pass
    c = Cycle()
    c.obj = BpfObject(path)          # open, never closed: closed by its finalizer
    c.obj.program_names()
    c.me = c
    del c
    deferred = BpfObject(path)
    assert deferred._pending is not None
    print(len(deferred.program_names()))   # opened now: libbpf prints, the handler collects
    deferred.close()
"""


def test_a_finalizer_run_by_a_log_handler_during_a_deferred_open_does_not_deadlock(
        objs: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    obj = tmp_path / "g.o"
    _copy_over(objs / "xdp_counter.o", obj)
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", _GC_DURING_DEFERRED_OPEN, str(obj)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.split() == ["1", "1", "1"]
