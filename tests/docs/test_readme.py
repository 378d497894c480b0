"""README.md as executable documentation.

Every ```python block and every ```sh block whose commands are safe to run
here (pybpfobj commands, the example scripts, ``rm`` of their own pins) runs,
section by section in README order, against a private bpffs that stands in
for ``/sys/fs/bpf``.  The commands run as written, from a scratch directory
that looks like a checkout: ``bpf_progs/`` and ``examples/`` link to the real
ones, ``.venv/bin/python`` and ``.venv/bin/pybpfobj`` are this interpreter
with this checkout's package, and ``pybpfobj`` is on PATH (as after
``. .venv/bin/activate``).  A block whose last line is
``print(...)  # VALUE...`` must print VALUE last.

The CLI grammar the README quotes must be in the help texts, the "two
commands" section must tell the truth about scripts/setup.sh and .ci/run,
and shell commands that are not run here (setup, the test suite, Docker) must
be on an explicit list, so a new README command cannot go untested unnoticed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BPFFS_IN_README = "/sys/fs/bpf"

# shell commands the README shows but this test does not run, and why
NOT_RUN = {
    "bash scripts/run.sh": "set-up with apt and pip; tests/ship and CI run it",
    "bash scripts/test.sh": "this very test suite",
    "docker build": "tests/ship/test_docker.py builds and runs the image",
    "docker run": "tests/ship/test_docker.py builds and runs the image",
}
# shell commands that are run: each line must start with one of these
RUN_PREFIXES = ("pybpfobj ", "rm ", ".venv/bin/python examples/", "PYBPFOBJ=.venv/bin/pybpfobj sh examples/")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # README line of the opening fence
    section: str


def readme_blocks() -> list[Block]:
    blocks: list[Block] = []
    section = ""
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        elif line.startswith("```"):
            lang = line[3:].strip()
            start = i + 1
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                i += 1
            blocks.append(Block(lang, "\n".join(lines[start:i]) + "\n", start, section))
        i += 1
    return blocks


def shell_commands(code: str) -> list[str]:
    """The commands of a shell block: comments dropped, continuation lines joined."""
    cmds: list[str] = []
    pending = ""
    for raw in code.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        cmds.append(pending + line)
        pending = ""
    return cmds


def runnable(block: Block) -> bool:
    if block.lang == "python":
        return True
    if block.lang != "sh":
        return False
    return all(c.startswith(RUN_PREFIXES) for c in shell_commands(block.code))


def sections_to_run() -> dict[str, list[Block]]:
    out: dict[str, list[Block]] = {}
    for b in readme_blocks():
        if runnable(b):
            out.setdefault(b.section, []).append(b)
    return out


SECTIONS = sections_to_run()


def test_every_readme_shell_command_is_run_here_or_listed_as_not_run() -> None:
    unknown = []
    for b in readme_blocks():
        if b.lang != "sh" or runnable(b):
            continue
        for cmd in shell_commands(b.code):
            if not cmd.startswith(tuple(NOT_RUN)):
                unknown.append(f"README.md:{b.line}: {cmd}")
    assert not unknown, "commands neither run by this test nor listed in NOT_RUN:\n" + "\n".join(unknown)
    assert len(SECTIONS) >= 8, f"expected the README's runnable sections, found {sorted(SECTIONS)}"


def _plugin_registered() -> bool:
    return any(e.value == "pybpfobj.pytest_plugin" for e in entry_points(group="pytest11"))


@pytest.fixture
def checkout(tmp_path: Path, objs: Path) -> tuple[Path, dict[str, str]]:
    """A scratch directory standing in for the checkout, and the environment to run in it."""
    work = tmp_path / "checkout"
    work.mkdir()
    (work / "bpf_progs").symlink_to(ROOT / "bpf_progs")
    (work / "examples").symlink_to(ROOT / "examples")
    venv_bin = work / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    for name, argv in (("python", [sys.executable]), ("pybpfobj", [sys.executable, "-m", "pybpfobj"])):
        p = venv_bin / name
        p.write_text(f"#!/bin/sh\nexec {shlex.join(argv)} \"$@\"\n")
        p.chmod(0o755)
    env = {**os.environ,
           "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PYTHONDONTWRITEBYTECODE": "1"}
    return work, env


def _run(argv: list[str], block: Block, cwd: Path, env: dict[str, str]) -> str:
    p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    where = f"README.md:{block.line} ({block.section}, {block.lang} block)"
    assert p.returncode == 0, f"{where} failed with exit code {p.returncode}\n--- stdout\n{p.stdout}\n" \
                              f"--- stderr\n{p.stderr}"
    assert "Traceback" not in p.stderr, f"{where} printed a traceback:\n{p.stderr}"
    return p.stdout


def _expected_last_output(code: str) -> str | None:
    """``VALUE`` when the block's last line is ``print(...)  # VALUE...``."""
    last = code.rstrip().splitlines()[-1]
    m = re.match(r"\s*print\(.*\)\s+#\s*(.+)$", last)
    return m.group(1).strip() if m else None


