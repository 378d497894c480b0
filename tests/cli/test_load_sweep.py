"""``load``/``loadall`` swept against bpftool 7.1: ``type`` keywords, refused map
replacements and by-name pins (fields listed, nothing left), ``var``/``size`` errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from bpfbuild import build_bpf
from clirun import ours, theirs

# A one-instruction program every listed type accepts (or every loader refuses alike).
_TRIVIAL = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int f(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"""


def _prog_type(bpftool: str, pin: Path) -> str | None:
    p = subprocess.run([bpftool, "-j", "prog", "show", "pinned", str(pin)], capture_output=True, text=True,
                       check=False)
    return json.loads(p.stdout)["type"] if p.returncode == 0 else None


def _build(tmp: Path, name: str, src: str) -> str:
    return str(build_bpf(tmp, name, src))


def _build_trivial(tmp: Path) -> str:
    return _build(tmp, "trivial", _TRIVIAL)


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Error: ")]


@pytest.mark.parametrize("words", [
    ("socket", "kprobe", "classifier", "action", "cgroup/skb", "cgroup/dev", "lwt_seg6local", "sockops",
     "cgroup/sysctl", "cgroup/connect4", "cgroup/post_bind6", "cgroup/sock_release", "sk_lookup", "tc",
     "kprobe/foo", "xdp.frags"),
    ("lirc_mode2", "cgroup/getpeername4", "cgroup/recvmsg6", "struct_ops", "fentry", "freplace", "lsm",
     "sched_cls", "cgroup_skb", "tracing", "ext", "xdp/", "cgroup", "bogus", "12"),
], ids=["accepted", "refused"])
def test_type_keywords_give_bpftools_program_type(tmp_path: Path, bpffs: Path, bpftool: str,
                                                   words: tuple[str, ...]) -> None:
    obj = _build_trivial(tmp_path)
    for word in words:
        got = []
        for who, run in (("bpftool", lambda *a: theirs(bpftool, *a)), ("ours", ours)):
            pin = bpffs / who
            rc, _out, _err = run("prog", "load", obj, str(pin), "type", word)
            got.append((rc, _prog_type(bpftool, pin) if rc == 0 else None))
            if pin.exists():
                pin.unlink()
        assert got[0] == got[1], word
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug"]


def test_incompatible_replacement_fails_as_bpftool_and_lists_fields(objs: Path, bpffs: Path,
                                                                    bpftool: str) -> None:
    other = bpffs / "other"
    subprocess.run([bpftool, "map", "create", str(other), "type", "array", "key", "4", "value", "4",
                    "entries", "3", "name", "stats"], check=True)
    argv = ("prog", "load", str(objs / "xdp_counter.o"), "", "map", "name", "stats", "pinned", str(other))
    rc_theirs = theirs(bpftool, *[str(bpffs / "p") if a == "" else a for a in argv])[0]
    rc, _out, err = ours(*[str(bpffs / "q") if a == "" else a for a in argv])
    assert rc == rc_theirs == 255
    (line,) = _errors(err)
    assert "map 'stats'" in line and "type array != " not in line  # both are arrays
    assert "value_size 16 != 4" in line and "max_entries 1 != 3" in line and "use force" in line
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "other", "progs.debug"]


