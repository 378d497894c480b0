"""BpfObject: a compiled BPF object taken through libbpf's phases.

open -> configure -> load -> pin, with nothing left behind on failure::

    with BpfObject("xdp_counter.o", pin_root="/sys/fs/bpf") as obj:
        obj.set_var("verdict", 1)              # .rodata/.data variables, typed by BTF
        obj.set_max_entries("events", 1 << 16)
        obj.reuse_map("stats", pinned="/sys/fs/bpf/stats")
        obj.load()                             # VerifierError carries the log and source line
        obj.pin_programs("/sys/fs/bpf/xdp")    # rolled back if any pin fails
        prog = obj.programs["xdp_count"]

Configuration methods work only before :meth:`load`; a failed load closes
the object (every fd released, by-name pins libbpf made removed).  Every
pin or directory this object creates is recorded, so :meth:`unpin_all`
can take back exactly what it made.

Import stays light: pyelftools is imported only to map a verifier failure
to its source line.
"""

from __future__ import annotations

import _thread
import errno as _errno
import os
from stat import S_ISDIR, S_ISREG
from time import sleep as _sleep
from time import time_ns

from pybpfobj import constants
from pybpfobj.errors import (
    BpfError,
    BpffsError,
    LibbpfError,
    MapError,
    MapIncompatibleError,
    NotFoundError,
    ObjectOpenError,
    PinError,
    ProgramError,
    UnsupportedError,
    VerifierError,
)
from pybpfobj.kernel import bpffs, libbpf
from pybpfobj.kernel import objects as _o

# Start-up cost matters (the CLI's load path imports this module): typing,
# re, threading and the info/spec layers are imported where they are used.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from collections.abc import Set as AbstractSet
    from typing import Any, Self, Union

    from pybpfobj.links import LibbpfLink
    from pybpfobj.spec.btf import BTF

    PathLike = Union[str, "os.PathLike[str]"]  # noqa: UP007 - a string forward reference

# Map types whose max_entries the kernel refuses as 0 (the storage maps
# want 0, perf_event_array is sized by libbpf from the CPU count).
_NEED_MAX_ENTRIES = frozenset(constants.MAP_TYPE[n] for n in (
    "hash", "array", "prog_array", "percpu_hash", "percpu_array", "stack_trace", "cgroup_array",
    "lru_hash", "lru_percpu_hash", "lpm_trie", "array_of_maps", "hash_of_maps", "devmap", "sockmap",
    "cpumap", "xskmap", "sockhash", "reuseport_sockarray", "queue", "stack", "devmap_hash", "ringbuf",
    "bloom_filter", "user_ringbuf",
))
_RINGBUFS = frozenset((constants.MAP_TYPE["ringbuf"], constants.MAP_TYPE["user_ringbuf"]))
_DEVMAPS = frozenset((constants.MAP_TYPE["devmap"], constants.MAP_TYPE["devmap_hash"]))
# libbpf's "prog 'NAME': failed to load" line (compiled where used: re stays out of start-up)
_FAILED_PROG = r"(?:libbpf: )?prog '([^']+)': failed to load"
# Lines closing a verifier log (statistics), and reasons found after the walk (no insn of theirs)
_LOG_TRAILERS = ("processed ", "verification time ", "stack depth ", "cur state:", "old state:")
_AFTER_WALK = ("combined stack size",)
# Sections of externs, which libbpf fills in at load (kernel config, kernel symbols)
_EXTERN_SECTIONS = (".kconfig", ".ksyms")
# Map types whose value_size is 0 (or set by libbpf: struct_ops)
_NO_VALUE_OK = frozenset(constants.MAP_TYPE[n] for n in ("ringbuf", "user_ringbuf", "arena", "struct_ops")
                         if n in constants.MAP_TYPE)
_BLOOM = constants.MAP_TYPE["bloom_filter"]
_STRUCT_OPS = constants.PROG_TYPE["struct_ops"]
# types.MappingProxyType without importing types (not loaded at start-up otherwise)
_mappingproxy = type(type.__dict__)
_LOG_SIZE = 1 << 24  # libbpf's own first size (BPF_LOG_BUF_SIZE); untouched pages cost nothing
_tls = _thread._local()
# Guards the state changes of every BpfObject (load's start, close) against other threads.
# Reentrant: a finalizer run by the garbage collector inside a guarded section (any
# allocation can start it) may close another object on the same thread.  Held for
# state changes only, never across a call into libbpf (whose print callback runs
# arbitrary Python: logging handlers, finalizers).
_transition = _thread.RLock()
# Files (device, inode, size, mtime, ctime) whose pre-load scan finds nothing to do (the
# bytes read under that key were scanned), each with whether its bytes may be kept (size,
# mode), and how long ago a file must have changed to be remembered there
_FRESH_NS = 2_000_000_000
_CLEAN_FILES: dict[tuple[int, int, int, int, int], bool] = {}
# The contents of those files that anyone may read (up to _CONTENTS_MAX bytes each,
# _CONTENTS_BUDGET in all): the next open of the unchanged file hands libbpf the bytes
# (open_mem) instead of the path, which saves it a dozen system calls
_CONTENTS: dict[tuple[int, int, int, int, int], bytes] = {}
_CONTENTS_MAX = 1 << 20
_CLEAN_MAX = 64 << 20  # larger files are not read again to be remembered as clean
_CONTENTS_BUDGET = 32 << 20
_contents_size = 0
_keep_contents = True
_contents_lock = _thread.allocate_lock()
# The object name libbpf gives each path (open_mem is given it by name)
_NAMES: dict[str, bytes] = {}
_stat = os.stat
_DEFAULT_PIN_ROOT = "/sys/fs/bpf"


def _after_fork_in_child() -> None:
    """A forked child starts with this module's locks free: a thread of the parent may
    have held one at the fork (a deferred open, a load's start), and is gone."""
    global _transition, _contents_lock
    _transition = _thread.RLock()
    _contents_lock = _thread.allocate_lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def keep_file_contents(enabled: bool) -> None:
    """Whether :class:`BpfObject` keeps the bytes of files it loaded cleanly, to hand them
    to libbpf on later loads of the unchanged file (default True); False also forgets
    those kept.  A file is judged unchanged by its device, inode, size and change times:
    turn this off where object files change without those changing (written through a
    shared mapping).  Only objects opened with the default options keep or take bytes
    (the command line's do not)."""
    global _keep_contents
    with _contents_lock:
        _keep_contents = bool(enabled)
        if not enabled:
            _forget_contents()


def _forget_contents() -> None:
    """Drop the kept bytes (with _contents_lock held), and the files' "clean" mark with them:
    the next load of such a file scans it and keeps its bytes again."""
    global _contents_size
    for file in _CONTENTS:
        _CLEAN_FILES.pop(file, None)
    _CONTENTS.clear()
    _contents_size = 0

# Sections libbpf attaches from the name alone (bpf_program__attach); the others
# (xdp, tc, socket, cgroup...) need a target that the caller gives.
_AUTO_ATTACH_PREFIXES = ("tracepoint/", "tp/", "raw_tracepoint/", "raw_tp/", "raw_tracepoint.w/",
                         "raw_tp.w/", "kprobe/", "kretprobe/", "uprobe/", "uretprobe/", "fentry/",
                         "fexit/", "fmod_ret/", "lsm/", "iter/", "tp_btf/", "ksyscall/", "kretsyscall/",
                         "usdt/", "kprobe.multi/", "kretprobe.multi/", "fentry.s/", "fexit.s/", "lsm.s/",
                         "iter.s/", "uprobe.s/", "uretprobe.s/")


def auto_attachable(section: str) -> bool:
    """Whether a program of ``section`` attaches from its section name alone (tracepoints,
    kprobes, raw tracepoints, fentry...), as :meth:`BpfObject.attach_all` does."""
    return section.startswith(_AUTO_ATTACH_PREFIXES)


_LOG_BEGIN = ": -- BEGIN PROG LOAD LOG --\n"
_LOG_END = "-- END PROG LOAD LOG --"


def _page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


class _Pins:
    """Pins and directories made by one call (or by the object), newest last.

    Kept as absolute paths with the (device, inode) each had when made:
    :meth:`undo` removes only what is still that very entry, whatever the
    working directory is by then, and whatever took the name meanwhile.
    """

    def __init__(self) -> None:
        self.pins: list[str] = []
        self.dirs: list[str] = []
        self._ids: dict[str, tuple[int, int] | None] = {}  # path -> (dev, ino) when made

    def add_pin(self, path: str, *, pending: bool = False) -> None:
        self.pins.append(self._note(path, pending))

    def add_dir(self, path: str, *, pending: bool = False) -> None:
        self.dirs.append(self._note(path, pending))

    def made(self, path: str) -> None:
        """A pending entry now exists: note what it is."""
        p = os.path.abspath(path)
        self._ids[p] = _identity(p)

    def forget(self, path: str) -> None:
        p = os.path.abspath(path)
        for entries in (self.pins, self.dirs):
            if p in entries:
                entries.remove(p)
        self._ids.pop(p, None)

    def _note(self, path: str, pending: bool) -> str:
        p = os.path.abspath(path)
        self._ids[p] = _PENDING if pending else _identity(p)
        return p

    def undo(self) -> None:
        for p in reversed(self.pins):
            if self._ids.get(p) in (_PENDING, _identity(p)):  # pending: made just before an interrupt
                try:
                    os.unlink(p)
                except OSError:
                    pass
        for d in reversed(self.dirs):
            if self._ids.get(d) in (_PENDING, _identity(d)):
                try:
                    os.rmdir(d)  # only when empty: another command's pins stay
                except OSError:
                    pass
        self.pins.clear()
        self.dirs.clear()
        self._ids.clear()

    def extend(self, other: _Pins) -> None:
        self.pins.extend(other.pins)
        self.dirs.extend(other.dirs)
        self._ids.update(other._ids)


