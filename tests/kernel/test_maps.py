"""Map handles on a real kernel: every creatable type, each operation and each error."""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pybpfobj.errors import (
    BatchError,
    KeyExistsError,
    KeyNotFoundError,
    MapError,
    MapFrozenError,
    MapFullError,
    NotFoundError,
)
from pybpfobj.maps import Map, possible_cpus

pytestmark = pytest.mark.usefixtures("need_root")

# type -> (key_size, value_size, max_entries, flags)
CREATABLE = {
    "hash": (4, 8, 4, 0), "array": (4, 8, 4, 0), "prog_array": (4, 4, 4, 0),
    "perf_event_array": (4, 4, 2, 0), "percpu_hash": (4, 8, 4, 0), "percpu_array": (4, 8, 4, 0),
    "stack_trace": (4, 8 * 127, 4, 0), "cgroup_array": (4, 4, 4, 0), "lru_hash": (4, 8, 4, 0),
    "lru_percpu_hash": (4, 8, 4, 0), "lpm_trie": (8, 4, 4, 1), "array_of_maps": (4, 4, 4, 0),
    "hash_of_maps": (4, 4, 4, 0), "devmap": (4, 4, 4, 0), "sockmap": (4, 4, 4, 0), "cpumap": (4, 4, 4, 0),
    "xskmap": (4, 4, 4, 0), "sockhash": (4, 4, 4, 0), "cgroup_storage": (16, 8, 0, 0),
    "reuseport_sockarray": (4, 8, 4, 0), "percpu_cgroup_storage": (16, 8, 0, 0), "queue": (0, 4, 4, 0),
    "stack": (0, 4, 4, 0), "devmap_hash": (4, 4, 4, 0), "ringbuf": (0, 0, 4096, 0),
    "bloom_filter": (0, 4, 4, 0), "user_ringbuf": (0, 0, 4096, 0),
}


@pytest.fixture
def hmap() -> Iterator[Map]:
    m = Map.create("hash", 4, 8, 4, name="t_hash", key_type=ctypes.c_uint32, value_type=ctypes.c_uint64)
    yield m
    m.close()


@pytest.mark.parametrize("mtype", sorted(CREATABLE))
def test_every_creatable_type_is_created_with_its_info(mtype: str) -> None:
    k, v, n, flags = CREATABLE[mtype]
    inner = Map.create("array", 4, 4, 1, name="inner") if "of_maps" in mtype else None
    with Map.create(mtype, k, v, n, name="t_" + mtype[:12], flags=flags, inner_map=inner) as m:
        info = m.info()
        assert (info.type_name, info.key_size, info.value_size) == (mtype, k, v)
        assert info.name == "t_" + mtype[:12] and info.flags & flags == flags and not info.frozen
    if inner:
        inner.close()


def test_arena_is_created_with_its_info_or_refused_with_a_clear_error() -> None:
    # Arena maps are created on a kernel and sandbox that allow them; some sandboxes refuse
    # them with EPERM even to root (seen here with CAP_SYS_RESOURCE dropped from the bounding
    # set).  Either outcome is checked: the map's info, or a MapError naming map, type and errno.
    try:
        m = Map.create("arena", 0, 0, 1, name="t_arena", flags=1 << 10)
    except MapError as e:
        assert e.errno == errno.EPERM, e
        assert "'t_arena'" in str(e) and "type arena" in str(e) and "Operation not permitted" in str(e)
        assert e.map == "t_arena"
        return
    with m:
        info = m.info()
        assert (info.type_name, info.key_size, info.value_size) == ("arena", 0, 0)
        assert info.name == "t_arena" and info.flags & (1 << 10) and not info.frozen


def test_int_typed_update_lookup_delete_and_protocols(hmap: Map) -> None:
    hmap[1] = 10
    hmap.update(2, 20, "noexist")
    assert hmap[1] == 10 and hmap.lookup(2) == 20 and 1 in hmap and 3 not in hmap
    assert sorted(hmap.items()) == [(1, 10), (2, 20)] and sorted(hmap) == [1, 2]
    assert sorted(hmap.keys()) == [1, 2] and sorted(hmap.values()) == [10, 20]
    assert hmap.lookup_and_delete(1) == 10 and 1 not in hmap
    del hmap[2]
    assert hmap.items() == [] and hmap.get(2, "dflt") == "dflt"
    with pytest.raises(TypeError):
        len(hmap)


