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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_loadall_stopped_by_a_signal_while_pinning_takes_back_every_pin(
        objs: Path, bpffs: Path, sig: int) -> None:
    stopped = 0
    for attempt in range(12):
        rc, mid, left = _loadall_stopped_while_pinning(objs, bpffs, sig, attempt)
        if rc == 0:  # the signal came as it finished: everything is pinned, nothing to undo
            assert left
            continue
        assert rc == -sig, (rc, left)  # died of the signal, as the caller expects
        assert left == [], left  # every program pin, map pin and directory taken back
        stopped += mid
        if stopped >= 3:
            break
    assert stopped, "no signal arrived while the command was pinning (nothing was tested)"


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
