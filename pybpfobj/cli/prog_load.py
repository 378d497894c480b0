"""``prog load`` / ``prog loadall`` (and the top-level ``load`` / ``loadall``).

bpftool's grammar, messages and exit code (255 for every failure), over
:class:`pybpfobj.loader.BpfObject`, plus keywords for what bpftool lacks.
A failed command leaves no pin, no directory and no bpffs mount it made.
"""

from __future__ import annotations

import errno as _errno
import os

from pybpfobj.cli.common import CliError, Context, commit, is_keyword, parse_ulong

# Start-up cost matters: no typing or dataclasses at import (annotations are strings).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LOAD_USAGE = """Usage: pybpfobj prog { load | loadall } OBJ  PATH \\
                         [type TYPE] [dev NAME] \\
                         [map { idx IDX | name NAME } MAP]... \\
                         [pinmaps MAP_DIR] \\
                         [size NAME N]... [value_size NAME N]... \\
                         [var NAME VALUE]... [force] [pinroot DIR]

       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }

       TYPE is one of bpftool's types, or a section name newer libbpf knows
       (tcx/ingress, netkit/primary, netfilter ...) that libbpf 1.1 does not.
       load pins the first program at PATH; loadall pins every program as
       PATH/<function name>, except SEC("?...") programs, which libbpf does
       not load (bpftool fails on them).  pinmaps pins every map as MAP_DIR/<name>
       ('.' becomes '_'), except LIBBPF_PIN_BY_NAME maps, which keep their
       pin under the pin root (bpftool fails on them unless MAP_DIR is the
       pin root).  -d asks the verifier for every program's log (level 7,
       as bpftool -d).  Beyond bpftool:
         size NAME N         max_entries of map NAME (maps the object leaves unsized)
         value_size NAME N   value size of map NAME (e.g. a stack_trace map)
         var NAME VALUE      initial value of a .rodata/.data/.bss variable:
                             an integer or enum name, a string for char arrays, or
                             JSON for arrays and structs ('[22,80]', '{"port":80}')
         force               reuse 'map' replacements even if their definitions differ
                             (otherwise every differing field is reported)
         pinroot DIR         pin root of LIBBPF_PIN_BY_NAME maps (default /sys/fs/bpf)
       pinmaps mounts no bpffs (as bpftool): MAP_DIR, or its parent, must be on one.
       As upstream bpftool: an existing PATH is refused before loading, and loadall
       into a directory already on a bpffs mounts nothing.  Names with
       '.' are refused before touching the kernel.  On failure nothing is left pinned,
       nor when stopped during the load: Ctrl-C (exit 130), SIGTERM or SIGHUP (the
       process then dies of that signal) take back what was made.  Once loaded, a stop
       waits for the pins to be made and the command completes (exit 0).
"""

_KEYWORDS = ("type", "map", "dev", "pinmaps", "size", "value_size", "var", "force", "pinroot")


class _Replace:
    """One ``map {idx IDX | name NAME} MAP`` clause, with the replacement's fd."""

    def __init__(self, idx: int | None, name: str | None, fd: int, order: int, desc: str) -> None:
        self.idx = idx
        self.name = name
        self.fd = fd
        self.order = order
        self.desc = desc


class _Args:
    """A parsed ``load``/``loadall`` command line."""

    def __init__(self, obj: str, path: str) -> None:
        self.obj = obj
        self.path = path
        self.prog_type: str | None = None
        self.dev: int | None = None  # ifindex of dev NAME
        self.pinmaps: str | None = None
        self.pinroot = "/sys/fs/bpf"
        self.force = False
        self.replaces: list[_Replace] = []
        self.sizes: list[tuple[str, int]] = []
        self.value_sizes: list[tuple[str, int]] = []
        self.variables: list[tuple[str, str]] = []

    def close_fds(self) -> None:
        for r in self.replaces:
            try:
                os.close(r.fd)
            except OSError:
                pass
        self.replaces.clear()


def _need(args: list[str], i: int, n: int, word: str) -> None:
    left = len(args) - i
    if left < n:
        raise CliError(f"'{word}' needs at least {n} arguments, {left} found")


def _once(args: list[str], i: int, word: str, current: object, dup: str) -> tuple[str, int]:
    """The one argument of keyword ``word`` at ``args[i]`` and the next index; ``dup`` if given twice."""
    if current is not None:
        raise CliError(dup)
    _need(args, i, 1, word)
    return args[i], i + 1


def _parse_u32(text: str, what: str) -> int:
    try:
        return parse_ulong(text)
    except ValueError:
        raise CliError(f"can't parse {text} as {what}") from None


