"""BPF file system handling: which bpffs a path lives on, mounting one the
way bpftool does, and the checks every pin goes through.

Pins are created 0600 (the kernel's default for ``BPF_OBJ_PIN`` under the
usual umask) and directories 0700.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import c_char_p, c_int, c_ulong, c_void_p

from pybpfobj.errors import BpffsError, BpffsMountError, PinError
from pybpfobj.kernel import libbpf

BPF_FS_MAGIC = 0xCAFE4A11

MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

_libc_ready = False


class _Statfs(ctypes.Structure):
    # struct statfs on 64-bit Linux: f_type comes first as a long
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_char * 112)]


def _libc() -> ctypes.CDLL:
    global _libc_ready
    lc = libbpf.libc()
    if not _libc_ready:
        lc.mount.argtypes = [c_char_p, c_char_p, c_char_p, c_ulong, c_void_p]
        lc.mount.restype = c_int
        lc.umount2.argtypes = [c_char_p, c_int]
        lc.umount2.restype = c_int
        lc.statfs.argtypes = [c_char_p, ctypes.POINTER(_Statfs)]
        lc.statfs.restype = c_int
        _libc_ready = True
    return lc


def fs_magic(path: str) -> int | None:
    """``statfs(path).f_type``, or None when ``path`` cannot be stat'ed."""
    st = _Statfs()
    if _libc().statfs(libbpf.c_path(path), ctypes.byref(st)) != 0:
        return None
    return int(st.f_type) & 0xFFFFFFFF


def is_bpffs(path: str) -> bool:
    """Whether ``path`` (which must exist) is on a BPF file system."""
    return fs_magic(path) == BPF_FS_MAGIC


def find_bpffs(path: str) -> str | None:
    """The mount point of the bpffs ``path`` lives on, or None.

    ``path`` need not exist: its nearest existing ancestor decides.
    """
    p = os.path.abspath(path)
    while not os.path.exists(p) and p != "/":
        p = os.path.dirname(p)
    if not is_bpffs(p):
        return None
    best: str | None = None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                sep = parts.index("-")
                mnt = parts[4].replace("\\040", " ")
                if parts[sep + 1] != "bpf":
                    continue
                inside = p == mnt or p.startswith(mnt.rstrip("/") + "/")
                if inside and (best is None or len(mnt) > len(best)):
                    best = mnt
    except (OSError, ValueError):
        pass
    return best or p


def check_pin_name(path: str, what: str = "pin") -> None:
    """Refuse a pin or directory name containing ``.`` (the kernel's EPERM) with a clear message."""
    base = os.path.basename(os.path.normpath(path))
    if "." in base and base not in (".", ".."):  # "." and "..": an existing directory, no new name
        raise PinError(
            f"invalid {what} name '{base}' in '{path}': names on a BPF file system cannot contain '.'",
            errno=1, path=path)


def check_pin_free(path: str, what: str = "BPF object") -> None:
    """Refuse to pin over an existing ``path`` (the kernel's EEXIST, named)."""
    if os.path.lexists(path):
        raise PinError(f"can't pin {what}: path '{path}' already exists", errno=17, path=path)


def check_pin_path(path: str) -> None:
    """Refuse pin paths bpffs would reject, with a message naming the path, before
    touching the kernel: a ``.`` in the name, a missing parent, a parent not on
    a bpffs, an existing path."""
    check_pin_name(path)
    parent = os.path.dirname(os.path.abspath(path)) or "/"
    if not os.path.isdir(parent):
        raise PinError(f"can't pin at '{path}': directory '{parent}' does not exist",
                       errno=2, path=path)
    if not is_bpffs(parent):
        raise BpffsError(f"can't pin at '{path}': '{parent}' is not on a BPF file system",
                         errno=22, path=path)
    check_pin_free(path)


# what a new bpffs holds from the start (the kernel's preloaded iterators)
_PRELOADED = frozenset(("progs.debug", "maps.debug"))


