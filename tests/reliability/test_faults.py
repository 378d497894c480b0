"""libbpf calls that fail for reasons outside the program: no privileges
(a non-root user without CAP_BPF, via ``setpriv``) and maps too large for
memory.  Each gives a clear error (and bpftool's exit code), leaves no pin,
directory or fd behind, and never a traceback.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pybpfobj.cli.common import Context
from pybpfobj.cli.main import run
from pybpfobj.errors import BpfError, MapError
from pybpfobj.loader import BpfObject
from pybpfobj.maps import Map
from reliability.common import ROOT, open_fds, tree

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]


@pytest.fixture
def open_bpffs(bpffs: Path) -> Iterator[Path]:
    """The private bpffs, writable by everyone: a failure as nobody then comes from the
    missing capability, not from the directory's mode."""
    os.chmod(bpffs, 0o1777)
    yield bpffs


def _as_nobody(argv: list[str], cwd: str = "/tmp") -> subprocess.CompletedProcess[str]:
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is not installed")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": "/tmp", "LANG": "C.UTF-8"}
    return subprocess.run([*NOBODY, *argv], capture_output=True, text=True, env=env, cwd=cwd, check=False,
                          timeout=120)


UNPRIVILEGED = [
    "prog show",
    "map show",
    "prog load {objs}/xdp_counter.o {fs}/prog",
    "prog loadall {objs}/maps_all.o {fs}/all",
    "prog loadall {objs}/xdp_counter.o {fs}/dir pinmaps {fs}/maps",
    "map create {fs}/map type hash key 4 value 8 entries 16 name nobody",
    "map show id 1",
    "prog show name xdp_count",
]


@pytest.mark.parametrize("line", UNPRIVILEGED)
def test_without_privileges_commands_fail_like_bpftool_and_leave_nothing(
        line: str, objs: Path, open_bpffs: Path, bpftool: str) -> None:
    argv = line.format(objs=objs, fs=open_bpffs).split()
    before = tree(open_bpffs)
    ours = _as_nobody([sys.executable, "-m", "pybpfobj", *argv])
    assert ours.returncode != 0, ours.stdout
    assert "Traceback" not in ours.stderr and "internal error" not in ours.stderr, ours.stderr
    assert any(line.startswith("Error: ") for line in ours.stderr.splitlines()), ours.stderr
    assert "Operation not permitted" in ours.stderr or "permission" in ours.stderr.lower(), ours.stderr
    assert tree(open_bpffs) == before, "a failed unprivileged command left something on the bpffs"
    ref = _as_nobody([bpftool, *argv])
    assert tree(open_bpffs) == before
    assert ours.returncode == ref.returncode, (ours.stderr, ref.stderr)


def test_library_without_privileges_raises_a_pybpfobj_error_naming_the_object(objs: Path,
                                                                             open_bpffs: Path) -> None:
    code = (
        "import sys\n"
        "from pybpfobj.errors import BpfError\n"
        "from pybpfobj.loader import BpfObject\n"
        "from pybpfobj.maps import Map\n"
        f"obj = BpfObject({str(objs / 'pinbyname.o')!r}, pin_root={str(open_bpffs)!r})\n"
        "try:\n"
        "    obj.load()\n"
        "except BpfError as e:\n"
        "    print('load', type(e).__name__, e.errno, e.obj, '|', e)\n"
        "print('state', obj.state)\n"
        "obj.close()\n"
        "try:\n"
        "    Map.create('hash', 4, 8, 16, name='nobody')\n"
        "except BpfError as e:\n"
        "    print('create', type(e).__name__, e.errno, '|', e)\n"
    )
    p = _as_nobody([sys.executable, "-c", code])
    assert p.returncode == 0, p.stderr
    lines = dict(line.split(" ", 1) for line in p.stdout.splitlines())
    assert lines["load"].split()[1] == str(errno.EPERM), p.stdout
    assert "pinbyname" in lines["load"], p.stdout       # the error names the object
    assert lines["state"] == "closed"                    # a failed load closes the object
    assert lines["create"].startswith("MapError 1 "), p.stdout
    assert "nobody" in lines["create"], p.stdout
    assert tree(open_bpffs) == []                        # pin-by-name maps were not left behind


def test_map_too_large_for_memory_is_a_clear_map_error(need_root: None) -> None:
    fds0 = open_fds()
    with pytest.raises(MapError) as info:
        Map.create("array", 4, 1 << 20, 1 << 22, name="too_big")  # 4 TiB
    assert info.value.errno in (errno.ENOMEM, errno.E2BIG, errno.EINVAL)
    assert "too_big" in str(info.value) and "max_entries 4194304" in str(info.value)
    with pytest.raises(MapError):
        Map.create("hash", 8, 1 << 16, 1 << 30, name="too_big_h", flags=0)  # preallocated: 64 TiB
    assert open_fds() <= fds0


def test_map_too_large_from_the_cli_fails_like_bpftool_and_pins_nothing(bpffs: Path, bpftool: str) -> None:
    argv = ["map", "create", str(bpffs / "big"), "type", "array", "key", "4", "value", str(1 << 20),
            "entries", str(1 << 22), "name", "big"]
    fds0 = open_fds()
    err = io.StringIO()
    rc = run(argv, Context(out=io.StringIO(), err=err))
    assert err.getvalue().startswith("Error: "), err.getvalue()
    assert tree(bpffs) == [] and open_fds() <= fds0
    ref = subprocess.run([bpftool, *argv], capture_output=True, text=True, check=False)
    assert rc == ref.returncode != 0, (err.getvalue(), ref.stderr)
    assert tree(bpffs) == []


def test_object_whose_map_is_resized_beyond_memory_fails_to_load_and_leaves_nothing(
        objs: Path, bpffs: Path) -> None:
    fds0 = open_fds()
    obj = BpfObject(objs / "pinbyname.o", pin_root=str(bpffs))
    names = [n for n in obj.map_names() if not n.startswith(".") and "." not in n]
    for n in names:
        d = obj.map_definition(n)
        if d.get("type") in (1, 2):  # hash, array: sized by key/value size x max_entries
            obj.set_max_entries(n, 1 << 31)
    with pytest.raises(BpfError) as info:
        obj.load()
    assert info.value.errno in (errno.ENOMEM, errno.E2BIG, errno.EINVAL), info.value
    assert obj.state == "closed"
    obj.close()
    assert tree(bpffs) == []
    assert open_fds() <= fds0
