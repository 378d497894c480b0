"""Running the CLI in tests: ours in-process, bpftool as a subprocess.

Both return ``(exit code, stdout, stderr)`` so differential tests compare
them directly::

    from clirun import ours, theirs

    assert ours("map", "show", "id", "1") == theirs(bpftool, "map", "show", "id", "1")
"""

from __future__ import annotations

import io
import subprocess

from pybpfobj.cli.common import Context
from pybpfobj.cli.main import run


def ours(*argv: str) -> tuple[int, str, str]:
    """Our CLI in-process (no interpreter start-up per call)."""
    out, err = io.StringIO(), io.StringIO()
    rc = run(list(argv), Context(out=out, err=err))
    return rc, out.getvalue(), err.getvalue()


def theirs(bpftool: str, *argv: str) -> tuple[int, str, str]:
    """``bpftool ARGV...`` as a subprocess."""
    p = subprocess.run([bpftool, *argv], capture_output=True, text=True, check=False)
    return p.returncode, p.stdout, p.stderr


__all__ = ["ours", "theirs"]
