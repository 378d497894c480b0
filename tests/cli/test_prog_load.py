"""``load`` / ``loadall`` CLI, differential against bpftool 7.1 on the same objects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from clirun import ours, theirs

pytestmark = [pytest.mark.kernel, pytest.mark.bpftool]

ROOT = Path(__file__).resolve().parents[2]
GOOD = ["globals", "heavy", "mapinmap", "maps_all", "progs_all", "subprogs", "tailcall", "xdp_counter"]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _error_line(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("Error: "))


def kernel_id(bpftool: str, kind: str, pin: Path) -> int:
    """The kernel's id of the program or map pinned at ``pin``."""
    return json.loads(theirs(bpftool, "-j", kind, "show", "pinned", str(pin))[1])["id"]


def prog_map_ids(bpftool: str, pin: Path) -> list[int]:
    """The ids of the maps the program pinned at ``pin`` uses, as the kernel reports them."""
    return sorted(json.loads(theirs(bpftool, "-j", "prog", "show", "pinned", str(pin))[1])["map_ids"])


def show(bpftool: str, kind: str, pin: Path) -> dict[str, Any]:
    out = subprocess.run([bpftool, "-j", kind, "show", "pinned", str(pin)], capture_output=True, text=True,
                         check=True).stdout
    d = json.loads(out)
    for k in ("id", "loaded_at", "map_ids", "btf_id", "pids", "run_time_ns", "run_cnt", "uid"):
        d.pop(k, None)
    return d


@pytest.mark.parametrize("name", GOOD)
def test_loadall_pinmaps_pins_what_bpftool_pins(objs: Path, bpffs: Path, bpftool: str, name: str) -> None:
    o = str(objs / f"{name}.o")
    rc_t, _, _ = theirs(bpftool, "prog", "loadall", o, str(bpffs / "t"), "pinmaps", str(bpffs / "tm"))
    rc_o, out_o, err_o = ours("loadall", o, str(bpffs / "o"), "pinmaps", str(bpffs / "om"))
    assert (rc_o, out_o) == (rc_t, "") == (0, ""), err_o
    assert sorted(os.listdir(bpffs / "o")) == sorted(os.listdir(bpffs / "t"))
    assert sorted(os.listdir(bpffs / "om")) == sorted(os.listdir(bpffs / "tm"))
    for p in os.listdir(bpffs / "t"):
        assert show(bpftool, "prog", bpffs / "o" / p) == show(bpftool, "prog", bpffs / "t" / p)
    for m in os.listdir(bpffs / "tm"):
        a, b = show(bpftool, "map", bpffs / "om" / m), show(bpftool, "map", bpffs / "tm" / m)
        for k in ("bytes_memlock", "frozen", "owner_prog_type", "owner_jited"):
            a.pop(k, None)
            b.pop(k, None)
        assert a == b


@pytest.mark.parametrize("name", GOOD)
def test_load_pins_the_first_program_like_bpftool(objs: Path, bpffs: Path, bpftool: str, name: str) -> None:
    o = str(objs / f"{name}.o")
    assert theirs(bpftool, "prog", "load", o, str(bpffs / "t"))[0] == 0
    assert ours("prog", "load", o, str(bpffs / "o"))[0] == 0
    assert show(bpftool, "prog", bpffs / "o") == show(bpftool, "prog", bpffs / "t")
    assert oct((bpffs / "o").stat().st_mode & 0o777) == "0o600"


def test_type_override_matches_bpftool(objs: Path, bpffs: Path, bpftool: str) -> None:
    o = str(objs / "bad_section.o")
    assert theirs(bpftool, "prog", "load", o, str(bpffs / "t"), "type", "xdp")[0] == 0
    assert ours("load", o, str(bpffs / "o"), "type", "xdp")[0] == 0
    assert show(bpftool, "prog", bpffs / "o") == show(bpftool, "prog", bpffs / "t")