_PENDING = (-1, -1)  # an entry noted before the call that makes it


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _make_map_handle(fd: int, name: str) -> Any:
    from pybpfobj.maps import Map

    return Map(fd, owned=True, name=name)


def _make_prog_handle(fd: int, name: str) -> Any:
    from pybpfobj.programs import Program

    return Program(fd, owned=True, name=name)


class BpfObject:
    """A BPF ELF object opened with libbpf, loaded on :meth:`load`.

    ``source`` is a path or the object's bytes.  ``name`` overrides the
    object name (which prefixes internal map names such as
    ``<name>.rodata``).  ``pin_root`` is where ``LIBBPF_PIN_BY_NAME`` maps
    are pinned and looked up (libbpf's default ``/sys/fs/bpf``).
    ``mapcompat`` tolerates unknown fields in BTF map definitions
    (bpftool's ``-m``).  ``log_level`` asks the kernel for a verifier log
    of every program, also when it loads (1 = instructions, 2 = every
    state, 4 = statistics; bpftool's ``-d`` uses 7): libbpf logs each at
    DEBUG on the ``pybpfobj.libbpf`` logger.  Threads may share an object:
    load and close are serialised (close during another thread's load is
    refused), but close must not run while another thread still reads the
    object (libbpf frees what that call reads).  Without a log level, a log is only
    requested for a program the verifier rejects; ``libbpf_prints_log``
    lets libbpf print that log itself, as a warning between its other
    lines (bpftool's output; :class:`VerifierError` carries it either way).
    """

    log_level = 0

    def __init__(self, source: PathLike | bytes, *, name: str | None = None,
                 pin_root: str = "/sys/fs/bpf", mapcompat: bool = False, log_level: int = 0,
                 libbpf_prints_log: bool = False) -> None:
        if source.__class__ is not str and isinstance(source, os.PathLike):
            fs = os.fspath(source)
            if fs.__class__ is str:
                source = fs
        plain = (name is None and pin_root == _DEFAULT_PIN_ROOT and log_level.__class__ is int
                 and not (log_level or mapcompat or libbpf_prints_log))
        st: os.stat_result | None = None  # the file as it is now, stat'ed once
        if plain and source.__class__ is str:
            # The common case: a path and the default options.  A file loaded cleanly
            # before and unchanged since is handed to libbpf as the bytes read then.
            try:
                st = _stat(source)  # encoded as os.fsencode does, as libbpf's open would see it
            except (OSError, ValueError):
                st = None  # the general path below says what is wrong
            else:
                file = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)  # _file_key, inline
                data = _CONTENTS.get(file)
                if data is not None:
                    # libbpf opens it when first needed: by load(), in the same call as the
                    # load, under the name its open of this path would give
                    objname = _NAMES.get(source)
                    if objname is None:
                        objname = _name_for(source)
                    self.source = self._path = source
                    self.pin_root = pin_root
                    self._file = file
                    self._pending = (data, objname)
                    self._state = "opened"
                    return
        if log_level.__class__ is not int or log_level:  # 0, the default, needs no check
            _check_u32(log_level, "verifier log level")
        self.log_level = log_level
        path: str | None = None
        if isinstance(source, str):  # the common case first: no conversion, no check
            src: str | bytes = source
            path = self.source = source
        elif isinstance(source, (bytes, bytearray, memoryview)):
            src = bytes(source)
            self.source = name or "<bytes>"
        else:
            src = path = self.source = _path_arg(source, "object file")
        self._path = path
        raw = None
        if path is not None:
            src = path
            # as C sees the path (os.fsencode's steps); os.stat refuses a NUL byte in it
            raw = path.encode(libbpf.FS_ENCODING, "surrogateescape")
            if st is None:
                try:
                    st = os.stat(raw)
                except ValueError:  # a NUL byte: libbpf would open the path up to it
                    raise ObjectOpenError(f"failed to open object file {src!r}: the path contains a NUL byte",
                                          errno=_errno.EINVAL, obj=src, path=src) from None
                except OSError:
                    pass  # missing and such: libbpf says so in its own words
            if st is not None:
                if not S_ISREG(st.st_mode):
                    # libbpf 1.1 leaks its fd when elf_begin fails on a directory: refuse first
                    isdir = S_ISDIR(st.st_mode)
                    raise ObjectOpenError(
                        f"failed to open object file '{src}': "
                        f"{'is a directory' if isdir else 'not a regular file'}",
                        errno=_errno.EISDIR if isdir else _errno.EINVAL, obj=src, path=src)
                # this file as it is now, for the pre-load scan's memo (see load)
                self._file = _file_key(st)
        if name is not None and not isinstance(name, str):
            raise BpfError(f"object name must be a str, not {type(name).__name__}", errno=_errno.EINVAL,
                           obj=self.source)
        self.pin_root = pin_root = self._check_pin_root(pin_root)
        if plain:
            self._plain = True
        self._state = "opened"
        # The verifier log buffer goes in the open options (no per-program call);
        # with a log level libbpf keeps its own buffer and prints each log itself.
        self._log_buf: _o.LogBuffer | None = None if log_level or libbpf_prints_log else _thread_log_buffer()
        self._handle = _o.open_object(src, name=name, pin_root=pin_root, relaxed_maps=mapcompat,
                                      log_level=log_level, log_buf=self._log_buf, raw_path=raw)

    # libbpf's ``struct bpf_object *`` (0 once closed), and the contents and libbpf's name
    # of an unchanged file whose open is deferred (see __init__)
    _handle = 0
    _path: str | None = None
    _pending: tuple[bytes, bytes] | None = None
    # opened with the default options: a later plain open of the file can take its bytes
    # (with others, mapcompat say, libbpf may have opened what a default open refuses)
    _plain = False
    _log_buf: _o.LogBuffer | None = None

    @property
    def _obj(self) -> int:
        """libbpf's object, opened now if its open was deferred (0 once closed).  While
        another thread's load() of a deferred object is opening it, this waits for
        that open (a load's own open comes first, and is the one kept)."""
        h = self._handle
        if h or self._pending is None:
            return h
        return self._open_deferred()

    def _open_deferred(self) -> int:
        while True:
            with _transition:
                pending, state, h = self._pending, self._state, self._handle
            if h or pending is None or state not in ("opened", "loading"):
                return h  # opened meanwhile, or closed (0)
            if state == "loading":
                # load() on another thread is opening these bytes itself: its handle
                # is there as soon as libbpf's open returns (or the object is closed)
                _sleep(0.0001)
                continue
            # opened outside the lock: libbpf's print callback may run any Python code
            # (logging handlers, finalizers closing other objects)
            log_buf = _thread_log_buffer()
            h = _o.open_cached(pending[0], pending[1], self.source, self.pin_root, log_buf)
            with _transition:
                if self._pending is pending and self._state == "opened" and not self._handle:
                    self._log_buf = log_buf
                    self._handle = h
                    self._pending = None
                    return h
            _o.close_object(h)  # another thread opened, loaded or closed it meanwhile

    def _raw_name(self) -> bytes:
        """The object's name as libbpf holds it (bytes: a file name need not be UTF-8)."""
        pending = self._pending
        if pending is not None:
            return pending[1]
        h = self._obj
        return _o.object_name_raw(h) if h else self.name.encode("utf-8", "surrogateescape")

    def _check_pin_root(self, pin_root: Any) -> str:
        if pin_root.__class__ is str:
            return pin_root
        if isinstance(pin_root, os.PathLike):
            pin_root = os.fspath(pin_root)
        if not isinstance(pin_root, str):
            raise BpfError(f"pin_root must be a str path, not {type(pin_root).__name__}",
                           errno=_errno.EINVAL, obj=self.source)
        return pin_root

    @property
    def name(self) -> str:
        """The object's name as libbpf has it (the file name up to its first dot, at
        most 15 characters, or the ``name`` given); read from libbpf on first use."""
        n = self._name
        if n is None:
            pending = self._pending
            if pending is not None:  # not opened yet: the name it will have
                return pending[1].decode("utf-8", "replace")
            n = self._name = _o.object_name(self._obj) if self._obj else ""
        return n

    # The rest of the state starts as these class-level values (immutable, so a
    # stray in-place update fails loudly) and gets its own object on first
    # change: a plain open+load makes none of it.  Program and map names are
    # read from libbpf on first use.
    _prog_names: dict[str, int] | None = None
    _map_names: dict[str, int] | None = None
    _type_set: AbstractSet[str] = frozenset()  # programs given a type by the caller
    _from_table: AbstractSet[str] = frozenset()  # ... by our section table
    _reused: Mapping[str, str] = _mappingproxy({})  # map name -> what replaces it
    _vars_set: Mapping[str, str] = _mappingproxy({})  # data map name -> what set its contents first
    _pin_paths: Mapping[str, str] = _mappingproxy({})  # LIBBPF_PIN_BY_NAME paths, set at load
    _prog_handles: dict[str, Any] | None = None
    _map_handles: dict[str, Any] | None = None
    _pins: _Pins | None = None  # every pin and directory this object made
    _btf: BTF | None = None
    _name: str | None = None
    # (device, inode, size, mtime, ctime) of the file opened, None for bytes
    _file: tuple[int, int, int, int, int] | None = None
    # a program type, map size or map reuse was set before load: the pre-load scan then reads
    # what the caller made of the object, not the file, so it runs and is not remembered
    _configured = False

    def _own_pins(self) -> _Pins:
        if self._pins is None:
            self._pins = _Pins()
        return self._pins

    @property
    def _progs(self) -> dict[str, int]:
        """Program name -> ``struct bpf_program *`` (libbpf's order), read on first use.

        A closed object keeps the names read before :meth:`close`, and has
        none otherwise.
        """
        d = self._prog_names
        if d is None:
            d = self._prog_names = _o.program_names(self._obj) if self._obj else {}
        return d

    @property
    def _maps(self) -> dict[str, int]:
        """Map name -> ``struct bpf_map *`` (``map idx`` order), read on first use."""
        d = self._map_names
        if d is None:
            d = self._map_names = _o.map_names(self._obj) if self._obj else {}
        return d

    # -- introspection -----------------------------------------------------

    def __repr__(self) -> str:
        return f"<BpfObject {self.name!r} from {self.source!r}, {self._state}>"

    @property
    def state(self) -> str:
        """``opened``, ``loaded`` or ``closed``."""
        return self._state

    def program_names(self) -> list[str]:
        """Program (function) names in libbpf's order."""
        return list(self._progs)

    def map_names(self) -> list[str]:
        """Map names in libbpf's order, which is ``map idx`` order (internal maps included)."""
        return list(self._maps)

    def section_of(self, prog: str) -> str:
        """The ELF section of program ``prog``."""
        return _o.prog_section(self._prog(prog))

    def map_definition(self, name_or_idx: str | int) -> dict[str, int]:
        """The map's definition as it stands: type, key/value size, max_entries, flags, BTF ids."""
        return _o.map_def(self._map(name_or_idx)[1])

    def _check_open(self, what: str) -> None:
        if self._state != "opened":
            raise BpfError(f"{what}: object '{self.name}' is {self._state}; configure it before load()",
                           errno=_errno.EBUSY, obj=self.name)

    def _check_alive(self, what: str) -> None:
        """libbpf's program and map pointers die with the object: refuse to use them after close
        (reading them would be a use-after-free, and could crash the interpreter)."""
        if not self._obj:
            raise BpfError(f"{what}: object '{self.name}' is closed", errno=_errno.EBADF, obj=self.name)

    def _prog(self, name: str) -> int:
        if not self._obj:
            self._check_alive(f"program '{name}'")
        try:
            return self._progs[name]
        except KeyError:
            raise NotFoundError(f"object '{self.name}' has no program '{name}'",
                                obj=self.name, prog=name) from None

    def _map(self, which: str | int) -> tuple[str, int]:
        if not self._obj:
            self._check_alive(f"map '{which}'")
        if isinstance(which, int) and not isinstance(which, bool):
            names = list(self._maps)
            if not 0 <= which < len(names):
                raise NotFoundError(f"map idx '{which}' not used", obj=self.name)
            return names[which], self._maps[names[which]]
        if which not in self._maps:
            raise NotFoundError(f"unable to find map '{which}'", obj=self.name, map=which)
        return which, self._maps[which]

    # -- configuration -----------------------------------------------------

    def set_prog_type(self, prog_type: str | int, prog: str | None = None) -> None:
        """Override the program type of ``prog`` (all programs when None).

        ``prog_type`` is bpftool's ``type`` keyword (``xdp``, ``kprobe``,
        ``cgroup/skb`` ...), a kernel type name (``sched_cls``) or its
        number; section-style keywords also set the expected attach type.
        """
        self._check_open("set_prog_type")
        pt, at = _resolve_type(prog_type)
        targets = [prog] if prog is not None else list(self._progs)
        for name in targets:
            if _o.prog_type(self._prog(name)) == _STRUCT_OPS and pt != _STRUCT_OPS:
                # libbpf 1.1 (and bpftool 7.1 with it) crashes loading a struct_ops
                # program as another type: its struct_ops map still points to it
                raise ProgramError(f"set_prog_type: program '{name}' of object '{self.name}' is a "
                                   f"struct_ops program: its type cannot change", prog=name,
                                   obj=self.name, errno=_errno.EINVAL)
        for name in targets:
            _o.prog_set_type(self._prog(name), pt, at)
            self._type_set = self._type_set | {name}
            self._configured = True

    def set_ifindex(self, ifindex: int | str) -> None:
        """Offload to a device (bpftool's ``dev NAME``): programs and maps get its ifindex."""
        self._check_open("set_ifindex")
        if not isinstance(ifindex, str):
            _check_u32(ifindex, "ifindex")
        if isinstance(ifindex, str):
            import socket  # only offload needs it; keeps start-up light

            try:
                ifindex = socket.if_nametoindex(ifindex)
            except (OSError, ValueError):  # a NUL byte is a ValueError; bpftool says strerror(ENODEV)
                raise BpfError(f"unrecognized netdevice '{ifindex}': {os.strerror(_errno.ENODEV)}",
                               errno=_errno.ENODEV) from None
        for p in self._progs.values():
            _o.prog_set_ifindex(p, ifindex)
        for m in self._maps.values():
            if _o.map_def(m)["type"] != constants.MAP_TYPE["perf_event_array"]:
                _o.map_set_ifindex(m, ifindex)

    def set_max_entries(self, name: str, n: int) -> None:
        """Size map ``name`` (``max_entries``) before load."""
        self._set_map_u32(name, "max_entries", n, _o.map_set_max_entries)

    def set_value_size(self, name: str, n: int) -> None:
        """Set map ``name``'s value size before load (a stack_trace map's depth, ...)."""
        self._set_map_u32(name, "value_size", n, _o.map_set_value_size)

    def _set_map_u32(self, name: str, field: str, n: int, setter: Callable[[Any, int], None]) -> None:
        """The checks every pre-load map-definition setter makes, then ``setter(map, n)``."""
        what = "set_" + field
        self._check_open(what)
        mname, m = self._map(name)
        self._not_reused(mname, what)
        _check_u32(n, f"{field} of map '{mname}'")
        if _o.map_is_internal(m):  # the kernel or the verifier would refuse it, less clearly
            raise MapError(f"{what}: map '{mname}' of object '{self.name}' holds global data: its "
                           f"{field} comes from its section", map=mname, obj=self.name, errno=_errno.EINVAL)
        setter(m, n)
        self._configured = True

    def _not_reused(self, name: str, what: str) -> None:
        if name in self._reused:
            raise MapError(f"{what}: map '{name}' is replaced by {self._reused[name]}", map=name,
                           errno=_errno.EINVAL)

    def reuse_map(self, which: str | int, source: Any = None, *, fd: int | None = None,
                  id: int | None = None, pinned: PathLike | None = None,
                  force: bool = False, describe: str | None = None) -> None:
        """Use an existing kernel map in place of the object's map ``which``.

        ``which`` is a map name or an index in libbpf's order (``map idx``).
        The map comes as ``fd=``, ``id=``, ``pinned=`` (a path), or
        positionally as a map handle (anything with ``.fd``), a path, or
        an fd.  The existing map must match the definition (type, key and
        value size, max_entries, flags, BTF key/value types): otherwise
        :class:`MapIncompatibleError` lists every differing field, unless
        ``force``.  Caller's fds and handles stay theirs.  ``describe``
        names the source in messages (default: how it was given).
        """
        self._check_open("reuse_map")
        mname, m = self._map(which)
        if mname in self._reused:
            raise MapError(f"replacement for map '{mname}' specified more than once", map=mname,
                           errno=_errno.EINVAL)
        if mname in self._vars_set:
            # a replacing map keeps its own contents: the value set_var wrote would be lost
            raise MapError(f"reuse_map: {self._vars_set[mname]} of map '{mname}' was set, and a replacing "
                           f"map keeps its own contents", map=mname,
                           obj=self.name, errno=_errno.EINVAL)
        given = [x for x in (source, fd, id, pinned) if x is not None]
        if len(given) != 1:
            raise BpfError("reuse_map: give exactly one of a map handle, fd=, id= or pinned=",
                           errno=_errno.EINVAL, map=mname)
        try:
            own_fd, desc = self._open_reuse_source(source, fd, id, pinned)
        except BpfError as e:  # named: which map of which object the source was for
            cls = NotFoundError if isinstance(e, NotFoundError) else MapError
            raise cls(f"reuse_map: map '{mname}' of object '{self.name}': {e.message}", map=mname,
                      obj=self.name, path=e.path, errno=e.errno or _errno.EINVAL) from None
        desc = describe or desc
        try:
            if not force:
                self._check_compat(mname, m, own_fd, desc)
            _o.map_reuse_fd(m, own_fd)  # libbpf dups the fd
        finally:
            os.close(own_fd)
        self._reused = {**self._reused, mname: desc}
        self._configured = True  # libbpf took the reused map's size and type

    @staticmethod
    def _open_reuse_source(source: Any, fd: int | None, map_id: int | None,
                           pinned: PathLike | None) -> tuple[int, str]:
        from pybpfobj.kernel import info as _info

        if fd is not None and (not isinstance(fd, int) or isinstance(fd, bool)):
            raise MapError(f"fd must be an int, not {fd!r}", errno=_errno.EINVAL)
        if map_id is not None and (not isinstance(map_id, int) or isinstance(map_id, bool)
                                   or not 0 <= map_id < 1 << 32):
            raise MapError(f"id must be an int from 0 to 2**32-1, not {map_id!r}", errno=_errno.EINVAL)
        if pinned is not None and not isinstance(pinned, (str, bytes, os.PathLike)):
            raise MapError(f"pinned must be a path, not {type(pinned).__name__}", errno=_errno.EINVAL)
        if source is not None:
            if isinstance(source, bool):
                raise BpfError(f"cannot use {source!r} as a map", errno=_errno.EINVAL)
            if hasattr(source, "fd"):
                fd = source.fd
                if not isinstance(fd, int) or isinstance(fd, bool):
                    raise MapError(f"{type(source).__name__}.fd must be an int, not {fd!r}",
                                   errno=_errno.EINVAL)
            elif isinstance(source, (str, os.PathLike)):
                pinned = source
            elif isinstance(source, int):
                fd = source
            else:
                raise BpfError(f"cannot use {source!r} as a map", errno=_errno.EINVAL)
        if fd is not None:
            try:
                os.fstat(fd)
            except (OSError, OverflowError):
                raise MapError(f"fd {fd} is not open", errno=_errno.EBADF) from None
            if _info.fd_kind(fd) != "map":
                raise MapError(f"fd {fd} is not a BPF map", errno=_errno.EINVAL)
            return os.dup(fd), f"fd {fd}"
        if map_id is not None:
            return _info.map_fd_by_id(map_id), f"map id {map_id}"
        assert pinned is not None
        path = os.fsdecode(pinned)
        return _info.obj_get(path, "map"), f"pinned map '{path}'"

    def _check_compat(self, name: str, m: int, fd: int, desc: str,
                      hint: str = "use force to reuse it anyway") -> None:
        from pybpfobj.kernel import info as _info

        want = _o.map_def(m)
        have = _info.map_info(fd)
        diffs: dict[str, tuple[Any, Any]] = {}
        wt, ht = want["type"], have.type
        if wt != ht:
            diffs["type"] = (constants.map_type_name(wt), constants.map_type_name(ht))
        for f in ("key_size", "value_size"):
            if f == "value_size" and want[f] == 0 and wt not in _NO_VALUE_OK:
                continue  # left unsized by the object: the replacing map sizes it
            if want[f] != getattr(have, f):
                diffs[f] = (want[f], getattr(have, f))
        exp_max = want["max_entries"]
        if wt in _RINGBUFS and exp_max:
            exp_max = max(exp_max, _page_size())
            exp_max = 1 << (exp_max - 1).bit_length()  # libbpf rounds ringbufs to a power of 2
        if wt == constants.MAP_TYPE["perf_event_array"] and exp_max == 0:
            exp_max = libbpf.num_possible_cpus()  # what libbpf would create it with
        elif exp_max == 0 and wt in _NEED_MAX_ENTRIES:
            exp_max = have.max_entries  # left unsized by the object: the replacing map sizes it
        if exp_max != have.max_entries:
            diffs["max_entries"] = (exp_max, have.max_entries)
        wf, hf = want["map_flags"], have.map_flags
        if wt in _DEVMAPS:  # the kernel adds BPF_F_RDONLY_PROG to devmaps
            wf &= ~constants.BPF_F_RDONLY_PROG
            hf &= ~constants.BPF_F_RDONLY_PROG
        if wf != hf:
            diffs["map_flags"] = (hex(wf), hex(hf))
        wx, hx = _o.map_extra(m), have.map_extra
        if wt == _BLOOM:  # the number of hash functions; 0 means the kernel's default
            wx, hx = (wx & 0xF) or 5, (hx & 0xF) or 5
        if wx != hx:
            diffs["map_extra"] = (wx, hx)
        if have.btf_id and (have.btf_key_type_id or have.btf_value_type_id):
            self._compare_btf(name, m, want, have, diffs)
        if diffs:
            detail = ", ".join(f"{k} {a} != {b}" for k, (a, b) in diffs.items())
            raise MapIncompatibleError(
                f"map '{name}' of object '{self.name}' is incompatible with {desc} "
                f"(object's != existing): {detail}; {hint}",
                differences=diffs, map=name, obj=self.name)

    def _compare_btf(self, name: str, m: int, want: dict[str, int], have: Any,
                     diffs: dict[str, tuple[Any, Any]]) -> None:
        try:
            from pybpfobj.kernel import info as _info
            from pybpfobj.spec.btf import BTF

            mine = self._object_btf()
            if mine is None:
                return
            key_id, val_id = want["btf_key_type_id"], want["btf_value_type_id"]
            if not val_id and _o.map_is_internal(m):
                sec = _datasec_for(mine, name, self._raw_name())
                val_id = sec.id if sec is not None else 0
            theirs = BTF.from_bytes(_info.btf_data(have.btf_id), source=f"btf id {have.btf_id}")
        except (BpfError, OSError):
            return  # no BTF to compare on one side: the size checks stand alone
        for f, a, b in (("btf_key_type", key_id, have.btf_key_type_id),
                        ("btf_value_type", val_id, have.btf_value_type_id)):
            # Equal in shape is compatible: names of typedefs, members and the
            # object the BTF came from do not matter to the kernel.
            if a and b and not _same_shape(mine, a, theirs, b):
                an, bn = mine.type_name(a), theirs.type_name(b)
                diffs[f] = (an, bn if bn != an else f"{bn} of another layout")

    def _object_btf(self) -> BTF | None:
        if self._btf is None:
            raw = _o.object_btf_raw(self._obj)
            if raw is None:
                return None
            from pybpfobj.spec.btf import BTF

            self._btf = BTF.from_bytes(raw, source=self.source)
        return self._btf

    def set_var(self, name: str, value: Any) -> None:
        """Set the initial value of global variable ``name`` (``.rodata``, ``.data``, ``.bss``, ...).

        Typed by BTF: ints (and enum names, or int strings) for integer and
        enum variables, ``str`` for char arrays (NUL-padded), ``bytes``
        (exact size, or shorter for char arrays), a dict for a struct or
        union (members by name) and a list for an array (nested alike, e.g.
        ``{"port": 80, "label": "ab"}``; members and elements left out keep
        their current value), or a ctypes instance of the variable's size.
        """
        self._check_open("set_var")
        btf = self._object_btf()
        if btf is None:
            raise NotFoundError(f"object '{self.name}' has no BTF: cannot find variable '{name}'",
                                obj=self.name)
        from pybpfobj.spec.btf import BtfKind

        for mname, m in self._maps.items():
            if not _o.map_is_internal(m):
                continue
            sec = _datasec_for(btf, mname, self._raw_name())
            if sec is None:
                continue
            for si in sec.secinfo:
                var = btf.type(si.type_id)
                if var.kind == BtfKind.VAR and var.name == name:
                    if sec.name in _EXTERN_SECTIONS:
                        raise MapError(f"set_var: '{name}' of object '{self.name}' is an extern ({sec.name}): "
                                       f"libbpf fills it in at load from the kernel", map=mname,
                                       obj=self.name, errno=_errno.EINVAL)
                    # a replaced map is not created from its initial value: the value would be lost
                    self._not_reused(mname, f"set_var '{name}'")
                    addr, size = _o.map_initial_value(m)
                    if not addr or si.offset + si.size > size:
                        raise MapError(f"map '{mname}' has no room for variable '{name}'", map=mname)
                    current = _o.read_memory(addr + si.offset, si.size)  # what members left out keep
                    data = _encode_var(btf, var.type_id, value, name, current)
                    _o.write_memory(addr, si.offset, data)
                    if mname not in self._vars_set:
                        self._vars_set = {**self._vars_set, mname: f"variable '{name}' (set_var)"}
                    return
        raise NotFoundError(f"object '{self.name}' has no global variable '{name}'", obj=self.name)

    def get_var(self, name: str) -> bytes:
        """The current initial-value bytes of global variable ``name``."""
        self._check_alive("get_var")
        btf = self._object_btf()
        if btf is not None:
            from pybpfobj.spec.btf import BtfKind

            for mname, m in self._maps.items():
                sec = _datasec_for(btf, mname, self._raw_name()) if _o.map_is_internal(m) else None
                for si in (sec.secinfo if sec is not None else ()):
                    var = btf.type(si.type_id)
                    if var.kind == BtfKind.VAR and var.name == name:
                        addr, _size = _o.map_initial_value(m)
                        return _o.read_memory(addr + si.offset, si.size)
        raise NotFoundError(f"object '{self.name}' has no global variable '{name}'", obj=self.name)

    def section_map_name(self, section: str) -> str:
        """libbpf's name of the map behind a data section or a map name.

        libbpf names internal maps ``<object name prefix><section>``
        (``xdp_coun.rodata``); ``section`` may be that name or the section
        (``.rodata``, ``.data.custom``).
        """
        self._check_alive("section_map_name")
        if not isinstance(section, str):
            raise BpfError(f"section must be a str, not {type(section).__name__}", errno=_errno.EINVAL,
                           obj=self.name)
        if section in self._maps:
            return section
        from pybpfobj.spec.elf import internal_map_name

        exact = internal_map_name(self._raw_name(), section)  # libbpf's own naming, byte for byte
        if exact in self._maps and _o.map_is_internal(self._maps[exact]):
            return exact
        raise NotFoundError(f"object '{self.name}' has no map for section '{section}'", obj=self.name,
                            map=section)

    def _data_map(self, section: str, what: str) -> tuple[str, int, int, int]:
        """(name, map pointer, initial value address, size) of a global-data map."""
        name = self.section_map_name(section)
        m = self._maps[name]
        addr, size = _o.map_initial_value(m)
        if not addr:
            raise MapError(f"{what}: map '{name}' of object '{self.name}' is not a global-data map "
                           f"(it has no initial value)", map=name, obj=self.name, errno=_errno.EINVAL)
        return name, m, addr, size

    def initial_value(self, section: str) -> bytes:
        """The initial value of a global-data map (``.rodata``, ``.data``, ``.bss``, ``.data.*``):
        the bytes the map is created with at :meth:`load` (the object's, plus changes made)."""
        if self._state == "closed":
            raise BpfError(f"initial_value: object '{self.name}' is closed", errno=_errno.EBADF,
                           obj=self.name)
        _name, _m, addr, size = self._data_map(section, "initial_value")
        return _o.read_memory(addr, size)

    def set_initial_value(self, section: str, data: bytes) -> None:
        """Before load: replace the whole initial value of a global-data map (exactly its size)."""
        self._check_open("set_initial_value")
        name, m, _addr, size = self._data_map(section, "set_initial_value")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise MapError(f"set_initial_value: map '{name}' of object '{self.name}': the data must be "
                           f"bytes, not {type(data).__name__}", map=name, obj=self.name, errno=_errno.EINVAL)
        self._not_reused(name, "set_initial_value")
        if name.endswith(_EXTERN_SECTIONS):
            raise MapError(f"set_initial_value: map '{name}' of object '{self.name}' holds externs: libbpf "
                           f"fills it in at load from the kernel", map=name, obj=self.name, errno=_errno.EINVAL)
        data = bytes(data)
        if len(data) != size:
            raise MapError(f"set_initial_value: map '{name}' of object '{self.name}' is {size} bytes, "
                           f"the data {len(data)}", map=name, obj=self.name, errno=_errno.EINVAL)
        _o.map_set_initial_value(m, data)
        if name not in self._vars_set:
            self._vars_set = {**self._vars_set, name: "the initial value (set_initial_value)"}

    def set_attach_target(self, prog: str, target_fd: int = 0, func_name: str | None = None) -> None:
        """Before load: attach program ``prog`` (fentry/fexit/freplace/tp_btf...) to ``func_name``
        of the BPF program behind ``target_fd``, or of the kernel when ``target_fd`` is 0."""
        self._check_open("set_attach_target")
        p = self._prog(prog)
        if not isinstance(target_fd, int) or isinstance(target_fd, bool) or not 0 <= target_fd < 1 << 31 \
                or not isinstance(func_name, (str, type(None))):
            raise ProgramError(f"program '{prog}' of object '{self.name}': set_attach_target needs an "
                               f"fd >= 0 and a function name, got {target_fd!r}, {func_name!r}",
                               prog=prog, obj=self.name, errno=_errno.EINVAL)
        try:
            _o.prog_set_attach_target(p, target_fd, func_name)
        except BpfError as e:
            raise ProgramError(f"program '{prog}' of object '{self.name}': cannot set attach target "
                               f"{func_name!r} (fd {target_fd}): {os.strerror(e.errno or _errno.EINVAL)}",
                               prog=prog, obj=self.name, errno=e.errno or _errno.EINVAL) from None

    def autoattach(self, prog: str) -> bool:
        """Whether :meth:`attach_all` (and a skeleton's ``attach()``) attaches ``prog``."""
        return _o.prog_autoattach(self._prog(prog))

    def set_autoattach(self, prog: str, autoattach: bool) -> None:
        """Include or leave out ``prog`` from :meth:`attach_all` (libbpf's autoattach flag)."""
        _o.prog_set_autoattach(self._prog(prog), autoattach)

    def autoload(self, prog: str) -> bool:
        """Whether :meth:`load` loads ``prog`` (False for a ``SEC("?...")`` program until
        :meth:`set_autoload` turns it on)."""
        return _o.prog_autoload(self._prog(prog))

    def set_autoload(self, prog: str, autoload: bool = True) -> None:
        """Load ``prog`` with the object, or leave it out (libbpf's autoload flag; sections
        written ``SEC("?...")`` start with it off).  Before :meth:`load` only."""
        self._check_open("set_autoload")
        if not isinstance(autoload, bool):
            raise ProgramError(f"set_autoload: program '{prog}' of object '{self.name}': autoload "
                               f"must be True or False, got {autoload!r}", prog=prog, obj=self.name,
                               errno=_errno.EINVAL)
        _o.prog_set_autoload(self._prog(prog), autoload)

    # -- load --------------------------------------------------------------

    def load(self) -> None:
        """Create the maps and load every program.

        Raises :class:`VerifierError` (log, failing insn, source line) when
        the verifier rejects a program, :class:`UnsupportedError` when the
        kernel lacks a program type (probed), :class:`ProgramError` when it
        refuses a program otherwise (EPERM for a type a policy forbids,
        ENOTSUPP), :class:`MapError` for a map the kernel refuses.  A failed
        load closes the object.
        """
        started = False
        try:
            with _transition:  # one load at a time; close() refuses meanwhile (libbpf would free it)
                state = self._state
                if state != "opened":
                    raise BpfError(f"load: object '{self.name}' is {state}; configure it before load()",
                                   errno=_errno.EBUSY, obj=self.name)
                self._state = "loading"
                started = True
                pending = self._pending  # kept until loaded: its name, and no open elsewhere
            if pending is None:
                self._load_opened()
            else:
                # an unconfigured object of a file loaded cleanly before: opened and loaded in
                # one call, no scan (it found nothing in these very bytes)
                try:
                    buf = _tls.log
                except AttributeError:  # this thread's first
                    buf = _thread_log_buffer()
                self._log_buf = buf
                ret, lines = _o.open_load_cached(pending, self.source, buf, self)
                if ret or lines:
                    self._finish_load(ret, lines, buf)
                self._pending = None
            self._state = "loaded"
        except BaseException:
            if started:
                self._release()  # straight from "loading" to "closed": no other load slips in
            raise

    def _load_opened(self) -> None:
        """load() of an object libbpf has opened: the pre-load scan, the load, its by-name pins."""
        root_existed = True
        pins: Mapping[str, str] = {}
        existed: set[str] = set()
        try:
            # The pre-load scan looks for what needs attention: a program type to set, a
            # by-name pin to check, a size missing.  Its finding depends on the file alone
            # (unless the caller set a type, size or reused map); "nothing" is remembered
            # per file, so loading the same unchanged file again skips the scan.
            file = self._file
            keepable = _CLEAN_FILES.get(file) if file is not None else None
            if keepable is None or self._configured:
                untyped, pinned, unsized = _o.scan_for_load(self._obj)
                if untyped:
                    self._prepare_types(untyped)
                if pinned or unsized:
                    # unsized maps the kernel refuses raise; those it takes as they are
                    # (a ringbuf's value size, a storage map's max_entries) pass
                    self._check_maps(pinned, unsized)
                clean = not (untyped or pinned) and file is not None and not self._configured and self._plain
            else:
                # known clean; its bytes not kept (kept off then, or dropped for the budget)
                # though they may be: keep them now
                clean = keepable and self._plain and _keep_contents and file not in _CONTENTS
            pins = self._pin_paths
            if pins:  # only by-name pins can create the pin root
                existed = {p for p in pins.values() if os.path.exists(p)}
                root_existed = os.path.isdir(self.pin_root)
            # One log buffer for every program, given at open: libbpf requests a log
            # only when a load fails, and stops at the first failure, so it holds
            # that log.  (With a log level, libbpf keeps its own buffer and prints
            # every log itself.)
            log_buf = self._log_buf
            if log_buf is not None and log_buf is not getattr(_tls, "log", None):
                # opened on another thread, whose loads use that buffer: use this thread's
                log_buf = _thread_log_buffer()
                _o.set_log_bufs(self._obj, log_buf)
            ret, lines = _o.load_object(self._obj)
            self._finish_load(ret, lines, log_buf)
            if clean:  # loaded as the file asked: later loads may skip the scan (and open its bytes)
                assert file is not None
                self._remember_clean(file)
            if pins:
                self._record_pins(pins, existed, root_existed)
        except BaseException:
            if pins:
                # by-name pins libbpf made in a load that completed, then was interrupted
                # (KeyboardInterrupt as it returned) or refused after: ours to take back
                self._record_pins(pins, existed, root_existed)
                if self._pins is not None:
                    self._pins.undo()
                self._pin_paths = _mappingproxy({})
            if not root_existed:
                try:
                    os.rmdir(self.pin_root)
                except OSError:
                    pass
            raise

    def _finish_load(self, ret: int, lines: list[str], log_buf: _o.LogBuffer | None) -> None:
        log = None
        if log_buf is not None and (lines or ret < 0):
            # Something went wrong (libbpf warned): whatever the kernel wrote is
            # read now, and the buffer left empty for this thread's next load.
            log = log_buf.text()
            log_buf.reset()
        if ret < 0:
            self._raise_load_error(-ret, lines, log)

    def _remember_clean(self, file: tuple[int, int, int, int, int]) -> None:
        """Remember that the file, as ``file`` describes it, needs no pre-load scan, and
        keep its bytes where it may, where that description can tell its contents
        apart: not on a file system whose times are whole seconds (a rewrite within
        the second keeps them), not for a file changed in the last two seconds (the
        kernel's clock for file times moves in ticks).  The bytes are read from the
        path now, checked against ``file`` before and after, and scanned again
        (opened quietly): what libbpf opened for this load may have been another file,
        had the path been re-pointed and back meanwhile, and only what is read here
        under this key is remembered for it."""
        mtime, ctime = file[3], file[4]
        if ctime % 1_000_000_000 == 0 or time_ns() - max(mtime, ctime) < _FRESH_NS:
            return
        path = self._path or ""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
        except (OSError, ValueError):
            return
        try:
            st = os.fstat(fd)
            if _file_key(st) != file or not S_ISREG(st.st_mode) or st.st_size > _CLEAN_MAX:
                return
            data = os.read(fd, st.st_size + 1)
            st = os.fstat(fd)  # unchanged while read
            if len(data) != st.st_size or _file_key(st) != file:
                return
        except OSError:
            return
        finally:
            os.close(fd)
        if not _o.bytes_load_as_they_are(data):
            return  # not the file this load scanned: nothing remembered
        # kept only for a file anyone may read: the bytes then tell nobody more than the
        # file would (a chmod changes its ctime, so the key)
        keepable = st.st_size <= _CONTENTS_MAX and st.st_mode & 0o444 == 0o444
        if file not in _CLEAN_FILES and len(_CLEAN_FILES) >= 256:
            _CLEAN_FILES.clear()
        _CLEAN_FILES[file] = keepable
        if keepable and _keep_contents:
            global _contents_size
            with _contents_lock:
                if not _keep_contents:
                    return
                old = _CONTENTS.pop(file, None)
                if old is not None:
                    _contents_size -= len(old)
                if _contents_size + len(data) > _CONTENTS_BUDGET or len(_CONTENTS) >= 256:
                    _forget_contents()
                _CONTENTS[file] = data
                _contents_size += len(data)

    def _record_pins(self, pins: Mapping[str, str], existed: set[str], root_existed: bool) -> None:
        """By-name pins libbpf just created (and the pin root, if it made it) are ours
        to take back."""
        for pin in pins.values():
            if pin not in existed and os.path.exists(pin):
                made = self._own_pins()
                if (not root_existed and os.path.dirname(pin) == self.pin_root.rstrip("/")
                        and os.path.abspath(self.pin_root) not in made.dirs):
                    made.add_dir(self.pin_root)
                made.add_pin(pin)

    def _prepare_types(self, untyped: list[int]) -> None:
        """Give a type to programs whose section libbpf 1.1 cannot place (and their flags:
        a sleepable section's BPF_F_SLEEPABLE).  Programs left out (autoload off) are left
        alone, as libbpf leaves them."""
        for p in untyped:
            name = _o.prog_name(p)
            if name in self._type_set or not _o.prog_autoload(p):
                continue
            sec = _o.prog_section(p)
            d = _section_def(sec)
            resolved = _type_pair(d)
            if resolved is None:
                err = ProgramError(
                    f"program '{name}': failed to guess program type from ELF section '{sec}'; "
                    f"give one with type TYPE (set_prog_type)", prog=name, obj=self.name,
                    errno=_errno.EINVAL)
                err.section = sec  # type: ignore[attr-defined]  # for the CLI, which lets libbpf explain
                raise err
            pt, at = resolved
            if _o.probe_prog_type(pt) is False:
                raise UnsupportedError(
                    f"program '{name}': section '{sec}' means program type "
                    f"{constants.prog_type_name(pt)}, which this kernel does not support",
                    prog=name, obj=self.name, errno=_errno.EOPNOTSUPP)
            _o.prog_set_type(p, pt, at)
            if d.sleepable:
                _o.prog_set_sleepable(p)
            self._from_table = self._from_table | {name}

    def _check_maps(self, pinned: list[int], unsized: list[int]) -> None:
        """Before load: by-name pins need a BPF file system; maps the kernel would refuse
        unsized need a size from the user (clearer than the kernel's EINVAL)."""
        pins: dict[str, str] = {}
        self._pin_paths = pins
        for name, m in self._maps.items():  # in map order, as errors come
            pin = _o.map_pin_path(m) if m in pinned else None
            if pin:
                pins[name] = pin
                # as libbpf: a replaced map is pinned (or swapped for an existing pin) too
                root = os.path.dirname(pin) or "/"
                probe = root
                while not os.path.exists(probe) and probe not in ("/", "."):
                    probe = os.path.dirname(probe) or "."  # a relative root's parent: the cwd
                if not bpffs.is_bpffs(probe):
                    raise PinError(
                        f"map '{name}' of object '{self.name}' is pinned by name under '{root}', "
                        f"which is not on a BPF file system (give pin_root, or 'pinroot DIR')",
                        map=name, obj=self.name, path=root, errno=_errno.EINVAL)
                if os.path.lexists(pin):
                    self._reuse_pin(name, m, pin)
                elif probe != root and probe != (os.path.dirname(root) or "."):
                    # libbpf makes only the last directory, then fails with a bare ENOENT
                    raise PinError(f"map '{name}' of object '{self.name}' is pinned by name under "
                                   f"'{root}', whose parent '{os.path.dirname(root)}' does not exist",
                                   map=name, obj=self.name, path=root, errno=_errno.ENOENT)
            if m not in unsized:
                continue
            mtype, max_entries, value_size = _o.map_type(m), _o.map_max_entries(m), _o.map_value_size(m)
            no_max = mtype in _NEED_MAX_ENTRIES and max_entries == 0
            no_value = value_size == 0 and mtype not in _NO_VALUE_OK
            if not (no_max or no_value) or name in self._reused or not _o.map_autocreate(m):
                continue
            if no_max:
                raise MapError(f"map '{name}' of object '{self.name}' has no max_entries: size it "
                               f"before load (set_max_entries, or 'size {name} N' on the command line)",
                               map=name, obj=self.name, errno=_errno.EINVAL)
            if no_value:
                raise MapError(f"map '{name}' of object '{self.name}' has no value_size: set it "
                               f"before load (set_value_size, or 'value_size {name} N')",
                               map=name, obj=self.name, errno=_errno.EINVAL)

    def _reuse_pin(self, name: str, m: int, pin: str) -> None:
        """Reuse the existing by-name pin of map ``name`` as libbpf does, but checked here:
        a mismatch lists every differing field (libbpf 1.1 only says "parameter mismatch"),
        and what libbpf 1.1 wrongly refuses (a devmap's BPF_F_RDONLY_PROG, a CPU-sized
        perf_event_array) is reused.  libbpf is then told the map has no pin path, so it
        neither checks nor pins it again; :attr:`pinned_by_name` still names the pin."""
        from pybpfobj.kernel import info as _info

        try:
            fd = _info.obj_get(pin, "map")
        except BpfError as e:
            raise PinError(f"map '{name}' of object '{self.name}': cannot reuse its pin '{pin}': "
                           f"{e.message}", map=name, obj=self.name, path=pin,
                           errno=e.errno or _errno.EINVAL) from None
        try:
            self._check_compat(name, m, fd, f"pinned map '{pin}'",
                               hint="remove the pin or give another pin root")
            _o.map_reuse_fd(m, fd)
            _o.map_clear_pin_path(m, name)
        finally:
            os.close(fd)

    def _raise_load_error(self, err: int, lines: list[str], log: str | None) -> None:
        import re

        text = "".join(lines)
        # libbpf's own line, not one inside a verifier log it printed (source text may say anything)
        failed = next((m for m in map(re.compile(_FAILED_PROG).match, lines) if m is not None), None)
        if log is None:  # libbpf's own buffer: the log came as a warning
            log = _log_from_lines(failed.group(1), lines) if failed is not None else ""
        if failed is not None and (_verifier_said_why(log) or err in (_errno.EACCES, _errno.ENOSPC)):
            raise self._verifier_error(failed.group(1), log, err)
        if failed is not None:
            prog = failed.group(1)
            p = self._progs.get(prog)
            if p is not None and err in (_errno.EINVAL, _errno.EOPNOTSUPP):
                probe = _o.probe_prog_type(_o.prog_type(p))
                tname = constants.prog_type_name(_o.prog_type(p))
                if probe is False or (probe is None and (prog in self._from_table or prog in self._type_set)):
                    maybe = "does not support" if probe is False else "rejected (it may not support it)"
                    raise UnsupportedError(
                        f"failed to load object file: program '{prog}' (section "
                        f"'{_o.prog_section(p)}') has type {tname}, which this kernel {maybe}",
                        prog=prog, obj=self.name, errno=err)
            cause = _first_cause(prog, lines)
            at = _o.prog_expected_attach_type(p) if p is not None else 0
            if err == _errno.EINVAL and p is not None and prog in self._from_table and at:
                cause = (f"the kernel refused it as type {constants.prog_type_name(_o.prog_type(p))} "
                         f"with expected attach type {constants.attach_type_name(at)} (section "
                         f"'{_o.prog_section(p)}'): {os.strerror(err)} (this kernel may lack the attach type)")
            elif err == _errno.EPERM and p is not None:  # libbpf's hint ("ulimit -l") misleads as root
                cause = (f"the kernel refused it as type {constants.prog_type_name(_o.prog_type(p))} "
                         f"(section '{_o.prog_section(p)}'): {os.strerror(err)} (a security policy, "
                         f"lockdown or this kernel's build may forbid the type)")
            elif not cause or "strerror_r(" in cause:  # libbpf could not name the errno (ENOTSUPP)
                cause = _errno_text(err)
                if p is not None:
                    cause = f"the kernel refused it as type {constants.prog_type_name(_o.prog_type(p))}: {cause}"
            raise ProgramError(f"failed to load object file: program '{prog}': {cause}",
                               prog=prog, obj=self.name, errno=err)
        mm = re.search(r"map '([^']+)': failed to create: ([^\n]*)", text)
        if mm is not None:
            raise MapError(f"failed to load object file: map '{mm.group(1)}': failed to create: "
                           f"{mm.group(2)}", map=mm.group(1), obj=self.name, errno=err)
        raise LibbpfError(f"failed to load object file '{self.source}': "
                          f"{_last_warning(lines) or os.strerror(err)}", obj=self.name, errno=err)

    def _verifier_error(self, prog: str, log: str, err: int) -> VerifierError:
        """The VerifierError for program ``prog``'s log: its reason, failing instruction
        and source line, read from the log itself at any log level.

        - The reason is the log's last line before its closing statistics: the
          verifier stops at the error, and at log level 2 and up the failing
          instruction is followed by precision tracking and state lines.
        - The instruction is the one the reason names ("at insn N"), else the
          last one walked, except for checks made after the walk (the
          combined stack size).
        - The source line is the kernel's own annotation before that
          instruction (``; text @ file:line``): instructions are numbered
          over the whole loaded program, subprograms appended, which the
          object file's line_info alone does not tell.
        """
        import re

        insn_re = re.compile(r"^(\d+): [(<]")  # "7: (79) r1 = ...", "1: <invalid CO-RE relocation>"
        src_re = re.compile(r"^; (.*) @ (.+):(\d+)$")
        log_lines = log.rstrip("\n").split("\n")
        end = len(log_lines)
        while end and (not log_lines[end - 1].strip()
                       or log_lines[end - 1].startswith(_LOG_TRAILERS)):
            end -= 1
        reason = log_lines[end - 1].strip() if end else ""
        if reason and (insn_re.match(reason) or src_re.match(reason)):
            reason = ""  # no message after the last instruction
        named = re.search(r"\binsn (\d+)\b", reason)
        insn: int | None = None
        idx = -1
        if named is not None:
            insn = int(named.group(1))
            idx = max((i for i, ln in enumerate(log_lines[:end])
                       if (mi := insn_re.match(ln)) and int(mi.group(1)) == insn), default=-1)
        elif not reason.startswith(_AFTER_WALK):
            for i in range(end - 1, -1, -1):
                mi = insn_re.match(log_lines[i])
                if mi:
                    insn, idx = int(mi.group(1)), i
                    break
        source = None
        for line in reversed(log_lines[:idx] if idx >= 0 else ()):
            ms = src_re.match(line)
            if ms:
                source = (ms.group(2), int(ms.group(3)), ms.group(1).strip())
                break
        where = ""
        if insn is not None:
            where = f" at insn {insn}"
            if source is not None:
                where += f" ({source[0]}:{source[1]}: {source[2]})"
        if err == _errno.ENOSPC:
            # the log filled its buffer: the kernel kept its end, and its ENOSPC hides the
            # error the reason states
            err = _errno.E2BIG if ("too large" in reason or "too complex" in reason) else _errno.EACCES
            reason += " (the verifier log overflowed its buffer: .log holds its end)"
        return VerifierError(
            f"failed to load object file: the verifier rejected program '{prog}'{where}"
            + (f": {reason}" if reason else ""),
            log=log, insn=insn, source=source, prog=prog, obj=self.name, errno=err)

    # -- handles -----------------------------------------------------------

    def _check_loaded(self, what: str) -> None:
        if self._state != "loaded":
            raise BpfError(f"{what}: object '{self.name}' is {self._state}, not loaded",
                           errno=_errno.EBADF, obj=self.name)

    @property
    def programs(self) -> dict[str, Any]:
        """Loaded programs, name -> :class:`pybpfobj.programs.Program` (libbpf's order).

        Each handle holds its own fd: closing it or the object is safe in
        either order.
        """
        self._check_loaded("programs")
        if self._prog_handles is None:
            self._prog_handles = {}
        handles = self._prog_handles
        for name, p in self._progs.items():
            if name not in handles and _o.prog_fd(p) >= 0:
                handles[name] = _make_prog_handle(os.dup(_o.prog_fd(p)), name)
        return {n: handles[n] for n in self._progs if n in handles}

    @property
    def maps(self) -> dict[str, Any]:
        """Created maps, name -> :class:`pybpfobj.maps.Map` (``map idx`` order)."""
        self._check_loaded("maps")
        if self._map_handles is None:
            self._map_handles = {}
        handles = self._map_handles
        for name, m in self._maps.items():
            if name not in handles and _o.map_fd(m) >= 0:
                handles[name] = _make_map_handle(os.dup(_o.map_fd(m)), name)
        return {n: handles[n] for n in self._maps if n in handles}

    def prog_fd(self, name: str) -> int:
        """The object's own fd of program ``name`` (valid until :meth:`close`)."""
        self._check_loaded("prog_fd")
        fd = _o.prog_fd(self._prog(name))
        if fd < 0:
            raise ProgramError(f"prog_fd: program '{name}' of object '{self.name}' was not loaded (its "
                               f"autoload is off)", prog=name, obj=self.name, errno=_errno.ENOENT)
        return fd

    def map_fd(self, name: str) -> int:
        """The object's own fd of map ``name`` (valid until :meth:`close`)."""
        self._check_loaded("map_fd")
        mname, m = self._map(name)
        fd = _o.map_fd(m)
        if fd < 0:
            raise MapError(f"map_fd: map '{mname}' of object '{self.name}' was not created (its autocreate "
                           f"is off)", map=mname, obj=self.name, errno=_errno.ENOENT)
        return fd

    # -- attaching ---------------------------------------------------------

    def attach(self, prog: str) -> LibbpfLink:
        """Attach program ``prog`` as its section says (``tracepoint/syscalls/sys_enter_openat``,
        ``raw_tracepoint/sys_enter``, ``kprobe/do_unlinkat``...) through libbpf's
        ``bpf_program__attach``.

        Returns a :class:`pybpfobj.links.LibbpfLink`: closing it detaches the
        program (unless pinned); it stays valid after the object is closed.
        Sections that name no target (``xdp``, ``tc``, ``socket``...) raise
        :class:`ProgramError`: attach those with :mod:`pybpfobj.links`.
        """
        self._check_loaded("attach")
        p = self._prog(prog)
        sec = _o.prog_section(p)
        with libbpf.capture_output() as lines:
            try:
                ptr = _o.prog_attach(p, f"attaching program '{prog}'")
            except BpfError as e:
                err = e.errno or _errno.EINVAL
                why = os.strerror(err)
                if err == _errno.EOPNOTSUPP:
                    why = "its section does not say where to attach"
                detail = _last_warning(lines)
                raise ProgramError(f"cannot attach program '{prog}' (section '{sec}') of object "
                                   f"'{self.name}': {why}" + (f" ({detail})" if detail else ""),
                                   prog=prog, obj=self.name, errno=err) from None
        from pybpfobj.links import LibbpfLink

        try:
            return LibbpfLink(ptr, prog)
        except BaseException:
            _o.link_destroy(ptr)
            raise

    def attach_all(self) -> list[LibbpfLink]:
        """Attach every program with autoattach set whose section says where (libbpf skeletons'
        ``attach``); all or nothing: a failure destroys the links this call made."""
        self._check_loaded("attach_all")
        made: list[LibbpfLink] = []
        try:
            for name, p in self._progs.items():
                if _o.prog_autoattach(p) and _o.prog_fd(p) >= 0 and auto_attachable(_o.prog_section(p)):
                    made.append(self.attach(name))
        except BaseException:
            for link in reversed(made):
                link.close()
            raise
        return made

    # -- pinning -----------------------------------------------------------

    def pin_first(self, path: PathLike) -> str:
        """Pin the first program (libbpf's order) at ``path``, as ``bpftool prog load``."""
        self._check_loaded("pin_first")
        p = _path_arg(path, "pin path")
        if not self._progs:
            raise ProgramError(f"object '{self.name}' has no program to pin", obj=self.name)
        name, prog = next(iter(self._progs.items()))
        fd = _o.prog_fd(prog)
        if fd < 0:  # bpftool: libbpf's "can't pin program that wasn't loaded", then "failed to pin"
            raise ProgramError(f"failed to pin program '{name}' (section '{_o.prog_section(prog)}'): "
                               f"it was not loaded (its autoload is off: a SEC(\"?...\") program, or "
                               f"set_autoload(False))", prog=name, obj=self.name, path=p, errno=_errno.EINVAL)
        txn = _Pins()
        try:
            self._pin_fd(txn, fd, p, f"program '{name}'")
        except BaseException:
            txn.undo()
            raise
        self._own_pins().extend(txn)
        return p

    def pin_programs(self, directory: PathLike) -> list[str]:
        """Pin every loaded program as ``directory/<function name>`` (directory created 0700,
        one level; not made when no program loaded).  Programs whose autoload is off
        (``SEC("?...")``) were not loaded and are left out.

        All or nothing: a failure unpins what this call pinned and removes
        the directory if it made it.
        """
        self._check_loaded("pin_programs")
        d = _path_arg(directory, "pin directory")
        return self._pin_many(d, [(n, _o.prog_fd(p), f"program '{n}'") for n, p in self._progs.items()
                                  if _o.prog_fd(p) >= 0])

    def pin_maps(self, directory: PathLike) -> list[str]:
        """Pin every map as ``directory/<name>`` with ``.`` made ``_`` (bpftool's ``pinmaps``).

        Maps with ``LIBBPF_PIN_BY_NAME`` keep their one pin, under the pin
        root, and are not pinned again here (libbpf gives a map one pin
        path; bpftool 7.1 fails with "already has pin path" unless
        ``directory`` is the pin root, where the result is the same).
        All or nothing, like :meth:`pin_programs`.
        """
        self._check_loaded("pin_maps")
        d = _path_arg(directory, "pin directory")
        return self._pin_many(d, [(n.replace(".", "_"), _o.map_fd(m), f"map '{n}'")
                                  for n, m in self._maps.items()
                                  if _o.map_fd(m) >= 0 and n not in self._pin_paths])

    @property
    def pinned_by_name(self) -> dict[str, str]:
        """Maps with ``LIBBPF_PIN_BY_NAME``: name -> the path libbpf pinned (or reused) them at."""
        return dict(self._pin_paths)

    def _pin_many(self, d: str, items: list[tuple[str, int, str]]) -> list[str]:
        if not items:  # as libbpf, which makes the directory as it pins the first object
            return []
        libbpf.c_path(d)  # a NUL byte: refused before anything is made
        holder = d if os.path.isdir(d) else os.path.dirname(os.path.abspath(d))
        if os.path.isdir(holder) and not bpffs.is_bpffs(holder):
            raise BpffsError(f"can't pin in '{d}': '{holder}' is not on a BPF file system", path=d,
                             obj=self.name, errno=_errno.EINVAL)
        txn = _Pins()
        done: list[str] = []
        try:
            for base, _fd, what in items:
                bpffs.check_pin_name(os.path.join(d, base), what)
            if not os.path.lexists(d):
                txn.add_dir(d, pending=True)
                if bpffs.make_pin_dir(d):
                    txn.made(d)
                else:
                    txn.forget(d)  # made meanwhile by someone else: not ours
            else:
                bpffs.make_pin_dir(d)  # checks it is a directory
            for base, fd, what in items:
                path = os.path.join(d, base)
                self._pin_fd(txn, fd, path, what)
                done.append(path)
        except BaseException:
            txn.undo()
            raise
        self._own_pins().extend(txn)
        return done

    @staticmethod
    def _pin_fd(txn: _Pins, fd: int, path: str, what: str) -> None:
        bpffs.check_pin_free(path, what)  # an existing entry is never noted as ours
        # noted before the syscall: a KeyboardInterrupt as it returns still finds it to undo
        txn.add_pin(path, pending=True)
        try:
            bpffs.pin_fd(fd, path, what)
        except BpfError:  # not pinned: the name is not ours
            txn.forget(path)
            raise
        txn.made(path)

    @property
    def pinned(self) -> list[str]:
        """Every pin this object made (including libbpf's by-name map pins), in order."""
        return list(self._pins.pins) if self._pins is not None else []

    def unpin_all(self) -> None:
        """Remove every pin and directory this object created (newest first)."""
        if self._pins is not None:
            self._pins.undo()

    # -- lifetime ----------------------------------------------------------

    def close(self) -> None:
        """Release every fd and libbpf's object; handles already given out stay valid.

        Program and map names come from libbpf's object: a closed object still
        lists those read while it was open, and no others.
        """
        with _transition:
            if self._state == "closed":
                return
            if self._state == "loading":
                raise BpfError(f"close: object '{self.name}' is being loaded on another thread",
                               errno=_errno.EBUSY, obj=self.name)
        self._release()

    def _release(self) -> None:
        """Hand libbpf's object over and free it, whatever interrupts: taken out first (a
        second close, another thread's or after a KeyboardInterrupt, finds nothing to
        free), freed in a ``finally`` (an interrupt as the lock is released skips nothing)."""
        obj = 0
        try:
            with _transition:
                if self._state == "closed":
                    return
                pending = self._pending
                if self._name is None:  # the name stays readable once closed
                    if pending is not None:
                        self._name = pending[1].decode("utf-8", "replace")
                    elif self._handle:
                        self._name = _o.object_name(self._handle)
                self._pending = None
                obj, self._handle = self._handle, 0
                self._state = "closed"
        finally:
            if obj:
                _o.close_object(obj)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # libbpf's object cannot travel, and a shallow copy sharing it would free it twice
        raise TypeError(f"cannot pickle or copy a BpfObject ('{self.source}'): open the file again")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if getattr(self, "_state", "closed") != "closed":
                self.close()
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown
            pass

    def __iter__(self) -> Iterator[str]:
        return iter(self._progs)


