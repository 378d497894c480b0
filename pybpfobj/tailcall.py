"""Tail-call tables: swapping programs in and out of a ``prog_array``.

:func:`swap` sets one or several slots at once after checking that every
new program can go into the table (its type and JIT state match the
table's owner program, as the kernel will demand), and reports what
changed.  Each slot write is atomic for the running entry program: a tail
call through a slot always reaches either the old or the new program.
"""

from __future__ import annotations

import errno as E
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from pybpfobj.constants import MAP_TYPE, map_type_name, prog_type_name
from pybpfobj.errors import BpfError, MapError, ProgramError
from pybpfobj.testrun import HasFd, prog_fd, prog_label

ProgLike = int | HasFd
MapLike = int | HasFd

# swaps from several threads of one process are serialized, so each swap's
# slots change together and its reported old programs are the ones it replaced
_SWAP_LOCK = threading.Lock()


@dataclass(frozen=True)
class SlotChange:
    """One slot of a prog_array before and after :func:`swap` (program ids; None = empty)."""

    slot: int
    old_prog_id: int | None
    new_prog_id: int | None
    old_name: str | None = None
    new_name: str | None = None

    @property
    def changed(self) -> bool:
        return self.old_prog_id != self.new_prog_id


def _fdinfo(fd: int) -> dict[str, str]:
    from pybpfobj.kernel import info

    return info.fdinfo(fd)


def _prog_name_by_id(prog_id: int | None) -> str | None:
    if prog_id is None:
        return None
    import os

    from pybpfobj.kernel import info

    try:
        fd = info.prog_fd_by_id(prog_id)
    except BpfError:
        return None
    try:
        # the kernel keeps 15 characters of a name: complete it from BTF, as bpftool does
        return info.prog_full_name(fd)
    finally:
        os.close(fd)


def _map_label(m: MapLike, fd: int) -> str:
    name = getattr(m, "name", None)
    return name if isinstance(name, str) and name else f"fd {fd}"


def _fd_of(x: object, what: str) -> int:
    """The fd of a handle or an int fd; a clear error for anything else (a name, None...)."""
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    if hasattr(x, "fd"):
        return prog_fd(x)
    cls = MapError if what == "prog_array" else ProgramError
    raise cls(f"cannot use {x!r} as a {what}: give a handle (with .fd) or an fd", errno=E.EINVAL)


def _check_map(mi: Mapping[str, str], mlabel: str) -> None:
    if "map_type" not in mi:
        raise MapError(f"{mlabel} is not a BPF map", errno=E.EINVAL, map=mlabel)
    mtype = int(mi["map_type"])
    if mtype != MAP_TYPE["prog_array"]:
        raise MapError(f"map {mlabel} is of type {map_type_name(mtype)}, not a prog_array: it holds no tail calls",
                       errno=E.EINVAL, map=mlabel)


def check_compatible(prog_array: MapLike, prog: ProgLike) -> None:
    """Raise :class:`ProgramError` unless ``prog`` may be stored in ``prog_array``.

    The table's owner (the first program that used it) fixes the program
    type and whether programs are JIT-compiled; a program differing in
    either is refused by the kernel, so it is refused here first, with a
    message naming both sides.
    """
    mfd = _fd_of(prog_array, "prog_array")
    _check_prog(_fdinfo(mfd), _map_label(prog_array, mfd), prog)


def _check_prog(mi: Mapping[str, str], mlabel: str, prog: ProgLike) -> str:
    """:func:`check_compatible` on the table's fdinfo ``mi``; returns the program's type
    (fdinfo value) so :func:`swap` reads each fdinfo once."""
    _check_map(mi, mlabel)
    pfd = _fd_of(prog, "program")
    pi = _fdinfo(pfd)
    plabel = prog_label(prog) or f"fd {pfd}"
    if "prog_type" not in pi:
        raise ProgramError(f"{plabel} is not a BPF program", errno=E.EINVAL)
    ptype = int(pi["prog_type"])
    pjited = pi.get("prog_jited", "0") == "1"
    if "owner_prog_type" in mi:
        otype = int(mi["owner_prog_type"])
        ojited = mi.get("owner_jited", "0") == "1"
        if otype != ptype:
            raise ProgramError(
                f"program {plabel} is of type {prog_type_name(ptype)} but prog_array {mlabel} holds "
                f"{prog_type_name(otype)} programs", errno=E.EINVAL, prog=prog_label(prog), map=mlabel)
        if ojited != pjited:
            raise ProgramError(
                f"program {plabel} is {'' if pjited else 'not '}JIT-compiled but prog_array {mlabel} "
                f"holds {'' if ojited else 'non-'}JIT-compiled programs", errno=E.EINVAL,
                prog=prog_label(prog), map=mlabel)
    return pi["prog_type"]


