"""pytest plugin for testing your own BPF programs with pybpfobj.

Installed with the package and registered through the ``pytest11`` entry
point (disable it with ``-p no:pybpfobj``).  It gives:

Fixtures
    ``bpf_fs``
        A private BPF file system mounted on a fresh temp directory,
        unmounted and removed after the test (needs root).
    ``bpf_object``
        A factory: ``bpf_object(source, **options)`` opens and loads an
        object and closes it (and takes back its pins) after the test.
        ``source`` is a path to a ``.o`` (gives a
        :class:`pybpfobj.loader.BpfObject`), a generated skeleton module or
        its :class:`~pybpfobj.skeleton.runtime.Skeleton` subclass (gives the
        loaded skeleton).
    ``bpf_skeleton``
        A factory: ``bpf_skeleton(path_to_o)`` generates the typed skeleton
        module of an object into the test's temp dir and imports it.

Helpers (plain functions, importable from this module)
    :func:`run_prog` runs a program once on packet bytes and/or a context
    (``BPF_PROG_TEST_RUN``); :func:`assert_verdict` runs it and asserts on
    the return value (a number or a name such as ``"XDP_DROP"``) and, if
    given, on the output packet; :func:`verdict_name` names a return value.

Example::

    from pybpfobj.pytest_plugin import assert_verdict

    def test_drops_short_packets(bpf_object):
        obj = bpf_object("build/filter.o")
        assert_verdict(obj.programs["xdp_filter"], bytes(10), "XDP_DROP")
"""

from __future__ import annotations

import errno as _errno
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Union

import pytest

if TYPE_CHECKING:
    from pybpfobj.skeleton.runtime import Skeleton
    from pybpfobj.testrun import TestRunResult

__all__ = [
    "VERDICTS",
    "assert_verdict",
    "bpf_fs",
    "bpf_object",
    "bpf_skeleton",
    "mount_private_bpffs",
    "run_prog",
    "verdict_name",
    "verdict_value",
]

PathLike = Union[str, "os.PathLike[str]"]

# Program return values by name.  The families reuse numbers, so a value is
# named through the family the expected name came from (see verdict_name).
VERDICTS: dict[str, int] = {
    "XDP_ABORTED": 0, "XDP_DROP": 1, "XDP_PASS": 2, "XDP_TX": 3, "XDP_REDIRECT": 4,
    "TC_ACT_UNSPEC": -1, "TC_ACT_OK": 0, "TC_ACT_RECLASSIFY": 1, "TC_ACT_SHOT": 2, "TC_ACT_PIPE": 3,
    "TC_ACT_STOLEN": 4, "TC_ACT_QUEUED": 5, "TC_ACT_REPEAT": 6, "TC_ACT_REDIRECT": 7,
    "SK_DROP": 0, "SK_PASS": 1,
}


def _family(name: str) -> str:
    return name.rsplit("_", 1)[0] + "_" if name.startswith("TC_ACT_") else name.split("_", 1)[0] + "_"


def verdict_value(expected: int | str) -> int:
    """A verdict given as a number or a name (``"XDP_PASS"``, ``"xdp_pass"``, ``"TC_ACT_SHOT"``)."""
    if isinstance(expected, int):
        return expected
    key = expected.strip().upper()
    if key not in VERDICTS:
        raise ValueError(f"unknown verdict {expected!r}; known: {', '.join(sorted(VERDICTS))}")
    return VERDICTS[key]


def verdict_name(value: int, family: str = "XDP_") -> str:
    """``value`` named in ``family`` (``"XDP_"``, ``"TC_ACT_"``, ``"SK_"``), or the bare number."""
    for name, v in VERDICTS.items():
        if v == value and name.startswith(family) and _family(name) == family:
            return name
    return str(value)


def _as_u32_retval(value: int) -> int:
    # the kernel reports retval as u32: TC_ACT_UNSPEC (-1) comes back as 0xffffffff
    return value & 0xFFFFFFFF


def run_prog(prog: Any, data: bytes | None = b"", *, ctx: bytes | None = None, repeat: int = 1,
             data_size_out: int | None = None, ctx_size_out: int | None = None,
             flags: int = 0) -> TestRunResult:
    """Run ``prog`` once (or ``repeat`` times) on ``data`` and/or context ``ctx``.

    ``prog`` is a :class:`pybpfobj.programs.Program`, a skeleton's program
    reference, anything with an ``fd``, or a program fd.  Returns the
    :class:`pybpfobj.testrun.TestRunResult` (``retval``, ``data_out``,
    ``ctx_out``, ``duration_ns``); errors are :class:`pybpfobj.errors.ProgramError`.
    """
    from pybpfobj.testrun import test_run

    return test_run(prog, data, ctx_in=ctx, repeat=repeat, data_size_out=data_size_out,
                    ctx_size_out=ctx_size_out, flags=flags)


