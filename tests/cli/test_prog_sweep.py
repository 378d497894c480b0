"""Differential checks from an adversarial sweep of ``prog``/``load``/``loadall`` against
bpftool 7.1: each test pins down a discrepancy that was found and fixed."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import ours, theirs

pytestmark = [pytest.mark.kernel, pytest.mark.bpftool]


def tree(root: Path) -> set[str]:
    """What is under ``root``, without the kernel's own ``maps.debug``/``progs.debug``."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} - {"maps.debug", "progs.debug"}


def mounts() -> str:
    with open("/proc/mounts") as f:
        return f.read()


def error_line(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("Error: "))


@pytest.fixture
def plain(tmp_path: Path, need_root: None) -> Iterator[Path]:
    """A directory on no bpffs; whatever a test (or a tool) mounts below it is unmounted after."""
    yield tmp_path
    for line in reversed(mounts().splitlines()):
        mp = line.split()[1]
        if mp == str(tmp_path) or mp.startswith(f"{tmp_path}/"):
            subprocess.run(["umount", mp], check=False)


def test_pinmaps_into_a_plain_dir_fails_like_bpftool_and_mounts_nothing_over_it(
        objs: Path, bpffs: Path, bpftool: str, plain: Path) -> None:
    o = str(objs / "xdp_counter.o")
    for who in ("t", "o"):
        (plain / who).mkdir()
        (plain / who / "keep").write_text("mine")
    before = mounts()
    rc_t, _, err_t = theirs(bpftool, "prog", "loadall", o, str(bpffs / "t"), "pinmaps", str(plain / "t"))
    rc_o, out_o, err_o = ours("prog", "loadall", o, str(bpffs / "o"), "pinmaps", str(plain / "o"))
    assert rc_o == rc_t == 255
    assert error_line(err_t) == "Error: failed to pin all maps"
    assert error_line(err_o).startswith("Error: failed to pin all maps: ")
    assert str(plain / "o") in err_o and "BPF file system" in err_o
    # nothing was mounted over the user's directory (we used to mount a bpffs on its parent)
    assert mounts() == before
    assert tree(plain / "o") == tree(plain / "t") == {"keep"}
    # and unlike bpftool (which leaves its program dir behind), nothing is pinned
    assert not (bpffs / "o").exists()
    assert out_o == ""


def test_pinmaps_into_a_bpffs_mount_point_pins_there_like_bpftool(
        objs: Path, bpftool: str, plain: Path) -> None:
    o = str(objs / "xdp_counter.o")
    for who in ("t", "o"):
        (plain / who).mkdir()
        subprocess.run(["mount", "-t", "bpf", "bpf", str(plain / who)], check=True)
    before = mounts()
    rc_t, _, err_t = theirs(bpftool, "prog", "loadall", o, str(plain / "t" / "p"), "pinmaps", str(plain / "t"))
    rc_o, out_o, err_o = ours("prog", "loadall", o, str(plain / "o" / "p"), "pinmaps", str(plain / "o"))
    assert (rc_o, out_o, err_o) == (rc_t, "", "") == (0, "", ""), err_t
    assert mounts() == before
    assert tree(plain / "o") == tree(plain / "t")
    assert {"p/xdp_count", "stats"} <= tree(plain / "o")


def test_pinmaps_under_a_missing_dir_fails_like_bpftool_leaving_nothing(
        objs: Path, bpffs: Path, bpftool: str) -> None:
    o = str(objs / "xdp_counter.o")
    rc_t, _, err_t = theirs(bpftool, "prog", "loadall", o, str(bpffs / "t"), "pinmaps", str(bpffs / "nt" / "m"))
    rc_o, _, err_o = ours("prog", "loadall", o, str(bpffs / "o"), "pinmaps", str(bpffs / "no" / "m"))
    assert rc_o == rc_t == 255
    assert error_line(err_t) == "Error: failed to pin all maps"
    assert error_line(err_o) == (f"Error: failed to pin all maps: can't create directory '{bpffs / 'no' / 'm'}': "
                                 "No such file or directory")
    assert tree(bpffs) == {"t"}          # bpftool leaves its program dir; we leave nothing