def _map_fd(args: list[str], i: int) -> tuple[int, int]:
    """bpftool's ``MAP`` handle at ``args[i]``: a new fd and the next index."""
    from pybpfobj.errors import BpfError
    from pybpfobj.kernel import info

    kind = args[i]
    arg = args[i + 1]
    try:
        if is_keyword(kind, "id"):
            return info.map_fd_by_id(_parse_u32(arg, "ID")), i + 2
        if is_keyword(kind, "pinned"):
            fd = info.obj_get(arg)  # its errors are bpftool's ("directory not in bpf file system" ...)
            kind_of = info.fd_kind(fd)
            if kind_of != "map":
                os.close(fd)
                raise CliError(f"incorrect object type: {kind_of or 'unknown'}")
            return fd, i + 2
        if is_keyword(kind, "name"):
            fds = [fd for fd in _maps_named(arg)]
            if len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                raise CliError("several maps match this handle" if fds else f"no map with name {arg} found")
            return fds[0], i + 2
    except BpfError as e:
        raise CliError(e.message) from None
    raise CliError(f"expected 'id', 'name' or 'pinned', got: '{kind}'?")


def _maps_named(name: str) -> list[int]:
    from pybpfobj.kernel import info

    out = []
    for map_id in info.map_ids():
        try:
            fd = info.map_fd_by_id(map_id)
        except Exception:  # noqa: BLE001, S112 - the map went away meanwhile
            continue
        if info.map_info(fd).name == name:
            out.append(fd)
        else:
            os.close(fd)
    return out


def parse_load_args(args: list[str], verb: str = "load") -> _Args:
    """Parse ``OBJ PATH [keywords...]`` with bpftool's messages; opens replacement map fds."""
    if len(args) < 2:
        raise CliError(f"'{verb}' needs at least 2 arguments, {len(args)} found")
    a = _Args(args[0], args[1])
    i = 2
    order = 0
    try:
        while i < len(args):
            w = args[i]
            # bpftool's messages name the word as typed ('ty' needs at least 1 arguments ...)
            if is_keyword(w, "type"):
                a.prog_type, i = _once(args, i + 1, w, a.prog_type, "program type already specified")
                _bpftool_type(a.prog_type)  # refused as it is read, as bpftool's parser does
            elif is_keyword(w, "map"):
                i += 1
                _need(args, i, 4, w)
                if is_keyword(args[i], "idx"):
                    idx: int | None = _parse_u32(args[i + 1], "IDX")
                    name = None
                elif is_keyword(args[i], "name"):
                    idx, name = None, args[i + 1]
                else:
                    raise CliError(f"expected 'idx' or 'name', got: '{args[i]}'?")
                desc = f"map {args[i + 2]} {args[i + 3]}"
                fd, i = _map_fd(args, i + 2)
                a.replaces.append(_Replace(idx, name, fd, order, desc))
                order += 1
            elif is_keyword(w, "dev"):
                dev, i = _once(args, i + 1, w, a.dev, "offload device already specified")
                a.dev = _netdev_index(dev)  # resolved as it is read, as bpftool's parser does
            elif is_keyword(w, "pinmaps"):
                a.pinmaps, i = _once(args, i + 1, w, None, "")
            elif is_keyword(w, "size") or is_keyword(w, "value_size"):
                kw = "size" if is_keyword(w, "size") else "value_size"
                i += 1
                _need(args, i, 2, w)
                n = _parse_u32(args[i + 1], "N")
                (a.sizes if kw == "size" else a.value_sizes).append((args[i], n))
                i += 2
            elif is_keyword(w, "var"):
                i += 1
                _need(args, i, 2, w)
                a.variables.append((args[i], args[i + 1]))
                i += 2
            elif is_keyword(w, "force"):
                a.force = True
                i += 1
            elif is_keyword(w, "pinroot"):
                i += 1
                _need(args, i, 1, w)
                a.pinroot = args[i]
                i += 1
            else:
                raise CliError(f"expected no more arguments, 'type', 'map' or 'dev', got: '{w}'?")
    except BaseException:
        a.close_fds()
        raise
    return a


def _netdev_index(name: str) -> int:
    """``dev NAME``'s ifindex, in bpftool's words when there is no such device."""
    import socket

    try:
        return socket.if_nametoindex(name)
    except (OSError, ValueError):
        raise CliError(f"unrecognized netdevice '{name}': {os.strerror(_errno.ENODEV)}") from None


def _map_indices(obj: Any, a: _Args) -> list[tuple[int, int, str]]:
    """``(idx, fd)`` pairs, names resolved, with bpftool's duplicate/unused checks."""
    names = obj.map_names()
    pairs: list[tuple[int, int, int, str]] = []
    for r in a.replaces:
        if r.name is not None:
            if r.name not in names:
                raise CliError(f"unable to find map '{r.name}'")
            idx = names.index(r.name)
        else:
            assert r.idx is not None
            idx = r.idx
        pairs.append((idx, r.order, r.fd, r.desc))
    pairs.sort(key=lambda p: (p[0], p[1]))
    for k in range(1, len(pairs)):
        if pairs[k][0] == pairs[k - 1][0]:
            raise CliError(f"replacement for map idx {pairs[k][0]} specified more than once")
    for idx, _, _, _ in pairs:
        if idx >= len(names):
            raise CliError(f"map idx '{idx}' not used")
    return [(idx, fd, desc) for idx, _, fd, desc in pairs]