@pytest.mark.parametrize("how", ["idx 0", "name stats"])
@pytest.mark.parametrize("src", ["id", "pinned"])
def test_map_reuse_shares_the_map_like_bpftool(objs: Path, bpffs: Path, bpftool: str, how: str,
                                               src: str) -> None:
    o = str(objs / "xdp_counter.o")
    assert ours("loadall", o, str(bpffs / "base"), "pinmaps", str(bpffs / "m"))[0] == 0
    base = kernel_id(bpftool, "map", bpffs / "m" / "stats")
    base_rodata = kernel_id(bpftool, "map", bpffs / "m" / "xdp_coun_rodata")
    ref = str(base) if src == "id" else str(bpffs / "m" / "stats")
    words = ["map", *how.split(), src, ref]  # map idx 0 / map name stats: the object's 'stats'
    assert theirs(bpftool, "prog", "loadall", o, str(bpffs / "t"), *words, "pinmaps", str(bpffs / "tm"))[0] == 0
    rc, _, err = ours("loadall", o, str(bpffs / "o"), *words, "pinmaps", str(bpffs / "om"))
    assert rc == 0, err
    for p, d in (("t", "tm"), ("o", "om")):
        # the very map behind the base program: pinned again under pinmaps, used by the new program;
        # the .rodata map is the new object's own
        assert kernel_id(bpftool, "map", bpffs / d / "stats") == base, d
        rodata = kernel_id(bpftool, "map", bpffs / d / "xdp_coun_rodata")
        assert rodata != base_rodata, d
        assert prog_map_ids(bpftool, bpffs / p / "xdp_count") == sorted([base, rodata]), p


def test_incompatible_reuse_is_refused_and_force_overrides(objs: Path, bpffs: Path, bpftool: str) -> None:
    o = str(objs / "xdp_counter.o")
    assert ours("loadall", str(objs / "bad_verifier.o").replace("bad_verifier", "pinbyname"), str(bpffs / "x"),
                "pinroot", str(bpffs / "root"))[0] == 0
    before = tree(bpffs)
    rc, _, err = ours("load", o, str(bpffs / "o"), "map", "name", "stats", "pinned",
                      str(bpffs / "root" / "pinned_hash"))
    assert rc == 255 and "incompatible" in err and "type percpu_array != hash" in err
    assert tree(bpffs) == before
    # force: a 'stats' with 4 entries instead of 1 (different, but one the verifier takes)
    wide = bpffs / "wide"
    subprocess.run([bpftool, "map", "create", str(wide), "type", "percpu_array", "key", "4", "value", "16",
                    "entries", "4", "name", "stats"], check=True)
    wide_id = kernel_id(bpftool, "map", wide)
    words = ["map", "name", "stats", "pinned", str(wide)]
    rc, _, err = ours("load", o, str(bpffs / "o"), *words)
    assert rc == 255 and "max_entries 1 != 4; use force to reuse it anyway" in err
    assert not (bpffs / "o").exists()
    rc, out, err = ours("load", o, str(bpffs / "o"), *words, "force")
    assert (rc, out) == (0, ""), err
    assert wide_id in prog_map_ids(bpftool, bpffs / "o")
    assert theirs(bpftool, "prog", "load", o, str(bpffs / "t"), *words)[0] == 0  # bpftool checks nothing
    assert wide_id in prog_map_ids(bpftool, bpffs / "t")


