"""Fixtures of the reliability suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def module_bpffs(need_root_module: None) -> Iterator[Path]:
    """A private bpffs shared by one module's tests (mounting costs more than most cases)."""
    # imported here: importing the plugin module before pytest registers it
    # would keep pytest from rewriting its asserts
    from pybpfobj.pytest_plugin import mount_private_bpffs

    d, undo = mount_private_bpffs("pybpfobj-rel-bpffs-")
    try:
        yield d
    finally:
        undo()


@pytest.fixture(scope="module")
def need_root_module() -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root and a BPF-capable kernel")
