"""bpftool's pretty JSON layout (its json_writer with ``-p``), for every writer here.

Object members go on their own lines (4 spaces per level); array elements
follow each other on the line (``[{``, ``},{``, ``[1,2``); a non-empty array
or object closes on a new line.  How a leaf (string, number...) is written is
the caller's choice: the CLI writes valid JSON, the BTF formatter mirrors
bpftool's own escaping.  No imports: the CLI's ``-j -p`` output uses this.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def pretty(value: Any, scalar: Callable[[Any], str], depth: int = 0) -> str:
    """``value`` in bpftool's pretty layout starting at nesting ``depth``; ``scalar``
    writes each leaf and each (str) key."""
    out: list[str] = []

    def emit(v: Any, d: int) -> None:
        if isinstance(v, dict):
            out.append("{")
            for n, (k, x) in enumerate(v.items()):
                out.append(("," if n else "") + "\n" + "    " * (d + 1) + scalar(str(k)) + ": ")
                emit(x, d + 1)
            out.append(("\n" + "    " * d if v else "") + "}")
        elif isinstance(v, (list, tuple)):
            out.append("[")
            for n, x in enumerate(v):
                if n:
                    out.append(",")
                emit(x, d + 1)
            out.append(("\n" + "    " * d if v else "") + "]")
        else:
            out.append(scalar(v))

    emit(value, depth)
    return "".join(out)


def compact(value: Any, scalar: Callable[[Any], str]) -> str:
    """``value`` as bpftool's JSON writer prints it when not pretty: no spaces, no newlines
    (``prog show``'s metadata in text mode); ``scalar`` writes each leaf and each key."""
    if isinstance(value, dict):
        return "{" + ",".join(scalar(str(k)) + ":" + compact(x, scalar) for k, x in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(compact(x, scalar) for x in value) + "]"
    return scalar(value)


__all__ = ["compact", "pretty"]
