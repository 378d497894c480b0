"""The build of bpf_progs/: objects are rebuilt from their sources and do not
depend on where the checkout lives (golden skeletons embed their hash)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BPF_PROGS = Path(__file__).resolve().parents[2] / "bpf_progs"



def test_objects_are_identical_when_built_in_another_directory(objs: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "bpf_progs"
    shutil.copytree(BPF_PROGS, copy, ignore=shutil.ignore_patterns("build"))
    subprocess.run(["make", "-s", "-C", str(copy), "build/xdp_counter.o", "build/maps_all.o"], check=True)
    for name in ("xdp_counter.o", "maps_all.o"):
        assert (copy / "build" / name).read_bytes() == (objs / name).read_bytes(), name


def test_a_changed_source_is_rebuilt(objs: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bpf_progs"
    shutil.copytree(BPF_PROGS, copy, ignore=shutil.ignore_patterns("build"))
    make = ["make", "-s", "-C", str(copy), "build/xdp_counter.o"]
    subprocess.run(make, check=True)
    first = (copy / "build" / "xdp_counter.o").read_bytes()
    src = copy / "xdp_counter.bpf.c"
    src.write_text(src.read_text().replace("verdict = XDP_PASS", "verdict = XDP_DROP"))
    subprocess.run(make, check=True)
    assert (copy / "build" / "xdp_counter.o").read_bytes() != first
