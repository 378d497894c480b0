"""RingBuffer's own reader (the ring mapped into the process, records parsed in Python)
against libbpf's callback reader on the same producer: same records, same order, discarded
records skipped, records crossing the end of a one-page ring, batches, structs and asyncio.

The producer (compiled here) writes, per test run of an XDP program, ``n`` records given
in the packet; record ``s`` (a global sequence number) is discarded when ``s % every ==
every - 1``, otherwise it is ``s`` (u64) followed by bytes ``(s + j) & 0xff`` up to a
length of 8..71 bytes (``produce``) or exactly 8 bytes (``produce_fixed``).
"""

from __future__ import annotations

import asyncio
import ctypes
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from pybpfobj.errors import BpfError, LibbpfError, MapError
from pybpfobj.events import RingBuffer
from pybpfobj.kernel import attach
from pybpfobj.loader import BpfObject

RING = 4096  # one page: a few batches wrap around it

SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} small SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} other SEC(".maps");

__u64 seq;

static __always_inline int params(struct xdp_md *ctx, __u32 *n, __u32 *every)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 *p = data;

	if ((void *)(p + 2) > end)
		return -1;
	*n = p[0];
	*every = p[1];
	return 0;
}

static __always_inline int discarded(__u64 s, __u32 every)
{
	if (every && s % every == every - 1) {
		__u64 *r = bpf_ringbuf_reserve(&small, 16, 0);

		if (r) {
			r[0] = s;
			r[1] = ~s;
			bpf_ringbuf_discard(r, 0);
		}
		return 1;
	}
	return 0;
}

SEC("xdp")
int produce(struct xdp_md *ctx)
{
	__u32 n, every;
	__u8 buf[72];

	if (params(ctx, &n, &every))
		return XDP_ABORTED;
	for (int i = 0; i < 128; i++) {
		__u64 s;
		__u32 len;

		if (i >= n)
			break;
		s = __sync_fetch_and_add(&seq, 1);
		if (discarded(s, every))
			continue;
		for (int j = 8; j < 72; j++)
			buf[j] = (s + j) & 0xff;
		__builtin_memcpy(buf, &s, 8);
		len = 8 + ((s * 7) & 63);
		bpf_ringbuf_output(&small, buf, len, 0);
	}
	return XDP_PASS;
}

SEC("xdp")
int produce_fixed(struct xdp_md *ctx)
{
	__u32 n, every;

	if (params(ctx, &n, &every))
		return XDP_ABORTED;
	for (int i = 0; i < 128; i++) {
		__u64 s;

		if (i >= n)
			break;
		s = __sync_fetch_and_add(&seq, 1);
		if (discarded(s, every))
			continue;
		bpf_ringbuf_output(&small, &s, 8, 0);
	}
	return XDP_PASS;
}