def _load(ctx: Context, args: list[str], first_only: bool) -> int:
    if args == ["help"]:  # with more words, 'help' is an object file's name, as in bpftool
        if ctx.json:
            ctx.emit_json(None)  # bpftool's help in JSON mode
        else:
            ctx.out.write(LOAD_USAGE)
        return 0
    from pybpfobj.errors import BpfError, VerifierError
    from pybpfobj.kernel import bpffs

    a = parse_load_args(args, "load" if first_only else "loadall")
    mounts: list[bpffs.Mounted] = []
    obj: Any = None
    ok = False
    try:
        # Everything that can be refused without the kernel is refused first.
        if first_only and os.path.lexists(a.path):
            raise CliError(f"can't pin BPF object: path '{a.path}' already exists")
        if not first_only and os.path.lexists(a.path) and not os.path.isdir(a.path):
            raise CliError(f"can't pin BPF objects in '{a.path}': it exists and is not a directory")
        bpffs.check_pin_name(a.path, "program pin" if first_only else "directory")
        if a.pinmaps is not None:
            bpffs.check_pin_name(a.pinmaps, "directory")
        from pybpfobj.loader import BpfObject

        try:
            # opened before any mount, as bpftool does: a missing or broken file gets libbpf's
            # own line on stderr, then ours.  -d: the kernel's log of every program
            # (instructions, states, statistics), as bpftool -d; a rejected program's log
            # printed by libbpf where bpftool shows it, between "BPF program load failed"
            # and "failed to load"
            obj = BpfObject(a.obj, pin_root=a.pinroot, mapcompat=ctx.mapcompat,
                            log_level=7 if ctx.debug else 0, libbpf_prints_log=True)
        except BpfError as e:
            raise CliError(_unprefixed(e.message)) from None
        # loadall into a directory already on a bpffs (say, a bpffs mount point itself) mounts
        # nothing: bpftool 7.1 would mount a new bpffs on its parent and hide it (upstream fixed that).
        if first_only or not (os.path.isdir(a.path) and bpffs.is_bpffs(a.path)):
            try:
                m = bpffs.ensure_bpffs_for_pin(a.path, nomount=ctx.nomount)
            except BpfError as e:
                raise CliError(e.message) from None
            if m is not None:
                mounts.append(m)
        if a.pinmaps is not None:
            _check_pinmaps_dir(a.pinmaps, None if first_only else a.path)

        if first_only and not obj.program_names():
            raise CliError("object file doesn't contain any bpf program")  # bpftool's check, before load
        try:
            if a.prog_type is not None:
                obj.set_prog_type(a.prog_type)  # checked by _bpftool_type when read
            if a.dev is not None:
                obj.set_ifindex(a.dev)
            for idx, fd, desc in _map_indices(obj, a):
                obj.reuse_map(idx, fd=fd, force=a.force, describe=desc)
            for name, n in a.sizes:
                obj.set_max_entries(name, n)
            for name, n in a.value_sizes:
                obj.set_value_size(name, n)
            for name, word in a.variables:
                _set_var(obj, name, word)
            obj.load()
        except VerifierError as e:  # libbpf printed the log (JSON mode too, as with bpftool)
            raise CliError(e.message) from None
        except BpfError as e:
            section = getattr(e, "section", None)
            if section is not None:  # a section neither libbpf nor our table places
                _libbpf_explains(section)
            raise CliError(_unprefixed(e.message)) from None
        if not first_only:
            for n in obj.program_names():
                if os.path.lexists(os.path.join(a.path, n)):
                    raise CliError(f"can't pin BPF object: path '{os.path.join(a.path, n)}' already exists")
        # Loaded: the pins are the command's change.  A stop from here on waits for the exit,
        # so it cannot end the process with some of them made (a failing pin still takes
        # every one back); a stop during the load unwound it already.
        commit()
        try:
            if first_only:
                obj.pin_first(a.path)
            else:
                obj.pin_programs(a.path)
        except BpfError as e:
            what = "program" if first_only else "all programs"
            # the library's message often starts with "failed to pin ..." already
            raise CliError(e.message if e.message.startswith("failed to pin") else f"failed to pin {what}: "
                           f"{e.message}") from None
        if a.pinmaps is not None:
            try:
                obj.pin_maps(a.pinmaps)
            except BpfError as e:
                raise CliError(f"failed to pin all maps: {e.message}") from None
        ok = True
    finally:
        a.close_fds()
        if obj is not None:
            if not ok:
                obj.unpin_all()
            obj.close()
        if not ok:
            for m in reversed(mounts):
                m.undo()
    ctx.emit_null()
    return 0


