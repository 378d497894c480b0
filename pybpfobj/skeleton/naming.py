"""Turning untrusted names from an object file into safe Python identifiers.

Every name that ends up in a generated module (struct, union, enum and
typedef names, member names, enum constants, map, program and variable
names) comes from the object's BTF and ELF string tables, which a hostile
object controls.  The rules, applied by :func:`identifier` and
:class:`Scope`:

- only ASCII ``[A-Za-z_][A-Za-z0-9_]*`` passes unchanged (Python folds
  Unicode identifiers with NFKC, so two distinct names could become one);
  anything else is mangled: other characters become ``_`` and a short hash
  of the original name is appended so distinct names stay distinct;
- names starting with ``_`` get a ``c`` prefix (``__u32`` -> ``c__u32``):
  the underscore namespace belongs to the generator (``_pad0``, ``_rt``...),
  so no C name can collide with generated internals or be a dunder;
- Python keywords, names a scope reserves (builtins, ctypes/Enum
  attributes, runtime method names) and duplicates get a ``_`` / ``_N``
  suffix;
- names longer than :data:`MAX_LEN` are cut and hashed.

Strings that are not identifiers (original names handed back to libbpf)
are emitted with :func:`pystr`, an ASCII-only ``repr``, so no byte of the
object reaches the module outside a string literal or a checked identifier.
"""

from __future__ import annotations

import hashlib
import keyword
import re
from collections.abc import Iterable

__all__ = ["MAX_LEN", "Scope", "identifier", "pystr", "to_class_name"]

MAX_LEN = 60  # with the generated statements around it, a line stays within 88 columns
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BAD = re.compile(r"[^A-Za-z0-9_]")


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def identifier(name: str, fallback: str = "anon") -> str:
    """A valid, non-keyword, non-underscore-leading ASCII identifier for ``name``.

    Deterministic: the same ``name`` always gives the same result.
    Collisions with a scope's other names are settled by :class:`Scope`.
    """
    if not name:
        return fallback
    out = name
    mangled = False
    if not _PLAIN.match(out):
        out = _BAD.sub("_", out)
        mangled = True
    if out[0].isdigit():
        out = "n" + out
    if out.startswith("_"):
        out = "c" + out
    if len(out) > MAX_LEN:
        out = out[: MAX_LEN - 10]
        mangled = True
    if mangled:
        out = f"{out}_x{_digest(name)}"
    if keyword.iskeyword(out) or keyword.issoftkeyword(out):
        out += "_"
    return out


def pystr(text: str) -> str:
    """A Python string literal for ``text``, ASCII only (safe in any generated line)."""
    return ascii(text)


def to_class_name(name: str) -> str:
    """``xdp_counter`` -> ``XdpCounter``: the skeleton class name for an object name."""
    ident = identifier(name, "Object")
    parts = [p for p in ident.split("_") if p]
    out = "".join(p[:1].upper() + p[1:] for p in parts) or "Object"
    if out[0].isdigit():
        out = "Obj" + out
    if keyword.iskeyword(out):
        out += "_"
    return out


class Scope:
    """A namespace handing out unique identifiers.

    ``reserved`` names are never handed out as-is (they get a ``_`` suffix,
    then ``_2``, ``_3``...).  ``claim(name)`` sanitizes with
    :func:`identifier` and settles collisions deterministically in claim
    order.
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.reserved = frozenset(reserved)
        self.used: set[str] = set()

    def claim(self, name: str, fallback: str = "anon") -> str:
        base = identifier(name, fallback)
        return self.claim_exact(base)

    def claim_exact(self, base: str, first_suffix: str | None = None) -> str:
        """Reserve ``base`` (already an identifier) or the first free variant of it."""
        cand = base
        if cand in self.reserved or cand in self.used:
            cand = base + "_"
            n = 2
            while cand in self.reserved or cand in self.used:
                cand = f"{base}_{n}"
                n += 1
        self.used.add(cand)
        return cand

    def internal(self, stem: str) -> str:
        """A generator-owned name (``_stem0``, ``_stem1``...); never collides with C names."""
        if len(stem) > MAX_LEN - 6:  # built from C names: cut, and keep distinct stems distinct
            stem = f"{stem[: MAX_LEN - 20]}_x{_digest(stem)}_"
        n = 0
        while f"_{stem}{n}" in self.used:
            n += 1
        name = f"_{stem}{n}"
        self.used.add(name)
        return name
