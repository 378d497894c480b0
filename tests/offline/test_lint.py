"""The package passes ``mypy --strict`` and ``ruff``; tests, benchmarks and
examples pass ``ruff`` (the project's configuration in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], check=False, cwd=ROOT,
                          capture_output=True, text=True)


def test_ruff_finds_nothing() -> None:
    r = _run("ruff", "check", "--no-cache", "pybpfobj", "tests", "bench", "examples")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict_finds_nothing_in_the_package(tmp_path: Path) -> None:
    r = _run("mypy", "--strict", "--cache-dir", str(tmp_path / "mypy"), "pybpfobj")
    assert r.returncode == 0, r.stdout + r.stderr


def _libbpf_calls_outside_the_binding() -> list[str]:
    """Places outside pybpfobj/kernel/ that reach libbpf (or libc) themselves: the binding's
    ``lib()``, prototype declarations, ``CDLL`` or foreign function types."""
    import ast

    found = []
    for path in sorted((ROOT / "pybpfobj").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "kernel":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(rel))):
            name = None
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
            elif isinstance(node, ast.ImportFrom) and node.module == "pybpfobj.kernel.libbpf":
                name = next((a.name for a in node.names if a.name in ("lib", "_proto", "declares")), None)
            if name in ("lib", "_proto", "declares", "CDLL", "PyDLL", "CFUNCTYPE", "PYFUNCTYPE",
                        "LoadLibrary"):
                found.append(f"{rel}:{node.lineno}: {name}")
    return found


def test_only_the_binding_talks_to_libbpf() -> None:
    # the architecture's rule: prototypes, calls into libbpf and their return checks live
    # in pybpfobj/kernel/ (the rest of the package calls its Python functions)
    assert _libbpf_calls_outside_the_binding() == []
