"""``pybpfobj inspect``: text, JSON and errors (run as a subprocess: exit codes, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pybpfobj.cli.common import Context
from pybpfobj.cli.main import run


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pybpfobj", *args], capture_output=True, text=True,
                          check=False)


def test_text_lists_programs_maps_and_variables(objs: Path) -> None:
    r = cli("inspect", str(objs / "globals.o"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "xdp_globals  section xdp  type xdp  attach_type xdp  insns" in out
    assert "map idx 0  name globals.rodata  type array  section .rodata" in out
    assert "flags 0x480" in out
    assert 'cfg (const volatile struct config) @16 = {"mode": 3, "port": 8080, "enabled": 1, ' \
           '"label": "abcd"}' in out
    assert 'favourite (const volatile enum color) @28 = "GREEN"' in out
    assert "map idx 2  name .data.custom" in out


def test_text_shows_inner_maps_init_values_and_btf_type_names(objs: Path) -> None:
    out = cli("inspect", str(objs / "maps_all.o")).stdout
    assert "inner: name outer_arr.inner  type array" in out
    assert "initial values: [0] = inner_a, [1] = inner_b" in out
    assert "initial values: [0] = xdp_tail_a, [2] = xdp_tail_b" in out
    assert "key 16B (struct flow_key)  value 96B (struct flow_value)  max_entries 1024" in out
    assert "map_extra 3" in out


def test_json_document(objs: Path) -> None:
    r = cli("-j", "inspect", str(objs / "maps_all.o"))
    assert r.returncode == 0 and r.stderr == ""
    doc = json.loads(r.stdout)
    assert doc["name"] == "maps_all" and doc["license"] == "GPL"
    assert [m["idx"] for m in doc["maps"]] == list(range(18))
    outer = next(m for m in doc["maps"] if m["name"] == "outer_arr")
    assert outer["inner"]["type"] == "array" and outer["init_values"] == {"0": "inner_a", "1": "inner_b"}
    assert [p["type"] for p in doc["programs"]] == ["xdp", "xdp", "xdp", "socket_filter"]


def test_json_variables_are_formatted_by_btf(objs: Path) -> None:
    doc = json.loads(cli("-j", "inspect", str(objs / "globals.o")).stdout)
    rodata = doc["maps"][0]
    values = {v["name"]: v["value"] for v in rodata["variables"]}
    assert values["cfg"] == {"mode": 3, "port": 8080, "enabled": 1, "label": "abcd"}
    assert values["bpf_metadata_version"] == "1.0"
    assert values["favourite"] == "GREEN"


def test_pretty_json_is_indented(objs: Path) -> None:
    out = cli("-p", "inspect", str(objs / "tailcall.o")).stdout
    assert out.startswith("{\n    \"name\": \"tailcall\"")


def test_missing_file_is_an_error_with_enoent_exit_code(tmp_path: Path) -> None:
    r = cli("inspect", str(tmp_path / "nope.o"))
    assert r.returncode == 254
    assert r.stderr == f"Error: {tmp_path / 'nope.o'}: cannot read object file: No such file or directory\n"
    assert r.stdout == ""


def test_garbage_file_is_an_error_without_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "junk.o"
    junk.write_bytes(b"\x7fELF" + bytes(range(256)) * 4)
    r = cli("inspect", str(junk))
    assert r.returncode != 0
    assert r.stderr.startswith("Error: ") and str(junk) in r.stderr
    assert "Traceback" not in r.stderr


def test_garbage_in_json_mode_reports_error_object(tmp_path: Path) -> None:
    junk = tmp_path / "junk.o"
    junk.write_text("not an object\n")
    r = cli("-j", "inspect", str(junk))
    assert r.returncode == 234   # -EINVAL & 0xff
    assert json.loads(r.stdout) == {"error": f"{junk}: not an ELF file"}


def test_usage_errors() -> None:
    import io

    ctx = Context(out=io.StringIO(), err=io.StringIO())
    assert run(["inspect"], ctx) == 255
    assert "Error: expected an object file" in ctx.err.getvalue()    # type: ignore[attr-defined]
    ctx = Context(out=io.StringIO(), err=io.StringIO())
    assert run(["inspect", "a.o", "extra"], ctx) == 255
    assert "too many arguments" in ctx.err.getvalue()    # type: ignore[attr-defined]
