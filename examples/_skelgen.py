"""Shared by the examples: generate (or reuse) the skeleton module of an object and import it.

A real application would run ``pybpfobj gen skeleton OBJ output app_skel.py``
at build time and simply ``import app_skel``; the examples do that step at
run time so they always match the objects in bpf_progs/build.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from pybpfobj.skeleton.generator import generate


def load_skeleton(obj: Path, skel_dir: Path, module: str) -> ModuleType:
    """Write ``skel_dir/module.py`` for ``obj`` if missing or stale, then import it."""
    skel_dir.mkdir(parents=True, exist_ok=True)
    path = skel_dir / f"{module}.py"
    text = generate(obj)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    if str(skel_dir) not in sys.path:
        sys.path.insert(0, str(skel_dir))
    return importlib.import_module(module)
