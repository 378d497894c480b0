"""Handles on loaded BPF programs.

A :class:`Program` owns (or borrows) one program fd.  Programs are found by
id, pinned path, tag or name, as bpftool's ``PROG`` handles::

    with Program.from_pinned("/sys/fs/bpf/xdp_count") as prog:
        print(prog.id, prog.name, prog.info().map_ids)
        prog.pin("/sys/fs/bpf/other")

The loader (:class:`pybpfobj.loader.BpfObject`) builds its programs with
:meth:`Program.from_fd`.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import Any

from pybpfobj.errors import BpfError, NotFoundError, PinError, ProgramError
from pybpfobj.kernel import info as _info


class Program:
    """A loaded BPF program, held by an fd.

    ``owned`` handles close their fd on :meth:`close` (or leaving a ``with``
    block); borrowed ones leave it to their owner.
    """

    def __init__(self, fd: int, *, owned: bool = True, name: str | None = None,
                 spec: Any = None) -> None:
        if not isinstance(fd, int) or isinstance(fd, bool):
            self._fd = -1
            raise ProgramError(f"program fd must be an int, not {fd!r}", errno=_errno.EINVAL, prog=name)
        self._fd = fd
        self._owned = owned
        self._name = name
        self.spec = spec
        self._id: int | None = None
        self._type: str | None = None

    # -- construction -------------------------------------------------------

    @classmethod
    def from_fd(cls, fd: int, *, owned: bool = True, name: str | None = None,
                spec: Any = None) -> Program:
        """Wrap an existing program fd (checked to be a program)."""
        _check_int(fd, "program fd", 0x7FFFFFFF)
        kind = _info.fd_kind(fd)
        if kind != "prog":
            what = f"a BPF {kind}" if kind else "not a BPF object"
            raise ProgramError(f"fd {fd} is not a BPF program ({what})", errno=_errno.EINVAL)
        return cls(fd, owned=owned, name=name, spec=spec)

    @classmethod
    def from_id(cls, prog_id: int) -> Program:
        """Open program ``prog_id``; :class:`NotFoundError` when there is none."""
        if not isinstance(prog_id, int) or isinstance(prog_id, bool):  # a bad int: NotFoundError below
            _check_int(prog_id, "program id", 0xFFFFFFFF)
        return cls(_info.prog_fd_by_id(prog_id))

    @classmethod
    def from_pinned(cls, path: str | os.PathLike[str]) -> Program:
        """Open the program pinned at ``path`` (refuses a pinned map or link)."""
        return cls(_info.obj_get(_path(path), "prog"))

    @classmethod
    def _all(cls) -> list[Program]:
        progs = []
        for pid in _info.prog_ids():
            try:
                progs.append(cls.from_id(pid))
            except NotFoundError:
                continue  # unloaded while we were iterating
        return progs

    @classmethod
    def by_name(cls, name: str) -> list[Program]:
        """Every loaded program named ``name`` (ascending ids; may be empty).

        As bpftool: ``name`` is compared with the program's full name, which
        for a kernel name cut at 15 characters comes from BTF (so the cut
        name alone matches only a program without BTF)."""
        if not isinstance(name, str):
            raise ProgramError(f"program name must be a str, not {type(name).__name__}", errno=_errno.EINVAL)

        def full_name_is(pi: Any, fd: int) -> bool:
            if len(pi.name) < 15:  # not cut: the kernel's name is the full name
                return bool(pi.name == name)
            return _info.prog_full_name(fd, pi) == name

        return cls._matching(full_name_is)

    @classmethod
    def by_tag(cls, tag: str | bytes) -> list[Program]:
        """Every loaded program with this tag (8 bytes, or 16 hex digits)."""
        if not isinstance(tag, (str, bytes)):
            raise ProgramError(f"program tag must be 16 hex digits or 8 bytes, not {tag!r}", errno=_errno.EINVAL)
        want = tag.hex() if isinstance(tag, bytes) else tag.lower()
        return cls._matching(lambda pi, fd: pi.tag == want)

    @classmethod
    def all(cls) -> list[Program]:
        """Every loaded program (ascending ids)."""
        return cls._all()

    @classmethod
    def _matching(cls, pred: Any) -> list[Program]:
        out: list[Program] = []
        for pid in _info.prog_ids():
            try:
                fd = _info.prog_fd_by_id(pid)
            except NotFoundError:
                continue
            try:
                pi = _info.prog_info(fd)
            except BpfError:
                os.close(fd)
                continue
            if pred(pi, fd):
                p = cls(fd)
                p._id, p._type = pi.id, pi.type_name
                out.append(p)
            else:
                os.close(fd)
        return out

    # -- properties ---------------------------------------------------------

    @property
    def fd(self) -> int:
        """The program fd (ProgramError once closed)."""
        if self._fd < 0:
            raise ProgramError(f"program {self._name or ''!s} is closed".replace("  ", " "),
                               errno=_errno.EBADF, prog=self._name)
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    @property
    def id(self) -> int:
        """The kernel's program id."""
        if self._id is None:
            self._fill()
        assert self._id is not None
        return self._id

    @property
    def name(self) -> str:
        """The name given at construction, else the kernel's name completed from BTF."""
        if self._name is None:
            self._name = _info.prog_full_name(self.fd)
        return self._name

    @property
    def type(self) -> str:
        """Program type name as bpftool prints it (``xdp``, ``sched_cls``, ...)."""
        if self._type is None:
            self._fill()
        assert self._type is not None
        return self._type

    @property
    def tag(self) -> str:
        return self.info().tag

    def _fill(self) -> None:
        pi = self.info()
        self._id, self._type = pi.id, pi.type_name

    def info(self, **fetch: bool) -> _info.ProgInfo:
        """``bpf_prog_info``; keyword flags (``xlated=True``, ``line_info=True``, ...)
        fetch the variable-length parts."""
        return _info.prog_info(self.fd, **fetch)

    # -- pinning ------------------------------------------------------------

    def pin(self, path: str | os.PathLike[str]) -> None:
        """Pin the program at ``path`` on a bpffs.

        Names with ``.`` are refused before touching the kernel (bpffs
        rejects them with a bare EPERM); the parent must be on a bpffs.
        """
        p = _path(path)
        check_pin_path(p)
        try:
            _info.obj_pin(self.fd, p)
        except PinError as e:
            e.prog = self._name
            raise

    # -- running and attaching (runtime engineer: pybpfobj/testrun.py, links.py) --

    def test_run(self, data_in: bytes | None = b"", *, data_size_out: int | None = None,
                 ctx_in: bytes | None = None, ctx_size_out: int | None = None, repeat: int = 1,
                 flags: int = 0) -> Any:
        """Run the program with ``BPF_PROG_TEST_RUN``; returns a :class:`pybpfobj.testrun.TestRunResult`."""
        from pybpfobj.testrun import test_run

        for what, v in (("data_in", data_in), ("ctx_in", ctx_in)):
            if v is not None and not isinstance(v, (bytes, bytearray, memoryview)):
                raise ProgramError(f"test_run of program {self._name or ''}: {what} must be bytes, not "
                                   f"{type(v).__name__}", errno=_errno.EINVAL, prog=self._name)
        for what, n in (("data_size_out", data_size_out), ("ctx_size_out", ctx_size_out), ("repeat", repeat),
                        ("flags", flags)):
            if n is not None:
                _check_int(n, f"test_run {what}", 0xFFFFFFFF, self._name)
        return test_run(self, data_in, data_size_out=data_size_out, ctx_in=ctx_in,
                        ctx_size_out=ctx_size_out, repeat=repeat, flags=flags)

    def attach(self, attach_type: int | str, target: Any = None) -> None:
        """bpftool's ``prog attach`` (see :func:`pybpfobj.links.prog_attach`)."""
        from pybpfobj.links import prog_attach

        prog_attach(self, attach_type, target)

    def detach(self, attach_type: int | str, target: Any = None) -> None:
        """bpftool's ``prog detach`` (see :func:`pybpfobj.links.prog_detach`)."""
        from pybpfobj.links import prog_detach

        prog_detach(self, attach_type, target)

    def attach_xdp(self, interface: int | str, **kw: Any) -> Any:
        """Attach to an interface's XDP hook; returns a :class:`pybpfobj.links.Link`."""
        from pybpfobj.links import attach_xdp

        return attach_xdp(self, interface, **kw)

    def attach_tc(self, interface: int | str, direction: str = "ingress", **kw: Any) -> Any:
        """Attach to an interface's tc ingress/egress; returns a :class:`pybpfobj.links.Link`."""
        from pybpfobj.links import attach_tc

        return attach_tc(self, interface, direction, **kw)

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Close the fd if this handle owns it (idempotent)."""
        if self._fd >= 0 and self._owned:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd = -1

    def __enter__(self) -> Program:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0 and self._owned:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def __repr__(self) -> str:
        if self._fd < 0:
            return f"<Program {self._name or '?'} closed>"
        try:
            return f"<Program id={self.id} type={self.type} name={self.name!r} fd={self._fd}>"
        except BpfError:
            return f"<Program fd={self._fd}>"


def _check_int(v: Any, what: str, hi: int, prog: str | None = None) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= hi:
        raise ProgramError(f"invalid {what} {v!r} (must be an int in 0..{hi})", errno=_errno.EINVAL, prog=prog)


def _path(path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise ProgramError(f"a pin path must be a str or os.PathLike, not {type(path).__name__}",
                           errno=_errno.EINVAL)
    return str(os.fspath(path))


def check_pin_path(path: str) -> None:
    """:func:`pybpfobj.kernel.bpffs.check_pin_path` (imported when first used: ``prog show``
    does not pay for the bpffs module)."""
    from pybpfobj.kernel import bpffs

    bpffs.check_pin_path(path)


__all__ = ["Program", "check_pin_path"]