# Each case: its name, the words after 'load'/'loadall' ({d}: the bpffs; the first is an object of
# bpf_progs/build), and our 'Error:' line: SAME for bpftool's line word for word, else our own text
# where we deliberately say more than bpftool (one text for both commands, or a (load, loadall) pair).
SAME = None
FAILING: list[tuple[str, list[str], str | tuple[str, str] | None]] = [
    # bpftool: "failed to load object file" (after the verifier's log, as ours)
    ("verifier", ["bad_verifier.o", "{d}/v"],
     ("Error: failed to load object file: the verifier rejected program 'bad_deref' at insn 7 "
      "(bad_verifier.bpf.c:29: *value += 1; /* BAD LINE: no NULL check */): "
      "R0 invalid mem access 'map_value_or_null'")),
    # bpftool: libbpf's list of section names, no 'Error:' line at all
    ("unknown_section", ["bad_section.o", "{d}/s"],
     ("Error: program 'unknown_sec_prog': failed to guess program type from ELF section 'foo/bar'; "
      "give one with type TYPE (set_prog_type)")),
    # bpftool 7.1 loads, then "failed to pin program xdp" / "failed to pin all programs"; upstream
    # bpftool refuses up front, in words we take for load
    ("existing_path", ["xdp_counter.o", "{d}/exists"],
     ("Error: can't pin BPF object: path '{d}/exists' already exists",
      "Error: can't pin BPF objects in '{d}/exists': it exists and is not a directory")),
    # bpftool loads, then the kernel refuses the name (EPERM): "failed to pin program xdp" / "... all programs"
    ("dotted_name", ["xdp_counter.o", "{d}/a.b"],
     ("Error: invalid program pin name 'a.b' in '{d}/a.b': names on a BPF file system cannot contain '.'",
      "Error: invalid directory name 'a.b' in '{d}/a.b': names on a BPF file system cannot contain '.'")),
    ("unknown_map_name", ["xdp_counter.o", "{d}/x", "map", "name", "nosuch", "pinned", "{d}/m/stats"], SAME),
    ("unused_idx", ["xdp_counter.o", "{d}/x", "map", "idx", "7", "pinned", "{d}/m/stats"], SAME),
    ("idx_twice", ["xdp_counter.o", "{d}/x", "map", "idx", "0", "pinned", "{d}/m/stats", "map", "idx", "0",
                   "pinned", "{d}/m/stats"], SAME),
    # bpftool: "failed to open object file" (after libbpf's line, which ours quotes)
    ("missing_file", ["nosuch.o", "{d}/x"],
     ("Error: failed to open object file '{o}/nosuch.o': elf: failed to open {o}/nosuch.o: "
      "No such file or directory")),
    # bpftool: "failed to load object file" (the kernel refuses the map)
    ("unsized", ["needs_sizing.o", "{d}/x"],
     ("Error: map 'unsized_rb' of object 'needs_sizing' has no max_entries: size it before load "
      "(set_max_entries, or 'size unsized_rb N' on the command line)")),
]


@pytest.mark.parametrize("case,argv,expected", FAILING, ids=[c for c, _, _ in FAILING])
def test_failing_cases_match_bpftool_outcome_and_leave_nothing(objs: Path, bpffs: Path, bpftool: str,
                                                                case: str, argv: list[str],
                                                                expected: str | tuple[str, str] | None) -> None:
    assert ours("loadall", str(objs / "xdp_counter.o"), str(bpffs / "base"), "pinmaps", str(bpffs / "m"))[0] == 0
    (bpffs / "base" / "xdp_count").rename(bpffs / "exists")
    words = [w.format(d=bpffs) for w in argv]
    words[0] = str(objs / words[0])
    before = tree(bpffs)
    fds_before = set(os.listdir("/proc/self/fd"))
    for cmd in ("load", "loadall"):
        rc_t, _, err_t = theirs(bpftool, "prog", cmd, *words)
        for p in set(tree(bpffs)) - before:  # bpftool may leave things behind; we must not
            full = bpffs / p
            if full.is_file():
                full.unlink()
        for p in sorted(set(tree(bpffs)) - before, reverse=True):
            (bpffs / p).rmdir()
        rc_o, _, err_o = ours(cmd, *words)
        assert rc_o == rc_t == 255, (err_t, err_o)
        last = err_o.rstrip().splitlines()[-1]
        if expected is SAME:
            assert last == _error_line(err_t), cmd
        else:
            text = expected if isinstance(expected, str) else expected[cmd == "loadall"]
            assert last == text.format(d=bpffs, o=objs), cmd
        assert tree(bpffs) == before, case
        rc_j, out_j, _ = ours("-j", cmd, *words)
        assert rc_j == 255 and json.loads(out_j.splitlines()[-1]) == {"error": last.removeprefix("Error: ")}
        assert set(os.listdir("/proc/self/fd")) == fds_before, case  # no fd left open either


