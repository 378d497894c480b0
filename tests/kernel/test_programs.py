"""Program handles on the real kernel: by id, pinned path, tag and name; info; pin; errors."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

from pybpfobj.errors import BpfError, BpffsError, NotFoundError, PinError, ProgramError
from pybpfobj.kernel import info
from pybpfobj.programs import Program


@pytest.fixture
def pinned(objs: Path, bpffs: Path, bpftool: str) -> Path:
    subprocess.run([bpftool, "prog", "loadall", str(objs / "tailcall.o"), str(bpffs / "t")], check=True)
    return bpffs / "t"


def bpftool_show(bpftool: str, pin: Path) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([bpftool, "-j", "prog", "show", "pinned", str(pin)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def test_handles_by_pin_id_tag_and_name_find_the_same_program(pinned: Path, bpftool: str) -> None:
    pin = pinned / "bpf_func_process"
    ref = bpftool_show(bpftool, pin)
    with Program.from_pinned(pin) as p:
        assert (p.id, p.type, p.name) == (ref["id"], "xdp", "bpf_func_process")
        assert p.tag == ref["tag"]
    with Program.from_id(ref["id"]) as p:
        assert p.id == ref["id"]
    by_tag = Program.by_tag(ref["tag"])
    by_name = Program.by_name("bpf_func_process")   # 16 characters: matched through BTF
    try:
        assert ref["id"] in [p.id for p in by_tag]
        assert ref["id"] in [p.id for p in by_name]
        assert all(p.name == "bpf_func_process" for p in by_name)
    finally:
        for p in by_tag + by_name:
            p.close()
    assert Program.by_name("no_such_program") == []


def test_the_kernel_cut_name_alone_matches_nothing_as_in_bpftool(pinned: Path, bpftool: str) -> None:
    # bpf_func_process is cut to "bpf_func_proces" by the kernel; bpftool compares the full
    # (BTF) name, so the cut one finds nothing, and exits 255 silently
    assert Program.by_name("bpf_func_proces") == []
    ref = subprocess.run([bpftool, "-j", "prog", "show", "name", "bpf_func_proces"], capture_output=True,
                         text=True, check=False)
    assert (ref.returncode, ref.stdout.strip()) == (255, "")
    from pybpfobj.cli.main import run

    assert run(["prog", "show", "name", "bpf_func_proces"]) == 255


def test_info_fields_agree_with_bpftool(pinned: Path, bpftool: str) -> None:
    pin = pinned / "main_func"
    ref = bpftool_show(bpftool, pin)
    with Program.from_pinned(pin) as p:
        pi = p.info(xlated=True, jited=True, func_info=True, line_info=True)
    assert pi.id == ref["id"] and pi.tag == ref["tag"] and pi.gpl_compatible is ref["gpl_compatible"]
    assert pi.xlated_prog_len == ref["bytes_xlated"] and pi.jited_prog_len == ref["bytes_jited"]
    assert pi.map_ids == ref["map_ids"] and pi.btf_id == ref["btf_id"]
    assert pi.created_by_uid == ref["uid"]
    assert abs(pi.load_time_epoch() - ref["loaded_at"]) <= 1
    assert pi.xlated is not None and len(pi.xlated) == pi.xlated_prog_len
    assert pi.jited is not None and len(pi.jited) == pi.jited_prog_len
    assert pi.func_info and pi.func_info[0][0] == 0
    assert pi.line_info and pi.line_info[0].insn_off == 0


def test_map_btf_and_id_iteration(pinned: Path) -> None:
    with Program.from_pinned(pinned / "main_func") as p:
        pi = p.info()
    assert pi.id in list(info.prog_ids())
    for map_id in pi.map_ids:
        assert map_id in list(info.map_ids())
        fd = info.map_fd_by_id(map_id)
        try:
            mi = info.map_info(fd)
            assert mi.id == map_id and mi.type_name == "prog_array"
        finally:
            os.close(fd)
    assert pi.btf_id in list(info.btf_ids())
    blob = info.btf_data(pi.btf_id)
    assert blob[:2] == b"\x9f\xeb"


def test_pin_places_a_second_pin_and_refuses_bad_paths(pinned: Path, bpffs: Path, tmp_path: Path) -> None:
    with Program.from_pinned(pinned / "main_func") as p:
        p.pin(bpffs / "copy")
        assert info.pinned_paths("prog", p.id, [str(bpffs)]) == [str(bpffs / "copy"), str(pinned / "main_func")]
        with pytest.raises(PinError, match="already exists") as e:
            p.pin(bpffs / "copy")
        assert e.value.errno == errno.EEXIST
        with pytest.raises(PinError, match="cannot contain '.'"):
            p.pin(bpffs / "dot.ted")
        with pytest.raises(BpffsError, match="not on a BPF file system"):
            p.pin(tmp_path / "x")
        with pytest.raises(PinError, match="does not exist"):
            p.pin(bpffs / "missing" / "x")
    assert sorted(os.listdir(bpffs / "t")) == ["bpf_func_debug", "bpf_func_process", "main_func"]


def test_errors_name_what_is_missing_or_wrong(pinned: Path, bpffs: Path, objs: Path, bpftool: str) -> None:
    with pytest.raises(NotFoundError, match=r"get program by id \(99999999\)"):
        Program.from_id(99999999)
    with pytest.raises(NotFoundError, match="/nonexistent"):
        Program.from_pinned("/nonexistent")
    with pytest.raises(PinError, match="directory not in bpf file system"):
        Program.from_pinned("/etc/hostname")
    subprocess.run([bpftool, "map", "create", str(bpffs / "amap"), "type", "array", "key", "4", "value", "4",
                    "entries", "1", "name", "amap"], check=True)
    with pytest.raises(BpfError, match="not a program") as e:
        Program.from_pinned(bpffs / "amap")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(ProgramError, match="not a BPF program"):
        Program.from_fd(0)


def test_close_is_idempotent_and_a_closed_handle_refuses_use(pinned: Path) -> None:
    p = Program.from_pinned(pinned / "main_func")
    fd = p.fd
    p.close()
    p.close()
    assert p.closed and "closed" in repr(p)
    with pytest.raises(ProgramError):
        _ = p.fd
    with pytest.raises(OSError):
        os.fstat(fd)


def test_borrowed_handles_leave_the_fd_open(pinned: Path) -> None:
    fd = info.obj_get(str(pinned / "main_func"), "prog")
    try:
        with Program.from_fd(fd, owned=False, name="main") as p:
            assert p.name == "main" and p.type == "xdp"
        os.fstat(fd)
    finally:
        os.close(fd)