def test_incompatible_by_name_pin_lists_fields_and_leaves_nothing(objs: Path, bpffs: Path,
                                                                  bpftool: str) -> None:
    pin = bpffs / "pinned_hash"
    subprocess.run([bpftool, "map", "create", str(pin), "type", "hash", "key", "4", "value", "4",
                    "entries", "32", "name", "pinned_hash"], check=True)
    rc, _out, err = ours("load", str(objs / "pinbyname.o"), str(bpffs / "p"), "pinroot", str(bpffs))
    assert rc == 255
    assert _errors(err) == [(f"Error: map 'pinned_hash' of object 'pinbyname' is incompatible with pinned "
                             f"map '{pin}' (object's != existing): value_size 8 != 4; remove the pin or "
                             f"give another pin root")]
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "pinned_hash", "progs.debug"]
    pin.unlink()
    for d in ("p1", "p2"):  # a compatible pin is reused: one map behind both programs
        assert ours("load", str(objs / "pinbyname.o"), str(bpffs / d), "pinroot", str(bpffs))[0] == 0
    ids = {json.loads(theirs(bpftool, "-j", "prog", "show", "pinned", str(bpffs / d))[1])["map_ids"][0]
           for d in ("p1", "p2")}
    assert len(ids) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (("var", "favourite", "PURPLE"), "needs an integer or one of RED, GREEN, BLUE, got 'PURPLE'"),
    (("var", "verdict", "-1"), ("variable 'verdict' (const volatile __u32): -1 does not fit an unsigned 32-bit "
                               "integer")),
    (("var", "greeting", "12345678"), ("variable 'greeting' (char[8]): a string of 8 bytes does not fit char[8] "
                                      "with its NUL")),
    (("var", "nope", "1"), "has no global variable 'nope'"),
    (("size", "globals.rodata", "4"), "map 'globals.rodata' of object 'globals' holds global data"),
    (("value_size", "globals.bss", "4"), "map 'globals.bss' of object 'globals' holds global data"),
    (("size", "nope", "4"), "unable to find map 'nope'"),
])
def test_var_and_size_errors_name_what_is_wrong(objs: Path, bpffs: Path, argv: tuple[str, ...],
                                               message: str) -> None:
    rc, _out, err = ours("load", str(objs / "globals.o"), str(bpffs / "p"), *argv)
    assert rc == 255
    (line,) = _errors(err)
    assert message in line
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug"]


def test_a_replacement_pin_that_is_no_map_or_off_bpffs_fails_in_bpftools_words(
        objs: Path, bpffs: Path, bpftool: str) -> None:
    assert theirs(bpftool, "prog", "loadall", str(objs / "xdp_counter.o"), str(bpffs / "ref"))[0] == 0
    for source in ("/etc/passwd", str(bpffs / "ref" / "xdp_count"), str(bpffs / "nonexistent")):
        argv = ["prog", "load", str(objs / "xdp_counter.o"), "", "map", "name", "stats", "pinned", source]
        t = theirs(bpftool, *[str(bpffs / "t") if a == "" else a for a in argv])
        o = ours(*[str(bpffs / "o") if a == "" else a for a in argv])
        assert (o[0], _errors(o[2])) == (t[0], _errors(t[2])), source
        assert t[0] == 255
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug", "ref"]


_MAPS_ONLY = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); }
    only_map SEC(".maps");
char LICENSE[] SEC("license") = "GPL";
"""


def test_an_object_without_programs_is_refused_by_load_and_pins_only_maps_in_loadall(
        tmp_path: Path, bpffs: Path, bpftool: str) -> None:
    obj = _build(tmp_path, "mapsonly", _MAPS_ONLY)
    t = theirs(bpftool, "prog", "load", obj, str(bpffs / "t"))
    o = ours("prog", "load", obj, str(bpffs / "o"))
    assert (o[0], _errors(o[2])) == (t[0], _errors(t[2])) == (255, ["Error: object file doesn't contain any bpf program"])
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug"]
    for who, run in (("t", lambda *a: theirs(bpftool, *a)), ("o", ours)):
        assert run("prog", "loadall", obj, str(bpffs / f"{who}p"), "pinmaps", str(bpffs / f"{who}m"))[0] == 0
    # no program directory on either side; the map pinned alike
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "om", "progs.debug", "tm"]
    assert os.listdir(bpffs / "om") == os.listdir(bpffs / "tm") == ["only_map"]


def test_programs_left_out_by_autoload_are_not_pinned(objs: Path, tmp_path: Path, bpffs: Path,
                                                       bpftool: str) -> None:
    src = Path(__file__).resolve().parent.parent / "data" / "foreign" / "autoload_off.bpf.c"
    obj = _build(tmp_path, "autoload_off", src.read_text())
    # load pins the first program, which did not load: both refuse, and nothing is left
    t = theirs(bpftool, "prog", "load", obj, str(bpffs / "t"))
    o = ours("prog", "load", obj, str(bpffs / "o"))
    assert o[0] == t[0] == 255
    assert _errors(o[2]) == [("Error: failed to pin program 'lazy_xdp' (section 'xdp'): it was not loaded "
                              "(its autoload is off: a SEC(\"?...\") program, or set_autoload(False))")]
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug"]
    # loadall: bpftool 7.1 fails on the program that did not load; we pin those that did
    assert theirs(bpftool, "prog", "loadall", obj, str(bpffs / "t"))[0] == 255
    assert ours("prog", "loadall", obj, str(bpffs / "o"))[0] == 0
    assert sorted(os.listdir(bpffs / "o")) == ["eager_sock"]


_INFO = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
int odd __attribute__((section(".mydata"))) = 1;   /* libbpf (info): skipping unrecognized data section */
SEC("xdp") int pass(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
"""


