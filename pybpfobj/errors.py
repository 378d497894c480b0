"""The exception family of pybpfobj.

Every error raised by the library is a :class:`BpfError`, itself an
:class:`OSError`: ``errno`` carries the kernel's or libbpf's error number
(0 when none applies) and the message names the object, map, program or path
involved.  The CLI turns them into ``Error: ...`` lines and bpftool's exit
codes (``-errno & 0xff``, or 255).
"""

from __future__ import annotations

import errno as _errno
import os

TYPE_CHECKING = False  # typing stays out of start-up (annotations are strings)
if TYPE_CHECKING:
    from typing import Any


class BpfError(OSError):
    """Base class of every pybpfobj error.

    ``message`` is the full human sentence; ``obj``, ``map``, ``prog`` and
    ``path`` name what the error is about where that is known.
    """

    def __init__(
        self,
        message: str,
        *,
        errno: int = 0,
        obj: str | None = None,
        map: str | None = None,
        prog: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(errno, message)
        self.message = message
        self.obj = obj
        self.map = map
        self.prog = prog
        self.path = path
        if path is not None:
            self.filename = path

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:  # keep pickling (multiprocessing) and copying working
        # the state carries what subclasses add (a VerifierError's log, insn and source ...)
        return (_rebuild, (type(self), self.message, self.errno, self.obj, self.map, self.prog, self.path),
                dict(self.__dict__))

    @property
    def exit_code(self) -> int:
        """bpftool's exit code for this error: ``-errno & 0xff``, or 255."""
        if self.errno:
            return (-self.errno) & 0xFF
        return 255


def _rebuild(cls: type[BpfError], message: str, err: int, obj: Any, map: Any, prog: Any,
             path: Any) -> BpfError:
    e: BpfError = BpfError.__new__(cls)
    BpfError.__init__(e, message, errno=err or 0, obj=obj, map=map, prog=prog, path=path)
    return e


class ObjectFormatError(BpfError):
    """An object file (ELF, BTF, BTF.ext) is malformed or not a BPF object."""

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("errno", _errno.EINVAL)
        super().__init__(message, **kw)


class ObjectOpenError(ObjectFormatError):
    """An object file could not be opened at all (a directory, a device...).

    ``errno`` says why; the CLI exits 255 as bpftool does when it fails to
    open an object file.
    """

    @property
    def exit_code(self) -> int:
        return 255


class BTFError(ObjectFormatError):
    """BTF or BTF.ext data is malformed."""


class LibbpfError(BpfError):
    """A libbpf call or a bpf() syscall failed."""


class LibbpfOpenError(ObjectOpenError, LibbpfError):
    """libbpf could not open an object file: missing or unreadable, not an ELF BPF
    object, or a definition it cannot take (``message`` quotes libbpf's reason).
    Caught as :class:`ObjectOpenError` (and so :class:`ObjectFormatError`) or as
    :class:`LibbpfError`."""


class VerifierError(LibbpfError):
    """The kernel's verifier rejected a program.

    ``log`` is the verifier's full output (its end only, when it overflowed
    its buffer); ``insn`` the failing instruction index where it could be
    found (numbered over the loaded program, subprograms included), and
    ``source`` a ``(file, line, text)`` tuple: the kernel's own annotation
    of that instruction, from the object's BTF line_info, where it has one.
    """

    def __init__(
        self,
        message: str,
        *,
        log: str = "",
        insn: int | None = None,
        source: tuple[str, int, str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.log = log
        self.insn = insn
        self.source = source

    @property
    def exit_code(self) -> int:
        return 255  # bpftool's exit code when an object fails to load


class UnsupportedError(BpfError):
    """The kernel, libbpf or this machine lacks what the call needs."""


class ProgramError(BpfError):
    """An operation on a program failed."""


class MapError(BpfError):
    """An operation on a map failed."""


class KeyNotFoundError(MapError, KeyError):
    """The key is not in the map (ENOENT)."""

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("errno", _errno.ENOENT)
        MapError.__init__(self, message, **kw)

    def __str__(self) -> str:
        return self.message


class KeyExistsError(MapError):
    """``noexist`` update on a key that exists (EEXIST)."""


class MapFullError(MapError):
    """The map has no room for another element (E2BIG)."""


class MapFrozenError(MapError):
    """The map is frozen or read-only for user space (EPERM)."""


class BatchError(MapError):
    """A batch operation failed part way; ``applied`` elements took effect."""

    def __init__(self, message: str, *, applied: int = 0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.applied = applied


class MapIncompatibleError(MapError):
    """A map given for reuse does not match the object's map definition.

    ``differences`` maps each differing field to ``(expected, actual)``.
    """

    def __init__(self, message: str, *, differences: dict[str, tuple[Any, Any]] | None = None,
                 **kw: Any) -> None:
        kw.setdefault("errno", _errno.EINVAL)
        super().__init__(message, **kw)
        self.differences = dict(differences or {})


class PinError(BpfError):
    """Pinning or unpinning on a bpffs failed."""


class BpffsError(PinError):
    """A path is not on a BPF file system, or one could not be mounted."""


class BpffsMountError(BpffsError):
    """A bpffs could not be mounted where a pin needed one.

    ``errno`` is the mount's; the CLI still exits 255, bpftool's generic
    failure code for this step.
    """

    @property
    def exit_code(self) -> int:
        return 255


class NotFoundError(BpfError, LookupError):
    """A program, map, link or BTF object named by id, name, tag or path does not exist."""

    def __init__(self, message: str, **kw: Any) -> None:
        kw.setdefault("errno", _errno.ENOENT)
        super().__init__(message, **kw)


_ERRNO_MAP_CLASSES: dict[int, type[MapError]] = {
    _errno.ENOENT: KeyNotFoundError,
    _errno.EEXIST: KeyExistsError,
    _errno.E2BIG: MapFullError,
    _errno.EPERM: MapFrozenError,
}


def map_error(err: int, what: str, map_name: str | None = None) -> MapError:
    """The :class:`MapError` subclass for ``err`` from a map operation ``what``."""
    cls = _ERRNO_MAP_CLASSES.get(err, MapError)
    where = f" on map {map_name!r}" if map_name else ""
    # the kernel-internal ENOTSUPP (524) has no C library text ("Unknown error 524")
    why = "operation not supported by this map type (ENOTSUPP)" if err == 524 else os.strerror(err)
    return cls(f"{what}{where} failed: {why}", errno=err, map=map_name)


__all__ = [
    "BTFError",
    "BatchError",
    "BpfError",
    "BpffsError",
    "BpffsMountError",
    "KeyExistsError",
    "KeyNotFoundError",
    "LibbpfError",
    "LibbpfOpenError",
    "MapError",
    "MapFrozenError",
    "MapFullError",
    "MapIncompatibleError",
    "NotFoundError",
    "ObjectFormatError",
    "ObjectOpenError",
    "PinError",
    "ProgramError",
    "UnsupportedError",
    "VerifierError",
    "map_error",
]
