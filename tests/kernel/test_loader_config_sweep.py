"""BpfObject's configuration calls swept with awkward inputs: replacements that size an
unsized definition, a CPU-sized perf array, externs that libbpf fills in, contents set
then replaced, reuse sources of every wrong kind (each error names map and object, no
fd leaks), initial values and variables that cannot be encoded, object names with dots."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loader_testutil import build_bpf

from pybpfobj.errors import BpfError, MapError, MapIncompatibleError, NotFoundError, ProgramError
from pybpfobj.loader import BpfObject
from pybpfobj.maps import Map

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("need_root")]

_SRC = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } pe SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); }
    arr SEC(".maps");
const volatile float v_float = 1.5;
const volatile char v_str[8] = "abc";
volatile __u32 v_data = 3;
SEC("xdp")
int prog(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&arr, &k);
	bpf_perf_event_output(ctx, &pe, 0, &k, 4);
	bpf_ringbuf_output(&rb, &k, 4, 0);
	return (LINUX_KERNEL_VERSION + v_str[0] + v_data + *(volatile __u32 *)&v_float + (v ? *v : 0)) & 1;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def obj_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bpf(tmp_path_factory.mktemp("cfg"), "cfg", _SRC)


@pytest.fixture
def obj(obj_path: Path) -> Iterator[BpfObject]:
    with BpfObject(obj_path) as o:
        yield o


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_replacement_sizes_what_the_object_left_unsized(obj: BpfObject) -> None:
    with Map.create("ringbuf", 0, 0, 8192) as rb, \
            Map.create("perf_event_array", 4, 4, _libbpf_cpus()) as pe:
        obj.reuse_map("rb", rb)  # the object gives no max_entries: 8192 is no difference
        obj.reuse_map("pe", pe)  # sized as libbpf would: one entry per possible CPU
        obj.load()


def test_a_perf_array_of_another_size_than_the_cpus_is_a_difference(obj: BpfObject) -> None:
    n = _libbpf_cpus()
    with Map.create("perf_event_array", 4, 4, n + 1) as pe, \
            pytest.raises(MapIncompatibleError, match=rf"max_entries {n} != {n + 1}"):
        obj.reuse_map("pe", pe)


def _libbpf_cpus() -> int:
    from pybpfobj.kernel import libbpf

    return libbpf.num_possible_cpus()


def test_externs_are_refused_as_variables_and_as_initial_values(obj: BpfObject) -> None:
    with pytest.raises(MapError, match=r"'LINUX_KERNEL_VERSION' of object 'cfg' is an extern \(\.kconfig\)"):
        obj.set_var("LINUX_KERNEL_VERSION", 7)
    kc = obj.section_map_name(".kconfig")
    with pytest.raises(MapError, match="holds externs"):
        obj.set_initial_value(".kconfig", bytes(len(obj.initial_value(kc))))


def test_contents_set_then_replaced_or_replaced_then_set_are_refused(obj: BpfObject) -> None:
    data = obj.section_map_name(".data")
    size = len(obj.initial_value(".data"))
    with Map.create("array", 4, size, 1) as src:
        obj.set_initial_value(".data", (7).to_bytes(size, "little"))
        with pytest.raises(MapError, match=r"the initial value \(set_initial_value\) of map '.*' was set, "
                                           r"and a replacing map keeps its own contents"):
            obj.reuse_map(data, src, force=True)
    with BpfObject(obj.source) as other, Map.create("array", 4, size, 1) as src:
        other.reuse_map(data, src, force=True)
        with pytest.raises(MapError, match="set_initial_value: map '.*' is replaced by"):
            other.set_initial_value(".data", bytes(size))


@pytest.mark.parametrize(("kw", "cls", "text"), [
    ({"fd": 100000}, MapError, "fd 100000 is not open"),
    ({"fd": 0}, MapError, "fd 0 is not a BPF map"),
    ({"id": "5"}, MapError, "id must be an int"),
    ({"id": 1.5}, MapError, "id must be an int"),
    ({"id": 1 << 40}, MapError, "id must be an int"),
    ({"pinned": 5}, MapError, "pinned must be a path"),
    ({"pinned": "/nonexistent/pin"}, NotFoundError, "bpf obj get"),
    ({"source": type("H", (), {"fd": "x"})()}, MapError, "H.fd must be an int"),
    ({"source": 1.5}, MapError, "cannot use 1.5 as a map"),
], ids=["closed-fd", "not-a-map-fd", "id-str", "id-float", "id-huge", "pinned-int", "missing-pin",
        "handle-fd-str", "float-source"])
def test_bad_reuse_sources_name_the_map_and_object(obj: BpfObject, kw: dict, cls: type, text: str) -> None:  # type: ignore[type-arg]
    before = _fds()
    source = kw.pop("source", None)
    with pytest.raises(cls) as info:
        obj.reuse_map("arr", source, **kw)
    e = info.value
    assert type(e) is cls and text in str(e) and "map 'arr' of object 'cfg'" in str(e)
    assert (e.map, e.obj) == ("arr", "cfg") and e.errno
    assert _fds() == before


def test_reuse_source_of_a_program_id_or_pin_names_the_map(obj: BpfObject, obj_path: Path, bpffs: Path) -> None:
    with BpfObject(obj_path) as loaded:
        loaded.set_max_entries("rb", 4096)
        loaded.load()
        prog = loaded.programs["prog"]
        with pytest.raises(BpfError, match="map 'arr' of object 'cfg'") as info:
            obj.reuse_map("arr", id=prog.id)
        assert info.value.map == "arr"
        prog.pin(str(bpffs / "p"))
        with pytest.raises(MapError, match="map 'arr' of object 'cfg'"):
            obj.reuse_map("arr", pinned=str(bpffs / "p"))


def test_initial_values_want_bytes_and_a_section_name(obj: BpfObject) -> None:
    for bad in (0, None):
        with pytest.raises(BpfError, match="section must be a str"):
            obj.initial_value(bad)  # type: ignore[arg-type]
    for data in ("abc", None, 20):
        with pytest.raises(MapError, match="the data must be bytes"):
            obj.set_initial_value(".data", data)  # type: ignore[arg-type]


def test_values_that_do_not_fit_are_clear_errors(obj: BpfObject) -> None:
    with pytest.raises(BpfError, match=r"variable 'v_float' \(const volatile float\): 1e\+40 does not fit a 32-bit float") as info:
        obj.set_var("v_float", 1e40)
    assert info.value.errno == errno.ERANGE
    obj.set_var("v_str", "a\udcffb")  # undecodable bytes from a command line stay bytes
    assert obj.get_var("v_str") == b"a\xffb".ljust(8, b"\0")


def test_cli_var_with_a_non_utf8_string_stores_its_bytes(obj_path: Path, bpffs: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "pybpfobj", "load", str(obj_path), str(bpffs / "p"), "var",
                        "v_str", os.fsdecode(b"\xff\xfe"), "size", "rb", "4096", "pinmaps", str(bpffs / "m")],
                       capture_output=True, check=False)
    assert p.returncode == 0, p.stderr
    ro = next(n for n in os.listdir(bpffs / "m") if n.endswith("_rodata"))
    with Map.from_pinned(str(bpffs / "m" / ro)) as m:
        raw = m.lookup(0)
    raw = raw if isinstance(raw, bytes) else bytes(raw)
    assert b"\xff\xfe\0" in raw


def test_set_ifindex_and_attach_target_refuse_impossible_values(obj: BpfObject) -> None:
    with pytest.raises(BpfError, match="unrecognized netdevice"):
        obj.set_ifindex("lo\0")
    with pytest.raises(ProgramError, match="set_attach_target needs an fd >= 0"):
        obj.set_attach_target("prog", 1 << 40, "foo")


def test_variables_of_an_object_named_with_dots(obj_path: Path) -> None:
    with BpfObject(obj_path, name="my.obj") as o:
        o.set_var("v_data", 5)
        assert o.get_var("v_data") == (5).to_bytes(4, "little")
        assert o.section_map_name(".data") == "my.obj.data"
        o.set_max_entries("rb", 4096)
        o.load()