class Mounted:
    """A bpffs this process mounted (so a failed command can take it away again).

    A plain class: dataclasses costs start-up time every CLI run would pay.
    """

    def __init__(self, target: str, bind_done: bool = False) -> None:
        self.target = target
        self.bind_done = bind_done
        self.bpf_done = False

    def __repr__(self) -> str:
        return f"Mounted(target={self.target!r}, bind_done={self.bind_done}, bpf_done={self.bpf_done})"

    def undo(self, *, force: bool = False) -> None:
        """Unmount the bpffs and, if one was made, the bind mount under it.

        Not when the bpffs holds anything by then (unless ``force``): what this
        command pinned is gone before its mount is undone, so an entry is
        another command's (it found the bpffs this one mounted), and unmounting
        would free its pins.
        """
        lc = _libc()
        if self.bpf_done and not force:
            try:
                if set(os.listdir(self.target)) - _PRELOADED:
                    return
            except OSError:
                pass
        lc.umount2(os.fsencode(self.target), MNT_DETACH)
        if self.bind_done:
            lc.umount2(os.fsencode(self.target), MNT_DETACH)


def mount_bpffs(target: str) -> Mounted:
    """Mount a bpffs (mode 0700) on directory ``target``, as bpftool does.

    The directory is made a private mount first; if it is not a mount
    point, it is bind-mounted on itself so it can be.  Failures raise
    :class:`BpffsError` with bpftool's wording of the failing step.
    """
    lc = _libc()
    t = libbpf.c_path(target)
    m = Mounted(target)
    step = ""
    try:
        while True:
            step = "private"
            if lc.mount(b"", t, b"none", MS_PRIVATE | MS_REC, None) == 0:
                break
            err = ctypes.get_errno()
            if err != 22 or m.bind_done:
                if m.bind_done:
                    m.undo()
                raise BpffsError(f"mount --make-private {target} failed: {os.strerror(err)}", errno=err,
                                 path=target)
            step = "bind"  # (not a mount point before: EINVAL above)
            if lc.mount(t, t, b"none", MS_BIND, None) != 0:
                err = ctypes.get_errno()
                raise BpffsError(f"mount --bind {target} {target} failed: {os.strerror(err)}", errno=err,
                                 path=target)
            m.bind_done = True
        step = "bpf"  # (not a bpffs before: the caller found none)
        if lc.mount(b"bpf", t, b"bpf", 0, b"mode=0700") != 0:
            err = ctypes.get_errno()
            if m.bind_done:
                lc.umount2(t, MNT_DETACH)
            raise BpffsError(f"mount -t bpf {target} {target} failed: {os.strerror(err)}", errno=err,
                             path=target)
        m.bpf_done = True
    except BpffsError:
        raise
    except BaseException:
        # interrupted (Ctrl-C, a stop) as a step returned, before it was noted: what
        # this call mounted is found and taken away
        if step == "bpf" and not m.bpf_done and is_bpffs(target):
            m.bpf_done = True
        if step == "bind" and not m.bind_done and _is_mount_point(target):
            m.bind_done = True
        if m.bpf_done or m.bind_done:
            m.undo(force=True)
        raise
    return m


def _is_mount_point(path: str) -> bool:
    """Whether something is mounted on ``path`` (in this process's mount table; a bind
    mount of a directory on itself keeps its device and inode, so stat cannot tell)."""
    import re

    want = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                point = line.split(b" ")[4]
                # octal escapes of space, tab, newline and backslash, as the kernel writes them
                decoded = re.sub(rb"\\([0-7]{3})", lambda mo: bytes([int(mo.group(1), 8)]), point)
                if os.fsdecode(decoded) == want:
                    return True
    except OSError:
        return False
    return False


