"""libbpf prototypes and checked wrappers for running and attaching programs.

Areas: ``bpf_prog_test_run_opts``, ``bpf_prog_attach``/``bpf_prog_detach2``,
``bpf_link_create``/``bpf_link_detach``, XDP (``bpf_xdp_attach/detach/query``),
tc (``bpf_tc_hook_create/destroy``, ``bpf_tc_attach/detach``), and the ring
buffer / perf buffer managers (``ring_buffer__*``, ``perf_buffer__*``).

Every wrapper checks libbpf's return and raises a :mod:`pybpfobj.errors`
exception naming what failed; nothing outside :mod:`pybpfobj.kernel`
touches these prototypes.
"""

from __future__ import annotations

import ctypes
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from dataclasses import dataclass
from typing import Any

from pybpfobj.errors import BpfError, LibbpfError, ProgramError
from pybpfobj.kernel import libbpf
from pybpfobj.kernel.libbpf import check, check_ptr, lib

# ---------------------------------------------------------------------------
# structures (libbpf 1.1 layouts; ``sz`` first lets newer libbpfs accept them)


class bpf_test_run_opts(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("data_in", c_void_p),
        ("data_out", c_void_p),
        ("data_size_in", c_uint32),
        ("data_size_out", c_uint32),
        ("ctx_in", c_void_p),
        ("ctx_out", c_void_p),
        ("ctx_size_in", c_uint32),
        ("ctx_size_out", c_uint32),
        ("retval", c_uint32),
        ("repeat", c_int),
        ("duration", c_uint32),
        ("flags", c_uint32),
        ("cpu", c_uint32),
        ("batch_size", c_uint32),
    ]


class bpf_link_create_opts(Structure):
    # only ``flags`` is used here; the tail is the union of per-type options
    _fields_ = [
        ("sz", c_size_t),
        ("flags", c_uint32),
        ("iter_info", c_void_p),
        ("iter_info_len", c_uint32),
        ("target_btf_id", c_uint32),
        ("_union", c_uint64 * 4),
    ]


class bpf_xdp_attach_opts(Structure):
    _fields_ = [("sz", c_size_t), ("old_prog_fd", c_int), ("_pad", c_int)]


class bpf_xdp_query_opts(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("prog_id", c_uint32),
        ("drv_prog_id", c_uint32),
        ("hw_prog_id", c_uint32),
        ("skb_prog_id", c_uint32),
        ("attach_mode", c_uint8),
        ("_pad", c_uint8 * 7),
    ]


class bpf_tc_hook(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("ifindex", c_int),
        ("attach_point", c_int),
        ("parent", c_uint32),
        ("_pad", c_uint32),
    ]


class bpf_tc_opts(Structure):
    _fields_ = [
        ("sz", c_size_t),
        ("prog_fd", c_int),
        ("flags", c_uint32),
        ("prog_id", c_uint32),
        ("handle", c_uint32),
        ("priority", c_uint32),
        ("_pad", c_uint32),
    ]


class perf_buffer_raw_opts(Structure):
    # the two ``long :0`` of libbpf's header take no space: cpu_cnt sits at 8
    _fields_ = [
        ("sz", c_size_t),
        ("cpu_cnt", c_int),
        ("cpus", POINTER(c_int)),
        ("map_keys", POINTER(c_int)),
    ]


class perf_event_attr(Structure):
    """The head of ``struct perf_event_attr`` (PERF_ATTR_SIZE_VER0, 64 bytes): all event_pipe sets."""

    _fields_ = [
        ("type", c_uint32),
        ("size", c_uint32),
        ("config", c_uint64),
        ("sample_period", c_uint64),
        ("sample_type", c_uint64),
        ("read_format", c_uint64),
        ("flags", c_uint64),
        ("wakeup_events", c_uint32),
        ("bp_type", c_uint32),
        ("config1", c_uint64),
    ]


PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_TIME = 1 << 2
PERF_SAMPLE_RAW = 1 << 10
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
LIBBPF_PERF_EVENT_DONE = 0
LIBBPF_PERF_EVENT_CONT = -2
LIBBPF_PERF_EVENT_ERROR = -1


def _opts(cls: type[Structure]) -> Any:
    o = cls()
    o.sz = ctypes.sizeof(cls)
    return o


# callback types; callers keep the CFUNCTYPE objects alive as long as the manager
RING_BUFFER_SAMPLE_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)
PERF_BUFFER_SAMPLE_FN = CFUNCTYPE(None, c_void_p, c_int, c_void_p, c_uint32)
PERF_BUFFER_LOST_FN = CFUNCTYPE(None, c_void_p, c_int, c_uint64)
PERF_BUFFER_EVENT_FN = CFUNCTYPE(c_int, c_void_p, c_int, c_void_p)  # raw: (ctx, cpu, perf_event_header*)