def test_same_error_texts_as_bpftool(objs: Path, bpffs: Path, bpftool: str) -> None:
    o = str(objs / "xdp_counter.o")
    cases = [
        [o, str(bpffs / "x"), "map", "name", "nosuch", "id", "99999999"],
        [o, str(bpffs / "x"), "map", "idx", "x", "id", "3"],
        [o, str(bpffs / "x"), "bogus"],
        [o, str(bpffs / "x"), "type", "xdp", "type", "xdp"],
        [o, str(bpffs / "x"), "pinmaps"],
        [o, str(bpffs / "x"), "dev", "nosuchdev0"],
        [o],
    ]
    for words in cases:
        _, _, err_t = theirs(bpftool, "prog", "load", *words)
        _, _, err_o = ours("prog", "load", *words)
        assert _error_line(err_o) == _error_line(err_t)


@pytest.mark.parametrize("cmd", ["load", "loadall"])
def test_nomount_refuses_a_path_outside_bpffs(objs: Path, tmp_path: Path, bpftool: str, cmd: str) -> None:
    o = str(objs / "xdp_counter.o")
    rc_t, _, err_t = theirs(bpftool, "-n", "prog", cmd, o, str(tmp_path / "x"))
    rc_o, _, err_o = ours(cmd, o, str(tmp_path / "x"), "-n")
    assert rc_o == rc_t == 255
    assert err_o.strip() == _error_line(err_t)
    assert list(tmp_path.iterdir()) == []


def test_mounts_a_bpffs_when_the_parent_is_not_one(objs: Path, tmp_path: Path, need_root: None) -> None:
    d = tmp_path / "pins"
    d.mkdir()
    try:
        rc, _, err = ours("loadall", str(objs / "xdp_counter.o"), str(d / "progs"))
        assert rc == 0, err
        assert (d / "progs" / "xdp_count").exists()
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
        subprocess.run(["umount", "-l", str(d)], check=False)


def test_extra_keywords_size_var_and_pinroot(objs: Path, bpffs: Path, bpftool: str) -> None:
    rc, _, err = ours("loadall", str(objs / "globals.o"), str(bpffs / "g"), "var", "verdict", "1",
                      "var", "greeting", "yo", "pinmaps", str(bpffs / "gm"))
    assert rc == 0, err
    out = subprocess.run([bpftool, "-j", "map", "lookup", "pinned", str(bpffs / "gm" / "globals_rodata"),
                          "key", "0", "0", "0", "0"], capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["value"][:4] == ["0x01", "0x00", "0x00", "0x00"]
    rc, _, err = ours("loadall", str(objs / "xdp_counter.o"), str(bpffs / "s"), "size", "stats", "4",
                      "pinmaps", str(bpffs / "sm"))
    assert rc == 0, err
    assert show(bpftool, "map", bpffs / "sm" / "stats")["max_entries"] == 4
    rc, _, err = ours("loadall", str(objs / "pinbyname.o"), str(bpffs / "p"), "pinroot", str(bpffs / "r"))
    assert rc == 0, err
    assert (bpffs / "r" / "pinned_hash").exists()


def test_object_bpftool_cannot_load_loads_with_sizes(objs: Path, bpffs: Path, bpftool: str) -> None:
    o = str(objs / "needs_sizing.o")
    rc_t, _, err_t = theirs(bpftool, "prog", "loadall", o, str(bpffs / "t"), "pinmaps", str(bpffs / "tm"))
    assert rc_t == 255 and "unsized_rb" in err_t
    rc, out, err = ours("loadall", o, str(bpffs / "o"), "size", "unsized_rb", "8192", "size", "unsized_stacks",
                        "64", "value_size", "unsized_stacks", "256", "pinmaps", str(bpffs / "om"))
    assert (rc, out) == (0, ""), err
    assert sorted(os.listdir(bpffs / "om")) == ["unsized_rb", "unsized_stacks"]
    rb, st = show(bpftool, "map", bpffs / "om" / "unsized_rb"), show(bpftool, "map", bpffs / "om" / "unsized_stacks")
    assert (rb["type"], rb["max_entries"]) == ("ringbuf", 8192)
    assert (st["type"], st["max_entries"], st["bytes_value"]) == ("stack_trace", 64, 256)
    assert show(bpftool, "prog", bpffs / "o" / "kprobe_sized")["type"] == "kprobe"


def test_help_lists_the_extra_keywords() -> None:
    rc, out, _ = ours("load", "help")
    assert rc == 0
    for kw in ("size NAME N", "value_size NAME N", "var NAME VALUE", "force", "pinroot DIR"):
        assert kw in out


def test_real_process_loadall_and_error(objs: Path, bpffs: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "pybpfobj", "loadall", str(objs / "tailcall.o"), str(bpffs / "t")],
                       check=False, capture_output=True, text=True, env=env)
    assert p.returncode == 0 and p.stdout == "", p.stderr
    assert sorted(os.listdir(bpffs / "t")) == ["bpf_func_debug", "bpf_func_process", "main_func"]
    p = subprocess.run([sys.executable, "-m", "pybpfobj", "load", str(objs / "bad_verifier.o"), str(bpffs / "v")],
                       check=False, capture_output=True, text=True, env=env)
    assert p.returncode == 255
    assert "-- BEGIN PROG LOAD LOG --" in p.stderr and "Traceback" not in p.stderr
    assert "bad_verifier.bpf.c:29" in p.stderr


