"""Loading semantics swept against libbpf's: LIBBPF_PIN_BY_NAME pins reused (or refused
field by field), map reuse checks free of the known false alarms, and pre-load
configuration errors (set_var, set_max_entries) that name what is wrong."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from loader_testutil import build_bpf

from pybpfobj.errors import MapError, MapIncompatibleError, PinError
from pybpfobj.loader import BpfObject

# Every map type whose kernel definition differs from the object's on a compatible
# reuse: devmaps get BPF_F_RDONLY_PROG, the perf_event_array is sized by CPU count,
# the ringbuf is rounded up, the bloom filter's map_extra is kept.
_QUIRKS = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
typedef unsigned int KEYT;
struct kv { VALUE_FIELDS };
struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __uint(max_entries, 4); __type(key, __u32);
         __type(value, __u32); __uint(pinning, LIBBPF_PIN_BY_NAME); } dm SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP_HASH); __uint(max_entries, 4); __type(key, __u32);
         __type(value, __u32); __uint(pinning, LIBBPF_PIN_BY_NAME); } dmh SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4);
         __uint(pinning, LIBBPF_PIN_BY_NAME); } pe SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 5000);
         __uint(pinning, LIBBPF_PIN_BY_NAME); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER); __uint(max_entries, 16); __uint(value_size, 4);
         __uint(map_extra, EXTRA); __uint(pinning, LIBBPF_PIN_BY_NAME); } bf SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4); __type(key, KEYT);
         __type(value, struct kv); __uint(pinning, LIBBPF_PIN_BY_NAME); } hh SEC(".maps");
SEC("xdp") int x(struct xdp_md *c)
{
    __u32 k = 0;
    bpf_map_lookup_elem(&hh, &k);
    bpf_perf_event_output(c, &pe, 0, &k, 4);
    bpf_map_peek_elem(&bf, &k);
    bpf_ringbuf_output(&rb, &k, 4, 0);
    return bpf_redirect_map(&dm, 0, 0) + bpf_redirect_map(&dmh, 0, 0);
}
char LICENSE[] SEC("license") = "GPL";
"""


def _quirks(tmp: Path, name: str, *, key: str = "KEYT", fields: str = "KEYT a; __u32 b;",
            extra: int = 3) -> str:
    src = (_QUIRKS.replace("__type(key, KEYT)", f"__type(key, {key})").replace("VALUE_FIELDS", fields)
           .replace("EXTRA", str(extra)))
    return str(build_bpf(tmp, name, src))


@pytest.fixture(scope="module")
def quirk_objs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("quirks")
    return {
        "a": _quirks(tmp, "qa"),
        "same_shape": _quirks(tmp, "qb", key="__u32", fields="__u32 a; unsigned int b;"),
        "other_shape": _quirks(tmp, "qc", fields="__u64 a;"),
        "extra0": _quirks(tmp, "qd", extra=0),
        "extra5": _quirks(tmp, "qe", extra=5),
    }


def _ids(obj: BpfObject) -> dict[str, int]:
    return {n: m.info().id for n, m in obj.maps.items()}


def test_pin_by_name_reload_reuses_every_quirky_map_type(bpffs: Path, quirk_objs: dict[str, str]) -> None:
    # libbpf 1.1 alone refuses the devmap ("parameter mismatch") on the second load
    with BpfObject(quirk_objs["a"], pin_root=str(bpffs)) as first:
        first.load()
        made = set(first.pinned)
        assert {os.path.basename(p) for p in made} == {"dm", "dmh", "pe", "rb", "bf", "hh"}
        for again in ("a", "same_shape"):
            with BpfObject(quirk_objs[again], pin_root=str(bpffs)) as second:
                second.load()
                assert _ids(second) == _ids(first)
                assert second.pinned == []  # the pins are the first object's
                assert set(second.pinned_by_name.values()) == made


def test_pin_by_name_of_another_layout_is_refused_naming_the_field(bpffs: Path,
                                                                  quirk_objs: dict[str, str]) -> None:
    with BpfObject(quirk_objs["a"], pin_root=str(bpffs)) as first:
        first.load()
        before = sorted(os.listdir(bpffs))
        obj = BpfObject(quirk_objs["other_shape"], pin_root=str(bpffs))
        with pytest.raises(MapIncompatibleError, match=r"map 'hh'.*btf_value_type struct kv != "
                                                       r"struct kv of another layout") as ei:
            obj.load()
        assert set(ei.value.differences) == {"btf_value_type"}
        assert obj.state == "closed" and sorted(os.listdir(bpffs)) == before


