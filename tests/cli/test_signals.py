"""SIGTERM and SIGHUP on the command line tool: a load stopped between its pins takes
them back and the process dies of the signal (bpftool leaves the pins behind); a
signal the parent ignores stays ignored; tracelog stops and exits 0, as bpftool's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kernel]

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
CMD = [sys.executable, "-m", "pybpfobj"]


def _entries(*dirs: Path) -> list[str]:
    out = []
    for d in dirs:
        if d.exists():
            out += [str(p) for p in d.rglob("*")] + [str(d)]
    return out


def _loadall_stopped_while_pinning(objs: Path, fs: Path, sig: int, attempt: int,
                                   ignore: bool = False) -> tuple[int, bool, list[str]]:
    """Start ``loadall progs_all.o DIR pinmaps MAPS``; as soon as its first pin shows,
    send ``sig``.  Returns the exit status, whether the signal went out while the
    command was still pinning, and what it left in the bpffs."""
    progs, maps = fs / f"p{attempt}", fs / f"m{attempt}"
    cmd = [*CMD, "loadall", str(objs / "progs_all.o"), str(progs), "pinmaps", str(maps)]
    if ignore:  # as nohup does: the signal ignored across the exec
        cmd = ["sh", "-c", f"trap '' {signal.Signals(sig).name[3:]}; exec \"$@\"", "sh", *cmd]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sent_mid_pinning = False
    deadline = time.monotonic() + 30
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                started = any(True for _ in progs.iterdir()) or any(True for _ in maps.iterdir())
            except FileNotFoundError:
                started = False
            if started:
                proc.send_signal(sig)
                sent_mid_pinning = proc.poll() is None
                break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert "Traceback" not in err, err
    return proc.returncode, sent_mid_pinning, _entries(progs, maps)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_stop_once_pinning_began_lets_every_pin_be_made(objs: Path, bpffs: Path, sig: int) -> None:
    """The pins are the command's change: a stop arriving as they are made waits for the
    exit, so the process never ends as stopped with some of them made."""
    complete = None
    for attempt in range(6):
        rc, _mid, left = _loadall_stopped_while_pinning(objs, bpffs, sig, attempt)
        assert rc == 0, (rc, left)
        names = sorted(os.path.relpath(p, bpffs) for p in left)
        flat = sorted(n.replace(f"p{attempt}", "P").replace(f"m{attempt}", "M") for n in names)
        complete = complete or flat
        assert flat == complete  # everything, every time
    assert complete and any(n.startswith("P/") for n in complete) and any(n.startswith("M/") for n in complete)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_stop_during_the_load_takes_back_the_bpffs_the_command_mounted(
        objs: Path, tmp_path: Path, sig: int) -> None:
    """loadall into a directory that is not on a bpffs: the command mounts one on it
    (as bpftool), then loads heavy.o (the verifier takes a while); stopped meanwhile, it
    takes that mount away and dies of the signal (Ctrl-C: exits 130)."""
    from pybpfobj.kernel import bpffs as fs

    plain = tmp_path / "plain"
    plain.mkdir()
    for attempt in range(4):
        proc = subprocess.Popen([*CMD, "loadall", str(objs / "heavy.o"), str(plain / "progs")], env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while proc.poll() is None and not fs.is_bpffs(str(plain)) and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.02)  # into the load
        if proc.poll() is not None and proc.returncode == 0:  # loaded before the stop: again
            subprocess.run(["umount", "-l", str(plain)], check=False)
            continue
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err, err
        if proc.returncode == 0:
            subprocess.run(["umount", "-l", str(plain)], check=False)
            continue
        assert proc.returncode == (130 if sig == signal.SIGINT else -sig), err
        assert not fs.is_bpffs(str(plain)) and not fs._is_mount_point(str(plain))
        assert list(plain.iterdir()) == []
        return
    pytest.fail("every load ended before the stop")


def test_a_sighup_the_parent_ignores_stays_ignored(objs: Path, bpffs: Path) -> None:
    rc, mid, left = _loadall_stopped_while_pinning(objs, bpffs, signal.SIGHUP, 0, ignore=True)
    assert mid  # sent while it was pinning
    assert rc == 0 and left  # nohup: the load went on and pinned everything
    assert (bpffs / "p0").is_dir() and (bpffs / "m0").is_dir()


@pytest.mark.bpftool
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_tracelog_stops_on_the_signal_and_closes_its_json_like_bpftool(
        need_root: None, bpftool: str, sig: int) -> None:
    got = []
    for cmd in ([bpftool, "-j", "prog", "tracelog"], [*CMD, "-j", "prog", "tracelog"]):
        proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.0)  # past the interpreter's start-up: tracelog is reading trace_pipe
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        got.append((proc.returncode, json.loads(out)))
        assert b"Traceback" not in err
    assert got[0][0] == got[1][0] == 0
    assert isinstance(got[1][1], list)


@pytest.mark.parametrize("mount", [False, True], ids=["on-bpffs", "mounting"])
def test_a_pin_interrupted_as_it_is_made_is_taken_back_with_its_mount(
        bpffs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mount: bool) -> None:
    from pybpfobj.kernel import bpffs as fs
    from pybpfobj.maps import Map

    real = fs.obj_pin

    def pin_then_interrupted(fd: int, path: str) -> None:
        real(fd, path)
        assert os.path.lexists(path)
        raise KeyboardInterrupt  # a Ctrl-C or stop handled as the pin call returns

    monkeypatch.setattr(fs, "obj_pin", pin_then_interrupted)
    where = tmp_path / "plain" if mount else bpffs
    where.mkdir(exist_ok=True)
    path = where / "m"
    with Map.create("array", 4, 4, 1) as m, pytest.raises(KeyboardInterrupt):
        fs.pin_mounting(m.fd, str(path))
    assert not path.exists()
    assert not fs.is_bpffs(str(where)) if mount else fs.is_bpffs(str(where))


@pytest.mark.parametrize("nth", [2, 3, 4], ids=["bind", "private", "bpffs"])
def test_a_bpffs_mount_interrupted_as_a_step_returns_is_taken_away(
        need_root: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    """mount_bpffs on a plain directory: make-private (EINVAL: not a mount point), bind,
    make-private, mount bpf.  Interrupted just after the nth call returns, nothing stays."""
    from pybpfobj.kernel import bpffs as fs

    real = fs._libc()
    calls = []

    class Interrupting:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def mount(self, *a: object) -> int:
            r = real.mount(*a)
            calls.append(r)
            if len(calls) == nth:
                raise KeyboardInterrupt
            return int(r)

    target = tmp_path / "plain"
    target.mkdir()
    monkeypatch.setattr(fs, "_libc", lambda: Interrupting())
    with pytest.raises(KeyboardInterrupt):
        fs.mount_bpffs(str(target))
    monkeypatch.undo()
    assert len(calls) == nth
    assert not fs.is_bpffs(str(target)) and not fs._is_mount_point(str(target))


_SLOW_PRINTING_LOAD = """
import os, signal, sys, time
sys.argv = ["pybpfobj", "-d", "loadall", sys.argv[1], sys.argv[2]]
from pybpfobj.kernel import libbpf
real = libbpf._on_print
def slow(level, fmt, va):
    if not libbpf._stopping:
        time.sleep(0.0005)         # the signal lands in here: libbpf is printing (-d)
    return real(level, fmt, va)
