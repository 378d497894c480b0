"""Attaching programs: bpftool's ``prog attach|detach`` (sockmap/sockhash
verdicts and parsers, the netns flow dissector), XDP and tc on network
interfaces, and the :class:`Link` handles they return.

Programs and maps may be given as handles with ``.fd`` (``Program``,
``Map``) or as plain fds.  Every attach checks what it can before touching
the kernel (program type against the attach point, map type, interface
name), so a bad request fails with a clear error and leaves nothing
attached.
"""

from __future__ import annotations

import errno as E
import os
import socket
from typing import Self

from pybpfobj.constants import (
    ATTACH_TYPE,
    ATTACH_TYPES,
    MAP_TYPE,
    PROG_TYPE,
    attach_type_name,
    map_type_name,
    prog_type_name,
)
from pybpfobj.errors import BpfError, NotFoundError, ProgramError, UnsupportedError
from pybpfobj.testrun import HasFd, prog_fd, prog_label

ProgLike = int | HasFd
MapLike = int | HasFd

# bpftool's ATTACH_TYPE words for ``prog attach``, in its table order
# (enum order), and the attach types they stand for.
PROG_ATTACH_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("stream_parser", "sk_skb_stream_parser"),
    ("stream_verdict", "sk_skb_stream_verdict"),
    ("msg_verdict", "sk_msg_verdict"),
    ("flow_dissector", "flow_dissector"),
    ("skb_verdict", "sk_skb_verdict"),
)

# attach type -> (program type it needs, map types it accepts or () for none)
_SOCK_MAPS = (MAP_TYPE["sockmap"], MAP_TYPE["sockhash"])
_ATTACH_RULES: dict[int, tuple[int, tuple[int, ...]]] = {
    ATTACH_TYPE["sk_skb_stream_parser"]: (PROG_TYPE["sk_skb"], _SOCK_MAPS),
    ATTACH_TYPE["sk_skb_stream_verdict"]: (PROG_TYPE["sk_skb"], _SOCK_MAPS),
    ATTACH_TYPE["sk_skb_verdict"]: (PROG_TYPE["sk_skb"], _SOCK_MAPS),
    ATTACH_TYPE["sk_msg_verdict"]: (PROG_TYPE["sk_msg"], _SOCK_MAPS),
    ATTACH_TYPE["flow_dissector"]: (PROG_TYPE["flow_dissector"], ()),
}


def parse_attach_type(word: str) -> int | None:
    """The attach type a bpftool ``ATTACH_TYPE`` word names, as bpftool 7.1 reads it.

    libbpf's full attach type names (``sk_msg_verdict``, ``flow_dissector``,
    ...) match exactly; the short words ``stream_parser``,
    ``stream_verdict``, ``msg_verdict`` and ``skb_verdict`` match by prefix,
    in that (enum) order.
    """
    if not word:
        return None
    for value, name in enumerate(ATTACH_TYPES):
        if word == name:
            return value
    for short, full in sorted(PROG_ATTACH_KEYWORDS, key=lambda kv: ATTACH_TYPE[kv[1]]):
        if short != full and short.startswith(word):
            return ATTACH_TYPE[full]
    return None


def _fdinfo(fd: int) -> dict[str, str]:
    from pybpfobj.kernel import info

    return info.fdinfo(fd)


def _prog_type_of(fd: int) -> int:
    v = _fdinfo(fd).get("prog_type")
    if v is None:
        raise ProgramError(f"fd {fd} is not a BPF program", errno=E.EINVAL)
    return int(v)


def _map_type_of(fd: int) -> int:
    v = _fdinfo(fd).get("map_type")
    if v is None:
        raise BpfError(f"fd {fd} is not a BPF map", errno=E.EINVAL)
    return int(v)


def _name_of(x: object, fallback: str) -> str:
    n = getattr(x, "name", None)
    return n if isinstance(n, str) and n else fallback