SEC("xdp")
int produce_other(struct xdp_md *ctx)
{
	__u64 s = 1000;

	bpf_ringbuf_output(&other, &s, 8, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def obj_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    from bpfbuild import build_bpf

    return str(build_bpf(tmp_path_factory.mktemp("rbsrc"), "rb", SOURCE))


@pytest.fixture
def prod(need_root: None, obj_path: str) -> Iterator[Any]:
    with BpfObject(obj_path) as obj:
        obj.load()
        yield obj


def run(obj: Any, n: int, every: int = 0, prog: str = "produce") -> None:
    obj.programs[prog].test_run(struct.pack("<II", n, every) + bytes(8), data_size_out=0)


def expected(start: int, count: int, every: int = 0, fixed: bool = False) -> list[bytes]:
    """The records ``produce`` (or ``produce_fixed``) writes for sequence numbers start..start+count-1."""
    out = []
    for s in range(start, start + count):
        if every and s % every == every - 1:
            continue
        if fixed:
            out.append(struct.pack("<Q", s))
        else:
            n = 8 + ((s * 7) & 63)
            out.append((struct.pack("<Q", s) + bytes((s + j) & 0xFF for j in range(8, 72)))[:n])
    return out


def libbpf_read(m: Any) -> list[bytes]:
    """Every record available, through libbpf's ring_buffer__consume and a ctypes callback."""
    got: list[bytes] = []

    def on_sample(_ctx: int | None, data: int | None, size: int) -> int:
        got.append(ctypes.string_at(data, size) if data else b"")
        return 0

    fn = attach.RING_BUFFER_SAMPLE_FN(on_sample)
    ptr = attach.ring_buffer_new(m.fd, fn, "reference reader")
    try:
        attach.ring_buffer_consume(ptr)
    finally:
        attach.ring_buffer_free(ptr)
    return got


BATCHES = [(40, 0), (37, 3), (45, 4), (1, 0), (44, 2), (40, 5), (43, 7), (39, 3), (44, 0), (41, 6)]


def produce_batches(obj: Any, reader: Any) -> list[list[bytes]]:
    return [(run(obj, n, every), reader())[1] for n, every in BATCHES]


def test_read_batch_gives_libbpfs_records_in_order_across_wraparound(obj_path: str, need_root: None) -> None:
    with BpfObject(obj_path) as a:
        a.load()
        ref = produce_batches(a, lambda: libbpf_read(a.maps["small"]))
    with BpfObject(obj_path) as b:
        b.load()
        with RingBuffer(b.maps["small"]) as rb:
            ours = produce_batches(b, rb.read_batch)
    assert ours == ref
    s, want = 0, []
    for n, every in BATCHES:
        want.append(expected(s, n, every))
        s += n
    assert ours == want
    pos = crossing = 0
    s = 0
    for n, every in BATCHES:  # where each record (discarded ones too) sat in the ring
        for q in range(s, s + n):
            size = 16 if every and q % every == every - 1 else 8 + ((q * 7) & 63)
            step = (size + 15) & ~7
            crossing += (pos % RING) + step > RING
            pos += step
        s += n
    assert pos > 3 * RING and crossing >= 2  # round the ring several times, records across its end


def test_same_size_runs_are_cut_whole_and_stop_at_discards(prod: Any) -> None:
    with RingBuffer(prod.maps["small"]) as rb:
        run(prod, 100, 0, "produce_fixed")
        assert rb.read_batch() == expected(0, 100, fixed=True)
        run(prod, 100, 9, "produce_fixed")  # a discarded record every 9th: runs of 8
        assert rb.read_batch() == expected(100, 100, 9, fixed=True)
        run(prod, 100, 0, "produce_fixed")
        assert rb.read_structs("<Q") == [(s,) for s in range(200, 300)]
        run(prod, 60, 4, "produce_fixed")
        assert rb.read_structs(struct.Struct("<Q")) == [
            (s,) for s in range(300, 360) if s % 4 != 3]


def test_read_structs_decodes_the_leading_bytes_of_variable_records(prod: Any) -> None:
    with RingBuffer(prod.maps["small"]) as rb:
        run(prod, 30, 4)  # lengths 8..71: the format takes the sequence number of each
        assert rb.read_structs("<Q") == [(s,) for s in range(30) if s % 4 != 3]
        run(prod, 30, 4)  # none of these is shorter than 9 bytes
        assert rb.read_structs("<QB") == [(s, (s + 8) & 0xFF) for s in range(30, 60) if s % 4 != 3]


def test_read_structs_refuses_records_shorter_than_the_format_and_keeps_them(prod: Any) -> None:
    with RingBuffer(prod.maps["small"]) as rb:
        run(prod, 3, 0, "produce_fixed")
        with pytest.raises(MapError, match="8-byte record in ring buffer map small is shorter than the "
                                           "format's 16 bytes"):
            rb.read_structs("<QQ")
        assert rb.read_batch() == expected(0, 3, fixed=True)


def test_max_records_leaves_the_rest_in_the_ring(prod: Any) -> None:
    with RingBuffer(prod.maps["small"]) as rb:
        run(prod, 50, 0, "produce_fixed")
        assert rb.read_batch(max_records=20) == expected(0, 20, fixed=True)
        assert rb.read_batch(max_records=5) == expected(20, 5, fixed=True)
        assert rb.read_batch() == expected(25, 25, fixed=True)
        assert rb.read_batch() == []


def test_read_batch_waits_for_the_first_record_up_to_its_timeout(prod: Any) -> None:
    with RingBuffer(prod.maps["small"]) as rb:
        assert rb.read_batch(50) == []


def test_callback_api_on_the_parser_matches_libbpf_and_stops_on_negative_return(prod: Any) -> None:
    got: list[bytes] = []

    def cb(data: bytes) -> int:
        got.append(data)
        return -7 if len(got) == 5 else 0

    with RingBuffer(prod.maps["small"], callback=cb) as rb:
        run(prod, 40, 3)
        with pytest.raises(LibbpfError, match="callback on map small stopped the poll") as ei:
            rb.poll(1000)
        assert ei.value.errno == 7
        assert rb.poll(1000) == len(expected(0, 40, 3)) - 5  # the rest stayed in the ring
    assert got == expected(0, 40, 3)


def test_callback_exception_propagates_and_later_records_stay(prod: Any) -> None:
    got: list[bytes] = []

    def cb(data: bytes) -> None:
        if len(got) == 2 and not getattr(cb, "raised", False):
            cb.raised = True  # type: ignore[attr-defined]
            raise ValueError("from callback")
        got.append(data)

    with RingBuffer(prod.maps["small"], callback=cb) as rb:
        run(prod, 20, 0, "produce_fixed")
        with pytest.raises(ValueError, match="from callback"):
            rb.consume()
        assert rb.consume() == 17  # the record whose callback raised is consumed, as with libbpf
    assert got == [r for i, r in enumerate(expected(0, 20, fixed=True)) if i != 2]


def test_add_reads_a_second_ring_through_the_same_epoll_fd(prod: Any) -> None:
    mine: list[bytes] = []
    other: list[bytes] = []
    with RingBuffer(prod.maps["small"], callback=mine.append) as rb:
        rb.add(prod.maps["other"], callback=other.append)
        run(prod, 2, 0, "produce_fixed")
        prod.programs["produce_other"].test_run(bytes(16), data_size_out=0)
        assert rb.poll(1000) == 3
    assert mine == expected(0, 2, fixed=True) and other == [struct.pack("<Q", 1000)]


def test_asyncio_reads_batches_when_the_epoll_fd_is_readable(prod: Any) -> None:
    async def main() -> list[bytes]:
        got: list[bytes] = []
        done = asyncio.Event()
        with RingBuffer(prod.maps["small"]) as rb:
            loop = asyncio.get_running_loop()

            def on_ready() -> None:
                got.extend(rb.read_batch())
                if len(got) >= 60:
                    done.set()

            loop.add_reader(rb.epoll_fd, on_ready)
            try:
                for _ in range(3):
                    loop.call_soon(run, prod, 20)
                    await asyncio.sleep(0.01)
                await asyncio.wait_for(done.wait(), 5)
            finally:
                loop.remove_reader(rb.epoll_fd)
        return got

    assert asyncio.run(main()) == expected(0, 60)


def test_async_for_yields_records_of_the_parser(prod: Any) -> None:
    async def main() -> list[bytes]:
        got: list[bytes] = []
        rb = RingBuffer(prod.maps["small"])
        asyncio.get_running_loop().call_later(0.02, run, prod, 12, 5)
        async for rec in rb:
            got.append(rec)
            if len(got) == len(expected(0, 12, 5)):
                break
        rb.close()
        return got

    assert asyncio.run(asyncio.wait_for(main(), 5)) == expected(0, 12, 5)


def test_closed_reader_refuses_reads_and_close_is_idempotent(prod: Any) -> None:
    rb = RingBuffer(prod.maps["small"])
    rb.close()
    rb.close()
    with pytest.raises(BpfError, match="ring buffer reader is closed"):
        rb.read_batch()
    with pytest.raises(BpfError, match="ring buffer reader is closed"):
        rb.poll(0)


def test_reader_keeps_working_after_the_map_handle_is_closed(obj_path: str, need_root: None) -> None:
    with BpfObject(obj_path) as obj:
        obj.load()
        rb = RingBuffer(obj.maps["small"].fd)
        run(obj, 4, 0, "produce_fixed")
    # the object (and its map fds) is gone; the reader's own fd and mappings still read the ring
    assert rb.read_batch() == expected(0, 4, fixed=True)
    rb.close()