def test_missing_key_raises_key_not_found_which_is_a_key_error(hmap: Map) -> None:
    with pytest.raises(KeyNotFoundError) as ei:
        hmap[7]
    assert isinstance(ei.value, KeyError) and ei.value.errno == errno.ENOENT and "t_hash" in str(ei.value)
    with pytest.raises(KeyNotFoundError):
        hmap.delete(7)


def test_noexist_on_existing_and_exist_on_missing(hmap: Map) -> None:
    hmap[1] = 1
    with pytest.raises(KeyExistsError):
        hmap.update(1, 2, "noexist")
    with pytest.raises(KeyNotFoundError):
        hmap.update(5, 2, "exist")
    hmap.update(1, 3, "exist")
    assert hmap[1] == 3


def test_full_map_raises_map_full(hmap: Map) -> None:
    for i in range(4):
        hmap[i] = i
    with pytest.raises(MapFullError) as ei:
        hmap[99] = 1
    assert ei.value.errno == errno.E2BIG


def test_wrong_key_size_and_value_too_long_are_clear_errors() -> None:
    with Map.create("hash", 4, 8, 4, name="raw") as m:
        with pytest.raises(MapError, match="key for map 'raw' must be 4 bytes, got 3"):
            m.lookup(b"abc")
        with pytest.raises(MapError, match="value for map 'raw' is too long: must be 8 bytes, got 9"):
            m.update(b"abcd", b"x" * 9)
        m.update(b"abcd", b"12345678")
        assert m.lookup(b"abcd") == b"12345678"
    with Map.create("hash", 4, 8, 4, name="ints", key_type=ctypes.c_uint32) as m2, \
            pytest.raises(MapError, match="does not fit the 4-byte key"):
        m2.lookup(1 << 40)


def test_frozen_map_refuses_update_and_delete() -> None:
    with Map.create("hash", 4, 4, 4, name="frz") as m:
        m.update(b"\1\0\0\0", b"abcd")
        m.freeze()
        assert m.info().frozen
        with pytest.raises(MapFrozenError):
            m.update(b"\1\0\0\0", b"efgh")
        with pytest.raises(MapFrozenError):
            m.delete(b"\1\0\0\0")
        assert m.lookup(b"\1\0\0\0") == b"abcd"


def test_bad_names_are_refused_before_the_kernel() -> None:
    with pytest.raises(MapError, match="invalid character '-'"):
        Map.create("hash", 4, 4, 4, name="bad-name")
    with pytest.raises(MapError, match="too long"):
        Map.create("hash", 4, 4, 4, name="a" * 16)
    with pytest.raises(MapError, match="unrecognized map type: nope"):
        Map.create("nope", 4, 4, 4)


def test_array_len_and_percpu_values_one_per_cpu() -> None:
    with Map.create("percpu_array", 4, 12, 3, name="pca") as m:
        assert len(m) == 3
        m.update(b"\1\0\0\0", b"x" * 12)
        assert m.lookup(b"\1\0\0\0") == [b"x" * 12] * possible_cpus()
        vals = [bytes([i]) * 12 for i in range(possible_cpus())]
        m.update(b"\2\0\0\0", vals)
        assert m.lookup(b"\2\0\0\0") == vals
        with pytest.raises(MapError, match="needs"):
            m.update(b"\2\0\0\0", vals + vals)
        items = dict(m.items())
        assert items[b"\2\0\0\0"] == vals and len(items) == 3


def test_batch_update_lookup_delete_and_lookup_and_delete() -> None:
    with Map.create("hash", 4, 8, 1000, name="bat", key_type=ctypes.c_uint32,
                    value_type=ctypes.c_uint64) as m:
        assert m.update_batch({i: i * 3 for i in range(1000)}) == 1000
        assert sorted(m.items()) == [(i, i * 3) for i in range(1000)]
        assert m.delete_batch(range(500)) == 500
        got = m.lookup_and_delete_batch()
        assert sorted(got) == [(i, i * 3) for i in range(500, 1000)] and m.items() == []