def swap(prog_array: MapLike, slots: Mapping[int, ProgLike | None]) -> list[SlotChange]:
    """Set ``prog_array[slot] = prog`` for every item of ``slots`` (None empties a slot).

    Every program is checked first (:func:`check_compatible`) and every
    slot against ``max_entries``; nothing is written unless all pass.  If a
    write still fails, the slots already written are put back.  Returns one
    :class:`SlotChange` per slot, in the order given.
    """
    from pybpfobj.kernel import attach

    mfd = _fd_of(prog_array, "prog_array")
    mlabel = _map_label(prog_array, mfd)
    mi = _fdinfo(mfd)
    _check_map(mi, mlabel)
    if not isinstance(slots, Mapping):
        raise MapError(f"swap on prog_array {mlabel}: slots must be a mapping {{slot: program}}, not "
                       f"{type(slots).__name__}", errno=E.EINVAL, map=mlabel)
    max_entries = int(mi.get("max_entries", "0") or 0)
    types: set[str] = set()
    for slot, prog in slots.items():
        if not isinstance(slot, int) or isinstance(slot, bool):
            raise MapError(f"slot {slot!r} of prog_array {mlabel} is not an int", errno=E.EINVAL, map=mlabel)
        if not 0 <= slot < max_entries:
            raise MapError(f"slot {slot} is out of range for prog_array {mlabel} (max_entries {max_entries})",
                           errno=E.E2BIG if slot >= max_entries else E.EINVAL, map=mlabel)
        if prog is None:
            continue
        types.add(_check_prog(mi, mlabel, prog))
    # with no owner yet, the first program written becomes the owner: all must agree
    if len(types) > 1:
        raise ProgramError(f"programs of different types cannot share prog_array {mlabel}: "
                           + ", ".join(sorted(prog_type_name(int(t)) for t in types)),
                           errno=E.EINVAL, map=mlabel)
    changes: list[SlotChange] = []
    written: list[tuple[int, int | None]] = []
    with _SWAP_LOCK:
        try:
            for slot, prog in slots.items():
                old = attach.prog_array_get(mfd, slot)
                try:
                    attach.prog_array_set(mfd, slot, None if prog is None else prog_fd(prog))
                except BpfError as e:
                    raise _write_error(e, mlabel, slot, prog) from None
                written.append((slot, old))
                new = attach.prog_array_get(mfd, slot)
                new_name = (prog_label(prog) if prog is not None and not isinstance(prog, int) else None) \
                    or _prog_name_by_id(new)
                changes.append(SlotChange(slot, old, new, _prog_name_by_id(old), new_name))
        except BpfError:
            _restore(mfd, written)
            raise
    return changes


def _write_error(e: BpfError, mlabel: str, slot: int, prog: ProgLike | None) -> BpfError:
    """A clear error for a slot write the kernel refused after our checks passed.

    The kernel also matches the owner's expected attach type (``xdp/devmap``,
    ``xdp/cpumap``...) and XDP frags support (``xdp.frags``), which no fdinfo
    shows, so an EINVAL here means one of those differs.
    """
    if prog is None or e.errno != E.EINVAL:
        return e
    plabel = prog_label(prog) or f"fd {prog_fd(prog)}"
    return ProgramError(
        f"prog_array {mlabel} refused program {plabel} in slot {slot}: its expected attach type or XDP "
        f"frags support differs from the table's owner program (Invalid argument)",
        errno=E.EINVAL, prog=prog_label(prog), map=mlabel)


def _restore(mfd: int, written: list[tuple[int, int | None]]) -> None:
    import os

    from pybpfobj.kernel import attach, info

    for slot, old in reversed(written):
        try:
            if old is None:
                attach.prog_array_set(mfd, slot, None)
                continue
            fd = info.prog_fd_by_id(old)
            try:
                attach.prog_array_set(mfd, slot, fd)
            finally:
                os.close(fd)
        except BpfError:
            pass  # best effort: the original error is what the caller needs


def slots(prog_array: MapLike) -> dict[int, int]:
    """The occupied slots of a prog_array: ``{slot: prog_id}``."""
    from pybpfobj.kernel import attach

    mfd = _fd_of(prog_array, "prog_array")
    mi = _fdinfo(mfd)
    _check_map(mi, _map_label(prog_array, mfd))
    n = int(mi.get("max_entries", "0") or 0)
    out: dict[int, int] = {}
    for s in range(n):
        pid = attach.prog_array_get(mfd, s)
        if pid is not None:
            out[s] = pid
    return out


__all__ = ["SlotChange", "check_compatible", "slots", "swap"]
