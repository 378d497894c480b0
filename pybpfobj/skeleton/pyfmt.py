"""A tiny line breaker for generated Python: statements within :data:`WIDTH` columns.

Generated modules must pass ``ruff check`` with any configuration, E501
(line too long) included at ruff's default 88 columns.  Names come from the
object file and can be long, so lines are laid out from a small expression
tree, black's way: an expression stays on one line when it fits, otherwise
its last bracket group opens and takes one item per line (recursively),
then earlier groups.  String literals too long for a line become implicit
concatenations of ASCII-escaped pieces.  A line that still cannot fit (an
atom longer than the width: only hostile objects have such names) gets a
``# noqa: E501`` from :func:`finish`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["WIDTH", "Cat", "Expr", "Group", "Opt", "Str", "finish", "flat", "parse_type_expr", "render", "stmt"]

WIDTH = 88


@dataclass
class Str:
    """A string literal (its text; written with :func:`ascii`)."""

    text: str


@dataclass
class Group:
    """``head`` + ``open`` + items separated by commas + ``close``.

    ``trailing`` puts a comma after the last item when broken (not for
    subscripts, where ``X[a,]`` means a tuple); ``one_tuple`` keeps the
    comma of a one-item tuple in the flat form; ``force`` always breaks.
    """

    head: str
    open: str
    items: list[Expr]
    close: str
    trailing: bool = True
    one_tuple: bool = False
    force: bool = False
    sep: str = ", "


@dataclass
class Opt:
    """An expression that gets parentheses only when it has to break."""

    inner: Expr


@dataclass
class Cat:
    """Parts written one after the other (``name: ann = value``)."""

    parts: list[Expr] = field(default_factory=list)


Expr = str | Str | Group | Opt | Cat


def flat(e: Expr) -> str:
    """The one-line form."""
    if isinstance(e, str):
        return e
    if isinstance(e, Str):
        return ascii(e.text)
    if isinstance(e, Opt):
        return flat(e.inner)
    if isinstance(e, Cat):
        return "".join(flat(p) for p in e.parts)
    body = e.sep.join(flat(i) for i in e.items)
    if e.one_tuple and len(e.items) == 1:
        body += ","
    return f"{e.head}{e.open}{body}{e.close}"


def _breakable(e: Expr) -> bool:
    return isinstance(e, (Group, Opt)) or (isinstance(e, Str) and len(ascii(e.text)) > 24)


def _split_str(text: str, room: int) -> list[str]:
    """``text`` cut into pieces whose literals fit ``room`` columns (at least one character each)."""
    pieces: list[str] = []
    cur = ""
    for ch in text:
        if cur and len(ascii(cur + ch)) > room:
            pieces.append(cur)
            cur = ""
        cur += ch
    pieces.append(cur)
    return pieces


def render(e: Expr, col: int, indent: int, width: int = WIDTH) -> str:
    """``e`` written from column ``col``; continuation lines are indented from ``indent``."""
    one = flat(e)
    if col + len(one) <= width and not (isinstance(e, Group) and e.force and e.items):
        return one
    inner = " " * (indent + 4)
    if isinstance(e, str):
        return one
    if isinstance(e, Str):
        room = max(width - indent - 4, 16)
        lines = [inner + ascii(p) for p in _split_str(e.text, room)]
        if len(lines) == 1 and col <= indent:
            return one  # alone on its line already: parentheses would not help
        return "(\n" + "\n".join(lines) + "\n" + " " * indent + ")"
    if isinstance(e, Opt):
        if isinstance(e.inner, (Group, Str)):
            return render(e.inner, col, indent, width)  # brings its own brackets
        return "(\n" + inner + render(e.inner, indent + 4, indent + 4, width) + "\n" + " " * indent + ")"
    if isinstance(e, Group) and e.sep != ", ":  # an operator chain: one operand per line
        out = [f"{e.head}{e.open}"]
        op = e.sep.strip() + " "
        for k, item in enumerate(e.items):
            prefix = inner + (op if k else "")
            out.append(prefix + render(item, len(prefix), indent + 4, width))
        out.append(" " * indent + e.close)
        return "\n".join(out)
    if isinstance(e, Group):
        out = [f"{e.head}{e.open}"]
        n = len(e.items)
        for k, item in enumerate(e.items):
            comma = "," if (k < n - 1 or e.trailing or (e.one_tuple and n == 1)) else ""
            out.append(inner + render(item, indent + 4, indent + 4, width - len(comma)) + comma)
        out.append(" " * indent + e.close)
        return "\n".join(out)
    # Cat: break the last breakable part first, earlier ones when the line up to it is too long
    parts = e.parts
    last = max((k for k, p in enumerate(parts) if _breakable(p)), default=-1)
    text = ""
    cur = col
    for k, p in enumerate(parts):
        if k < last and _breakable(p):
            lead = len(flat(p)) + sum(len(flat(q)) for q in parts[k + 1:last]) + _opening(parts[last])
            piece = flat(p) if cur + lead <= width else render(p, cur, indent, width)
        elif k == last:
            rest = sum(len(flat(q)) for q in parts[k + 1:])
            piece = render(p, cur, indent, width - rest)
        else:
            piece = flat(p)
        text += piece
        cur = len(text.rsplit("\n", 1)[-1]) + (col if "\n" not in text else 0)
    return text


def _opening(e: Expr) -> int:
    """Columns a broken ``e`` takes on its first line."""
    if isinstance(e, Group):
        return len(e.head) + len(e.open)
    if isinstance(e, Opt):
        return 1
    return 1 if isinstance(e, Str) else len(flat(e))


def stmt(e: Expr, indent: int, width: int = WIDTH) -> str:
    """A statement at ``indent`` (first line indented too)."""
    return " " * indent + render(e, indent, indent, width)


def parse_type_expr(text: str) -> Expr:
    """The breakable form of a generated ctypes expression or annotation: an atom,
    ``(ELEM * N)`` or ``Generic[ARG]``, nested."""
    if text.startswith("(") and text.endswith(")"):
        depth = 0
        for k in range(len(text) - 2, 0, -1):  # the top-level " * " nearest the end
            ch = text[k]
            if ch in ")]":
                depth += 1
            elif ch in "([":
                depth -= 1
            elif depth == 0 and text.startswith(" * ", k - 1):
                return Group("", "(", [parse_type_expr(text[1:k - 1]), text[k + 2:-1]], ")", trailing=False,
                             sep=" * ")
    open_at = text.find("[")
    if open_at > 0 and text.endswith("]") and text[:open_at].replace(".", "").replace("_", "").isalnum():
        return Group(text[:open_at], "[", [parse_type_expr(text[open_at + 1:-1])], "]", trailing=False)
    return text


def finish(text: str, width: int = WIDTH) -> str:
    """Strip trailing blanks.  If a line still exceeds ``width`` (an atom longer than a
    line: only crafted objects have such names), exempt the module from E501 as a whole
    (a line ``noqa`` would be reported as unused where E501 is not selected)."""
    lines = [line.rstrip() for line in text.splitlines()]
    if any(len(line) > width for line in lines):
        lines.insert(1, "# ruff: noqa: E501")
    return "\n".join(lines) + "\n"