# ---------------------------------------------------------------------------
# helpers

def _file_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What tells a file's contents apart in the memos: device, inode, size, mtime, ctime."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _name_for(path: str) -> bytes:
    """The name ``bpf_object__open_file`` gives an object from its path (remembered per path)."""
    from pybpfobj.spec.elf import object_name_bytes

    name = object_name_bytes(path)
    if len(_NAMES) >= 1024:
        _NAMES.clear()
    _NAMES[path] = name
    return name


def _thread_log_buffer() -> _o.LogBuffer:
    """This thread's verifier log buffer (made once per thread, empty between loads)."""
    buf: _o.LogBuffer | None = getattr(_tls, "log", None)
    if buf is None:
        buf = _tls.log = _o.LogBuffer(_LOG_SIZE)
    return buf


def _log_from_lines(prog: str, lines: list[str]) -> str:
    """The verifier log of ``prog`` that libbpf printed between its BEGIN/END markers."""
    head = f"prog '{prog}'{_LOG_BEGIN}"  # after libbpf's own "libbpf: " prefix
    for line in lines:
        at = line.find(head)
        if 0 <= at <= len("libbpf: "):
            body = line[at + len(head):]
            end = body.rfind(_LOG_END)
            return body[:end] if end >= 0 else body
    return ""


