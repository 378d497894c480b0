"""``pybpfobj gen``: typed Python skeletons, in bpftool gen's grammar.

    pybpfobj gen skeleton OBJ [name NAME] [path] [output FILE]

``name`` names the object and the class (bpftool's ``name``); ``path``
references OBJ by its absolute path instead of embedding it; ``output``
(or ``-o`` where the global option parser lets it through) writes FILE
instead of stdout.  jinja2 is imported only when a skeleton is generated.
"""

from __future__ import annotations

import errno
import os

from pybpfobj.cli.common import CliError, Context, UsageError, dispatch, is_keyword

USAGE = """Usage: pybpfobj gen skeleton FILE [name OBJECT_NAME] [path] [output FILE]
       pybpfobj gen help

       path: reference FILE by its absolute path instead of embedding it
       output FILE (or -o FILE, --output FILE): write the module to FILE
       (atomically) instead of standard output; --no-embed is the same as path
"""


def do_skeleton(ctx: Context, args: list[str]) -> int:
    if not args:
        raise UsageError("expected FILE", USAGE)
    obj = args[0]
    rest = args[1:]
    name: str | None = None
    out: str | None = None
    embed = True
    while rest:
        word = rest.pop(0)
        if word == "-o" or is_keyword(word, "output"):
            if not rest:
                raise UsageError(f"expected a file after '{word}'", USAGE)
            out = rest.pop(0)
        elif is_keyword(word, "name"):
            if not rest:
                raise UsageError("expected an object name after 'name'", USAGE)
            name = rest.pop(0)
        elif is_keyword(word, "path"):
            embed = False
        else:
            raise UsageError(f"unknown arg {word}", USAGE)
    if not os.path.exists(obj):
        raise CliError(f"failed to open BPF object file: {obj}: No such file or directory",
                       (-errno.ENOENT) & 0xFF)
    from pybpfobj.skeleton.generator import generate, generate_file

    if out is not None:
        generate_file(obj, out, name=name, embed=embed)
    else:
        ctx.out.write(generate(obj, name=name, embed=embed))
    return 0


def do_help(ctx: Context, args: list[str]) -> int:
    if ctx.json:
        ctx.emit_json(None)  # bpftool's help in JSON mode
        return 0
    ctx.out.write(USAGE)
    return 0


COMMANDS = [("skeleton", do_skeleton), ("help", do_help)]


def do_gen(ctx: Context, args: list[str]) -> int:
    """Entry of ``pybpfobj gen``."""
    return dispatch(ctx, args, COMMANDS, USAGE)
