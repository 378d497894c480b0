"""``prog show`` / ``prog pin`` against bpftool on programs bpftool loaded into a private bpffs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from clirun import ours as cli
from clirun import theirs as tool


def drop_loaded_at(text: str) -> str:
    # The two tools read the clocks at different moments: the second may differ by one.
    return "\n".join(ln for ln in text.splitlines() if "loaded_at" not in ln)


def comparable(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    d.pop("pids", None)         # bpftool 7.1 cannot report pids
    d.pop("loaded_at", None)
    return d


@pytest.fixture
def loaded(objs: Path, bpffs: Path, bpftool: str) -> list[Path]:
    for obj in ("xdp_counter", "progs_all", "globals"):
        subprocess.run([bpftool, "prog", "loadall", str(objs / f"{obj}.o"), str(bpffs / obj)], check=True)
    return sorted(p for d in bpffs.iterdir() if d.is_dir() for p in d.iterdir())


def test_show_text_and_json_match_bpftool_for_each_pinned_program(loaded: list[Path], bpftool: str) -> None:
    for pin in loaded:
        for opts in ([], ["-f"]):
            rc_t, t_out, _ = tool(bpftool, *opts, "prog", "show", "pinned", str(pin))
            rc_o, o_out, o_err = cli(*opts, "prog", "show", "pinned", str(pin))
            assert (rc_o, o_err) == (rc_t, "") == (0, "")
            assert drop_loaded_at(o_out) == drop_loaded_at(t_out), pin
            _, t_js, _ = tool(bpftool, "-j", *opts, "prog", "show", "pinned", str(pin))
            _, o_js, _ = cli("-j", *opts, "prog", "show", "pinned", str(pin))
            theirs, ours = json.loads(t_js), json.loads(o_js)
            assert abs(ours["loaded_at"] - theirs["loaded_at"]) <= 1
            assert comparable(ours) == comparable(theirs), pin


def test_show_metadata_comes_from_rodata_bpf_metadata_variables(loaded: list[Path]) -> None:
    pin = next(p for p in loaded if p.name == "xdp_globals")
    _, out, _ = cli("-j", "prog", "show", "pinned", str(pin))
    assert json.loads(out)["metadata"] == {"version": "1.0", "build": 42}
    _, text, _ = cli("prog", "show", "pinned", str(pin))
    assert "\tmetadata:\n\t\tversion = \"1.0\"\n\t\tbuild = 42\n" in text


def test_show_by_id_and_tag_and_all_agree_with_bpftool(loaded: list[Path], bpftool: str) -> None:
    pin = loaded[0]
    info = json.loads(tool(bpftool, "-j", "prog", "show", "pinned", str(pin))[1])
    _, by_id, _ = cli("-j", "prog", "show", "id", str(info["id"]))
    assert comparable(json.loads(by_id)) == comparable(info)
    _, by_tag, _ = cli("-j", "prog", "show", "tag", info["tag"])
    got = json.loads(by_tag)
    rows = got if isinstance(got, list) else [got]
    assert info["id"] in [r["id"] for r in rows]
    _, everything, _ = cli("-j", "prog")
    ids = [r["id"] for r in json.loads(everything)]
    assert ids == sorted(ids) and info["id"] in ids


def test_show_lists_processes_holding_the_program_but_not_our_lookup_fds(loaded: list[Path]) -> None:
    pin = loaded[0]
    holder = subprocess.Popen(
        ["python3", "-c", ("import sys,time; from pybpfobj.kernel import info; "
                           "fd = info.obj_get(sys.argv[1]); print('ready', flush=True); time.sleep(60)"),
         str(pin)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        _, out, _ = cli("-j", "prog", "show", "pinned", str(pin))
        pids = json.loads(out)["pids"]
        assert {"pid": holder.pid, "comm": "python3"} in pids
        assert all(p["pid"] != os.getpid() for p in pids)
        _, text, _ = cli("prog", "show", "pinned", str(pin))
        assert f"python3({holder.pid})" in text.split("\tpids ", 1)[1]
    finally:
        holder.kill()
        holder.wait()


def test_show_errors_and_exit_codes(bpftool: str) -> None:
    cases = [
        ("prog", "show", "id", "99999999"),
        ("prog", "show", "pinned", "/nonexistent"),
        ("prog", "show", "tag", "zz"),
        ("prog", "show", "id"),
        ("prog", "show", "id", "abc"),
        ("prog", "show", "foo", "1"),
        ("prog", "show", "id", "1", "extra"),
    ]
    for argv in cases:
        rc_t, _, t_err = tool(bpftool, *argv)
        rc_o, _, o_err = cli(*argv)
        assert (rc_o, o_err) == (rc_t, t_err), argv
    # bpftool 7.1 exits 255 silently when a name or tag matches nothing; we say why.
    assert cli("prog", "show", "name", "nosuch") == (255, "", "Error: no program with name 'nosuch' found\n")
    assert cli("prog", "show", "tag", "0000000000000000")[2] == \
        "Error: no program with tag 0000000000000000 found\n"
    assert cli("-j", "prog", "show", "id", "99999999")[1] == \
        '{"error":"get by id (99999999): No such file or directory"}\n'


def test_show_pinned_on_a_non_bpffs_path_names_the_directory(tmp_path: Path, bpftool: str) -> None:
    f = tmp_path / "plain"
    f.write_text("x")
    rc_t, _, t_err = tool(bpftool, "prog", "show", "pinned", str(f))
    rc_o, _, o_err = cli("prog", "show", "pinned", str(f))
    assert (rc_o, o_err) == (rc_t, t_err)


def test_pin_creates_a_pin_and_refuses_existing_and_dotted_paths(loaded: list[Path], bpffs: Path,
                                                                  bpftool: str) -> None:
    src = loaded[0]
    new = bpffs / "again"
    assert cli("prog", "pin", "pinned", str(src), str(new)) == (0, "", "")
    t_show = json.loads(tool(bpftool, "-j", "prog", "show", "pinned", str(new))[1])
    assert t_show["id"] == json.loads(cli("-j", "prog", "show", "pinned", str(src))[1])["id"]
    rc_t, _, t_err = tool(bpftool, "prog", "pin", "pinned", str(src), str(new))
    rc_o, _, o_err = cli("prog", "pin", "pinned", str(src), str(new))
    assert (rc_o, o_err) == (rc_t, t_err) == (239, f"Error: can't pin the object ({new}): File exists\n")
    rc, _, err = cli("prog", "pin", "pinned", str(src), str(bpffs / "a.b"))
    assert rc == 255 and "cannot contain '.'" in err and "a.b" not in os.listdir(bpffs)
    rc_t, _, t_err = tool(bpftool, "prog", "pin", "pinned", str(src))
    assert cli("prog", "pin", "pinned", str(src)) == (rc_t, "", t_err)
    assert cli("-j", "prog", "pin", "pinned", str(src), str(bpffs / "third"))[1] == "null\n"


def test_prog_verbs_match_by_prefix_in_bpftool_order(loaded: list[Path]) -> None:
    pin = str(loaded[0])
    assert cli("prog", "s", "pinned", pin)[0] == 0       # show
    assert cli("prog", "l", "pinned", pin)[0] == 0       # list
    assert cli("prog", "h")[0] == 0                      # help
    assert cli("prog", "d", "x", "pinned", pin)[0] == 0  # dump xlated
    rc, _, err = cli("prog", "frob")
    assert rc == 255 and "unknown command 'frob'" in err


def _build(tmp: Path, name: str, src: str) -> str:
    from bpfbuild import build_bpf

    return str(build_bpf(tmp, name, src))


_META = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct s { int a; char b[4]; };
volatile const short bpf_metadata_arr[3] SEC(".rodata") = {1, -2, 3};
volatile const struct s bpf_metadata_st SEC(".rodata") = {5, "xy"};
volatile const char bpf_metadata_q[] SEC(".rodata") = "it's \\"q\\" /x";
SEC("socket")
int meta(struct __sk_buff *s) { return bpf_metadata_arr[0] + bpf_metadata_st.a + bpf_metadata_q[0]; }
char LICENSE[] SEC("license") = "GPL";
"""
# the metadata map is the first ".rodata" one: here .rodata.foo, which has none
_META_FIRST_MAP = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
volatile const int first_ro SEC(".rodata.foo") = 3;
volatile const int bpf_metadata_x SEC(".rodata") = 9;
SEC("socket")
int meta3(struct __sk_buff *s) { int a = first_ro; return a + bpf_metadata_x; }
char LICENSE[] SEC("license") = "GPL";
"""
# metadata in a section that is not called .rodata, in a map whose name has ".rodata"
_META_OTHER_SECTION = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
volatile const int bpf_metadata_in_foo SEC(".rodata.foo") = 3;
SEC("socket")
int meta4(struct __sk_buff *s) { return bpf_metadata_in_foo; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize("src", [_META, _META_FIRST_MAP, _META_OTHER_SECTION],
                         ids=["compact-values", "first-rodata-map", "other-section"])
def test_metadata_matches_bpftool(tmp_path: Path, bpffs: Path, bpftool: str, src: str) -> None:
    obj = _build(tmp_path, "meta", src)
    subprocess.run([bpftool, "prog", "load", obj, str(bpffs / "m")], check=True)
    t = tool(bpftool, "prog", "show", "pinned", str(bpffs / "m"))[1]
    o = cli("prog", "show", "pinned", str(bpffs / "m"))[1]
    assert drop_loaded_at(o) == drop_loaded_at(t)
    tj = json.loads(tool(bpftool, "-j", "prog", "show", "pinned", str(bpffs / "m"))[1])
    oj = json.loads(cli("-j", "prog", "show", "pinned", str(bpffs / "m"))[1])
    assert comparable(oj) == comparable(tj)
    if src is _META:
        assert 'arr = [1,-2,3]' in o and 'st = {"a":5,"b":"xy"}' in o and "q = \"it's \\\"q\\\" /x\"" in o


def test_pinned_paths_with_f_as_bpftool_lists_them(objs: Path, tmp_path: Path, bpftool: str) -> None:
    # a bpffs at a non-ASCII path, pins in bpftool's order (its multimap's), a symlink
    # in the bpffs that is no pin
    fs = tmp_path / "fs é"
    fs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(fs)], check=True)
    try:
        subprocess.run([bpftool, "prog", "load", str(objs / "xdp_counter.o"), str(fs / "a")], check=True)
        for extra in ("b", "0"):
            subprocess.run([bpftool, "prog", "pin", "pinned", str(fs / "a"), str(fs / extra)], check=True)
        (fs / "d").mkdir()
        subprocess.run([bpftool, "prog", "pin", "pinned", str(fs / "a"), str(fs / "d" / "x")], check=True)
        os.symlink(str(fs / "a"), str(fs / "link"))
        pid = json.loads(tool(bpftool, "-j", "prog", "show", "pinned", str(fs / "a"))[1])["id"]
        for j in ([], ["-j"]):
            t = tool(bpftool, "-f", *j, "prog", "show", "id", str(pid))[1]
            o = cli("-f", *j, "prog", "show", "id", str(pid))[1]
            if j:
                assert comparable(json.loads(o)) == comparable(json.loads(t))
            else:
                assert drop_loaded_at(o) == drop_loaded_at(t)
                assert f"pinned {fs / 'link'}" not in o and f"pinned {fs / 'a'}" in o
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)


def test_f_json_has_no_pinned_key_when_nothing_is_pinned_anywhere(objs: Path, bpffs: Path, bpftool: str) -> None:
    import shutil
    import sys

    subprocess.run([bpftool, "prog", "load", str(objs / "xdp_counter.o"), str(bpffs / "p")], check=True)
    pid = json.loads(tool(bpftool, "-j", "prog", "show", "pinned", str(bpffs / "p"))[1])["id"]
    # a holder keeps the program alive while, in a private mount namespace, every bpffs goes away
    holder = subprocess.Popen([sys.executable, "-c", "import sys,time; f=open(sys.argv[1]); time.sleep(60)",
                               str(bpffs / "p")])
    try:
        from pybpfobj.programs import Program

        with Program.from_id(pid) as prog:
            script = ("for m in $(awk '$3==\"bpf\"{print $2}' /proc/mounts); do umount -l \"$m\"; done; "
                      f"{bpftool} -f -j prog show id {pid}; echo; "
                      f"{sys.executable} -m pybpfobj -f -j prog show id {pid}")
            p = subprocess.run([shutil.which("unshare") or "unshare", "-m", "--propagation", "private", "sh", "-c",
                                script], capture_output=True, text=True, check=True, pass_fds=(prog.fd,))
        t, o = (json.loads(x) for x in p.stdout.strip().split("\n") if x.strip())
        assert "pinned" not in t and "pinned" not in o
        assert comparable(o) == comparable(t)
    finally:
        holder.kill()
        holder.wait()


def test_many_pins_of_many_programs_are_listed_in_bpftools_order(objs: Path, bpffs: Path, bpftool: str) -> None:
    # bpftool 7.1 keeps the pins in libbpf's hashmap as a multimap: each growth of the table
    # reorders chains, so a program's paths come in an order that depends on every pinned
    # program (the order above, the walk's reversed, holds only while the table is small)
    import random

    subprocess.run([bpftool, "prog", "loadall", str(objs / "progs_all.o"), str(bpffs / "all")], check=True)
    for name in ("xdp_counter", "tailcall"):
        subprocess.run([bpftool, "prog", "load", str(objs / f"{name}.o"), str(bpffs / name)], check=True)
    (bpffs / "d").mkdir()
    rng = random.Random(7)
    progs = sorted(p.name for p in (bpffs / "all").iterdir())
    for i in range(12):
        for p in rng.sample(progs, 3):
            subprocess.run([bpftool, "prog", "pin", "pinned", str(bpffs / "all" / p), str(bpffs / "d" / f"{i}{p}")],
                           check=True)
        subprocess.run([bpftool, "prog", "pin", "pinned", str(bpffs / "xdp_counter"), str(bpffs / f"x{i}")],
                       check=True)
    theirs = {p["id"]: p.get("pinned") for p in json.loads(tool(bpftool, "-f", "-j", "prog", "show")[1])}
    ours = {p["id"]: p.get("pinned") for p in json.loads(cli("-f", "-j", "prog", "show")[1])}
    assert sum(len(v or []) for v in theirs.values()) > 50  # enough pins for the table to grow
    assert ours == theirs