def _first_cause(prog: str, lines: list[str]) -> str:
    """libbpf's first line about ``prog`` that says why its load failed (not its
    generic "failed to load" / "failed to prepare load attributes" follow-ups)."""
    head = f"prog '{prog}': "
    for line in lines:
        at = line.find(head)
        if at < 0:
            continue
        why = line[at + len(head):].strip()
        if why and not why.startswith(("failed to load", "failed to prepare load attributes")):
            return why
    return ""


def _verifier_said_why(log: str) -> bool:
    """Whether a program's verifier log holds more than the closing statistics: a load
    the kernel refused before verifying (a type it does not support there) leaves
    only "processed 0 insns ..."."""
    return any(line.strip() and not line.startswith("processed ") for line in log.split("\n"))


def _errno_text(err: int) -> str:
    # the kernel-internal ENOTSUPP (524) has no C library text ("Unknown error 524")
    return "operation not supported (ENOTSUPP)" if err == 524 else os.strerror(err)


def _last_warning(lines: list[str]) -> str:
    """libbpf's last line that says why, without its tag: not its closing "failed to load
    object '...'", which only repeats that the load failed."""
    for line in reversed(lines):
        s = line.strip().removeprefix("libbpf: ")
        if s and not s.startswith("failed to load object "):
            return s
    return ""