def _libbpf_lines(err: str) -> list[str]:
    import re

    # kernel addresses in the verifier log (a map's) differ from load to load
    return [re.sub(r"0x[0-9a-f]{12,16}\b", "0xADDR", line) for line in err.splitlines()
            if not line.startswith(("Warning: bpftool", "If it used")) and line]


@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
def test_libbpf_info_lines_and_verifier_logs_reach_stderr_as_with_bpftool(
        objs: Path, tmp_path: Path, bpffs: Path, bpftool: str, json_mode: bool) -> None:
    # a separate process: libbpf's first line (an info line here) sets logging up lazily
    import sys

    def ours_process(*argv: str) -> tuple[int, str, str]:
        p = subprocess.run([sys.executable, "-m", "pybpfobj", *argv], capture_output=True, text=True,
                           check=False)
        return p.returncode, p.stdout, p.stderr

    j = ["-j"] if json_mode else []
    info = _build(tmp_path, "info", _INFO)
    t = theirs(bpftool, *j, "prog", "load", info, str(bpffs / "t"))
    o = ours_process(*j, "prog", "load", info, str(bpffs / "o"))
    assert t[0] == o[0] == 0 and t[1] == o[1]
    assert _libbpf_lines(o[2]) == _libbpf_lines(t[2]) == [
        "libbpf: elf: skipping unrecognized data section(4) .mydata"]
    # a rejection: libbpf's lines and the verifier log between them, in bpftool's order
    bad = str(objs / "bad_verifier.o")
    t = theirs(bpftool, *j, "prog", "load", bad, str(bpffs / "t2"))
    o = ours_process(*j, "prog", "load", bad, str(bpffs / "o2"))
    assert t[0] == o[0] == 255
    tl, ol = _libbpf_lines(t[2]), _libbpf_lines(o[2])
    if json_mode:  # the error is on stdout
        assert tl == ol and "-- BEGIN PROG LOAD LOG --" in "\n".join(ol)
        assert json.loads(o[1])["error"].startswith("failed to load object file")
    else:  # all but the last line, where ours says which program and why
        assert tl[:-1] == ol[:-1] and tl[-1] == "Error: failed to load object file"
        assert ol[-1].startswith("Error: failed to load object file: the verifier rejected program 'bad_deref'")
    assert not (bpffs / "o2").exists() and (bpffs / "o").exists()


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} - {"maps.debug", "progs.debug"}