def test_debug_shows_every_programs_verifier_log_like_bpftool(objs: Path, bpffs: Path, bpftool: str) -> None:
    o = str(objs / "tailcall.o")
    rc_t, _, err_t = theirs(bpftool, "-d", "prog", "loadall", o, str(bpffs / "t"))
    rc_o, _, err_o = ours("-d", "loadall", o, str(bpffs / "o"))
    assert rc_o == rc_t == 0, err_o

    def logs(err: str) -> list[str]:
        return sorted(line.split("'")[1] for line in err.splitlines() if "-- BEGIN PROG LOAD LOG --" in line)

    assert logs(err_o) == logs(err_t) == ["bpf_func_debug", "bpf_func_process", "main_func"]
    assert err_o.count("-- END PROG LOAD LOG --") == 3
    assert "libbpf: loading " in err_o  # libbpf's debug lines too
    # a rejection with -d: the log once (libbpf's), then the error with the source line
    rc, _, err = ours("-d", "load", str(objs / "bad_verifier.o"), str(bpffs / "v"))
    assert rc == 255 and err.count("'bad_deref': -- BEGIN PROG LOAD LOG --") == 1
    assert "bad_verifier.bpf.c:29" in err.rstrip().splitlines()[-1]


def _in_private_sysfs_bpf(cmd: list[str]) -> tuple[int, list[str]]:
    """Run ``cmd`` in a mount namespace where /sys/fs/bpf is a fresh bpffs; its rc and what it pinned there."""
    script = ('mount -t bpf bpf /sys/fs/bpf || exit 99; "$@"; rc=$?; '
              'cd /sys/fs/bpf && find . -mindepth 1 | sort; echo "rc=$rc"')
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *cmd],
                       check=False, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    lines = p.stdout.split()
    assert lines and lines[-1].startswith("rc="), p.stderr
    return int(lines[-1][3:]), [x for x in lines[:-1] if not x.endswith(".debug")]