def _check_sock_attach(prog: ProgLike, attach_type: int, target: MapLike | None) -> tuple[int, int]:
    rule = _ATTACH_RULES.get(attach_type)
    if rule is None:
        raise ProgramError(
            f"attach type {attach_type_name(attach_type)} is not one of prog attach's "
            f"(msg_verdict, skb_verdict, stream_verdict, stream_parser, flow_dissector)", errno=E.EINVAL)
    want_prog, want_maps = rule
    pfd = prog_fd(prog)
    pname = prog_label(prog) or f"fd {pfd}"
    ptype = _prog_type_of(pfd)
    if ptype != want_prog:
        raise ProgramError(
            f"program {pname} is of type {prog_type_name(ptype)}; attach type "
            f"{attach_type_name(attach_type)} needs a {prog_type_name(want_prog)} program",
            errno=E.EINVAL, prog=prog_label(prog))
    if not want_maps:
        return pfd, 0
    if target is None:
        raise ProgramError(f"attach type {attach_type_name(attach_type)} needs a sockmap or sockhash map",
                           errno=E.EINVAL, prog=prog_label(prog))
    mfd = prog_fd(target)
    mtype = _map_type_of(mfd)
    if mtype not in want_maps:
        mname = _name_of(target, f"fd {mfd}")
        raise ProgramError(
            f"map {mname} is of type {map_type_name(mtype)}; attach type {attach_type_name(attach_type)} "
            f"needs a sockmap or sockhash", errno=E.EINVAL, map=mname, prog=prog_label(prog))
    return pfd, mfd


def _attach_type_value(attach_type: int | str) -> int:
    if isinstance(attach_type, int) and not isinstance(attach_type, bool):
        return attach_type
    if not isinstance(attach_type, str):
        raise ProgramError(f"invalid attach/detach type {attach_type!r}", errno=E.EINVAL)
    v = parse_attach_type(attach_type)
    if v is None:
        raise ProgramError(f"invalid attach/detach type {attach_type!r}", errno=E.EINVAL)
    return v


def prog_attach(prog: ProgLike, attach_type: int | str, target: MapLike | None = None) -> None:
    """bpftool's ``prog attach``: a sk_msg/sk_skb program to a sockmap/sockhash, or a
    flow_dissector program to the current network namespace (``target`` None).

    ``attach_type`` is an attach type value or a bpftool word (``msg_verdict``,
    ``skb_verdict``, ``stream_verdict``, ``stream_parser``, ``flow_dissector``).
    Wrong program or map types raise :class:`ProgramError` before anything
    is attached.
    """
    from pybpfobj.kernel import attach

    at = _attach_type_value(attach_type)
    pfd, mfd = _check_sock_attach(prog, at, target)
    where = "the network namespace" if not mfd else f"map {_name_of(target, f'fd {mfd}')}"
    attach.prog_attach(pfd, mfd, at, 0,
                       what=f"attaching {prog_label(prog) or 'program'} as {attach_type_name(at)} to {where}")


def prog_detach(prog: ProgLike, attach_type: int | str, target: MapLike | None = None) -> None:
    """bpftool's ``prog detach``: undo :func:`prog_attach`."""
    from pybpfobj.kernel import attach

    at = _attach_type_value(attach_type)
    pfd, mfd = _check_sock_attach(prog, at, target)
    where = "the network namespace" if not mfd else f"map {_name_of(target, f'fd {mfd}')}"
    attach.prog_detach2(pfd, mfd, at,
                        what=f"detaching {prog_label(prog) or 'program'} ({attach_type_name(at)}) from {where}")


def attached_programs(target: MapLike | None, attach_type: int | str) -> list[int]:
    """Ids of the programs attached to a map (or, for ``None``, this netns) for ``attach_type``."""
    from pybpfobj.kernel import attach

    at = _attach_type_value(attach_type)
    if target is None:
        fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            return attach.prog_query(fd, at)
        finally:
            os.close(fd)
    return attach.prog_query(prog_fd(target), at)