def ensure_bpffs_for_pin(path: str, *, nomount: bool = False) -> Mounted | None:
    """Make sure the directory that will hold ``path`` is on a bpffs.

    Returns the :class:`Mounted` record when a bpffs had to be mounted (on
    the parent directory, like bpftool), None when one was already there.
    With ``nomount`` a missing bpffs is an error, in bpftool's words.
    """
    # the parent as given, resolved by the kernel as bpftool has it (no lexical normalising:
    # "lnk/../p" goes through the symlink; a working directory deeper than PATH_MAX works)
    parent = _posix_dirname(path)
    if is_bpffs(parent):
        return None
    if nomount:
        raise BpffsError("no BPF file system found, not mounting it due to --nomount option", path=parent)
    if os.path.realpath(parent) == "/":
        # a mount over "/" never shows (the root stays the process's root): the pin would
        # fail under it, and the mount could not be told apart from the root to undo it
        raise BpffsMountError(f"can't mount BPF file system to pin the object ({path}): '/' is not on a "
                              f"BPF file system, and none can be mounted on the root directory",
                              errno=22, path=path)
    try:
        return mount_bpffs(parent)
    except BpffsError as e:
        raise BpffsMountError(f"can't mount BPF file system to pin the object ({path}): {e.message}",
                              errno=e.errno or 0, path=path) from None


def _posix_dirname(path: str) -> str:
    """dirname(3): trailing slashes do not count ("a/b/" -> "a"); "." for a bare name."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    head = os.path.dirname(stripped).rstrip("/")
    return head or ("/" if stripped.startswith("/") else ".")


def pin_fd(fd: int, path: str, what: str = "object") -> None:
    """Pin the program or map behind ``fd`` at ``path`` (BPF_OBJ_PIN).

    Refuses dotted names and an existing ``path`` before the syscall;
    failures raise :class:`PinError` naming ``what`` and the path.
    """
    check_pin_name(path, what)
    check_pin_free(path, what)
    err = pin_errno(fd, path)
    if err:
        raise PinError(f"failed to pin {what} at '{path}': {os.strerror(err)}", errno=err, path=path)


def pin_errno(fd: int, path: str) -> int:
    """BPF_OBJ_PIN ``fd`` at ``path``: 0, or the errno (the caller names what failed).

    The one place the pin call is made; it lives here, in a module with no
    heavy imports, so loading and pinning objects stays light.
    """
    ret = int(libbpf.lib().bpf_obj_pin(fd, libbpf.c_path(path)))
    return -ret if ret < 0 else 0


def obj_pin(fd: int, path: str) -> None:
    """Pin the object behind ``fd`` at ``path`` (BPF_OBJ_PIN); errors name the path as bpftool's."""
    err = pin_errno(fd, path)
    if err:
        raise PinError(f"can't pin the object ({path}): {os.strerror(err)}", errno=err, path=path)


def pin_mounting(fd: int, path: str, *, nomount: bool = False) -> None:
    """Pin ``fd`` at ``path`` as bpftool's ``pin`` verbs do: a bpffs is mounted on the
    parent directory first when it is not on one (unless ``nomount``), and taken
    away again if the pin then fails; interrupted, the pin is taken back too."""
    mounted = ensure_bpffs_for_pin(path, nomount=nomount)
    existed = os.path.lexists(path)
    try:
        obj_pin(fd, path)
    except BaseException as e:
        # a refused pin, or an interrupt (Ctrl-C, a stop) as the pin was made: take back
        # what this call made
        if not existed and not isinstance(e, PinError):
            try:
                os.unlink(path)
            except OSError:
                pass
        if mounted is not None:
            mounted.undo()
        raise


def make_pin_dir(path: str) -> bool:
    """Create one directory level on a bpffs, mode 0700; True if it was created, False if it existed."""
    check_pin_name(path, "directory")
    try:
        os.mkdir(path, 0o700)
        return True
    except FileExistsError:
        if not os.path.isdir(path):
            raise PinError(f"can't create directory '{path}': a file of that name exists",
                           errno=17, path=path) from None
        return False
    except OSError as e:
        raise PinError(f"can't create directory '{path}': {e.strerror}", errno=e.errno or 0,
                       path=path) from None


__all__ = [
    "BPF_FS_MAGIC",
    "Mounted",
    "check_pin_free",
    "check_pin_name",
    "check_pin_path",
    "ensure_bpffs_for_pin",
    "find_bpffs",
    "fs_magic",
    "is_bpffs",
    "make_pin_dir",
    "mount_bpffs",
    "obj_pin",
    "pin_errno",
    "pin_fd",
    "pin_mounting",
]