def test_pin_by_name_under_sys_fs_bpf_pins_what_bpftool_pins(objs: Path, bpftool: str, need_root: None) -> None:
    o = str(objs / "pinbyname.o")
    ours_cmd = [sys.executable, "-m", "pybpfobj"]
    # pinmaps into the pin root: the by-name map is pinned once, the others next to it
    rc_t, t = _in_private_sysfs_bpf([bpftool, "prog", "loadall", o, "/sys/fs/bpf/p", "pinmaps", "/sys/fs/bpf"])
    rc_o, u = _in_private_sysfs_bpf([*ours_cmd, "loadall", o, "/sys/fs/bpf/p", "pinmaps", "/sys/fs/bpf"])
    assert rc_o == rc_t == 0
    assert u == t == ["./p", "./p/xdp_pinned", "./pinned_hash", "./unpinned"]
    # pinmaps elsewhere: bpftool fails ("already has pin path") and leaves pins behind; we pin the
    # other maps there and keep the by-name pin where libbpf put it
    rc_t, t = _in_private_sysfs_bpf([bpftool, "prog", "loadall", o, "/sys/fs/bpf/p", "pinmaps", "/sys/fs/bpf/m"])
    rc_o, u = _in_private_sysfs_bpf([*ours_cmd, "loadall", o, "/sys/fs/bpf/p", "pinmaps", "/sys/fs/bpf/m"])
    assert rc_t == 255 and "./pinned_hash" in t
    assert rc_o == 0 and u == ["./m", "./m/unpinned", "./p", "./p/xdp_pinned", "./pinned_hash"]


def test_sections_newer_than_libbpf_load_where_bpftool_cannot(objs: Path, bpffs: Path, bpftool: str) -> None:
    o = str(objs / "newsec.o")
    rc_t, _, _ = theirs(bpftool, "prog", "loadall", o, str(bpffs / "t"))
    rc_o, _, err = ours("loadall", o, str(bpffs / "o"))
    assert rc_t == 255 and rc_o == 0, err
    types = {p: show(bpftool, "prog", bpffs / "o" / p)["type"] for p in os.listdir(bpffs / "o")}
    assert types["tcx_in"] == "sched_cls" and types["nf_accept"] in ("netfilter", 32)  # 7.1 lacks the name


def test_failed_map_pinning_takes_back_program_and_by_name_pins(objs: Path, bpffs: Path) -> None:
    o = str(objs / "pinbyname.o")
    assert ours("loadall", str(objs / "xdp_counter.o"), str(bpffs / "x"), "pinmaps", str(bpffs / "m"))[0] == 0
    (bpffs / "m" / "stats").rename(bpffs / "m" / "unpinned")  # pinbyname's map name is taken
    before = tree(bpffs)
    rc, _, err = ours("loadall", o, str(bpffs / "p"), "pinmaps", str(bpffs / "m"), "pinroot", str(bpffs / "r"))
    assert rc == 255 and err.startswith("Error: failed to pin all maps: ") and "already exists" in err
    assert tree(bpffs) == before  # no program dir, no by-name pin, no pin root


_HEAVY_IMPORTS = ("dataclasses", "inspect", "typing", "logging", "re", "elftools", "jinja2",
                  "pybpfobj.kernel.info", "pybpfobj.spec")


def test_loadall_process_imports_nothing_heavy(objs: Path, bpffs: Path) -> None:
    # The whole-process benchmark's budget (40 ms over bpftool, interpreter start-up
    # included) leaves no room for these: none is needed to load and pin.
    # (what the interpreter's own start-up imported, site's .pth files included, is not ours)
    code = ("import sys; before = set(sys.modules); from pybpfobj.cli.main import entry\n"
            "sys.argv = ['pybpfobj', *sys.argv[1:]]\n"
            "try:\n    entry()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print(' '.join(sorted(set(sys.modules) - before)))")
    p = subprocess.run([sys.executable, "-c", code, "loadall", str(objs / "tailcall.o"), str(bpffs / "p"),
                        "pinmaps", str(bpffs / "m")], capture_output=True, text=True, check=False,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    assert os.listdir(bpffs / "p") and os.listdir(bpffs / "m")
    loaded = set(p.stdout.split())
    assert "pybpfobj.loader" in loaded
    assert [m for m in _HEAVY_IMPORTS if m in loaded] == []
