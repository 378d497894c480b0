"""Shared fixtures.

- ``objs``: the built objects of bpf_progs/ (built once per session).
- ``bpffs``: a private BPF file system mounted in a temp dir, unmounted after.
- ``need_root``, ``need_bpftool``: skip outside, but in CI (``CI=true``)
  every skip is turned into a failure, so a kernel or bpftool test can never
  silently not run there.
- ``PYBPFOBJ_LONG=1`` (or ``--long``) adds tests marked ``slow``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BPF_PROGS = ROOT / "bpf_progs"
BUILD = BPF_PROGS / "build"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", help="also run long tests (fuzz campaigns, soak)")


def pytest_configure(config: pytest.Config) -> None:
    # Our tests use pybpfobj's own pytest plugin (bpf_fs, bpf_object, ...).  An
    # installed package registers it through the pytest11 entry point; from a
    # bare checkout, register it here.
    pm = config.pluginmanager
    if not pm.has_plugin("pybpfobj") and not pm.has_plugin("pybpfobj.pytest_plugin"):
        pm.import_plugin("pybpfobj.pytest_plugin")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    long_runs = config.getoption("--long") or os.environ.get("PYBPFOBJ_LONG") == "1"
    if long_runs:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("slow") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true), which counts as a failure: {report.longrepr}"


# Whole modules skipped at collection (a module-level ``pytest.importorskip``) never reach
# pytest_runtest_makereport: in CI they are listed and fail the run here instead.
_CI_COLLECT_SKIPS: list[str] = []


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if IN_CI and report.skipped:
        _CI_COLLECT_SKIPS.append(f"{report.nodeid}: {report.longrepr}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _CI_COLLECT_SKIPS:
        terminalreporter.write_line(f"FAILED (skipped in CI, CI=true) {line}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _CI_COLLECT_SKIPS and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def have_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture(scope="session")
def objs() -> Path:
    """The build directory of bpf_progs/, brought up to date."""
    subprocess.run(["make", "-s", "-C", str(BPF_PROGS)], check=True)
    return BUILD


@pytest.fixture
def need_root() -> None:
    if not have_root():
        pytest.skip("needs root and a BPF-capable kernel")


@pytest.fixture(scope="session")
def bpftool() -> str:
    path = shutil.which("bpftool") or ("/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None)
    if not path:
        pytest.skip("bpftool is not installed")
    return path


@pytest.fixture
def bpffs(need_root: None) -> Iterator[Path]:
    """A private bpffs mounted on a fresh temp dir; unmounted (and removed) after the test."""
    d = Path(tempfile.mkdtemp(prefix="pybpfobj-bpffs-"))
    subprocess.run(["mount", "-t", "bpf", "bpf", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
        shutil.rmtree(d, ignore_errors=True)
