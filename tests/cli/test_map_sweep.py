"""Differential checks of `pybpfobj map ...` against bpftool 7.1 from an adversarial sweep.

Each test runs the same command lines through both tools on the same pinned
maps and compares exit code, stdout and stderr byte for byte (usage texts
name the program, so only the line before them is compared).  Where we
deliberately differ from bpftool, the test says so and asserts our behaviour.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from clirun import ours, theirs

pytestmark = pytest.mark.usefixtures("need_root")


def _norm(r: tuple[int, str, str]) -> tuple[int, str, str]:
    rc, out, err = r
    if "Usage:" in err:
        err = err.split("Usage:")[0]
    return rc, out, err


def same(bpftool: str, *argv: str) -> tuple[int, str, str]:
    a, b = _norm(theirs(bpftool, *argv)), _norm(ours(*argv))
    assert a == b, argv
    return b


@pytest.fixture
def fs(bpffs: Path, bpftool: str, objs: Path) -> Path:
    """Maps of the odd types (keyless, valueless, duplicated names, prog_array) plus tailcall.o's programs."""
    d = bpffs
    for args in (["h", "type", "hash", "key", "4", "value", "8", "entries", "4", "name", "sw_h"],
                 ["pch", "type", "percpu_hash", "key", "4", "value", "4", "entries", "4", "name", "sw_pch"],
                 ["q", "type", "queue", "key", "0", "value", "4", "entries", "4", "name", "sw_q"],
                 ["rb", "type", "ringbuf", "key", "0", "value", "0", "entries", "4096", "name", "sw_rb"],
                 ["bf", "type", "bloom_filter", "key", "0", "value", "4", "entries", "4", "name", "sw_bf"],
                 ["pa", "type", "prog_array", "key", "4", "value", "4", "entries", "4", "name", "sw_pa"],
                 ["rsa", "type", "reuseport_sockarray", "key", "4", "value", "4", "entries", "2", "name", "sw_rsa"],
                 ["d1", "type", "hash", "key", "4", "value", "4", "entries", "2", "name", "sw_dup"],
                 ["d2", "type", "array", "key", "4", "value", "4", "entries", "2", "name", "sw_dup"]):
        subprocess.run([bpftool, "map", "create", str(d / args[0]), *args[1:]], check=True)
    for cmd in (["pinned", str(d / "h"), "key", "1", "0", "0", "0", "value", *"12345678"],
                ["pinned", str(d / "pch"), "key", "1", "0", "0", "0", "value", "1", "2", "3", "4"],
                ["pinned", str(d / "q"), "value", "1", "2", "3", "4"],
                ["pinned", str(d / "d2"), "key", "1", "0", "0", "0", "value", "9", "0", "0", "0"]):
        subprocess.run([bpftool, "map", "update", *cmd], check=True)
    (d / "tc").mkdir()
    subprocess.run([bpftool, "prog", "loadall", str(objs / "tailcall.o"), str(d / "tc" / "p"),
                    "pinmaps", str(d / "tc" / "m")], check=True)
    return d


def test_pretty_json_is_bpftools_json_writer_layout(fs: Path, bpftool: str) -> None:
    """-p prints arrays as bpftool's json_writer does (``[{``, ``},{``, byte lists on one
    line), not as Python's indent=4 (which put every byte on its own line)."""
    h, pch, q = str(fs / "h"), str(fs / "pch"), str(fs / "q")
    for argv in (["lookup", "pinned", h, "key", "1", "0", "0", "0"], ["dump", "pinned", h],
                 ["lookup", "pinned", pch, "key", "1", "0", "0", "0"], ["dump", "pinned", pch],
                 ["getnext", "pinned", h], ["peek", "pinned", q], ["show", "name", "sw_dup"],
                 ["dump", "name", "sw_dup"], ["dump", "pinned", str(fs / "tc" / "m" / "jmp_table")],
                 ["lookup", "pinned", h, "key", "7", "0", "0", "0"]):
        out = same(bpftool, "-p", "map", *argv)[1]
        assert '"0x' not in out or '["0x' in out, argv
    # -f adds "pinned": [...], an array too
    assert '"pinned": ["' in same(bpftool, "-f", "-p", "map", "show", "pinned", h)[1]


def test_dump_of_several_maps_heads_each_with_its_show_line(fs: Path, bpftool: str) -> None:
    out = same(bpftool, "map", "dump", "name", "sw_dup")[1]
    assert "hash  name sw_dup  flags 0x0\n" in out and "array  name sw_dup  flags 0x0\n" in out


def test_show_with_other_than_two_words_names_the_first(fs: Path, bpftool: str) -> None:
    for argv in (["id"], ["pinned"], ["name"], ["id", "1", "extra"], ["pinned", str(fs / "h"), "x", "y"]):
        assert same(bpftool, "map", "show", *argv)[2] == f"Error: what is '{argv[0]}'?\n"