# ---------------------------------------------------------------------------
# network interfaces


def ifindex_of(interface: int | str) -> int:
    """The index of a network interface given by name or index; NotFoundError if there is none."""
    if isinstance(interface, bool) or not isinstance(interface, (int, str)):
        raise BpfError(f"network interface must be a name or an index, not {interface!r}", errno=E.EINVAL)
    if isinstance(interface, int):
        try:
            socket.if_indextoname(interface)
        except (OSError, OverflowError):
            raise NotFoundError(f"network interface with index {interface} not found") from None
        return interface
    try:
        return socket.if_nametoindex(interface)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        raise NotFoundError(f"network interface '{interface}' not found") from None


class Link:
    """An attachment of a program that can be detached (and, for BPF links, pinned).

    ``kind`` is ``"xdp"``, ``"tcx"``, ``"netns"`` for BPF links (``fd`` is
    the link's fd) and ``"xdp-netlink"``/``"tc-netlink"`` for the older
    netlink attachments (``fd`` is -1; they cannot be pinned).  Closing a
    BPF link that is not pinned detaches the program.  Use as a context
    manager to detach on exit.
    """

    def __init__(self, fd: int, kind: str, *, ifindex: int = 0, prog_id: int = 0,
                 _undo: tuple[object, ...] | None = None) -> None:
        self.fd = fd
        self.kind = kind
        self.ifindex = ifindex
        self.prog_id = prog_id
        self.pin_path: str | None = None
        self._undo = _undo

    @classmethod
    def from_pinned(cls, path: str) -> Link:
        """Open a link pinned on a bpffs."""
        from pybpfobj.kernel import info

        fd = info.obj_get(path, "link")
        fi = info.fdinfo(fd)
        link = cls(fd, fi.get("link_type", "link"), prog_id=int(fi.get("prog_id", "0") or 0),
                   ifindex=int(fi.get("ifindex", "0") or 0))
        link.pin_path = path
        return link

    @property
    def is_bpf_link(self) -> bool:
        return self.fd >= 0

    @property
    def id(self) -> int:
        """The kernel's link id (0 for netlink attachments)."""
        if self.fd < 0:
            return 0
        from pybpfobj.kernel import info

        return int(info.fdinfo(self.fd).get("link_id", "0") or 0)

    def pin(self, path: str) -> None:
        """Pin the link at ``path`` on a bpffs, so it outlives this process."""
        if self.fd == -2:
            raise BpfError(f"cannot pin {self.kind} link at {path}: the link handle is closed", errno=E.EBADF,
                           path=path)
        if self.fd < 0:
            raise UnsupportedError(f"a {self.kind} attachment is not a BPF link and cannot be pinned",
                                   errno=E.EOPNOTSUPP, path=path)
        from pybpfobj.kernel import info

        info.obj_pin(self.fd, path)
        self.pin_path = path

    def unpin(self) -> None:
        """Remove the pin made by :meth:`pin` (or the one opened by :meth:`from_pinned`)."""
        if self.pin_path:
            os.unlink(self.pin_path)
            self.pin_path = None

    def detach(self) -> None:
        """Detach the program now (even if the link is pinned or shared)."""
        from pybpfobj.kernel import attach

        if self.fd >= 0:
            attach.link_detach(self.fd, what=f"detaching {self.kind} link")
            return
        undo = self._undo
        self._undo = None
        if undo is None:
            return
        if undo[0] == "xdp":
            _, ifindex, flags, pfd = undo
            assert isinstance(ifindex, int) and isinstance(flags, int) and isinstance(pfd, int)
            # replace *our* program with none, so another one attached since is left alone
            try:
                attach.xdp_attach(ifindex, -1, flags | attach.XDP_FLAGS_REPLACE, old_prog_fd=pfd,
                                  what=f"detaching XDP program from ifindex {ifindex}")
            finally:
                os.close(pfd)
        elif undo[0] == "tc":
            _, hook, handle, priority, _created = undo
            try:
                attach.tc_detach(hook, handle, priority)  # type: ignore[arg-type]
            finally:
                _destroy_clsact_if_unused(hook)

    def close(self) -> None:
        """Drop this handle: a BPF link detaches unless pinned; a netlink attachment is detached."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -2  # closed, not a netlink attachment
        elif self._undo is not None:
            self.detach()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            try:
                self.detach()
            except BpfError:
                pass
        self.close()

    def __del__(self) -> None:
        # a dropped netlink XDP attachment stays attached, but the program fd kept
        # for its exact detach would leak: close just that
        undo = getattr(self, "_undo", None)
        if undo is not None and undo[0] == "xdp" and isinstance(undo[3], int):
            self._undo = None
            try:
                os.close(undo[3])
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"<Link {self.kind} fd={self.fd} ifindex={self.ifindex}>"


class LibbpfLink(Link):
    """A link libbpf made by attaching a program as its section says
    (``bpf_program__attach``: tracepoints, raw tracepoints, kprobes, ...).

    Behaves as a :class:`Link` (``fd``, ``id``, ``pin``, ``detach``); closing
    it destroys libbpf's link, which detaches the program unless the link is
    pinned.  ``prog`` is the program's name.
    """

    def __init__(self, ptr: int, prog: str) -> None:
        from pybpfobj.kernel import info
        from pybpfobj.kernel import objects as _o

        fd = _o.link_fd(ptr)
        fi = info.fdinfo(fd) if fd >= 0 else {}
        super().__init__(fd, fi.get("link_type", "link"), prog_id=int(fi.get("prog_id", "0") or 0))
        self._ptr = ptr
        self.prog = prog

    def close(self) -> None:
        """Destroy libbpf's link (detaching the program unless pinned). Idempotent."""
        ptr, self._ptr = self._ptr, 0
        if ptr:
            from pybpfobj.kernel import objects as _o

            self.fd = -2  # libbpf closes its fds
            _o.link_destroy(ptr)

    def __repr__(self) -> str:
        return f"<LibbpfLink {self.kind} of {self.prog!r} fd={self.fd}>"