def test_loadall_into_a_bpffs_mount_point_pins_inside_it(objs: Path, bpftool: str, plain: Path) -> None:
    # bpftool 7.1 mounts a fresh bpffs on PATH's parent, hiding PATH (upstream fixed that); we
    # pin the same names in the mount point itself and mount nothing.
    o = str(objs / "progs_all.o")
    mp = plain / "o" / "fs"
    mp.mkdir(parents=True)
    subprocess.run(["mount", "-t", "bpf", "bpf", str(mp)], check=True)
    before = mounts()
    rc_o, out_o, err_o = ours("prog", "loadall", o, str(mp))
    assert (rc_o, out_o, err_o) == (0, "", "")
    assert mounts() == before
    (plain / "t" / "fs").mkdir(parents=True)
    rc_t, _, _ = theirs(bpftool, "prog", "loadall", o, str(plain / "t" / "fs"))
    assert rc_t == 0
    assert tree(mp) == tree(plain / "t" / "fs")


def test_pretty_json_has_bpftool_layout(objs: Path, bpffs: Path, bpftool: str) -> None:
    o = str(objs / "xdp_counter.o")
    for d in ("a", "b"):
        subprocess.run([bpftool, "prog", "loadall", o, str(bpffs / d)], check=True)
    subprocess.run([bpftool, "prog", "load", str(objs / "tailcall.o"), str(bpffs / "tc")], check=True)
    pin = str(bpffs / "a" / "xdp_count")
    for argv in (["-p", "prog", "show", "pinned", pin],
                 ["-f", "-p", "prog", "show", "pinned", pin],
                 ["prog", "show", "name", "xdp_count", "--pretty"],
                 ["-p", "prog", "dump", "xlated", "pinned", str(bpffs / "tc"), "opcodes"]):
        rc_t, out_t, _ = theirs(bpftool, *argv)
        rc_o, out_o, err_o = ours(*argv)
        assert (rc_o, err_o) == (rc_t, "") == (0, ""), argv
        assert out_o == out_t, argv
        assert json.loads(out_o)
    out = ours("-p", "prog", "show", "name", "xdp_count")[1]
    assert out.startswith("[{\n") and "},{\n" in out and '"map_ids": [' in out


def test_loaded_at_is_the_same_second_as_bpftool(objs: Path, bpffs: Path, bpftool: str) -> None:
    # Rounding each clock to whole seconds before adding made loaded_at one second off about
    # half the time; programs loaded a fraction of a second apart catch it.
    o = str(objs / "tailcall.o")
    pins = []
    for k in range(6):
        pins.append(str(bpffs / f"p{k}"))
        subprocess.run([bpftool, "prog", "load", o, pins[-1]], check=True)
        time.sleep(0.17)
    for pin in pins:
        t_text = theirs(bpftool, "prog", "show", "pinned", pin)[1]
        o_text = ours("prog", "show", "pinned", pin)[1]
        assert o_text == t_text
        t_json = json.loads(theirs(bpftool, "-j", "prog", "show", "pinned", pin)[1])
        o_json = json.loads(ours("-j", "prog", "show", "pinned", pin)[1])
        assert o_json["loaded_at"] == t_json["loaded_at"]


def test_load_at_a_path_with_trailing_slash_fails_once_worded(objs: Path, bpffs: Path, bpftool: str) -> None:
    o = str(objs / "xdp_counter.o")
    rc_t, _, err_t = theirs(bpftool, "prog", "load", o, f"{bpffs / 't'}/")
    rc_o, _, err_o = ours("prog", "load", o, f"{bpffs / 'o'}/")
    assert rc_o == rc_t == 255
    assert error_line(err_t).startswith("Error: failed to pin program")
    line = error_line(err_o)
    assert line.startswith("Error: failed to pin program") and line.count("failed to pin") == 1
    assert tree(bpffs) == set()


@pytest.mark.parametrize("content", [b"", b"\x7fELF" + bytes(60)], ids=["empty", "truncated"])
def test_unreadable_object_fails_like_bpftool_quoting_libbpf_once(
        bpffs: Path, bpftool: str, tmp_path: Path, content: bytes) -> None:
    o = tmp_path / "x.o"
    o.write_bytes(content)
    rc_t, _, err_t = theirs(bpftool, "prog", "load", str(o), str(bpffs / "t"))
    rc_o, _, err_o = ours("prog", "load", str(o), str(bpffs / "o"))
    assert rc_o == rc_t == 255
    assert error_line(err_t) == "Error: failed to open object file"
    line = error_line(err_o)
    assert line.startswith(f"Error: failed to open object file '{o}': ") and "libbpf:" not in line
    libbpf_t = [ln for ln in err_t.splitlines() if ln.startswith("libbpf: ")]
    assert libbpf_t and libbpf_t[-1][len("libbpf: "):] in line
    assert tree(bpffs) == set()