libbpf._on_print = slow
from pybpfobj.cli.main import entry
entry()
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_while_libbpf_prints_is_not_lost(objs: Path, bpffs: Path, sig: int) -> None:
    """-d: libbpf prints the verifier's log through a Python callback, where ctypes would
    drop the exception a signal handler raises; the stop must still end the command."""
    err = ""
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _SLOW_PRINTING_LOAD, str(objs / "heavy.o"),
                                 str(bpffs / f"h{attempt}")], env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        time.sleep(0.5)  # past start-up: libbpf is loading and printing its log
        if proc.poll() is not None:
            continue
        proc.send_signal(sig)
        _, errb = proc.communicate(timeout=120)
        err = errb.decode(errors="replace")
        assert "Exception ignored" not in err and "Traceback" not in err, err[-2000:]
        assert proc.returncode == (130 if sig == signal.SIGINT else -sig), err[-2000:]
        assert not (bpffs / f"h{attempt}").exists()
        return
    pytest.fail("the load ended before the signal could be sent")


def test_a_second_stop_during_the_unwinding_does_not_cut_it_short(objs: Path, bpffs: Path) -> None:
    for attempt in range(8):
        progs, maps = bpffs / f"s{attempt}", bpffs / f"sm{attempt}"
        proc = subprocess.Popen([*CMD, "loadall", str(objs / "progs_all.o"), str(progs), "pinmaps", str(maps)],
                                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and not progs.exists():
            pass
        # both land before it runs again: the second during the unwinding of the first
        proc.send_signal(signal.SIGSTOP)
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGCONT)
        proc.wait(timeout=30)
        left = _entries(progs, maps)
        assert proc.returncode in (0, -signal.SIGTERM, -signal.SIGHUP)
        if proc.returncode != 0:
            assert left == [], left