_XDP_MODES = {None: 0, "skb": 1 << 1, "generic": 1 << 1, "drv": 1 << 2, "native": 1 << 2, "hw": 1 << 3}


def _check_prog_type(prog: ProgLike, want: tuple[str, ...], where: str) -> int:
    pfd = prog_fd(prog)
    ptype = _prog_type_of(pfd)
    if prog_type_name(ptype) not in want:
        raise ProgramError(
            f"program {prog_label(prog) or f'fd {pfd}'} is of type {prog_type_name(ptype)}; "
            f"{where} needs {' or '.join(want)}", errno=E.EINVAL, prog=prog_label(prog))
    return pfd


def attach_xdp(prog: ProgLike, interface: int | str, *, mode: str | None = None,
               link: bool = True, replace: bool = False) -> Link:
    """Attach an XDP program to a network interface.

    ``mode``: None (the kernel chooses), ``"skb"``/``"generic"``,
    ``"drv"``/``"native"`` or ``"hw"``.  With ``link=True`` (default) the
    attachment is a BPF link (pinnable, detached when the last reference
    goes); with ``link=False`` it goes through netlink (``bpf_xdp_attach``)
    and stays until :meth:`Link.detach`.  ``replace`` allows replacing a
    program already attached through netlink.
    """
    from pybpfobj.kernel import attach

    if mode not in _XDP_MODES:
        raise ProgramError(f"unknown XDP mode {mode!r} (skb, drv, hw)", errno=E.EINVAL)
    pfd = _check_prog_type(prog, ("xdp",), "an XDP hook")
    ifindex = ifindex_of(interface)
    flags = _XDP_MODES[mode]
    label = prog_label(prog) or "XDP program"
    if link:
        fd = attach.link_create(pfd, ifindex, ATTACH_TYPE["xdp"], flags,
                                what=f"attaching {label} to interface {interface}")
        return Link(fd, "xdp", ifindex=ifindex, prog_id=_prog_id(pfd))
    if not replace:
        flags |= attach.XDP_FLAGS_UPDATE_IF_NOEXIST
    attach.xdp_attach(ifindex, pfd, flags, what=f"attaching {label} to interface {interface}")
    own = os.dup(pfd)  # keep the program alive for the exact-replace detach
    return Link(-1, "xdp-netlink", ifindex=ifindex, prog_id=_prog_id(pfd),
                _undo=("xdp", ifindex, flags & ~attach.XDP_FLAGS_UPDATE_IF_NOEXIST, own))