def test_failed_batch_says_how_many_were_applied() -> None:
    with Map.create("hash", 4, 8, 4, name="batf", key_type=ctypes.c_uint32, value_type=ctypes.c_uint64) as m:
        with pytest.raises(BatchError) as ei:
            m.update_batch({i: i for i in range(6)})
        assert ei.value.applied == 4 and ei.value.errno == errno.E2BIG and "after 4 of 6" in str(ei.value)


def test_batch_on_a_refusing_type_falls_back_element_wise() -> None:
    with Map.create("lpm_trie", 8, 4, 8, name="lpm", flags=1) as m:  # lpm_trie has no batch ops
        keys = [bytes([32, 0, 0, 0, 10, 0, 0, i]) for i in range(3)]
        assert m.update_batch(list(zip(keys, [b"abcd"] * 3))) == 3
        assert sorted(k for k, _ in m.items()) == sorted(keys)
        assert m.delete_batch(keys[:2]) == 2 and [k for k, _ in m.items()] == keys[2:]
        with pytest.raises(BatchError) as ei:
            m.delete_batch([keys[2], keys[0]])
        assert ei.value.applied == 1


def test_get_next_key_walks_and_ends_with_key_not_found(hmap: Map) -> None:
    hmap[5] = 1
    first = hmap.get_next_key()
    assert first == 5
    with pytest.raises(KeyNotFoundError):
        hmap.get_next_key(5)


def test_queue_and_stack_push_pop_peek() -> None:
    with Map.create("queue", 0, 4, 2, name="q", value_type=ctypes.c_uint32) as q:
        q.push(1)
        q.push(2)
        with pytest.raises(MapFullError):
            q.push(3)
        q.push(3, "exist")  # overwrite the oldest
        assert q.peek() == 2 and q.pop() == 2 and q.pop() == 3
        with pytest.raises(KeyNotFoundError, match="empty"):
            q.pop()
    with Map.create("stack", 0, 4, 2, name="s", value_type=ctypes.c_uint32) as s:
        s.push(1)
        s.push(2)
        assert s.pop() == 2 and s.peek() == 1


def test_bloom_filter_contains() -> None:
    with Map.create("bloom_filter", 0, 4, 16, name="bl", value_type=ctypes.c_uint32) as b:
        b.push(42)
        assert b.bloom_contains(42)


def test_pin_open_pinned_and_unpin(bpffs: Path) -> None:
    path = str(bpffs / "pinned_map")
    with Map.create("array", 4, 4, 2, name="pinme", value_type=ctypes.c_uint32) as m:
        m[1] = 7
        m.pin(path)
        with Map.from_pinned(path, value_type=ctypes.c_uint32) as again:
            assert again.id == m.id and again[1] == 7
        with Map.from_id(m.id) as by_id:
            assert by_id.name == "pinme"
        assert any(x.id == m.id for x in Map.by_name("pinme"))
        assert m.info(pinned=True).pinned == [path]
        m.unpin()
    assert not os.path.exists(path)
    with pytest.raises(NotFoundError, match="bpf obj get"):
        Map.from_pinned(path)


def test_map_in_map_slots_and_open_inner() -> None:
    inner = Map.create("array", 4, 4, 1, name="inner", value_type=ctypes.c_uint32)
    with Map.create("array_of_maps", 4, 4, 2, name="outer", inner_map=inner) as outer:
        outer.set_inner(1, inner)
        assert outer.inner_map_id(1) == inner.id and outer[1] == inner.id
        inner[0] = 99
        with outer.open_inner(1, value_type=ctypes.c_uint32) as im:
            assert im.id == inner.id and im[0] == 99
        outer.set_inner(0, id=inner.id)
        assert outer[0] == inner.id
    with pytest.raises(MapError, match="inner_map"):
        Map.create("hash_of_maps", 4, 4, 2, name="nomap")
    inner.close()


def test_prog_array_slot_from_pinned_program(bpffs: Path, objs: Path, bpftool: str) -> None:
    import subprocess

    subprocess.run([bpftool, "prog", "load", str(objs / "xdp_counter.o"), str(bpffs / "prog")], check=True)
    with Map.create("prog_array", 4, 4, 2, name="jmp") as pa:
        pa.set_prog(0, pinned=str(bpffs / "prog"))
        pid = pa.prog_id(0)
        pa.set_prog(1, id=pid)
        assert pa[1] == pid and sorted(pa) == [0, 1]