def test_output_to_a_closed_or_full_stdout_keeps_bpftools_exit_codes(bpftool: str, bpffs: Path) -> None:
    for redirect in (">&-", ">/dev/full", "2>&-"):
        for words in ("prog show", "-j prog show", f"map create {bpffs}/x type hash key 4 value 4 entries 1 name x"):
            ours_cmd = f"{sys.executable} -m pybpfobj {words} {redirect}; echo rc=$?"
            theirs_cmd = f"{bpftool} {words} {redirect}; echo rc=$?"
            got = []
            for cmd in (theirs_cmd, ours_cmd):
                p = subprocess.run(["sh", "-c", cmd], env=ENV, capture_output=True, text=True, timeout=60, check=False)
                rc = p.stdout.strip().rsplit("rc=", 1)[-1]
                got.append(rc)
                assert "Traceback" not in p.stderr, p.stderr
                if words.startswith("map create"):
                    os.unlink(bpffs / "x") if (bpffs / "x").exists() else None
            assert got[0] == got[1], (redirect, words, got)


def test_output_into_a_pipe_nobody_reads_ends_like_bpftool(objs: Path, bpftool: str) -> None:
    """bpftool dies of SIGPIPE writing to a pipe whose reader is gone (141 under
    pipefail); so do we, instead of exiting 0."""
    from pybpfobj.loader import BpfObject

    with BpfObject(objs / "xdp_counter.o") as obj:  # something for prog show to print
        obj.load()
        got = []
        for cmd in ([bpftool, "prog", "show"], [*CMD, "prog", "show"]):
            r, w = os.pipe()
            os.close(r)  # the reader is gone before anything is written
            p = subprocess.run(cmd, env=ENV, stdout=w, stderr=subprocess.PIPE, timeout=60, check=False)
            os.close(w)
            assert b"Traceback" not in p.stderr
            got.append(p.returncode)
    assert got[0] == got[1] == -signal.SIGPIPE


def test_a_stop_waiting_out_of_libbpfs_callback_unwinds_at_commit_not_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop deferred while libbpf printed (-d) and still waiting when the load ends is
    raised by commit(), before any pin, with its retry timer stopped (an armed one
    would end the process by SIGALRM at exit); nothing stays blocked or committed."""
    from pybpfobj.cli import common

    monkeypatch.setattr(common, "_STOP_SIGNALS", [int(signal.SIGTERM)])
    monkeypatch.setattr(common, "_committed", False)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    old_alrm = signal.signal(signal.SIGALRM, lambda *_: None)
    try:
        common._deferred.append(lambda: common._on_stop(int(signal.SIGTERM), None))
        signal.setitimer(signal.ITIMER_REAL, 10)
        with pytest.raises(common.Terminated):
            common.commit()
        assert common._deferred == [] and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert not common._committed
        assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # the unwinding is not cut short
    finally:
        common._deferred.clear()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGALRM, old_alrm)


@pytest.mark.bpftool
def test_tracelog_given_three_stops_in_a_row_exits_0_like_bpftool(need_root: None, bpftool: str) -> None:
    got = []
    for cmd in ([bpftool, "-j", "prog", "tracelog"], [*CMD, "-j", "prog", "tracelog"]):
        proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.0)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            proc.send_signal(sig)
            time.sleep(0.001)
        out, err = proc.communicate(timeout=20)
        assert b"Traceback" not in err
        got.append((proc.returncode, json.loads(out)))
    assert got[0][0] == got[1][0] == 0 and isinstance(got[1][1], list)
