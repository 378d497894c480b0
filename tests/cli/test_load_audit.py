"""``load`` / ``loadall`` CLI: what the kernel sees (no load before a refusal, ``.data``
values, pin modes), ``-m`` and a dotted ``pinmaps`` directory, against bpftool 7.1."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bpfbuild import build_bpf
from clirun import ours, theirs

pytestmark = [pytest.mark.kernel, pytest.mark.bpftool]


def _build(tmp: Path, name: str, src: str) -> str:
    return str(build_bpf(tmp, name, src))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _mode(p: Path) -> str:
    return oct(stat.S_IMODE(p.stat().st_mode))


# Counts the bpf(2) commands this test process enters, by command (the kernel's tracepoint on
# bpf()'s entry).  The process is matched by its pid in its own pid namespace, so the count is
# this process's alone, whatever else loads programs on the machine meanwhile (which makes a
# "program ids advanced by one" check unreliable on a shared kernel).
_BPF_CMDS_SRC = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 64);
    __type(key, __u32);
    __type(value, __u64);
} cmds SEC(".maps");

const volatile __u64 ns_dev = 0;
const volatile __u64 ns_ino = 0;
const volatile __u32 tgid = 0;

/* /sys/kernel/tracing/events/syscalls/sys_enter_bpf/format */
struct sys_enter_bpf { __u64 common; __s32 nr; __u32 pad; __u64 cmd; __u64 uattr; __u64 size; };

SEC("tracepoint/syscalls/sys_enter_bpf")
int count_bpf_cmds(struct sys_enter_bpf *ctx)
{
    struct bpf_pidns_info ns;
    __u32 k = ctx->cmd;
    __u64 *n;

    if (bpf_get_ns_current_pid_tgid(ns_dev, ns_ino, &ns, sizeof(ns)) || ns.tgid != tgid)
        return 0;
    n = bpf_map_lookup_elem(&cmds, &k);
    if (n)
        __sync_fetch_and_add(n, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

# the bpf(2) commands that put something in the kernel
_CREATING = {"BPF_MAP_CREATE": 0, "BPF_PROG_LOAD": 5, "BPF_BTF_LOAD": 18}
Counter = Callable[..., tuple[int, dict[str, int]]]


@pytest.fixture
def bpf_cmds(tmp_path: Path) -> Iterator[Counter]:
    """``bpf_cmds(*argv)``: our CLI's exit code for ``argv`` and how many maps, programs and BTF
    objects it asked the kernel for."""
    from pybpfobj import BpfObject, Map

    o = _build(tmp_path, "bpf_cmds", _BPF_CMDS_SRC)
    ns = os.stat("/proc/self/ns/pid")
    with BpfObject(o) as obj:
        obj.set_var("ns_dev", ns.st_dev)
        obj.set_var("ns_ino", ns.st_ino)
        obj.set_var("tgid", os.getpid())
        obj.load()
        counts = Map.from_fd(obj.map_fd("cmds"), owned=False)
        link = obj.attach("count_bpf_cmds")
        try:
            def run(*argv: str) -> tuple[int, dict[str, int]]:
                before = {name: counts.lookup(cmd) for name, cmd in _CREATING.items()}
                rc = ours(*argv)[0]
                return rc, {name: counts.lookup(cmd) - before[name] for name, cmd in _CREATING.items()}

            yield run
        finally:
            link.close()


def test_existing_path_and_dotted_names_are_refused_before_anything_reaches_the_kernel(
        objs: Path, bpffs: Path, bpf_cmds: Counter) -> None:
    o = str(objs / "xdp_counter.o")
    nothing = dict.fromkeys(_CREATING, 0)
    # the probe sees what a load asks for: a good one, and one the verifier rejects
    rc, ok = bpf_cmds("load", o, str(bpffs / "exists"))
    assert rc == 0 and min(ok.values()) > 0, ok
    rc, rejected = bpf_cmds("load", str(objs / "bad_verifier.o"), str(bpffs / "v"))
    assert rc == 255 and rejected["BPF_PROG_LOAD"] > 0, rejected
    for argv in (["load", o, str(bpffs / "exists")],  # an existing PATH
                 ["loadall", o, str(bpffs / "exists")],  # ... that is no directory
                 ["load", o, str(bpffs / "a.b")],  # a dotted PATH
                 ["loadall", o, str(bpffs / "a.b")],
                 ["load", o, str(bpffs / "p"), "pinmaps", str(bpffs / "m.x")],  # a dotted pinmaps
                 ["loadall", o, str(bpffs / "p"), "pinmaps", str(bpffs / "m.x")]):
        before = _tree(bpffs)
        assert bpf_cmds(*argv) == (255, nothing), argv
        assert _tree(bpffs) == before, argv


def test_var_sets_data_variables_the_kernel_map_holds(objs: Path, bpffs: Path, bpftool: str) -> None:
    rc, out, err = ours("loadall", str(objs / "globals.o"), str(bpffs / "g"), "var", "greeting", "yo",
                        "var", "last_len", "-7", "pinmaps", str(bpffs / "gm"))
    assert (rc, out) == (0, ""), err
    dump = json.loads(theirs(bpftool, "-j", "map", "dump", "pinned", str(bpffs / "gm" / "globals_data"))[1])
    assert [e["formatted"]["value"] for e in dump] == [
        {".data": [{"packets_seen": 5}, {"last_len": -7}, {"greeting": "yo"}, {"ports": [22, 80, 443, 8080]}]}]
    # the raw bytes: packets_seen (u64), last_len (s32, -7), greeting (char[8], NUL-padded), ports
    value = bytes(int(b, 16) for b in dump[0]["value"])
    assert value[8:12] == (-7).to_bytes(4, "little", signed=True)
    assert value[12:20] == b"yo" + bytes(6)


def test_var_takes_json_for_arrays_and_structs_keeping_what_it_leaves_out(
        objs: Path, bpffs: Path, bpftool: str) -> None:
    rc, out, err = ours("loadall", str(objs / "globals.o"), str(bpffs / "g"), "pinmaps", str(bpffs / "gm"),
                        "var", "ports", "[1,2]", "var", "cfg", '{"port":443,"label":"xy"}',
                        "var", "seen_cfg", '{"port":9}')
    assert (rc, out) == (0, ""), err

    def formatted(m: str) -> list[object]:
        dump = json.loads(theirs(bpftool, "-j", "map", "dump", "pinned", str(bpffs / "gm" / m))[1])
        return next(iter(dump[0]["formatted"]["value"].values()))  # type: ignore[no-any-return]

    assert {"ports": [1, 2, 443, 8080]} in formatted("globals_data")  # the rest as compiled
    assert {"cfg": {"mode": 3, "port": 443, "enabled": 1, "label": "xy"}} in formatted("globals_rodata")
    assert {"seen_cfg": {"mode": 0, "port": 9, "enabled": 0, "label": ""}} in formatted("globals_bss")


@pytest.mark.parametrize("words,error", [
    (["ports", "[1,2,3,4,5]"], "Error: variable 'ports' (__u16[4]): 5 elements do not fit [4]"),
    (["cfg", '{"nope":1}'], ("Error: variable 'cfg' (const volatile struct config): no member 'nope' "
                            "(members: mode, port, enabled, label)")),
    (["cfg", '{"port":70000}'], ("Error: variable 'cfg' (const volatile struct config): cfg.port: 70000 "
                                "does not fit an unsigned 16-bit integer")),
    (["cfg", '{"label":"toolong"}'], ("Error: variable 'cfg' (const volatile struct config): cfg.label: "
                                     "a string of 7 bytes does not fit char[5] with its NUL")),
    (["ports", '{"a":1}'], "Error: variable 'ports' (__u16[4]): an array needs a list, got dict"),
    (["cfg", "{bad"], ("Error: var cfg: invalid JSON value '{bad': Expecting property name enclosed in double "
                      "quotes: line 1 column 2 (char 1)")),
    (["cfg", "[" * 5000], "Error: var cfg: invalid JSON value '" + "[" * 5000 + "': nested too deeply"),
], ids=["too-many", "no-member", "range", "long-string", "shape", "json", "deep"])
def test_a_json_var_that_does_not_fit_is_refused_before_the_kernel(objs: Path, bpffs: Path, words: list[str],
                                                                   error: str) -> None:
    rc, _out, err = ours("loadall", str(objs / "globals.o"), str(bpffs / "g"), "var", *words)
    assert rc == 255 and err.strip().splitlines()[-1] == error
    assert _tree(bpffs) == {"maps.debug", "progs.debug"}


@pytest.mark.parametrize("cmd", ["load", "loadall"])
def test_pin_modes_are_bpftools(objs: Path, bpffs: Path, bpftool: str, cmd: str) -> None:
    o = str(objs / "globals.o")
    assert theirs(bpftool, "prog", cmd, o, str(bpffs / "t"), "pinmaps", str(bpffs / "tm"))[0] == 0
    rc, _, err = ours(cmd, o, str(bpffs / "o"), "pinmaps", str(bpffs / "om"))
    assert rc == 0, err
    maps = sorted(os.listdir(bpffs / "om"))
    assert maps == sorted(os.listdir(bpffs / "tm")) and len(maps) == 4
    if cmd == "load":
        progs = {"": "0o600"}  # the program pin is PATH itself
    else:
        progs = {"": "0o700", "xdp_globals": "0o600"}  # PATH is a directory of program pins
    for who, m in (("t", "tm"), ("o", "om")):
        assert {p: _mode(bpffs / who / p) for p in progs} == progs, who
        assert _mode(bpffs / m) == "0o700", who
        assert {p: _mode(bpffs / m / p) for p in maps} == dict.fromkeys(maps, "0o600"), who


_UNKNOWN_FIELD_SRC = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
    __uint(no_such_field, 7);   /* no libbpf knows it: refused unless -m */
} odd SEC(".maps");

SEC("xdp")
int xdp_odd(struct xdp_md *ctx)
{
    __u32 k = 0;
    __u64 *v = bpf_map_lookup_elem(&odd, &k);

    if (v)
        __sync_fetch_and_add(v, 1);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize("cmd", ["load", "loadall"])
def test_mapcompat_tolerates_an_unknown_map_field_like_bpftool(objs: Path, bpffs: Path, bpftool: str,
                                                               tmp_path: Path, cmd: str) -> None:
    o = _build(tmp_path, "unknown_field", _UNKNOWN_FIELD_SRC)
    rc_t, _, err_t = theirs(bpftool, "prog", cmd, o, str(bpffs / "t"))
    rc_o, _, err_o = ours(cmd, o, str(bpffs / "o"))
    assert rc_o == rc_t == 255, (err_t, err_o)
    assert "unknown field 'no_such_field'" in err_t
    line = err_o.rstrip().splitlines()[-1]
    assert line.startswith(f"Error: failed to open object file '{o}': ") and "'no_such_field'" in line
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug"]
    rc_t, _, err_t = theirs(bpftool, "-m", "prog", cmd, o, str(bpffs / "t"))
    rc_o, out, err_o = ours("-m", cmd, o, str(bpffs / "o"))
    assert (rc_o, out) == (rc_t, "") == (0, ""), (err_t, err_o)
    pin = Path("xdp_odd") if cmd == "loadall" else Path()
    for who in ("t", "o"):
        info = json.loads(theirs(bpftool, "-j", "prog", "show", "pinned", str(bpffs / who / pin))[1])
        assert (info["type"], info["name"], len(info["map_ids"])) == ("xdp", "xdp_odd", 1), who


@pytest.mark.parametrize("cmd", ["load", "loadall"])
def test_a_dotted_pinmaps_directory_is_refused_where_bpftool_renames_it(objs: Path, bpffs: Path, bpftool: str,
                                                                         cmd: str) -> None:
    # Deliberate deviation: bpftool 7.1's libbpf turns every '.' of a map's pin path into '_'
    # (the whole path, directories too), so "m.x" silently becomes "m_x".  We refuse the name
    # before loading anything, as for PATH: bpffs names cannot contain '.'.
    o = str(objs / "xdp_counter.o")
    rc_t, out_t, err_t = theirs(bpftool, "prog", cmd, o, str(bpffs / "t"), "pinmaps", str(bpffs / "m.x"))
    assert (rc_t, out_t) == (0, ""), err_t
    assert sorted(os.listdir(bpffs / "m_x")) == ["stats", "xdp_coun_rodata"]
    before = _tree(bpffs)
    rc, out, err = ours(cmd, o, str(bpffs / "o"), "pinmaps", str(bpffs / "m.y"))
    assert (rc, out) == (255, "")
    assert err == (f"Error: invalid directory name 'm.y' in '{bpffs}/m.y': "
                   f"names on a BPF file system cannot contain '.'\n")
    assert _tree(bpffs) == before  # no program pin, no m_y
    rc, out, _ = ours("-j", cmd, o, str(bpffs / "o"), "pinmaps", str(bpffs / "m.y"))
    assert rc == 255 and json.loads(out) == {
        "error": f"invalid directory name 'm.y' in '{bpffs}/m.y': names on a BPF file system cannot contain '.'"}


@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("words", [["bad_section.o", "s"], ["xdp_counter.o", "t", "type", "bogus"]],
                         ids=["unknown-section", "unknown-type"])
def test_libbpf_explains_a_type_it_cannot_guess_as_under_bpftool(objs: Path, bpffs: Path, bpftool: str,
                                                                 words: list[str], json_mode: bool) -> None:
    # bpftool asks libbpf again with every level printed: its "failed to guess program type"
    # and its list of known sections (debug lines) reach stderr; we print them too, then our Error
    argv = [str(objs / words[0]), str(bpffs / words[1]), *words[2:]]
    j = ["-j"] if json_mode else []
    t = theirs(bpftool, *j, "prog", "load", *argv)
    o = ours(*j, "prog", "load", *argv)
    libbpf_lines = [[line for line in r[2].splitlines() if line.startswith("libbpf: ")] for r in (t, o)]
    assert o[0] == t[0] == 255
    assert len(libbpf_lines[0]) == 2 and libbpf_lines[1] == libbpf_lines[0]
    assert "failed to guess program type" in libbpf_lines[0][0]
    assert _tree(bpffs) == {"maps.debug", "progs.debug"}


def test_a_char_array_takes_a_string_that_only_looks_like_json(objs: Path, bpffs: Path, bpftool: str) -> None:
    rc, out, err = ours("loadall", str(objs / "globals.o"), str(bpffs / "g"), "pinmaps", str(bpffs / "gm"),
                        "var", "greeting", "[x]")
    assert (rc, out) == (0, ""), err
    dump = json.loads(theirs(bpftool, "-j", "map", "dump", "pinned", str(bpffs / "gm" / "globals_data"))[1])
    assert {"greeting": "[x]"} in next(iter(dump[0]["formatted"]["value"].values()))
