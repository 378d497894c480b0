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