# tc attach points and XDP flags (linux/if_link.h)
BPF_TC_INGRESS, BPF_TC_EGRESS, BPF_TC_CUSTOM = 1, 2, 4
XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_FLAGS_REPLACE = 1 << 4


@libbpf.declares
def _attach_protos(lb: ctypes.CDLL) -> None:
    p = libbpf._proto
    p(lb, "bpf_prog_test_run_opts", c_int, c_int, POINTER(bpf_test_run_opts))
    p(lb, "bpf_prog_attach", c_int, c_int, c_int, c_int, c_uint32)
    p(lb, "bpf_prog_detach2", c_int, c_int, c_int, c_int)
    p(lb, "bpf_link_create", c_int, c_int, c_int, c_int, POINTER(bpf_link_create_opts))
    p(lb, "bpf_link_detach", c_int, c_int)
    p(lb, "bpf_prog_query", c_int, c_int, c_int, c_uint32, POINTER(c_uint32), POINTER(c_uint32),
      POINTER(c_uint32))
    p(lb, "bpf_xdp_attach", c_int, c_int, c_int, c_uint32, POINTER(bpf_xdp_attach_opts))
    p(lb, "bpf_xdp_detach", c_int, c_int, c_uint32, POINTER(bpf_xdp_attach_opts))
    p(lb, "bpf_xdp_query", c_int, c_int, c_int, POINTER(bpf_xdp_query_opts))
    p(lb, "bpf_tc_hook_create", c_int, POINTER(bpf_tc_hook))
    p(lb, "bpf_tc_hook_destroy", c_int, POINTER(bpf_tc_hook))
    p(lb, "bpf_tc_attach", c_int, POINTER(bpf_tc_hook), POINTER(bpf_tc_opts))
    p(lb, "bpf_tc_detach", c_int, POINTER(bpf_tc_hook), POINTER(bpf_tc_opts))
    p(lb, "ring_buffer__new", c_void_p, c_int, RING_BUFFER_SAMPLE_FN, c_void_p, c_void_p)
    p(lb, "ring_buffer__add", c_int, c_void_p, c_int, RING_BUFFER_SAMPLE_FN, c_void_p)
    p(lb, "ring_buffer__poll", c_int, c_void_p, c_int)
    p(lb, "ring_buffer__consume", c_int, c_void_p)
    p(lb, "ring_buffer__epoll_fd", c_int, c_void_p)
    p(lb, "ring_buffer__free", None, c_void_p)
    p(lb, "perf_buffer__new", c_void_p, c_int, c_size_t, PERF_BUFFER_SAMPLE_FN,
      PERF_BUFFER_LOST_FN, c_void_p, c_void_p)
    p(lb, "perf_buffer__new_raw", c_void_p, c_int, c_size_t, POINTER(perf_event_attr),
      PERF_BUFFER_EVENT_FN, c_void_p, POINTER(perf_buffer_raw_opts))
    p(lb, "perf_buffer__poll", c_int, c_void_p, c_int)
    p(lb, "perf_buffer__consume", c_int, c_void_p)
    p(lb, "perf_buffer__epoll_fd", c_int, c_void_p)
    p(lb, "perf_buffer__free", None, c_void_p)
    p(lb, "perf_buffer__buffer_cnt", c_size_t, c_void_p)
    _ = c_char_p  # keep import list stable for readers of this module


# ---------------------------------------------------------------------------
# test runs


@dataclass(frozen=True)
class RawTestRun:
    """What BPF_PROG_TEST_RUN returned."""

    retval: int
    duration_ns: int
    data_out: bytes | None
    ctx_out: bytes | None