def test_mmapable_array_reads_and_writes_without_syscalls() -> None:
    with Map.create("array", 4, 8, 4, name="mm", flags=1 << 10, value_type=ctypes.c_uint64) as m:
        view = m.mmap()
        view[2] = 1234
        assert m[2] == 1234
        m[3] = 77
        assert view[3] == 77 and len(view) == 4
    with Map.create("array", 4, 4, 2, name="mm4", flags=1 << 10, value_type=ctypes.c_uint32) as m4:
        v4 = m4.mmap()  # 4-byte values sit in 8-byte slots
        v4[1] = 5
        assert m4[1] == 5 and v4[1] == 5


def test_mmap_of_a_non_mmapable_map_is_refused(hmap: Map) -> None:
    with pytest.raises(MapError, match="not an mmapable array"):
        hmap.mmap()


def test_closed_map_refuses_operations(hmap: Map) -> None:
    hmap.close()
    with pytest.raises(ValueError, match="closed"):
        hmap.lookup(1)


def test_update_batch_takes_keys_and_values_positionally_from_sequences_and_buffers(hmap: Map) -> None:
    from array import array

    assert hmap.update_batch(array("I", [1, 2]), array("Q", [10, 20])) == 2
    assert hmap.update_batch(bytes(array("I", [3])), bytearray(array("Q", [30]))) == 1
    assert hmap.update_batch([4], [40]) == 1
    assert sorted(hmap.items()) == [(1, 10), (2, 20), (3, 30), (4, 40)]
    with pytest.raises(MapError, match="give items or keys and values, not both"):
        hmap.update_batch({5: 50}, keys=[5], values=[50])
    with pytest.raises(MapError, match="12 key bytes and 8 value bytes are not a whole number"):
        hmap.update_batch(array("I", [5, 6, 7]), array("Q", [1]))


def test_whole_map_reads_reuse_their_buffers_and_stay_correct(hmap: Map) -> None:
    hmap.update_batch([0, 1, 2], [5, 6, 7])
    assert sorted(hmap.items()) == [(0, 5), (1, 6), (2, 7)]
    hmap.delete(1)
    assert sorted(hmap.items()) == [(0, 5), (2, 7)]  # nothing stale from the previous read
    assert sorted(hmap.lookup_and_delete_batch()) == [(0, 5), (2, 7)] and hmap.items() == []


def test_paths_with_a_nul_byte_are_refused_not_cut_short(bpffs: Path) -> None:
    # C would stop at the NUL: the pin would land at bpffs/b, the open would find bpffs/a
    from pybpfobj.errors import BpfError

    m = Map.create("array", 4, 4, 1, name="nul")
    try:
        m.pin(str(bpffs / "a"))
        with pytest.raises(BpfError, match="contains a NUL byte") as info:
            m.pin(str(bpffs / "b") + "\0.x")
        assert info.value.errno == errno.EINVAL
        with pytest.raises(BpfError, match="contains a NUL byte"):
            Map.from_pinned(str(bpffs / "a") + "\0.x")
        assert sorted(p.name for p in bpffs.iterdir() if not p.name.endswith(".debug")) == ["a"]
    finally:
        m.close()


def test_a_global_named_like_a_ctypes_attribute_gets_a_view_field(need_root: None, tmp_path: Path) -> None:
    # `_fields_` as a field name broke the view's ctypes class; `_tail`/`_pad0` collided with padding
    import subprocess

    from pybpfobj.loader import BpfObject

    src = tmp_path / "ctnames.bpf.c"
    src.write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        "int _fields_ = 3; int _pack_ = 4; int _tail = 5; int _pad0 = 6;\n"
        'SEC("xdp") int p(struct xdp_md *c) { return _fields_ + _pack_ + _tail + _pad0; }\n'
        'char LICENSE[] SEC("license") = "GPL";\n')
    obj = tmp_path / "ctnames.o"
    subprocess.run(["clang-19", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c",
                    str(src), "-o", str(obj)], check=True)
    with BpfObject(obj) as o:
        o.load()
        view = o.maps["ctnames.data"].mmap()
        assert (view._fields__, view._pack__, view._tail, view._pad0) == (3, 4, 5, 6)