def test_pin_paths_bpftool_takes_are_taken(objs: Path, tmp_path: Path, bpftool: str) -> None:
    # pinmaps inside a PATH still to be made; "lnk/../p" through a symlink (resolved by the
    # kernel, not lexically); loadall into "." (an existing directory, no new name)
    import sys

    results = {}
    for who in ("t", "o"):
        base = tmp_path / who
        fs, plain = base / "bpf", base / "plain"
        fs.mkdir(parents=True)
        plain.mkdir()
        subprocess.run(["mount", "-t", "bpf", "bpf", str(fs)], check=True)
        try:
            (fs / "sub").mkdir()
            (fs / "cwd").mkdir()
            os.symlink(fs / "sub", plain / "lnk")
            tool = [bpftool] if who == "t" else [sys.executable, "-m", "pybpfobj"]
            for argv, cwd in ((["prog", "loadall", str(objs / "tailcall.o"), "bpf/d", "pinmaps", "bpf/d/m"], base),
                              (["prog", "load", str(objs / "xdp_counter.o"), "plain/lnk/../p"], base),
                              (["prog", "loadall", str(objs / "tailcall.o"), "."], fs / "cwd")):
                p = subprocess.run([*tool, *argv], cwd=cwd, capture_output=True, text=True, check=False)
                assert p.returncode == 0, (who, argv, p.stderr)
            results[who] = _tree(fs)
        finally:
            subprocess.run(["umount", "-l", str(fs)], check=False)
    assert results["o"] == results["t"]
    assert {"d/m/jmp_table", "p", "cwd/main_func"} <= results["o"]


@pytest.mark.parametrize("tail", [
    ["ty"], ["d"], ["p"], ["pinm"], ["ma", "idx", "0", "id"],          # a keyword's value missing
    ["type", "bogus", "type", "xdp"], ["dev", "nosuch0", "dev", "lo"],  # checked as they are read
], ids=["ty", "d", "p", "pinm", "ma", "type-first", "dev-first"])
def test_keyword_errors_come_in_bpftools_words_and_order(objs: Path, bpffs: Path, bpftool: str,
                                                         tail: list[str]) -> None:
    t = theirs(bpftool, "prog", "load", str(objs / "xdp_counter.o"), str(bpffs / "t"), *tail)
    o = ours("prog", "load", str(objs / "xdp_counter.o"), str(bpffs / "o"), *tail)
    assert o[0] == t[0] == 255
    if tail[0] == "type":  # bpftool lets libbpf say it (no Error line); we do in one
        assert "failed to guess program type" in t[2] and "failed to guess program type" in o[2]
    else:
        assert _errors(o[2]) == _errors(t[2])
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug"]


def test_an_unknown_netdev_is_reported_before_the_object_is_looked_at(bpffs: Path, bpftool: str) -> None:
    argv = ["prog", "load", "/nonexistent.o", "", "dev", "nosuch0"]
    t = theirs(bpftool, *[str(bpffs / "t") if a == "" else a for a in argv])
    o = ours(*[str(bpffs / "o") if a == "" else a for a in argv])
    want = (255, ["Error: unrecognized netdevice 'nosuch0': No such device"])
    assert (o[0], _errors(o[2])) == (t[0], _errors(t[2])) == want


def test_help_is_help_only_alone(bpffs: Path, bpftool: str) -> None:
    # with more words 'help' is the object file's name, as in bpftool
    t = theirs(bpftool, "prog", "load", "help", str(bpffs / "t"))
    o = ours("prog", "load", "help", str(bpffs / "o"))
    assert o[0] == t[0] == 255 and "help" in _errors(o[2])[0]
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug"]
    assert ours("prog", "load", "help")[0] == 0


def test_prog_pin_ignores_words_after_the_file_as_bpftool(objs: Path, bpffs: Path, bpftool: str) -> None:
    assert theirs(bpftool, "prog", "load", str(objs / "xdp_counter.o"), str(bpffs / "p"))[0] == 0
    t = theirs(bpftool, "prog", "pin", "pinned", str(bpffs / "p"), str(bpffs / "t"), "extra")
    o = ours("prog", "pin", "pinned", str(bpffs / "p"), str(bpffs / "o"), "extra")
    assert o[0] == t[0] == 0 and (bpffs / "o").exists() and (bpffs / "t").exists()