def prog_test_run(prog_fd: int, data_in: bytes | None, data_size_out: int,
                  ctx_in: bytes | None, ctx_size_out: int, repeat: int = 1, flags: int = 0,
                  cpu: int = 0, batch_size: int = 0, prog: str | None = None) -> RawTestRun:
    """One ``bpf_prog_test_run_opts`` call; output buffers of the given sizes (0 = none)."""
    o = _opts(bpf_test_run_opts)
    keep: list[Any] = []
    if data_in is not None:
        buf_in = ctypes.create_string_buffer(data_in, len(data_in))
        keep.append(buf_in)
        o.data_in = ctypes.cast(buf_in, c_void_p)
        o.data_size_in = len(data_in)
    out = None
    if data_size_out:
        out = ctypes.create_string_buffer(data_size_out)
        o.data_out = ctypes.cast(out, c_void_p)
        o.data_size_out = data_size_out
    if ctx_in is not None:
        cbuf = ctypes.create_string_buffer(ctx_in, max(len(ctx_in), 1))
        keep.append(cbuf)
        o.ctx_in = ctypes.cast(cbuf, c_void_p)
        o.ctx_size_in = len(ctx_in)
    cout = None
    if ctx_size_out:
        cout = ctypes.create_string_buffer(ctx_size_out)
        o.ctx_out = ctypes.cast(cout, c_void_p)
        o.ctx_size_out = ctx_size_out
    o.repeat = repeat
    o.flags = flags
    o.cpu = cpu
    o.batch_size = batch_size
    ret = lib().bpf_prog_test_run_opts(prog_fd, ctypes.byref(o))
    if ret < 0:
        err = -ret
        raise _test_run_error(err, prog, data_size_out)
    return RawTestRun(
        retval=o.retval,
        duration_ns=o.duration,
        data_out=out.raw[: o.data_size_out] if out is not None else None,
        ctx_out=cout.raw[: o.ctx_size_out] if cout is not None else None,
    )


def prog_test_run_ctx(prog_fd: int, ctx_in: bytes, flags: int, cpu: int, what: str,
                      prog: str | None) -> tuple[int, int, bytes]:
    """A run with only a context (raw_tracepoint, syscall): the kernel copies a syscall
    program's context back over ``ctx_in``; returns retval, duration and that buffer."""
    o = _opts(bpf_test_run_opts)
    buf = ctypes.create_string_buffer(ctx_in, len(ctx_in))
    o.ctx_in = ctypes.cast(buf, c_void_p)
    o.ctx_size_in = len(ctx_in)
    o.flags = flags
    o.cpu = cpu
    check(lib().bpf_prog_test_run_opts(prog_fd, ctypes.byref(o)), what, ProgramError, prog=prog)
    return o.retval, o.duration, buf.raw


def _test_run_error(err: int, prog: str | None, data_size_out: int) -> BpfError:
    import errno as E
    import os

    who = f"program {prog!r}" if prog else "program"
    if err == E.ENOSPC:
        msg = (f"test run of {who}: data_size_out {data_size_out} is too small for the output "
               f"packet ({os.strerror(err)})")
    elif err in (E.ENOTSUPP if hasattr(E, "ENOTSUPP") else 524, 524, E.EOPNOTSUPP):
        msg = f"test run of {who}: this program type cannot be test-run (BPF_PROG_TEST_RUN not supported)"
    else:
        msg = f"test run of {who} failed: {os.strerror(err) if err != 524 else 'Unknown error 524'}"
    return ProgramError(msg, errno=err, prog=prog)


# ---------------------------------------------------------------------------
# attach / detach / links


def prog_attach(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0,
                what: str = "bpf_prog_attach") -> None:
    check(lib().bpf_prog_attach(prog_fd, target_fd, attach_type, flags), what, ProgramError)


def prog_detach2(prog_fd: int, target_fd: int, attach_type: int, what: str = "bpf_prog_detach2") -> None:
    check(lib().bpf_prog_detach2(prog_fd, target_fd, attach_type), what, ProgramError)


def link_create(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0,
                what: str = "bpf_link_create") -> int:
    """BPF_LINK_CREATE; returns the link fd (caller owns it)."""
    o = _opts(bpf_link_create_opts)
    o.flags = flags
    return check(lib().bpf_link_create(prog_fd, target_fd, attach_type, ctypes.byref(o)), what,
                 LibbpfError)


def link_detach(link_fd: int, what: str = "bpf_link_detach") -> None:
    check(lib().bpf_link_detach(link_fd), what, LibbpfError)


def prog_query(target_fd: int, attach_type: int, max_progs: int = 64) -> list[int]:
    """Ids of the programs attached to ``target_fd`` (map, netns, cgroup) for ``attach_type``."""
    ids = (c_uint32 * max_progs)()
    cnt = c_uint32(max_progs)
    flags = c_uint32(0)
    check(lib().bpf_prog_query(target_fd, attach_type, 0, ctypes.byref(flags), ids, ctypes.byref(cnt)),
          "bpf_prog_query")
    return list(ids[: min(cnt.value, max_progs)])


def xdp_attach(ifindex: int, prog_fd: int, flags: int = 0, old_prog_fd: int = 0,
               what: str = "bpf_xdp_attach") -> None:
    o = _opts(bpf_xdp_attach_opts)
    o.old_prog_fd = old_prog_fd
    check(lib().bpf_xdp_attach(ifindex, prog_fd, flags, ctypes.byref(o)), what, LibbpfError)