@pytest.mark.parametrize("section", list(SECTIONS))
def test_readme_section_examples_run_as_written(section: str, bpffs: Path,
                                                checkout: tuple[Path, dict[str, str]]) -> None:
    work, env = checkout
    for k, block in enumerate(SECTIONS[section]):
        code = block.code.replace(BPFFS_IN_README, str(bpffs))
        if block.lang == "sh":
            _run(["bash", "-e", "-o", "pipefail", "-c", code], block, work, env)
            continue
        if re.search(r"^def test_", code, re.MULTILINE):
            path = work / f"test_readme_block{k}.py"
            path.write_text(code)
            plugin = [] if _plugin_registered() else ["-p", "pybpfobj.pytest_plugin"]
            _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, path.name],
                 block, work, env)
            continue
        path = work / f"readme_block{k}.py"
        path.write_text(code)
        out = _run([sys.executable, path.name], block, work, env)
        want = _expected_last_output(block.code)
        if want is not None:
            got = out.rstrip("\n").splitlines()[-1] if out.strip() else ""
            assert got == want or got == want.split()[0].rstrip(":;,"), \
                f"README.md:{block.line}: the last print should give {want!r}, got {got!r}"
    # the blocks cleaned up after themselves where the README says they do
    leftovers = sorted(p.name for p in bpffs.iterdir() if not p.name.endswith(".debug"))
    assert all(name in {"xdp", "xdp_maps"} for name in leftovers), leftovers


# ---------------------------------------------------------------------------
# the CLI grammar quoted in the README is in the help texts

GROUPS = ("prog", "map", "gen", "btf", "inspect", "load", "loadall")
# words the README shows that the help texts do not list yet (owner: cli/prog.py);
# test_known_help_gaps_are_still_gaps fails once one is fixed, to keep this list honest
KNOWN_HELP_GAPS: set[tuple[str, str]] = set()


def _help(group: str | None) -> str:
    argv = [sys.executable, "-m", "pybpfobj", *([group] if group else []), "help"]
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    return p.stdout + p.stderr


# inline code that starts like a command but quotes something else
NOT_GRAMMAR = {"map l": "an abbreviation, to show prefix matching", "map idx": "load's keyword"}


def _prose() -> str:
    """The README without its fenced blocks (inline code spans pair up again)."""
    return re.sub(r"^```.*?^```$", "", README.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)


def readme_cli_grammar() -> list[tuple[str, str]]:
    """(group, text) of every command form the README quotes: grammar blocks and inline code."""
    text = _prose()
    forms: list[str] = []
    for b in readme_blocks():
        if b.lang == "":
            forms += [ln.split("#")[0].split("(same as")[0] for ln in b.code.splitlines()
                      if ln.startswith("pybpfobj ")]
    for span in re.findall(r"`([^`\n]+)`", text.replace("\n", " ")):
        if span.startswith(("pybpfobj ", "prog ", "map ")) and span not in NOT_GRAMMAR:
            forms.append(span)
    out = []
    for f in forms:
        words = [w for w in f.split() if not w.startswith("-")]
        if words and words[0] == "pybpfobj":
            words = words[1:]
        if words and words[0] in GROUPS:
            out.append((words[0], " ".join(words[1:])))
    # the verbs of `pybpfobj map`, listed as a|b|c
    for span in re.findall(r"`([a-z_]+(?:\|[a-z_]+){5,})`", text):
        out.append(("map", span))
    return out


def _keywords(form: str) -> set[str]:
    words = re.split(r"[\s\[\]{}|()]+", form)
    return {w for w in words if re.fullmatch(r"[a-z][a-z_]*", w) and w not in ("or",)}


def _missing_from_help() -> set[tuple[str, str]]:
    helps: dict[str, set[str]] = {}
    missing = set()
    for group, form in readme_cli_grammar():
        key = "load" if group == "loadall" else group
        if key not in helps:
            helps[key] = set(re.findall(r"[a-z][a-z_]*", _help(key)))
        missing |= {(key, w) for w in _keywords(form) if w not in helps[key]}
    return missing


def test_help_texts_list_every_command_and_keyword_the_readme_shows() -> None:
    assert len(readme_cli_grammar()) >= 15
    new_gaps = _missing_from_help() - KNOWN_HELP_GAPS
    assert not new_gaps, f"README words missing from `pybpfobj GROUP help`: {sorted(new_gaps)}"


def test_known_help_gaps_are_fixed() -> None:
    assert not (_missing_from_help() & KNOWN_HELP_GAPS)


def test_main_help_lists_every_command_group_the_readme_documents() -> None:
    text = _help(None)
    for word in ("prog", "map", "btf", "gen", "inspect", "load", "loadall", "version",
                 "--json", "--pretty", "--debug", "--bpffs", "--mapcompat", "--nomount", "--version"):
        assert word in text, word


# ---------------------------------------------------------------------------
# "The two commands" tells the truth about the scripts

def _two_commands_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("## The two commands", 1)[1].split("\n## ", 1)[0]


def test_readme_names_every_package_setup_installs() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    pkgs = set()
    for m in re.finditer(r'^PKGS="(?:\$PKGS )?([^"]+)"', setup, re.MULTILINE):
        pkgs |= set(m.group(1).split())
    section = " ".join(_two_commands_section().split())
    listed = set()
    for span in re.findall(r"`([a-z0-9][a-z0-9 .+-]+)`", section):
        listed |= set(span.split())
    assert pkgs and pkgs <= listed, f"setup.sh installs {sorted(pkgs - listed)} that the README does not name"


def test_ci_runs_exactly_the_readme_test_command_and_both_commands_set_up_first() -> None:
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert ci[-1] == "exec bash scripts/test.sh"
    assert "bash scripts/test.sh" in _two_commands_section()
    for script in ("run.sh", "test.sh"):
        assert "bash scripts/setup.sh" in (ROOT / "scripts" / script).read_text(), script


def test_readme_starts_with_the_overview_then_the_two_commands() -> None:
    headings = [ln for ln in README.read_text(encoding="utf-8").splitlines() if ln.startswith("## ")]
    assert headings[:3] == ["## The two commands", "## Requirements", "## Command line"]