def test_bloom_filter_map_extra_is_compared_with_zero_as_the_default(bpffs: Path,
                                                                    quirk_objs: dict[str, str]) -> None:
    with BpfObject(quirk_objs["extra0"], pin_root=str(bpffs)) as first:
        first.load()
        with BpfObject(quirk_objs["extra5"], pin_root=str(bpffs)) as same:
            same.load()  # 0 asks the kernel for its default, 5 hash functions
        with pytest.raises(MapIncompatibleError, match=r"map 'bf'.*map_extra 3 != 5"):
            BpfObject(quirk_objs["a"], pin_root=str(bpffs)).load()


def test_reuse_map_checks_shape_not_type_names(bpffs: Path, quirk_objs: dict[str, str]) -> None:
    with BpfObject(quirk_objs["a"], pin_root=str(bpffs)) as first:
        first.load()
        maps = first.maps
        with BpfObject(quirk_objs["same_shape"], pin_root=str(bpffs)) as same:
            for n, m in maps.items():
                same.reuse_map(n, m)  # devmap flags, CPU-sized perf array, rounded ringbuf: all fine
            same.load()
            assert _ids(same) == _ids(first) and same.pinned == []
        with BpfObject(quirk_objs["other_shape"]) as other:
            with pytest.raises(MapIncompatibleError, match="btf_value_type"):
                other.reuse_map("hh", maps["hh"])
            other.reuse_map("hh", maps["hh"], force=True)
        with BpfObject(quirk_objs["extra5"]) as extra, \
                pytest.raises(MapIncompatibleError, match=r"map_extra 5 != 3"):
            extra.reuse_map("bf", maps["bf"])


def test_missing_parent_of_pin_root_is_named_before_load(bpffs: Path, objs: Path) -> None:
    root = bpffs / "no" / "such"
    obj = BpfObject(str(objs / "pinbyname.o"), pin_root=str(root))
    with pytest.raises(PinError, match=r"parent '.*/no' does not exist"):
        obj.load()
    assert not (bpffs / "no").exists()


def test_pin_root_made_one_level_is_taken_back_with_the_pin(bpffs: Path, objs: Path) -> None:
    root = bpffs / "fresh"
    with BpfObject(str(objs / "pinbyname.o"), pin_root=str(root)) as obj:
        obj.load()
        assert os.listdir(root) == ["pinned_hash"]
        obj.unpin_all()
    assert not root.exists()


def test_set_var_on_a_replaced_data_map_is_refused(need_root: None, objs: Path) -> None:
    with BpfObject(str(objs / "globals.o")) as first:
        first.load()
        rodata = first.maps["globals.rodata"]
        with BpfObject(str(objs / "globals.o")) as second:
            second.reuse_map("globals.rodata", rodata)
            with pytest.raises(MapError, match="replaced by"):
                second.set_var("verdict", 2)
            second.set_var("counter", 3)  # .bss is not replaced


def test_sizing_a_global_data_map_is_refused(objs: Path) -> None:
    with BpfObject(str(objs / "globals.o")) as obj:
        for setter in (obj.set_max_entries, obj.set_value_size):
            with pytest.raises(MapError, match="'globals.rodata'.*holds global data"):
                setter("globals.rodata", 64)


def test_unknown_enum_name_lists_the_enum_names(objs: Path) -> None:
    with BpfObject(str(objs / "globals.o")) as obj:
        with pytest.raises(Exception, match="one of RED, GREEN, BLUE, got 'PURPLE'"):
            obj.set_var("favourite", "PURPLE")
        obj.set_var("favourite", "BLUE")
        assert obj.get_var("favourite") == (4).to_bytes(4, "little")


def test_reusing_a_data_map_after_set_var_is_refused_not_silently_dropped(objs: Path) -> None:
    with BpfObject(objs / "xdp_counter.o") as first:
        first.load()
        with BpfObject(objs / "xdp_counter.o") as second:
            second.set_var("verdict", 1)
            with pytest.raises(MapError, match=r"variable 'verdict' \(set_var\) of map 'xdp_coun.rodata' was "
                                               r"set, and a replacing map keeps its own contents") as info:
                second.reuse_map("xdp_coun.rodata", first.maps["xdp_coun.rodata"])
            assert info.value.errno == errno.EINVAL
            second.reuse_map("stats", first.maps["stats"])  # other maps still can be
            second.load()
            assert second.get_var("verdict") == (1).to_bytes(len(second.get_var("verdict")), "little")