def assert_verdict(prog: Any, data: bytes | None, expected: int | str, *, ctx: bytes | None = None,
                   data_out: bytes | None = None, ctx_out: bytes | None = None) -> TestRunResult:
    """Run ``prog`` on ``data`` and assert it returns ``expected``.

    ``expected`` is a number or a verdict name.  When ``data_out`` (or
    ``ctx_out``) is given, the output packet (context) must equal it too.
    The failure message names the program, the verdicts by name and the
    first differing byte.  Returns the run's result for further checks.
    """
    want = verdict_value(expected)
    family = _family(expected.strip().upper()) if isinstance(expected, str) else _family_of(prog)
    res = run_prog(prog, data, ctx=ctx, ctx_size_out=len(ctx_out) if ctx_out is not None else None)
    label = getattr(prog, "name", None) or f"fd {getattr(prog, 'fd', prog)}"
    if _as_u32_retval(res.retval) != _as_u32_retval(want):
        raise AssertionError(f"program {label}: verdict {_named(res.retval, family)}, expected "
                             f"{_named(want, family)} on {len(data or b'')} bytes of input")
    for what, want_bytes, have in (("packet", data_out, res.data_out), ("context", ctx_out, res.ctx_out)):
        if want_bytes is not None and have != want_bytes:
            raise AssertionError(f"program {label}: output {what} differs: {_first_diff(want_bytes, have)}")
    return res


# program type -> the verdict family its return values are named in
_FAMILY_BY_TYPE = {"xdp": "XDP_", "sched_cls": "TC_ACT_", "sched_act": "TC_ACT_", "sk_skb": "SK_",
                   "sk_msg": "SK_", "sk_reuseport": "SK_", "sk_lookup": "SK_"}


def _family_of(prog: Any) -> str:
    """The verdict family of ``prog``'s type (a Program's ``type`` or a skeleton's
    ``prog_type``); XDP's when unknown."""
    ptype = getattr(prog, "prog_type", None) or getattr(prog, "type", None)
    return _FAMILY_BY_TYPE.get(ptype, "XDP_") if isinstance(ptype, str) else "XDP_"


def _named(value: int, family: str) -> str:
    name = verdict_name(value, family)
    return f"{name} ({value})" if name != str(value) else str(value)


def _first_diff(want: bytes, have: bytes | None) -> str:
    if have is None:
        return "no output was returned"
    if len(want) != len(have):
        return f"{len(have)} bytes, expected {len(want)}"
    i = next(i for i in range(len(want)) if want[i] != have[i])
    return f"byte {i} is 0x{have[i]:02x}, expected 0x{want[i]:02x}"


def mount_private_bpffs(prefix: str = "pybpfobj-test-bpffs-") -> tuple[Path, Callable[[], None]]:
    """Mount a bpffs on a new temp dir; return the dir and a function that unmounts and removes it.

    Needs root (CAP_SYS_ADMIN); raises :class:`pybpfobj.errors.BpffsError`
    otherwise.
    """
    from pybpfobj.kernel import bpffs

    d = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        mounted = bpffs.mount_bpffs(str(d))
    except BaseException:
        shutil.rmtree(d, ignore_errors=True)
        raise

    def undo() -> None:
        mounted.undo(force=True)  # a test's own bpffs: whatever it holds goes
        shutil.rmtree(d, ignore_errors=True)

    return d, undo


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_BPF, CAP_SYS_ADMIN) to load BPF objects")


@pytest.fixture
def bpf_fs() -> Iterator[Path]:
    """A private bpffs mounted on a temp dir for this test; unmounted and removed after it."""
    _need_root()
    d, undo = mount_private_bpffs()
    try:
        yield d
    finally:
        undo()


def _skeleton_class(source: Any) -> type[Skeleton] | None:
    from pybpfobj.skeleton.runtime import Skeleton

    if isinstance(source, type) and issubclass(source, Skeleton):
        return source
    if isinstance(source, ModuleType):
        found = [v for v in vars(source).values()
                 if isinstance(v, type) and issubclass(v, Skeleton) and v is not Skeleton
                 and v.__module__ == source.__name__]
        if len(found) != 1:
            raise TypeError(f"module {source.__name__} defines {len(found)} skeleton classes; pass the class")
        return found[0]
    return None