def test_keyless_and_valueless_maps_parse_elements_like_bpftool(fs: Path, bpftool: str) -> None:
    """delete/getnext always expect a key (bpftool hands a key buffer even of size 0); a
    map without a value takes none: ``value`` is unnecessary, and a bare update reaches
    the kernel (it was an internal AssertionError)."""
    q, rb, bf = str(fs / "q"), str(fs / "rb"), str(fs / "bf")
    for argv in (["delete", "pinned", q], ["delete", "pinned", q, "key", "1"], ["delete", "pinned", rb],
                 ["delete", "pinned", bf], ["delete", "pinned", q, "key"], ["getnext", "pinned", q, "key"],
                 ["getnext", "pinned", q, "key", "1"], ["update", "pinned", rb, "value", "1"],
                 ["push", "pinned", rb, "value", "1", "2"], ["update", "pinned", rb], ["update", "pinned", rb, "any"],
                 ["lookup", "pinned", q, "value"]):
        for j in ([], ["-j"]):
            _rc, out, err = same(bpftool, *j, "map", *argv)
            assert "internal error" not in out + err
    assert same(bpftool, "map", "update", "pinned", rb)[0] == 244  # ENOTSUPP (524) from the kernel


def test_prog_array_value_by_id_warns_like_bpftool(fs: Path, bpftool: str) -> None:
    """A program given by id to a prog_array gets bpftool's warning (stderr; hidden with -j)."""
    pid = str(json.loads(theirs(bpftool, "-j", "prog", "show", "pinned", str(fs / "tc" / "p" / "main_func"))[1])["id"])
    pa = str(fs / "pa")
    rc, _out, err = same(bpftool, "map", "update", "pinned", pa, "key", "0", "0", "0", "0", "value", "id", pid)
    assert rc == 0 and err.startswith("Warning: updating program array via MAP_ID")
    for argv in (["map", "update", "pinned", pa, "key", "1", "0", "0", "0", "value", "i", pid],
                 ["-j", "map", "update", "pinned", pa, "key", "1", "0", "0", "0", "value", "id", pid],
                 ["map", "update", "pinned", pa, "key", "1", "0", "0", "0", "value", "id", "4000000000"],
                 ["map", "update", "pinned", pa, "key", "1", "0", "0", "0", "value", "id"],
                 ["map", "update", "pinned", pa, "key", "1", "0", "0", "0", "value", "pinned",
                  str(fs / "tc" / "p" / "main_func")]):
        same(bpftool, *argv)


def test_freeze_argument_errors_match_bpftool(fs: Path, bpftool: str) -> None:
    same(bpftool, "map", "freeze")
    same(bpftool, "map", "freeze", "pinned")
    assert same(bpftool, "map", "freeze", "pinned", str(fs / "h"), "extra")[2] == "Error: what is 'extra'?\n"


def test_create_whose_bpffs_mount_fails_exits_255_like_bpftool(fs: Path, bpftool: str) -> None:
    a = theirs(bpftool, "map", "create", str(fs / "nodir" / "b"), "type", "hash", "key", "4", "value", "4",
               "entries", "2", "name", "x")
    b = ours("map", "create", str(fs / "nodir" / "o"), "type", "hash", "key", "4", "value", "4",
             "entries", "2", "name", "x")
    assert (a[0], a[2].replace("/b)", "/o)")) == (b[0], b[2]) and b[0] == 255
    assert not (fs / "nodir").exists()


def test_reuseport_sockarray_dump_says_cannot_read_like_bpftool(fs: Path, bpftool: str) -> None:
    rsa = str(fs / "rsa")
    out = same(bpftool, "map", "dump", "pinned", rsa)[1]
    assert "value: <cannot read>" in out
    same(bpftool, "-j", "map", "dump", "pinned", rsa)


def test_stray_words_after_pop_pin_and_dump_are_refused_by_name(fs: Path) -> None:
    """Deliberate difference: bpftool ignores words after ``pop MAP`` and ``pin MAP FILE``
    (and prints bare usage for ``dump``); we refuse them naming the word, and pop
    nothing, pin nothing."""
    rc, out, err = ours("map", "pop", "pinned", str(fs / "q"), "extra")
    assert (rc, out, err) == (255, "", "Error: what is 'extra'?\n")
    assert ours("map", "peek", "pinned", str(fs / "q"))[1] == "value: 01 02 03 04\n"
    rc, out, err = ours("map", "pin", "pinned", str(fs / "h"), str(fs / "h2"), "extra")
    assert (rc, out, err) == (255, "", "Error: what is 'extra'?\n") and not (fs / "h2").exists()
    rc, _out, err = ours("map", "dump", "pinned", str(fs / "h"), "extra")
    assert rc == 255 and err.startswith("Error: what is 'extra'?\n")


def test_json_writes_non_ascii_paths_as_utf8_like_bpftool(bpffs: Path, bpftool: str) -> None:
    d = bpffs / "café"
    d.mkdir()
    subprocess.run([bpftool, "map", "create", str(d / "m"), "type", "hash", "key", "4", "value", "4",
                    "entries", "2", "name", "utf8"], check=True)
    for opts in (["-j"], ["-j", "-p"]):
        rc, out, _ = same(bpftool, *opts, "-f", "map", "show", "pinned", str(d / "m"))
        assert rc == 0 and "café" in out