def _same_shape(a: BTF, aid: int, b: BTF, bid: int, depth: int = 0) -> bool:
    """Whether BTF type ``aid`` of ``a`` and ``bid`` of ``b`` have the same layout: sizes,
    signedness, member offsets and bitfields, array lengths, recursively (typedefs,
    qualifiers and names aside)."""
    from pybpfobj.spec.btf import BtfKind

    if depth > 32:
        return True
    ta, tb = a.resolve(aid), b.resolve(bid)
    ka, kb = ta.kind, tb.kind
    enums = (BtfKind.ENUM, BtfKind.ENUM64)
    if ka in enums and kb in enums:
        return ta.size == tb.size
    if ka != kb:
        return False
    if ka == BtfKind.PTR:
        return True
    if ka == BtfKind.INT:
        return (ta.size, ta.int_encoding & 1, ta.int_offset, ta.int_bits) == \
            (tb.size, tb.int_encoding & 1, tb.int_offset, tb.int_bits)
    if ka == BtfKind.ARRAY:
        return ta.nelems == tb.nelems and _same_shape(a, ta.elem_type, b, tb.elem_type, depth + 1)
    if ka in (BtfKind.STRUCT, BtfKind.UNION):
        if ta.size != tb.size or len(ta.members) != len(tb.members):
            return False
        return all(ma.bit_offset == mb.bit_offset and ma.bitfield_size == mb.bitfield_size
                   and _same_shape(a, ma.type_id, b, mb.type_id, depth + 1)
                   for ma, mb in zip(ta.members, tb.members))
    if ka == BtfKind.DATASEC:
        if ta.size != tb.size or len(ta.secinfo) != len(tb.secinfo):
            return False
        return all(sa.offset == sb.offset and sa.size == sb.size
                   and _same_shape(a, a.type(sa.type_id).type_id, b, b.type(sb.type_id).type_id, depth + 1)
                   for sa, sb in zip(ta.secinfo, tb.secinfo))
    return a.size_of(ta.id) == b.size_of(tb.id)


