"""The CLI's top level against bpftool 7.1: no arguments, ``help``/``-h``/``-V``, global
options anywhere and by prefix, option errors, ``OBJECT help`` for every group, and
``-d`` showing libbpf's debug lines.  Program names in usage lines are ignored."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import ours, theirs

from pybpfobj.cli import main

pytestmark = [pytest.mark.bpftool]

ROOT = Path(__file__).resolve().parents[2]


def shape(result: tuple[int, str, str], prog: str) -> tuple[int, str, list[str]]:
    """Exit code, stdout and the first stderr lines up to the usage head, program name masked."""
    rc, out, err = result
    lines = [line.replace(prog, "PROG", 1) for line in err.splitlines()]
    head = [line for line in lines[:3] if line.startswith(("Error: ", "Usage: PROG [OPTIONS]"))]
    return rc, out.strip(), head[:2]


# Command lines where bpftool and we must agree on exit code, stdout and the head of stderr.
SAME = [
    [], ["-d"], ["-f"], ["-n"], ["-m"], ["--debug"], ["--"],
    ["-j"], ["-p"], ["-jp"], ["--js"], ["-j", "help"], ["help", "-j"], ["-p", "help"], ["-j", "-h"],
    ["-x"], ["--x"], ["-jx"], ["-j", "-x"], ["-jp", "-x"], ["-p", "--bogus"], ["--json=1", "version"],
    ["---json", "version"], ["-V", "-x"], ["-x", "-V"], ["-x", "-h"],
    ["prog", "-j", "help"], ["map", "-p", "help"], ["-j", "btf", "help"],
]

# Asked-for help: bpftool's exit code and usage; on stdout here, like every group's help.
HELP = [
    ["help"], ["he"], ["h"], ["-h"], ["--help"], ["--he"], ["--h"], ["help", "foo"],
    ["-hj"], ["-h", "-x"], ["-hV"], ["-Vh"], ["prog", "-h"], ["-h", "prog"], ["--he", "--bogus"],
]


@pytest.mark.parametrize("argv", SAME, ids=lambda a: " ".join(a) or "<none>")
def test_top_level_answers_as_bpftool(bpftool: str, argv: list[str]) -> None:
    assert shape(ours(*argv), "pybpfobj") == shape(theirs(bpftool, *argv), bpftool)


@pytest.mark.parametrize("argv", HELP, ids=" ".join)
def test_help_exits_0_with_the_usage_as_bpftool(bpftool: str, argv: list[str]) -> None:
    rc, out, err = ours(*argv)
    brc, bout, berr = theirs(bpftool, *argv)
    assert rc == brc == 0 and err == bout == ""
    assert out.splitlines()[0].replace("pybpfobj", "PROG", 1) == berr.splitlines()[0].replace(bpftool, "PROG", 1)


def test_no_arguments_prints_the_usage_on_stderr_and_exits_0() -> None:
    for argv in ([], ["-d"], ["--"], ["-n", "-f", "-m"]):
        assert ours(*argv) == (0, "", main.USAGE), argv


def test_help_prints_the_usage_on_stdout_and_exits_0() -> None:
    for argv in (["help"], ["-h"], ["--help"], ["--he"], ["prog", "-h"]):
        assert ours(*argv) == (0, main.USAGE, ""), argv


def test_help_in_json_mode_is_null_even_pretty() -> None:
    for argv in (["-j"], ["-p"], ["-j", "help"], ["help", "--pretty"], ["-jh"], ["--js", "--help"]):
        assert ours(*argv) == (0, "null\n", ""), argv


def test_help_wins_over_version_and_over_bad_options_after_it() -> None:
    assert ours("-Vh") == (0, main.USAGE, "")
    assert ours("-hV") == (0, main.USAGE, "")
    assert ours("--help", "--bogus", "-z") == (0, main.USAGE, "")
    rc, _, err = ours("-z", "-h")
    assert rc == 255 and err.startswith("Error: unrecognized option '-z'\n")


def test_option_error_after_pretty_is_pretty_json(bpftool: str) -> None:
    rc, out, err = ours("-jp", "--bogus", "map", "show")
    assert (rc, out, err) == theirs(bpftool, "-jp", "--bogus", "map", "show")
    assert out == '{\n    "error": "unrecognized option \'--bogus\'"\n}\n'


def test_unknown_object_exits_255_naming_it() -> None:
    rc, out, err = ours("foo")
    assert (rc, out) == (255, "") and err == "Error: object 'foo' is unknown\n" + main.USAGE
    assert ours("-j", "foo") == (255, '{"error":"object \'foo\' is unknown"}\n', "")


@pytest.mark.parametrize("argv", [["-V"], ["--version"], ["--ver"], ["version"], ["v"], ["version", "x"],
                                  ["-V", "prog"], ["-jV"], ["-pV"], ["--js", "version"]])
def test_version_everywhere_answers_like_bpftool(bpftool: str, argv: list[str]) -> None:
    rc, out, err = ours(*argv)
    brc, bout, berr = theirs(bpftool, *argv)
    assert (rc, err) == (brc, berr) == (0, "")
    if any(a.startswith("-") and ("j" in a or "p" in a) for a in argv):
        ours_json, their_json = json.loads(out), json.loads(bout)
        assert set(ours_json) <= set(their_json) and {"version", "libbpf_version"} <= set(ours_json)
        assert ours_json["libbpf_version"] == their_json["libbpf_version"]
        assert ("\n    " in out) == ("\n    " in bout)  # pretty with -p only
    else:
        assert re.fullmatch(r"pybpfobj v\S+\nusing libbpf v\S+\n", out)
        assert out.splitlines()[1] == bout.splitlines()[1]


@pytest.mark.parametrize("prefix", ["--json", "--js", "--j", "--pretty", "--pre", "--p", "--debug", "--de",
                                    "--d", "--nomount", "--n", "--mapcompat", "--m"])
def test_long_option_prefixes_bpftool_accepts_work_before_and_after_the_object(bpftool: str,
                                                                               prefix: str) -> None:
    for argv in ([prefix, "version"], ["version", prefix]):
        rc, out, _ = ours(*argv)
        brc, bout, _ = theirs(bpftool, *argv)
        assert rc == brc == 0
        assert out.startswith("{") == bout.startswith("{"), argv


def test_usage_lists_exactly_our_objects_commands_and_options() -> None:
    objects = re.search(r"OBJECT := \{ (.*?) \}", main.USAGE)
    assert objects is not None
    listed = set(objects.group(1).split(" | "))
    commands = set(re.findall(r"^ *(?:Usage: )?pybpfobj (\w+)", main.USAGE, re.MULTILINE))
    groups = {g[0] for g in main.GROUPS}
    assert listed <= groups and listed | commands == groups - {"help"} and "help" in main.USAGE
    shorts = set(re.findall(r"\{-(\w)\|--(\w+)\}", main.USAGE))
    assert {s for s, _ in shorts} == main._SHORT
    assert {f"--{long}" for _, long in shorts} == set(main._LONG)
    assert all(main._LONG[f"--{long}"] == s for s, long in shorts)


@pytest.mark.parametrize("group", ["prog", "map", "btf", "gen"])
def test_group_help_exits_like_bpftool(bpftool: str, group: str) -> None:
    rc, out, err = ours(group, "help")
    brc, _, berr = theirs(bpftool, group, "help")
    assert rc == brc == 0
    first = (out or err).splitlines()[0]
    assert first == berr.splitlines()[0].replace(bpftool, "pybpfobj") or first.startswith(f"Usage: pybpfobj {group} ")
    assert ours("-j", group, "help")[0] == 0


@pytest.mark.parametrize("group", ["inspect", "load", "loadall"])
def test_our_own_groups_have_help(group: str) -> None:
    rc, out, err = ours(group, "help")
    assert rc == 0 and (out or err).startswith("Usage: pybpfobj ")
    rc, out, err = ours(group)
    assert rc == 255 and err.startswith("Error: ") and out == ""


@pytest.mark.parametrize("group", ["prog", "map", "btf", "gen", "inspect", "load", "loadall"])
def test_every_group_help_goes_to_stdout_like_the_top_level_help(group: str) -> None:
    rc, out, err = ours(group, "help")
    assert rc == 0 and err == "" and out.startswith("Usage: pybpfobj ")


# with -j, bpftool's `OBJECT help` prints only `null`
@pytest.mark.parametrize("group", ["gen", "inspect", "load", "loadall", "prog", "map", "btf"])
def test_group_help_in_json_mode_is_null(group: str) -> None:
    assert ours("-j", group, "help") == (0, "null\n", "")


@pytest.mark.kernel
def test_debug_shows_libbpf_lines_on_stderr_for_load_as_bpftool_does(objs: Path, bpffs: Path,
                                                                     bpftool: str) -> None:
    obj = str(objs / "xdp_counter.o")
    exe = [sys.executable, "-m", "pybpfobj.cli"] if (ROOT / "pybpfobj/cli/__main__.py").exists() else \
        [sys.executable, "-c", "from pybpfobj.cli.main import entry; entry()"]

    def run(cmd: list[str]) -> tuple[int, str, list[str]]:
        p = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
        return p.returncode, p.stdout, [x for x in p.stderr.splitlines() if x.startswith("libbpf: ")]

    b = run([bpftool, "-d", "prog", "load", obj, str(bpffs / "b")])
    for argv in (["-d", "prog", "load", obj, str(bpffs / "p")], ["load", obj, str(bpffs / "q"), "--debug"],
                 ["-jd", "prog", "load", obj, str(bpffs / "r")]):
        rc, out, lines = run(exe + argv)
        assert rc == b[0] == 0, argv
        assert out == ("null\n" if "-jd" in argv else ""), argv
        # the same libbpf run: as many debug lines, the same section and program lines
        assert abs(len(lines) - len(b[2])) <= 2 and lines[1:4] == b[2][1:4], argv
    rc, _, lines = run(exe + ["prog", "load", obj, str(bpffs / "s")])
    assert rc == 0 and lines == []
    assert sorted(p.name for p in bpffs.iterdir() if not p.name.endswith(".debug")) == ["b", "p", "q", "r", "s"]


@pytest.mark.parametrize("argv", [["-o", "x", "version"], ["map", "show", "-o", "x"], ["--output", "x", "prog"],
                                  ["-j", "-o", "x", "map"]])
def test_gen_output_option_elsewhere_is_an_unknown_option_as_in_bpftool(bpftool: str, argv: list[str]) -> None:
    assert shape(ours(*argv), "pybpfobj") == shape(theirs(bpftool, *argv), bpftool)


def test_no_embed_outside_gen_is_an_unknown_option_not_a_stray_word() -> None:
    rc, out, err = ours("--no-embed", "version")
    assert (rc, out) == (255, "") and err.startswith("Error: unrecognized option '--no-embed'\n")


def test_gen_options_still_reach_gen_skeleton(objs: Path, tmp_path: Path) -> None:
    dest = tmp_path / "skel.py"
    assert ours("gen", "skeleton", str(objs / "globals.o"), "-o", str(dest), "--no-embed")[0] == 0
    assert str(objs / "globals.o") in dest.read_text()