def xdp_detach(ifindex: int, flags: int = 0, what: str = "bpf_xdp_detach") -> None:
    o = _opts(bpf_xdp_attach_opts)
    check(lib().bpf_xdp_detach(ifindex, flags, ctypes.byref(o)), what, LibbpfError)


@dataclass(frozen=True)
class XdpQuery:
    """Program ids attached at an interface's XDP hook (0 = none) and the attach mode."""

    prog_id: int
    drv_prog_id: int
    hw_prog_id: int
    skb_prog_id: int
    attach_mode: int


def xdp_query(ifindex: int, flags: int = 0) -> XdpQuery:
    o = _opts(bpf_xdp_query_opts)
    check(lib().bpf_xdp_query(ifindex, flags, ctypes.byref(o)), f"bpf_xdp_query(ifindex {ifindex})")
    return XdpQuery(o.prog_id, o.drv_prog_id, o.hw_prog_id, o.skb_prog_id, o.attach_mode)


def tc_hook(ifindex: int, attach_point: int, parent: int = 0) -> bpf_tc_hook:
    h = _opts(bpf_tc_hook)
    h.ifindex = ifindex
    h.attach_point = attach_point
    h.parent = parent
    return h  # type: ignore[no-any-return]


def tc_hook_create(hook: bpf_tc_hook) -> bool:
    """Create the clsact qdisc; False when it already existed (EEXIST)."""
    ret = lib().bpf_tc_hook_create(ctypes.byref(hook))
    if ret == -17:
        return False
    check(ret, f"bpf_tc_hook_create(ifindex {hook.ifindex})")
    return True


def tc_hook_destroy(hook: bpf_tc_hook) -> None:
    check(lib().bpf_tc_hook_destroy(ctypes.byref(hook)), f"bpf_tc_hook_destroy(ifindex {hook.ifindex})")


def tc_attach(hook: bpf_tc_hook, prog_fd: int, handle: int = 0, priority: int = 0,
              flags: int = 0) -> tuple[int, int, int]:
    """Attach a filter; returns (handle, priority, prog_id) libbpf chose."""
    o = _opts(bpf_tc_opts)
    o.prog_fd = prog_fd
    o.handle = handle
    o.priority = priority
    o.flags = flags
    check(lib().bpf_tc_attach(ctypes.byref(hook), ctypes.byref(o)),
          f"bpf_tc_attach(ifindex {hook.ifindex})", ProgramError)
    return o.handle, o.priority, o.prog_id


def tc_detach(hook: bpf_tc_hook, handle: int, priority: int) -> None:
    o = _opts(bpf_tc_opts)
    o.handle = handle
    o.priority = priority
    check(lib().bpf_tc_detach(ctypes.byref(hook), ctypes.byref(o)),
          f"bpf_tc_detach(ifindex {hook.ifindex})")


# ---------------------------------------------------------------------------
# ring buffer / perf buffer managers (opaque pointers)


def ring_buffer_new(map_fd: int, cb: Any, what: str) -> int:
    lb = lib()
    ctypes.set_errno(0)
    return check_ptr(lb.ring_buffer__new(map_fd, cb, None, None), what)


def ring_buffer_add(rb: int, map_fd: int, cb: Any, what: str) -> None:
    check(lib().ring_buffer__add(rb, map_fd, cb, None), what)


def _polled(ret: int, what: str) -> int:
    """A ``*__poll`` result: EINTR (a signal) counts as nothing polled so Python's handlers run."""
    if ret == -4:  # -EINTR
        return 0
    return check(ret, what)


def ring_buffer_poll(rb: int, timeout_ms: int) -> int:
    """Events consumed (callbacks run); negative errno from a callback passes through as error."""
    return _polled(lib().ring_buffer__poll(rb, timeout_ms), "ring_buffer__poll")


def ring_buffer_consume(rb: int) -> int:
    return check(lib().ring_buffer__consume(rb), "ring_buffer__consume")


def ring_buffer_epoll_fd(rb: int) -> int:
    return check(lib().ring_buffer__epoll_fd(rb), "ring_buffer__epoll_fd")


def ring_buffer_free(rb: int) -> None:
    lib().ring_buffer__free(rb)


def perf_buffer_new(map_fd: int, page_cnt: int, sample_cb: Any, lost_cb: Any, what: str) -> int:
    ctypes.set_errno(0)
    return check_ptr(lib().perf_buffer__new(map_fd, page_cnt, sample_cb, lost_cb, None, None), what)


