"""Local-storage maps (sk/inode/task/cgrp storage) created without any BTF from the caller,
used through their owners' fds; `map create` of them from the CLI."""

from __future__ import annotations

import io
import os
import socket
import subprocess
from pathlib import Path

import pytest

from pybpfobj.cli.common import Context
from pybpfobj.cli.main import run
from pybpfobj.errors import MapError
from pybpfobj.maps import Map

pytestmark = pytest.mark.usefixtures("need_root")
BPF_F_NO_PREALLOC = 1


def test_task_storage_created_without_btf_holds_a_value_per_pidfd() -> None:
    with Map.create("task_storage", 4, 12, 0, flags=BPF_F_NO_PREALLOC, name="ts") as m:
        assert m.btf_id and m.type_name == "task_storage"
        pidfd = os.pidfd_open(os.getpid())
        try:
            m.update(pidfd, b"hello world!")
            assert m.lookup(pidfd) == b"hello world!"
            m.delete(pidfd)
            with pytest.raises(KeyError):
                m.lookup(pidfd)
        finally:
            os.close(pidfd)


def test_sk_storage_keys_are_socket_fds() -> None:
    with Map.create("sk_storage", 4, 8, 0, flags=BPF_F_NO_PREALLOC, name="sks") as m, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        m[s.fileno()] = bytes(range(8))
        assert m[s.fileno()] == bytes(range(8))


def test_storage_map_with_a_wrong_value_is_refused_with_its_name() -> None:
    with Map.create("task_storage", 4, 4, 0, flags=BPF_F_NO_PREALLOC, name="ts2") as m:
        pidfd = os.pidfd_open(os.getpid())
        try:
            with pytest.raises(MapError, match="too long"):
                m.update(pidfd, b"12345")
        finally:
            os.close(pidfd)


@pytest.mark.parametrize("mtype", ["sk_storage", "inode_storage", "task_storage", "cgrp_storage"])
def test_cli_map_create_makes_storage_maps_bpftool_cannot(bpffs: Path, bpftool: str, mtype: str) -> None:
    path = str(bpffs / mtype)
    out, err = io.StringIO(), io.StringIO()
    rc = run(["map", "create", path, "type", mtype, "key", "4", "value", "16", "entries", "0", "flags", "1",
              "name", "st"], Context(out=out, err=err))
    assert (rc, out.getvalue(), err.getvalue()) == (0, "", "")
    shown = subprocess.run([bpftool, "-j", "map", "show", "pinned", path], capture_output=True, text=True,
                           check=True).stdout
    assert '"name":"st"' in shown and '"bytes_value":16' in shown and '"btf_id":' in shown


def test_cli_update_flags_are_taken_by_prefix_like_bpftool(bpffs: Path, bpftool: str) -> None:
    h = str(bpffs / "h")
    subprocess.run([bpftool, "map", "create", h, "type", "hash", "key", "4", "value", "4", "entries", "4",
                    "name", "h"], check=True)
    key = ["key", "1", "0", "0", "0"]
    base = ["map", "update", "pinned", h, *key, "value", "1", "0", "0", "0"]

    def state(present: bool) -> None:
        subprocess.run([bpftool, "map", "delete", "pinned", h, *key], capture_output=True, check=False)
        if present:
            subprocess.run([bpftool, *base], check=True)

    seen = set()
    for flag in ("a", "an", "n", "no", "noex", "e", "ex", "exi"):
        for present in (False, True):
            state(present)
            t = subprocess.run([bpftool, *base, flag], capture_output=True, text=True, check=False)
            state(present)
            err = io.StringIO()
            rc = run([*base, flag], Context(out=io.StringIO(), err=err))
            assert (rc, err.getvalue()) == (t.returncode, t.stderr), (flag, present)
            seen.add(rc)
    assert 0 in seen and len(seen) > 1  # some refused (noexist on a present key, exist on a missing one)