def attach_flow_dissector(prog: ProgLike, netns: str | int | None = None) -> Link:
    """Attach a flow_dissector program to a network namespace as a BPF link (pinnable).

    ``netns`` is a path (``/proc/PID/ns/net``, ``/run/netns/NAME``), an
    fd of such a file, or None for this process's namespace.  Unlike
    :func:`prog_attach` (bpftool's ``prog attach ... flow_dissector``), the
    program is detached when the link goes (closed and not pinned).
    """
    from pybpfobj.kernel import attach

    pfd = _check_prog_type(prog, ("flow_dissector",), "a network namespace's flow dissector")
    label = prog_label(prog) or "flow_dissector program"
    where = "this network namespace" if netns is None else f"network namespace {netns}"
    if isinstance(netns, int):
        nsfd, own = netns, False
    else:
        path = "/proc/self/ns/net" if netns is None else netns
        try:
            nsfd, own = os.open(path, os.O_RDONLY | os.O_CLOEXEC), True
        except OSError as e:
            raise ProgramError(f"attaching {label}: cannot open {path}: {e.strerror}", errno=e.errno or E.ENOENT,
                               prog=prog_label(prog)) from None
    try:
        fd = attach.link_create(pfd, nsfd, ATTACH_TYPE["flow_dissector"],
                                what=f"attaching {label} to {where}")
    finally:
        if own:
            os.close(nsfd)
    return Link(fd, "netns", prog_id=_prog_id(pfd))


def xdp_attached(interface: int | str) -> int:
    """Id of the program attached at an interface's XDP hook (0 if none)."""
    from pybpfobj.kernel import attach

    return attach.xdp_query(ifindex_of(interface)).prog_id


def _prog_id(pfd: int) -> int:
    return int(_fdinfo(pfd).get("prog_id", "0") or 0)


