"""pybpfobj: compiled BPF objects from Python.

The public names are imported lazily so that ``import pybpfobj`` (and the
CLI's start-up) stays light: pyelftools and jinja2 load only when used.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing stays out of start-up (annotations are strings)
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "ObjectSpec": "pybpfobj.spec.elf",
    "ProgramSpec": "pybpfobj.spec.elf",
    "MapSpec": "pybpfobj.spec.elf",
    "BTF": "pybpfobj.spec.btf",
    "BpfObject": "pybpfobj.loader",
    "Map": "pybpfobj.maps",
    "Program": "pybpfobj.programs",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'pybpfobj' has no attribute {name!r}")
    __import__(mod)
    value = getattr(sys.modules[mod], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
