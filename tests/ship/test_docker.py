"""The Dockerfile builds an image that works: built here from a Debian base
made with debootstrap (no public image registry is reachable), checked in a
build step (``pybpfobj --version``, ``pybpfobj inspect`` on a bundled
object), then run as a container that loads and pins an object on a bpffs
shared from the host.

Needs root, ``dockerd`` (Debian's docker.io) and ``debootstrap``; scripts/setup.sh
installs both.  The daemon is started if none runs (and stopped after); the
base image ``pybpfobj-base:bookworm`` is reused when present, and the
debootstrap tarball is cached in ``$PYBPFOBJ_DOCKER_CACHE``
(default /var/cache/pybpfobj), so only the first run pays for debootstrap.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "pybpfobj-base:bookworm"
IMAGE = "pybpfobj:ci"
CACHE = Path(os.environ.get("PYBPFOBJ_DOCKER_CACHE", "/var/cache/pybpfobj"))
# the legacy builder: Debian's docker.io has no buildx plugin
ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(["docker", *args], env=ENV, capture_output=True, timeout=timeout, text=True,
                       check=False)
    if check and p.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({p.returncode}):\n{p.stdout[-4000:]}\n"
                             f"{p.stderr[-4000:]}")
    return p


def _daemon_up() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], env=ENV, capture_output=True, timeout=30,
                          check=False).returncode == 0


@pytest.fixture(scope="module")
def dockerd() -> Iterator[None]:
    """A running Docker daemon: the system's, or one started here for this module."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run dockerd")
    if not shutil.which("dockerd") or not shutil.which("docker"):
        pytest.skip("dockerd is not installed (Debian package docker.io; scripts/setup.sh installs it)")
    if _daemon_up():
        yield
        return
    # No bridge and no iptables rules: builds use the host's network, and the
    # test must not change the machine's firewall.
    log = open(tempfile.mktemp(prefix="pybpfobj-dockerd-", suffix=".log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(["dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _daemon_up():
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                text = Path(log.name).read_text(errors="replace")[-3000:]
                pytest.fail(f"dockerd did not start (exit {proc.poll()}):\n{text}")
            time.sleep(0.5)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        os.unlink(log.name)


def _debootstrap_tarball() -> Path:
    tarball = CACHE / "debootstrap-bookworm-minbase.tar"
    if tarball.exists():
        return tarball
    if not shutil.which("debootstrap"):
        pytest.skip("debootstrap is not installed (scripts/setup.sh installs it)")
    CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = Path(tempfile.mkdtemp(prefix="pybpfobj-rootfs-"))
    try:
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs)], check=True,
                       capture_output=True, timeout=900)
        tmp = tarball.with_suffix(".tmp")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tmp), "."], check=True)
        tmp.replace(tarball)
    finally:
        # debootstrap leaves /proc mounted inside the tree when interrupted
        subprocess.run(["umount", "-l", str(rootfs / "proc")], capture_output=True, check=False)
        shutil.rmtree(rootfs, ignore_errors=True)
    return tarball


@pytest.fixture(scope="module")
def base_image(dockerd: None) -> str:
    """``pybpfobj-base:bookworm``: Debian 12 minbase from debootstrap, imported into Docker."""
    if docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        tarball = _debootstrap_tarball()
        with open(tarball, "rb") as f:
            p = subprocess.run(["docker", "import", "-", BASE_IMAGE], stdin=f, env=ENV,
                               capture_output=True, text=True, timeout=300, check=False)
        assert p.returncode == 0, p.stderr
    return BASE_IMAGE


@pytest.fixture(scope="module")
def image(base_image: str) -> str:
    """Our image, built from the repository's Dockerfile on the debootstrap base."""
    # host network for the build steps: the daemon runs without a bridge
    docker("build", "--network=host", "--build-arg", f"BASE={base_image}", "-t", IMAGE, str(ROOT),
           timeout=1200)
    return IMAGE


def test_dockerfile_takes_the_base_image_as_a_build_argument() -> None:
    text = (ROOT / "Dockerfile").read_text()
    first_from = text.index("\nFROM ")
    assert re.search(r"^ARG BASE=debian:bookworm-slim$", text[:first_from], re.MULTILINE)
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms and all(f == "${BASE}" for f in froms), froms
    assert re.search(r'^ENTRYPOINT \["pybpfobj"\]$', text, re.MULTILINE)
    assert "libbpf1" in text


def test_build_step_in_the_image_runs_version_and_inspect(image: str, tmp_path: Path) -> None:
    # A fresh build step on top of the image (never served from the build
    # cache), so its output is really produced by this run.
    (tmp_path / "Dockerfile").write_text(
        f"FROM {image}\n"
        "RUN pybpfobj --version && pybpfobj inspect /opt/pybpfobj/bpf_progs/xdp_counter.o"
        " && pybpfobj -j inspect /opt/pybpfobj/bpf_progs/maps_all.o > /dev/null\n")
    p = docker("build", "--no-cache", "--network=none", "-t", "pybpfobj:ci-check", str(tmp_path))
    out = p.stdout
    assert re.search(r"^pybpfobj v\d+\.\d+\.\d+$", out, re.MULTILINE), out
    assert re.search(r"^using libbpf v1\.", out, re.MULTILINE), out  # the system libbpf1 was found
    assert "object xdp_counter" in out and "xdp_count" in out, out
    docker("rmi", "pybpfobj:ci-check", check=False)


def test_image_bundles_every_built_object_and_the_entrypoint(image: str) -> None:
    p = docker("run", "--rm", "--network=none", "--entrypoint", "ls", image, "/opt/pybpfobj/bpf_progs")
    bundled = set(p.stdout.split())
    sources = {f.name.removesuffix(".bpf.c") + ".o" for f in (ROOT / "bpf_progs").glob("*.bpf.c")}
    assert sources <= bundled, sources - bundled
    p = docker("run", "--rm", "--network=none", image, "version")
    assert p.stdout.startswith("pybpfobj v"), p.stdout


def test_container_loads_and_pins_on_the_hosts_bpffs(image: str, bpf_fs: Path) -> None:
    from pybpfobj.programs import Program

    obj = "/opt/pybpfobj/bpf_progs/xdp_counter.o"
    mounts = ["-v", f"{bpf_fs}:/sys/fs/bpf", "-v", "/sys/kernel:/sys/kernel"]
    argv = ["loadall", obj, "/sys/fs/bpf/xdp_counter"]
    # The README's line uses --privileged.  Where the host's capability
    # bounding set lacks one (as on some CI VMs), runc refuses it; the
    # capabilities the load really needs are then granted one by one.
    p = docker("run", "--rm", "--privileged", "--network=none", *mounts, image, *argv, check=False)
    if p.returncode != 0 and "unable to apply caps" in p.stderr:
        p = docker("run", "--rm", "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
                   "--security-opt", "seccomp=unconfined", "--network=none", *mounts, image, *argv,
                   check=False)
    assert p.returncode == 0, p.stderr
    pin = bpf_fs / "xdp_counter" / "xdp_count"
    with Program.from_pinned(str(pin)) as prog:
        assert prog.name == "xdp_count"
        assert prog.type == "xdp"