def perf_buffer_new_raw(map_fd: int, page_cnt: int, event_cb: Any, cpus: dict[int, int] | None,
                        what: str) -> int:
    """A perf buffer of BPF output events carrying raw data and the kernel's timestamp.

    ``cpus`` maps each CPU to open a ring on to the map index its fd goes
    in; ``None`` opens every possible CPU at index = CPU.
    """
    attr = perf_event_attr()
    attr.type = PERF_TYPE_SOFTWARE
    attr.size = ctypes.sizeof(perf_event_attr)
    attr.config = PERF_COUNT_SW_BPF_OUTPUT
    attr.sample_period = 1
    attr.sample_type = PERF_SAMPLE_RAW | PERF_SAMPLE_TIME
    attr.wakeup_events = 1
    opts = _opts(perf_buffer_raw_opts)
    if cpus:
        n = len(cpus)
        cpu_arr = (c_int * n)(*cpus.keys())
        key_arr = (c_int * n)(*cpus.values())
        opts.cpu_cnt = n
        opts.cpus = ctypes.cast(cpu_arr, POINTER(c_int))
        opts.map_keys = ctypes.cast(key_arr, POINTER(c_int))
    ctypes.set_errno(0)
    # attr and opts are read during the call only
    return check_ptr(lib().perf_buffer__new_raw(map_fd, page_cnt, ctypes.byref(attr), event_cb, None,
                                                ctypes.byref(opts)), what)


def perf_buffer_poll(pb: int, timeout_ms: int) -> int:
    return _polled(lib().perf_buffer__poll(pb, timeout_ms), "perf_buffer__poll")


def perf_buffer_consume(pb: int) -> int:
    return check(lib().perf_buffer__consume(pb), "perf_buffer__consume")


def perf_buffer_epoll_fd(pb: int) -> int:
    return check(lib().perf_buffer__epoll_fd(pb), "perf_buffer__epoll_fd")


def perf_buffer_free(pb: int) -> None:
    lib().perf_buffer__free(pb)


__all__ = [
    "BPF_TC_EGRESS",
    "BPF_TC_INGRESS",
    "PERF_BUFFER_EVENT_FN",
    "PERF_BUFFER_LOST_FN",
    "PERF_BUFFER_SAMPLE_FN",
    "RING_BUFFER_SAMPLE_FN",
    "XDP_FLAGS_DRV_MODE",
    "XDP_FLAGS_REPLACE",
    "XDP_FLAGS_SKB_MODE",
    "XDP_FLAGS_UPDATE_IF_NOEXIST",
    "RawTestRun",
    "XdpQuery",
    "bpf_test_run_opts",
    "link_create",
    "link_detach",
    "perf_buffer_consume",
    "perf_buffer_epoll_fd",
    "perf_buffer_free",
    "perf_buffer_new",
    "perf_buffer_new_raw",
    "perf_buffer_poll",
    "prog_attach",
    "prog_detach2",
    "prog_query",
    "prog_test_run",
    "ring_buffer_add",
    "ring_buffer_consume",
    "ring_buffer_epoll_fd",
    "ring_buffer_free",
    "ring_buffer_new",
    "ring_buffer_poll",
    "tc_attach",
    "tc_detach",
    "tc_hook",
    "tc_hook_create",
    "tc_hook_destroy",
    "xdp_attach",
    "xdp_detach",
    "xdp_query",
]


# ---------------------------------------------------------------------------
# prog_array slots (tail-call tables): the value written is a program fd,
# the value read back is the program's id.


def prog_array_get(map_fd: int, slot: int) -> int | None:
    """Id of the program in ``slot`` of a prog_array, or None when the slot is empty."""
    from pybpfobj.kernel import mapops  # declares bpf_map_* prototypes

    _ = mapops
    key = c_uint32(slot)
    val = c_uint32(0)
    ret = lib().bpf_map_lookup_elem(map_fd, ctypes.byref(key), ctypes.byref(val))
    if ret == -2:
        return None
    check(ret, f"reading slot {slot} of the prog_array")
    return int(val.value)


def prog_array_set(map_fd: int, slot: int, prog_fd: int | None) -> None:
    """Put program ``prog_fd`` in ``slot`` (atomically replacing what was there); None empties it."""
    from pybpfobj.kernel import mapops

    _ = mapops
    key = c_uint32(slot)
    if prog_fd is None:
        ret = lib().bpf_map_delete_elem(map_fd, ctypes.byref(key))
        if ret == -2:
            return
        check(ret, f"emptying slot {slot} of the prog_array")
        return
    val = c_uint32(prog_fd)
    check(lib().bpf_map_update_elem(map_fd, ctypes.byref(key), ctypes.byref(val), 0),
          f"writing slot {slot} of the prog_array")