class _Loaded:
    """What one test's ``bpf_object`` calls made, closed in reverse order after it."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def close(self) -> None:
        errors: list[BaseException] = []
        for item in reversed(self.items):
            try:
                # a skeleton's pins (pin_root, by-name maps) are its BpfObject's
                target = item if hasattr(item, "unpin_all") else getattr(item, "object", None)
                if target is not None and hasattr(target, "unpin_all"):
                    target.unpin_all()
                item.close()
            except Exception as e:  # noqa: BLE001  (close everything, then report the first failure)
                errors.append(e)
        self.items.clear()
        if errors:
            raise errors[0]


@pytest.fixture
def bpf_object() -> Iterator[Callable[..., Any]]:
    """Factory fixture: ``bpf_object(source, *, load=True, pin_root=None, configure=None, **kw)``.

    - ``source`` a path (str/Path) or bytes of a ``.o``: returns a
      :class:`pybpfobj.loader.BpfObject`; ``kw`` go to its constructor
      (``name``, ``mapcompat``).
    - ``source`` a generated skeleton module or Skeleton subclass: returns
      the skeleton; ``kw`` go to ``open()`` (``path``, ``name``).

    ``configure(obj)`` is called between open and load (set variables, map
    sizes, reuse maps); ``load=False`` returns the object still open.
    Everything is closed, and the pins it made removed, after the test.
    """
    _need_root()
    loaded = _Loaded()

    def factory(source: Any, *, load: bool = True, pin_root: PathLike | None = None,
                configure: Callable[[Any], None] | None = None, **kw: Any) -> Any:
        skel_cls = _skeleton_class(source)
        if skel_cls is not None:
            obj: Any = skel_cls.open(pin_root=os.fspath(pin_root) if pin_root is not None else None, **kw)
        else:
            from pybpfobj.loader import BpfObject

            if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
                from pybpfobj.errors import NotFoundError

                raise NotFoundError(f"BPF object '{os.fspath(source)}' does not exist", errno=_errno.ENOENT,
                                    path=os.fspath(source))
            if pin_root is not None:
                kw["pin_root"] = os.fspath(pin_root)
            obj = BpfObject(source, **kw)
        loaded.items.append(obj)
        if configure is not None:
            configure(obj)
        if load:
            obj.load()
        return obj

    try:
        yield factory
    finally:
        loaded.close()


@pytest.fixture
def bpf_skeleton(tmp_path: Path) -> Iterator[Callable[..., ModuleType]]:
    """Factory fixture: ``bpf_skeleton(obj_path, name=None)`` generates the object's typed
    skeleton module (embedding the object) in the test's temp dir and imports it."""
    made: list[str] = []

    def factory(obj: PathLike, *, name: str | None = None) -> ModuleType:
        from pybpfobj.skeleton.generator import generate

        stem = name or Path(obj).name.removesuffix(".o")
        modname = f"_pybpfobj_skel_{stem}_{len(made)}_{abs(hash(str(tmp_path))) % 10**8}"
        path = tmp_path / f"{modname}.py"
        path.write_text(generate(obj, name=name), encoding="ascii")
        spec = importlib.util.spec_from_file_location(modname, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[modname] = mod  # ctypes types and dataclass-like helpers look their module up
        made.append(modname)
        spec.loader.exec_module(mod)
        return mod

    yield factory
    for m in made:
        sys.modules.pop(m, None)


_PLUGIN_NAMES = ("pybpfobj", __name__)


def pytest_plugin_registered(plugin: object, plugin_name: str, manager: pytest.PytestPluginManager) -> None:
    """Registered under one of its two names (the ``pybpfobj`` entry point, or this module's
    name through ``-p pybpfobj.pytest_plugin`` / ``pytest_plugins``), block the other: pytest
    would otherwise register this same module a second time and stop with "Plugin already
    registered under a different name"."""
    if plugin is not sys.modules[__name__]:
        return
    for name in _PLUGIN_NAMES:
        if name != plugin_name and manager.get_plugin(name) is None and not manager.is_blocked(name):
            manager.set_blocked(name)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "bpf: the test loads BPF programs (needs root and a BPF kernel)")