def _path_arg(path: Any, what: str) -> str:
    """``os.fspath(path)`` as a str, or a BpfError naming ``what`` (not a TypeError)."""
    try:
        p = os.fspath(path)
    except TypeError:
        p = None
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if not isinstance(p, str):
        raise BpfError(f"{what} must be a path, not {type(path).__name__}", errno=_errno.EINVAL)
    return p


def _check_u32(n: int, what: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 0xFFFFFFFF:
        raise BpfError(f"invalid {what}: {n!r} (must be 0..4294967295)", errno=_errno.EINVAL)


def _section_def(sec: str) -> Any:
    """Our table's convention for a section libbpf could not place, or None."""
    from pybpfobj.spec import sections

    try:
        return sections.resolve_section(sec)
    except (KeyError, ValueError, LookupError):  # an unknown section is the answer None
        return None


def _resolve_section(sec: str) -> tuple[int, int | None] | None:
    """Program type (and expected attach type) for a section libbpf could not place."""
    return _type_pair(_section_def(sec))


def _type_pair(r: Any) -> tuple[int, int | None] | None:
    """Normalise what the spec's section table returns to ``(prog_type, attach_type)``."""
    if r is None:
        return None
    if isinstance(r, tuple):
        pt, at = r[0], (r[1] if len(r) > 1 else None)
    else:
        pt = getattr(r, "prog_type", None)
        at = getattr(r, "attach_type", getattr(r, "expected_attach_type", None))
    if pt is None:
        return None
    if isinstance(pt, str):
        pt = constants.PROG_TYPE.get(pt)
        if pt is None:
            return None
    if isinstance(at, str):
        at = constants.ATTACH_TYPE.get(at)
    return int(pt), (int(at) if at is not None else None)


def _resolve_type(t: str | int) -> tuple[int, int | None]:
    """bpftool's ``type TYPE``: section-style keyword, kernel type name, or number."""
    if isinstance(t, bool) or not isinstance(t, (int, str)):
        raise BpfError(f"invalid program type {t!r}: give a type name or number", errno=_errno.EINVAL)
    if isinstance(t, int):
        if not 0 < t < len(constants.PROG_TYPES) + 64:
            raise BpfError(f"invalid program type {t}", errno=_errno.EINVAL)
        return t, None
    for cand in (t, t + "/"):
        r = _o.prog_type_by_name(cand)
        if r is not None:
            return r
    r2 = _resolve_section(t)
    if r2 is not None:
        return r2
    if t in constants.PROG_TYPE and t != "unspec":
        return constants.PROG_TYPE[t], None
    raise BpfError(f"unknown program type '{t}'", errno=_errno.EINVAL)


def _datasec_for(btf: BTF, map_name: str, obj_name: bytes) -> Any:
    """The DATASEC behind internal map ``map_name`` of object ``obj_name``: the one libbpf
    names that way (``<prefix>.rodata``, ``.data.custom``; an object name may hold dots)."""
    from pybpfobj.spec.btf import BtfKind
    from pybpfobj.spec.elf import internal_map_name

    for t in btf.types():
        if t.kind == BtfKind.DATASEC and internal_map_name(obj_name, t.name) == map_name:
            return t
    return None


def _encode_var(btf: BTF, type_id: int, value: Any, name: str, current: bytes) -> bytes:
    """The bytes of variable ``name`` (now ``current``) set to ``value``, as
    :func:`pybpfobj.spec.values.encode` lays it out from BTF."""
    from pybpfobj.spec.values import ValueRangeError, encode

    try:
        return encode(btf, type_id, value, current, name)
    except (TypeError, ValueError) as e:
        why = str(e).removeprefix(f"{name}: ")  # the variable itself is named once
        raise BpfError(f"variable '{name}' ({btf.type_name(type_id)}): {why}",
                       errno=_errno.ERANGE if isinstance(e, ValueRangeError) else _errno.EINVAL) from None


__all__ = ["BpfObject", "auto_attachable"]