def _unprefixed(message: str) -> str:
    """A library message quoting libbpf's last line, without its ``libbpf: `` tag: libbpf
    printed that line itself just above, and ``Error: ...: libbpf: elf: ...`` reads as two."""
    return message.replace(": libbpf: ", ": ")


def _check_pinmaps_dir(d: str, prog_dir: str | None = None) -> None:
    """bpftool mounts no bpffs for ``pinmaps``: MAP_DIR (or, when it is still to be made,
    its parent) must already be on one.  Checked before loading, so nothing is left behind;
    a bpffs mounted on the parent here would hide what that directory holds.  A parent
    that is loadall's ``prog_dir``, still to be made, is judged by where that will be."""
    from pybpfobj.kernel import bpffs

    holder = d if os.path.lexists(d) else os.path.dirname(os.path.abspath(d))
    if (prog_dir is not None and not os.path.lexists(holder)
            and os.path.abspath(holder) == os.path.abspath(prog_dir)):
        holder = os.path.dirname(os.path.abspath(prog_dir))
    if os.path.lexists(d) and not os.path.isdir(d):
        raise CliError(f"failed to pin all maps: can't create directory '{d}': a file of that name exists")
    if not os.path.isdir(holder):
        raise CliError(f"failed to pin all maps: can't create directory '{d}': "
                       f"{os.strerror(_errno.ENOENT)}")
    if not bpffs.is_bpffs(holder):
        raise CliError(f"failed to pin all maps: '{holder}' is not on a BPF file system "
                       "(pinmaps mounts none)")


def _set_var(obj: Any, name: str, word: str) -> None:
    """``var NAME VALUE``: the word as typed (a number, an enum name, a string) or, where
    the variable takes no such word (a struct, an array), JSON (``{...}``, ``[...]``).
    A char array thus keeps a word like "[1]" as its text."""
    from pybpfobj.errors import BpfError

    if word[:1] not in ("{", "["):
        obj.set_var(name, word)
        return
    try:
        obj.set_var(name, word)  # a char array takes it as text (set_var writes nothing on refusal)
        return
    except BpfError:
        pass
    import json

    def finite(text: str) -> float:
        f = float(text)
        if f in (float("inf"), float("-inf")):
            raise ValueError(f"number {text} is out of range")
        return f

    try:
        value = json.loads(word, parse_float=finite)
    except (ValueError, RecursionError) as e:
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise CliError(f"var {name}: invalid JSON value '{word}': {why}") from None
    obj.set_var(name, value)


def _libbpf_explains(section: str) -> None:
    """Ask libbpf again for the type of ``section`` with its debug lines printed, as bpftool
    does when its guess fails: libbpf's "failed to guess program type from ELF section"
    and its list of the section names it knows reach stderr (libbpf prints both at debug
    level)."""
    import logging

    from pybpfobj.kernel import libbpf, objects

    libbpf.logger()  # sets up the stderr handler that waits for libbpf's first line
    top = logging.getLogger("pybpfobj")
    saved: list[tuple[logging.Logger | logging.Handler, int]] = [(top, top.level)]
    saved += [(h, h.level) for h in top.handlers]
    for x, _ in saved:
        x.setLevel(logging.DEBUG)
    try:
        objects.prog_type_by_name(section)
    finally:
        for x, level in saved:
            x.setLevel(level)


def _bpftool_type(word: str) -> str:
    """Check ``type TYPE`` against bpftool's keywords (section-style names of our table also pass)."""
    from pybpfobj.spec import sections

    if sections.bpftool_prog_type(word, extended=True) is None:
        from pybpfobj.kernel import objects

        if objects.prog_type_by_name(word) is None and objects.prog_type_by_name(word + "/") is None:
            _libbpf_explains(word + "/")  # bpftool's second try, with every level printed
            raise CliError(f"failed to guess program type from '{word}'; TYPE is one of: "
                           + " ".join(sections.BPFTOOL_PROG_TYPES))
    return word


def do_load(ctx: Context, args: list[str]) -> int:
    """``load OBJ PATH ...``: load every program, pin the first at PATH."""
    return _load(ctx, args, first_only=True)


def do_loadall(ctx: Context, args: list[str]) -> int:
    """``loadall OBJ PATH ...``: load every program, pin each as PATH/<name>."""
    return _load(ctx, args, first_only=False)


__all__ = ["LOAD_USAGE", "do_load", "do_loadall", "parse_load_args"]
