"""A corpus of malformed command lines: each fails with ``Error: ...`` and the
exit code bpftool gives (compared with bpftool itself where bpftool has the
command), prints no traceback and leaves no stray pin, directory or fd.

The commands run in process (``pybpfobj.cli.main.run``), which is what the
console script runs; bpftool runs as a subprocess for the comparison.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from pybpfobj.cli.common import Context
from pybpfobj.cli.main import run
from pybpfobj.loader import BpfObject
from reliability.common import open_fds, tree


class Case(NamedTuple):
    argv: str          # with {fs} (private bpffs), {tmp} (plain dir), {objs} (built objects)
    bpftool: bool      # bpftool has this command: compare exit codes with it
    expect: str        # "error": Error: on stderr; "notfound": bpftool's "Not found" on stdout (exit 254);
                       # "stdout": bpftool's "Error: empty map" quirk on stdout
    json: bool         # with -j the error is a JSON object on stdout
    known: str | None  # a known divergence (xfail) and whose file it is in


def _c(argv: str, bpftool: bool = True, expect: str = "error", json: bool = True,
       known: str | None = None) -> Case:
    return Case(argv, bpftool, expect, json, known)


# Known divergences from bpftool or leaks, reported to the owners of the files named.


M = "{fs}/m"  # pinned maps of maps_all.o
P = "{fs}/p"  # pinned programs of maps_all.o

CORPUS: list[Case] = [
    # -- bad bytes and wrong sizes -------------------------------------------------
    _c(f"map update pinned {M}/plain_array key 1 2 3 value 0 0 0 0 0 0 0 0"),
    _c(f"map update pinned {M}/plain_array key 1 0 0 0 0 value 0 0 0 0 0 0 0 0"),
    _c(f"map update pinned {M}/plain_array key 1 0 0 0 value 0 0 0"),
    _c(f"map update pinned {M}/plain_array key 1 0 0 0 value 0 0 0 0 0 0 0 0 0"),
    _c(f"map update pinned {M}/plain_array key 1 0 0 zz value 0 0 0 0 0 0 0 0"),
    _c(f"map update pinned {M}/plain_array key hex 1 0 0 zz value 0 0 0 0 0 0 0 0"),
    # bpftool 7.1 silently truncates bytes > 255; we refuse them
    _c(f"map update pinned {M}/plain_array key 256 0 0 0 value 0 0 0 0 0 0 0 0", bpftool=False),
    _c(f"map update pinned {M}/plain_array key -1 0 0 0 value 0 0 0 0 0 0 0 0"),
    _c(f"map update pinned {M}/plain_array key 0x100 0 0 0 value 0 0 0 0 0 0 0 0", bpftool=False),
    _c(f"map update pinned {M}/plain_array key 09 0 0 0 value 0 0 0 0 0 0 0 0"),
    _c(f"map update pinned {M}/plain_array key 1 0 0 0 value hex gg 0 0 0 0 0 0 0"),
    _c(f"map update pinned {M}/plain_array key 1 0 0 0"),
    _c(f"map update pinned {M}/plain_array value 0 0 0 0 0 0 0 0"),
    _c(f"map update pinned {M}/plain_array key 1 0 0 0 value 0 0 0 0 0 0 0 0 bogus"),
    _c(f"map update pinned {M}/plain_array key"),
    _c(f"map update pinned {M}/plain_array key 1 0 0 0 value"),
    _c(f"map update pinned {M}/plain_array key 7 0 0 0 value 0 0 0 0 0 0 0 0"),  # index out of range
    _c(f"map update pinned {M}/plain_array key 1 0 0 0 value 0 0 0 0 0 0 0 0 noexist"),
    _c(f"map lookup pinned {M}/plain_array key 1 0"),
    _c(f"map lookup pinned {M}/plain_array key 9 0 0 0", expect="notfound"),
    _c(f"map lookup pinned {M}/plain_array key x y z w"),
    _c(f"map lookup pinned {M}/plain_array"),
    _c(f"map delete pinned {M}/plain_array key 1 0 0 0"),
    _c(f"map delete pinned {M}/plain_array"),
    _c(f"map delete pinned {M}/flows key 1 2 3"),
    _c(f"map lookup pinned {M}/flows key " + " ".join(["0"] * 16), expect="notfound"),
    _c(f"map delete pinned {M}/flows key " + " ".join(["0"] * 16)),
    _c(f"map update pinned {M}/flows key " + " ".join(["0"] * 16) + " value 1 2"),
    _c(f"map update pinned {M}/flows key " + " ".join(["0"] * 17) + " value " + " ".join(["0"] * 96)),
    _c(f"map getnext pinned {M}/plain_array key 1 2"),
    _c(f"map update pinned {M}/routes key 1 0 0 0 value 1 0 0 0"),
    _c(f"map update pinned {M}/pcpu_array key 0 0 0 0 value 1 2 3"),
    _c(f"map update pinned {M}/pcpu_array key 5 0 0 0 value 0 0 0 0 0 0 0 0"),
    _c(f"map update pinned {M}/lru key 1 0 0 0 value 1"),
    # -- wrong map types -------------------------------------------------------------
    _c(f"map push pinned {M}/plain_array value 0 0 0 0 0 0 0 0"),  # push is update: "did not find key"
    _c(f"map pop pinned {M}/plain_array"),  # the kernel's ENOTSUPP (exit 244)
    _c(f"map peek pinned {M}/flows"),       # peek is lookup: "did not find key"
    _c(f"map pop pinned {M}/flows", expect="stdout", json=False),  # no such key: "empty map"
    _c(f"map enqueue pinned {M}/stack value 1 0 0 0 0 0 0"),
    _c(f"map dequeue pinned {M}/queue", expect="stdout", json=False),  # empty queue
    _c(f"map pop pinned {M}/stack", expect="stdout", json=False),     # empty stack
    _c(f"map peek pinned {M}/queue", expect="notfound"),
    _c(f"map push pinned {M}/queue value 1 0 0"),
    _c(f"map update pinned {M}/queue key 0 0 0 0 value 1 0 0 0"),
    _c(f"map lookup pinned {M}/queue key 0 0 0 0"),
    _c(f"map update pinned {M}/bloom key 0 0 0 0 value 1 0 0 0"),
    _c(f"map lookup pinned {M}/events key 0 0 0 0"),
    _c(f"map update pinned {M}/events key 0 0 0 0 value 0"),
    _c(f"map update pinned {M}/jumps key 0 0 0 0 value 1 0 0 0"),
    _c(f"map update pinned {M}/jumps key 0 0 0 0 value id 999999999"),
    _c(f"map update pinned {M}/jumps key 0 0 0 0 value pinned {P}/sock_maps"),  # prog type mismatch
    _c(f"map update pinned {M}/jumps key 9 0 0 0 value pinned {P}/xdp_tail_a"),
    _c(f"map update pinned {M}/outer_arr key 0 0 0 0 value 1 0 0 0"),
    _c(f"map update pinned {M}/outer_arr key 0 0 0 0 value id 999999999"),
    _c(f"map update pinned {M}/outer_arr key 0 0 0 0 value pinned {M}/flows"),  # incompatible inner map
    _c(f"map update pinned {M}/plain_array key 0 0 0 0 value id 1"),
    _c(f"map event_pipe pinned {M}/plain_array"),
    _c("map freeze id 999999999"),
    # -- unknown handles ------------------------------------------------------------
    _c("map show id 999999999"),
    _c("map show id -3"),
    _c("map show id abc"),
    _c("map show id"),
    _c("map show name"),
    _c("map show pinned"),
    _c("map show bogus 1"),
    _c("map show id 1 extra"),
    _c("map dump id 999999999"),
    _c("map lookup id 999999999 key 0 0 0 0"),
    _c("map update name no_such_map_x key 0 0 0 0 value 0 0 0 0"),
    _c("map dump name no_such_map_x"),
    _c("map lookup name abcdefghijklmnopqrstuvwxyz0123456789 key 0"),
    _c("prog show id 999999999"),
    _c("prog show id 0x"),
    _c("prog show id"),
    _c("prog show tag xyz"),
    _c("prog show tag 00112233445566"),
    _c("prog show name"),
    _c("prog show pinned"),
    _c("prog show bogus"),
    _c("prog dump xlated id 999999999"),
    _c("prog dump jited id 999999999"),
    _c("prog dump xlated name no_such_prog_x"),
    _c("prog dump bogus id 1"),
    _c("prog pin id 999999999 {fs}/stray"),
    _c("map pin id 999999999 {fs}/stray"),
    _c(f"prog show pinned {M}/plain_array"),       # a map where a program is wanted
    _c(f"map show pinned {P}/xdp_maps"),           # a program where a map is wanted
    _c(f"map dump pinned {P}/xdp_maps"),
    _c("prog run id 999999999 data_in /dev/null"),
    # -- missing files --------------------------------------------------------------
    _c("map show pinned {fs}/no/such/pin"),
    _c("prog show pinned {fs}/nothing"),
    _c("map show pinned {tmp}/not-bpffs"),
    _c("prog show pinned {tmp}"),
    _c("prog load {tmp}/missing.o {fs}/stray"),
    _c("prog loadall {tmp}/missing.o {fs}/stray_dir"),
    _c("prog load {tmp}/garbage.o {fs}/stray"),
    _c("prog loadall {tmp}/garbage.o {fs}/stray_dir"),
    _c("prog load {tmp}/empty.o {fs}/stray"),
    _c("prog load {tmp} {fs}/stray"),
    _c(f"prog run pinned {P}/xdp_maps data_in {{tmp}}/missing.bin"),
    _c("inspect {tmp}/missing.o", bpftool=False),
    _c("inspect {tmp}/garbage.o", bpftool=False),
    _c("inspect {tmp}", bpftool=False),
    _c("btf dump file {tmp}/missing.btf"),
    _c("btf dump file {tmp}/garbage.o"),  # libbpf's format error: exit 95
    _c("btf dump file {tmp}/empty.o"),    # shorter than a magic: EIO
    _c("btf dump file {tmp}"),            # a directory: EIO
    _c("btf dump file {objs}/../Makefile"),  # neither BTF nor ELF: format error
    _c("gen skeleton {tmp}/missing.o", bpftool=False),
    # -- dotted or non-bpffs paths, existing paths ---------------------------------
    _c("prog load {objs}/xdp_counter.o {fs}/has.dot"),
    _c("prog loadall {objs}/xdp_counter.o {fs}/dir.dot"),
    _c(f"map pin pinned {M}/plain_array {{fs}}/a.b"),
    _c(f"prog pin pinned {P}/xdp_maps {{fs}}/x.y"),
    _c("-n prog load {objs}/xdp_counter.o {tmp}/prog"),
    _c("-n prog loadall {objs}/xdp_counter.o {tmp}/dir"),
    _c(f"-n map pin pinned {M}/plain_array {{tmp}}/pin"),
    _c(f"-n prog pin pinned {P}/xdp_maps {{tmp}}/pin"),
    _c(f"map pin pinned {M}/plain_array {M}/flows"),       # exists
    _c(f"prog pin pinned {P}/xdp_maps {P}/sock_maps"),     # exists
    _c("prog load {objs}/xdp_counter.o {fs}/m/flows"),     # exists
    _c("prog loadall {objs}/xdp_counter.o {fs}/m/flows"),  # exists, and is a pin
    _c(f"map pin pinned {M}/plain_array {{fs}}/no/such/dir/pin"),
    _c(f"map pin pinned {M}/plain_array"),
    _c("map pin"),
    _c("map pin pinned"),
    _c("prog load {objs}/xdp_counter.o {fs}/no/such/dir/pin"),
    # -- bad loads: verifier, sections, map replacement -------------------------------
    _c("prog load {objs}/bad_verifier.o {fs}/stray"),
    _c("prog loadall {objs}/bad_verifier.o {fs}/stray_dir"),
    _c("prog loadall {objs}/bad_section.o {fs}/stray_dir"),
    _c("prog load {objs}/xdp_counter.o {fs}/stray type nosuchtype"),
    _c("prog load {objs}/xdp_counter.o {fs}/stray type"),
    _c("prog load {objs}/xdp_counter.o {fs}/stray map idx 7 id 1"),
    _c("prog load {objs}/xdp_counter.o {fs}/stray map name nosuch id 1"),
    _c("prog load {objs}/xdp_counter.o {fs}/stray map idx 0 id 999999999"),
    _c(f"prog load {{objs}}/xdp_counter.o {{fs}}/stray map idx 0 pinned {M}/nosuch"),
    _c(f"prog load {{objs}}/xdp_counter.o {{fs}}/stray map idx 0 pinned {M}/flows map idx 0 pinned {M}/flows"),
    _c("prog load {objs}/xdp_counter.o {fs}/stray map bogus 0 id 1"),
    _c("prog load {objs}/xdp_counter.o {fs}/stray map idx"),
    _c("prog load {objs}/xdp_counter.o {fs}/stray dev no_such_dev0"),
    _c("prog load {objs}/xdp_counter.o {fs}/stray pinmaps"),
    _c("prog load {objs}/xdp_counter.o {fs}/stray bogus"),
    _c("prog load {objs}/xdp_counter.o"),
    _c("prog load"),
    # -- conflicting or unknown options and words ------------------------------------
    # option errors: with -j before them, bpftool reports them as JSON too
    _c("-z map show"),
    _c("--bogus map show"),
    _c("--xyz map show --js"),
    _c("nosuchobject show"),
    _c("map nosuchcommand"),
    _c("prog nosuchcommand"),
    _c("btf nosuchcommand"),
    _c("map create {fs}/new type hash key 4 value 8 entries 0 name x"),
    _c("map create {fs}/new type nosuchtype key 4 value 8 entries 4 name x"),
    # bpftool 7.1 truncates a map name of more than 15 characters; we refuse it
    _c("map create {fs}/new type hash key 4 value 8 entries 4 name abcdefghijklmnopq", bpftool=False),
    _c("map create {fs}/new type hash key 4 key 4 value 8 entries 4 name x"),
    _c("map create {fs}/new type hash key 4 value 8 value 8 entries 4 name x"),
    _c("map create {fs}/new type hash key 4 value 8 entries 4 entries 4 name x"),
    _c("map create {fs}/new type hash key 4 value 8 entries 4 name x dev lo dev lo"),
    _c("map create {fs}/new type hash key 0 value 8 entries 4 name x"),
    _c("map create {fs}/new type array key 8 value 8 entries 4 name x"),
    _c("map create {fs}/new type hash key 4 value 8 entries 4"),
    _c("map create {fs}/new type array_of_maps key 4 value 4 entries 4 name x"),
    _c("map create {fs}/new.dot type hash key 4 value 8 entries 4 name x"),
    _c("map create {fs}/new type hash key 4 value 8 entries 4 name x flags zz"),
    _c("-n map create {tmp}/new type hash key 4 value 8 entries 4 name x"),
    _c("prog run pinned {fs}/p/xdp_maps repeat"),
    _c("prog run pinned {fs}/p/xdp_maps data_in {tmp}/pkt repeat x"),
    _c("prog run pinned {fs}/p/xdp_maps data_in {tmp}/pkt data_out"),
    _c("prog run pinned {fs}/p/sock_maps data_in {tmp}/pkt ctx_in {tmp}/missing.ctx"),
    _c("prog run pinned {fs}/p/xdp_maps data_in {tmp}/tiny.bin"),
    _c("prog attach pinned {fs}/p/xdp_maps bogus_type"),
    _c("prog detach pinned {fs}/p/xdp_maps flow_dissector"),
]


def _fill(argv: str, fs: Path, tmp: Path, objs: Path) -> list[str]:
    return shlex.split(argv.format(fs=fs, tmp=tmp, objs=objs))


@pytest.fixture(scope="module")
def world(module_bpffs: Path) -> Iterator[tuple[Path, Path, Path]]:
    """maps_all.o loaded with maps pinned under {fs}/m and programs under {fs}/p; a plain temp
    dir with a garbage object, an empty one and packets."""
    objs = Path(__file__).resolve().parents[2] / "bpf_progs" / "build"
    subprocess.run(["make", "-s", "-C", str(objs.parent)], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="pybpfobj-corpus-"))
    (tmp / "garbage.o").write_bytes(b"\x7fELF" + bytes(range(256)) * 4)
    (tmp / "empty.o").write_bytes(b"")
    (tmp / "pkt").write_bytes(bytes(64))
    (tmp / "tiny.bin").write_bytes(b"\x01")
    with BpfObject(objs / "maps_all.o") as obj:
        obj.load()
        obj.pin_maps(module_bpffs / "m")
        obj.pin_programs(module_bpffs / "p")
        try:
            yield module_bpffs, tmp, objs
        finally:
            obj.unpin_all()
    subprocess.run(["rm", "-rf", str(tmp)], check=False)


def test_corpus_is_large_and_distinct() -> None:
    assert len(CORPUS) >= 100
    assert len({c.argv for c in CORPUS}) == len(CORPUS)


def _params() -> list[object]:
    return [pytest.param(c, id=c.argv, marks=[pytest.mark.xfail(reason=c.known, strict=False)] if c.known else [])
            for c in CORPUS]


@pytest.mark.parametrize("case", _params())
def test_malformed_command_fails_cleanly_like_bpftool(case: Case, world: tuple[Path, Path, Path],
                                                      bpftool: str) -> None:
    fs, tmp, objs = world
    argv = _fill(case.argv, fs, tmp, objs)
    pins0, files0, fds0 = tree(fs), tree(tmp), open_fds()
    out, err = io.StringIO(), io.StringIO()
    rc = run(argv, Context(out=out, err=err))
    text = err.getvalue()
    assert rc != 0, f"succeeded: {out.getvalue()!r}"
    if case.expect == "notfound":
        assert rc == 254 and out.getvalue().endswith("Not found\n"), (rc, out.getvalue())
    else:
        shown = text if case.expect == "error" else out.getvalue()
        assert shown.startswith("Error: ") or "\nError: " in shown, (text, out.getvalue())
    assert "Traceback" not in text and "internal error" not in text, text
    assert tree(fs) == pins0, "a failed command left pins or directories behind"
    assert tree(tmp) == files0, "a failed command left files behind"
    assert open_fds() <= fds0, "a failed command leaked fds"
    # the same failure in JSON mode: one {"error": ...} object on stdout
    jout, jerr = io.StringIO(), io.StringIO()
    assert run(["-j", *argv], Context(out=jout, err=jerr)) == rc
    assert "Traceback" not in jerr.getvalue()
    if case.json and case.expect == "error":
        assert '"error"' in jout.getvalue(), jout.getvalue()
    if case.bpftool:
        ref = subprocess.run([bpftool, *argv], capture_output=True, text=True, check=False, timeout=60)
        assert tree(fs) == pins0, "bpftool itself left something behind: the case is not a failure"
        assert rc == ref.returncode, f"exit {rc}, bpftool exits {ref.returncode}: ours {text!r}, " \
                                     f"bpftool {ref.stderr.strip()[-300:]!r}"


def test_console_script_prints_no_traceback(world: tuple[Path, Path, Path]) -> None:
    """A few corpus lines through the real entry point (a subprocess), stdout/stderr as users see them."""
    fs, tmp, objs = world
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for argv in ("map show id 999999999", "prog load {tmp}/garbage.o {fs}/stray", "--bogus map show"):
        p = subprocess.run(["python3", "-m", "pybpfobj", *_fill(argv, fs, tmp, objs)], capture_output=True,
                           text=True, env=env, check=False)
        assert p.returncode != 0
        # libbpf's own lines (prefixed "libbpf: ") may come first, as with bpftool
        lines = p.stderr.splitlines()
        assert any(line.startswith("Error: ") for line in lines), p.stderr
        assert all(line.startswith(("Error: ", "libbpf: ", "Usage:", " ")) or not line.strip()
                   for line in lines), p.stderr
        assert "Traceback" not in p.stderr