def has_tcx() -> bool:
    """Whether the running kernel has tcx (BPF links on the tc hooks, Linux 6.6+)."""
    import platform

    try:
        major, minor = (int(x) for x in platform.release().split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (6, 6)


def _destroy_clsact(hook: object) -> None:
    """Remove the clsact qdisc we created (libbpf only drops it when both hooks are named)."""
    from pybpfobj.kernel import attach

    both = attach.tc_hook(hook.ifindex, attach.BPF_TC_INGRESS | attach.BPF_TC_EGRESS)  # type: ignore[attr-defined]
    try:
        attach.tc_hook_destroy(both)
    except BpfError:
        pass


# interfaces whose clsact qdisc this process created (removed again once no filter is left)
_OUR_CLSACT: set[int] = set()
_TC_H_CLSACT = 0xFFFFFFF1
_RTM_NEWTFILTER, _RTM_GETTFILTER, _NLMSG_DONE, _NLMSG_ERROR = 44, 46, 3, 2


def _tc_filter_count(ifindex: int) -> int:
    """Filters on an interface's clsact ingress and egress hooks (an rtnetlink dump), -1 on error."""
    import struct

    count = 0
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sk:
            for minor in (0xFFF2, 0xFFF3):  # TC_H_MIN_INGRESS, TC_H_MIN_EGRESS
                parent = (_TC_H_CLSACT & 0xFFFF0000) | minor
                tcm = struct.pack("=BxxxiIII", socket.AF_UNSPEC, ifindex, 0, parent, 0)
                sk.send(struct.pack("=IHHII", 16 + len(tcm), _RTM_GETTFILTER, 0x301, 1, 0) + tcm)
                done = False
                while not done:
                    buf = sk.recv(65536)
                    off = 0
                    while off + 16 <= len(buf):
                        ln, typ = struct.unpack_from("=IH", buf, off)
                        if typ == _NLMSG_DONE:
                            done = True
                        elif typ == _NLMSG_ERROR:
                            (err,) = struct.unpack_from("=i", buf, off + 16)
                            if err:
                                return -1
                            done = True
                        elif typ == _RTM_NEWTFILTER:
                            count += 1
                        off += (ln + 3) & ~3
                        if ln < 16:
                            return -1
    except OSError:
        return -1
    return count


def _destroy_clsact_if_unused(hook: object) -> None:
    """Remove the clsact qdisc this process created once no filter (ours or anyone's) is left on it."""
    ifindex = hook.ifindex  # type: ignore[attr-defined]
    if ifindex in _OUR_CLSACT and _tc_filter_count(ifindex) == 0:
        _OUR_CLSACT.discard(ifindex)
        _destroy_clsact(hook)


def attach_tc(prog: ProgLike, interface: int | str, direction: str = "ingress", *,
              mode: str = "auto", priority: int = 0, handle: int = 0) -> Link:
    """Attach a tc (``sched_cls``) program to an interface's ingress or egress.

    ``mode="tcx"`` makes a tcx BPF link (pinnable; Linux 6.6+), ``"netlink"``
    a classic clsact filter through libbpf (``bpf_tc_attach``; the clsact
    qdisc is created if needed and removed again on detach if we made it),
    ``"auto"`` tcx where the kernel has it.
    """
    from pybpfobj.kernel import attach

    if direction not in ("ingress", "egress"):
        raise ProgramError(f"tc direction must be ingress or egress, not {direction!r}", errno=E.EINVAL)
    if mode not in ("auto", "tcx", "netlink"):
        raise ProgramError(f"tc attach mode must be auto, tcx or netlink, not {mode!r}", errno=E.EINVAL)
    pfd = _check_prog_type(prog, ("sched_cls", "sched_act"), "a tc hook")
    ifindex = ifindex_of(interface)
    label = prog_label(prog) or "tc program"
    if mode == "tcx" or (mode == "auto" and has_tcx()):
        at = ATTACH_TYPE["tcx_ingress" if direction == "ingress" else "tcx_egress"]
        fd = attach.link_create(pfd, ifindex, at, 0,
                                what=f"attaching {label} to {direction} of interface {interface} (tcx)")
        return Link(fd, "tcx", ifindex=ifindex, prog_id=_prog_id(pfd))
    hook = attach.tc_hook(ifindex, attach.BPF_TC_INGRESS if direction == "ingress" else attach.BPF_TC_EGRESS)
    created = attach.tc_hook_create(hook)
    if created:
        _OUR_CLSACT.add(ifindex)
    try:
        h, prio, pid = attach.tc_attach(hook, pfd, handle=handle, priority=priority)
    except BpfError:
        _destroy_clsact_if_unused(hook)
        raise
    return Link(-1, "tc-netlink", ifindex=ifindex, prog_id=pid, _undo=("tc", hook, h, prio, created))


__all__ = [
    "PROG_ATTACH_KEYWORDS",
    "LibbpfLink",
    "Link",
    "attach_flow_dissector",
    "attach_tc",
    "attach_xdp",
    "attached_programs",
    "has_tcx",
    "ifindex_of",
    "parse_attach_type",
    "prog_attach",
    "prog_detach",
    "xdp_attached",
]
