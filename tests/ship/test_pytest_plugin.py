"""pybpfobj's pytest plugin (pybpfobj/pytest_plugin.py), used the way a user's
tests use it: fixtures ``bpf_fs``, ``bpf_object``, ``bpf_skeleton`` and the
helpers ``run_prog`` / ``assert_verdict``, on our own objects."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pybpfobj.errors import BpfError, NotFoundError, ProgramError
from pybpfobj.pytest_plugin import assert_verdict, run_prog, verdict_name, verdict_value

ROOT = Path(__file__).resolve().parents[2]


def test_verdict_names_and_values_round_trip() -> None:
    assert verdict_value("XDP_DROP") == 1
    assert verdict_value("tc_act_shot") == 2
    assert verdict_value(7) == 7
    assert verdict_name(2, "XDP_") == "XDP_PASS"
    assert verdict_name(2, "TC_ACT_") == "TC_ACT_SHOT"
    assert verdict_name(1, "SK_") == "SK_PASS"
    assert verdict_name(99) == "99"
    with pytest.raises(ValueError, match="unknown verdict 'XDP_MAYBE'"):
        verdict_value("XDP_MAYBE")


def test_bpf_fs_is_a_private_bpffs(bpf_fs: Path) -> None:
    from pybpfobj.kernel.bpffs import is_bpffs

    assert is_bpffs(str(bpf_fs))
    assert bpf_fs != Path("/sys/fs/bpf")


def test_bpf_object_from_path_runs_the_program_on_packet_bytes(objs: Path, bpf_object: Any) -> None:
    obj = bpf_object(objs / "xdp_counter.o")
    prog = obj.programs["xdp_count"]
    res = assert_verdict(prog, bytes(64), "XDP_PASS", data_out=bytes(64))
    assert res.retval == 2
    run_prog(prog, bytes(100))
    per_cpu = obj.maps["stats"].lookup(0)
    assert sum(s["packets"] if isinstance(s, dict) else s.packets for s in per_cpu) == 2


def test_bpf_object_configure_runs_before_load(objs: Path, bpf_object: Any) -> None:
    obj = bpf_object(objs / "xdp_counter.o", configure=lambda o: o.set_var("verdict", 1))
    assert_verdict(obj.programs["xdp_count"], bytes(64), "XDP_DROP")


def test_assert_verdict_failure_names_program_and_verdicts(objs: Path, bpf_object: Any) -> None:
    obj = bpf_object(objs / "xdp_counter.o")
    with pytest.raises(AssertionError, match=r"program xdp_count: verdict XDP_PASS \(2\), expected XDP_DROP"):
        assert_verdict(obj.programs["xdp_count"], bytes(64), "XDP_DROP")
    with pytest.raises(AssertionError, match="output packet differs: byte 3 is 0x00, expected 0x01"):
        assert_verdict(obj.programs["xdp_count"], bytes(64), "XDP_PASS", data_out=bytes(3) + b"\x01" + bytes(60))


def test_run_prog_error_is_a_pybpfobj_error(objs: Path, bpf_object: Any) -> None:
    obj = bpf_object(objs / "xdp_counter.o")
    # an XDP program needs at least an Ethernet header's worth of packet
    with pytest.raises(ProgramError):
        run_prog(obj.programs["xdp_count"], bytes(2))


def test_bpf_object_missing_file_names_it(bpf_object: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nope.o"):
        bpf_object(tmp_path / "nope.o")


def test_bpf_object_from_generated_skeleton(objs: Path, bpf_object: Any,
                                            bpf_skeleton: Callable[..., Any]) -> None:
    mod = bpf_skeleton(objs / "xdp_counter.o")

    def drop(skel: Any) -> None:
        skel.rodata.verdict = 1

    skel = bpf_object(mod, configure=drop)
    assert skel.loaded
    assert_verdict(skel.progs.xdp_count, bytes(64), "XDP_DROP")
    assert sum(s.packets for s in skel.maps.stats[0]) == 1


def test_bpf_object_pins_under_bpf_fs_and_unpins_after(objs: Path, bpf_object: Any, bpf_fs: Path) -> None:
    obj = bpf_object(objs / "xdp_counter.o")
    obj.pin_programs(bpf_fs / "progs")
    assert (bpf_fs / "progs" / "xdp_count").exists()


def test_plugin_cleans_up_after_a_users_test(objs: Path, tmp_path: Path, need_root: None) -> None:
    """A user's test file in its own pytest run: afterwards the object is unloaded and the
    bpffs unmounted, even though the test failed half way."""
    record = tmp_path / "record"
    (tmp_path / "test_user.py").write_text(textwrap.dedent(f"""
        from pybpfobj.pytest_plugin import assert_verdict

        def test_user(bpf_object, bpf_fs):
            obj = bpf_object({str(objs / "xdp_counter.o")!r})
            prog = obj.programs["xdp_count"]
            obj.pin_programs(str(bpf_fs / "p"))
            open({str(record)!r}, "w").write(f"{{prog.id}} {{bpf_fs}}")
            assert_verdict(prog, bytes(64), "XDP_TX")
    """))
    from importlib.metadata import entry_points

    installed = any(ep.name == "pybpfobj" for ep in entry_points(group="pytest11"))
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
    if not installed:  # a bare checkout: name the plugin (an installed package registers it itself)
        argv += ["-p", "pybpfobj.pytest_plugin"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([*argv, str(tmp_path / "test_user.py")], capture_output=True, text=True, env=env,
                       cwd=tmp_path, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "verdict XDP_PASS (2), expected XDP_TX (3)" in p.stdout
    prog_id, fs = record.read_text().split()
    from pybpfobj.programs import Program

    with pytest.raises(BpfError):
        Program.from_id(int(prog_id)).close()
    assert not os.path.exists(fs)
