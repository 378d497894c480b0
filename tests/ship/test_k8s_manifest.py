"""examples/k8s/daemonset.yaml: valid for Kubernetes (checked offline against
the API schemas bundled in the ``kubernetes-validate`` package), has the
mounts, privileges and host network it needs, and its container script really
loads, pins and cleans up (run here against the CLI on a private bpffs)."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

kubernetes_validate = pytest.importorskip("kubernetes_validate")
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "examples" / "k8s" / "daemonset.yaml"
# oldest and newest Kubernetes minor versions we claim; both schemas ship in the package
VERSIONS = ["1.28", "1.34"]


def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def daemonset() -> dict[str, Any]:
    (ds,) = [d for d in documents() if d["kind"] == "DaemonSet"]
    return ds


def container() -> dict[str, Any]:
    (c,) = daemonset()["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("version", VERSIONS)
def test_every_document_validates_strictly_against_the_kubernetes_schema(version: str) -> None:
    docs = documents()
    assert [d["kind"] for d in docs] == ["Namespace", "DaemonSet"]
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("mutate, what", [
    (lambda ds: ds["spec"]["template"]["spec"]["containers"][0].update(privilegd=True), "unknown field"),
    (lambda ds: ds["spec"]["template"]["spec"].update(hostNetwork="yes"), "wrong type"),
    (lambda ds: ds["spec"].pop("selector"), "missing selector"),
])
def test_schema_check_rejects_a_broken_daemonset(mutate: Any, what: str) -> None:
    ds = copy.deepcopy(daemonset())
    mutate(ds)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, VERSIONS[-1], strict=True)


def test_daemonset_mounts_bpffs_and_sys_kernel_from_the_node() -> None:
    spec = daemonset()["spec"]["template"]["spec"]
    volumes = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"]}
    mounts = {m["name"]: m for m in container()["volumeMounts"]}
    assert {volumes[n]: mounts[n]["mountPath"] for n in mounts} == {
        "/sys/fs/bpf": "/sys/fs/bpf", "/sys/kernel": "/sys/kernel"}
    bpffs_mount = next(m for m in mounts.values() if m["mountPath"] == "/sys/fs/bpf")
    assert bpffs_mount["mountPropagation"] == "Bidirectional"  # pins show up on the node
    assert not bpffs_mount.get("readOnly", False)


def test_daemonset_runs_privileged_on_the_host_network_of_every_node() -> None:
    spec = daemonset()["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert {"operator": "Exists"} in spec["tolerations"]
    assert container()["securityContext"]["privileged"] is True
    ds = daemonset()
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()


def test_daemonset_loads_an_object_the_image_bundles() -> None:
    env = {e["name"]: e["value"] for e in container()["env"]}
    obj = Path(env["OBJECT"])
    # the Dockerfile copies bpf_progs/build/*.o to /opt/pybpfobj/bpf_progs/
    assert obj.parent == Path("/opt/pybpfobj/bpf_progs")
    assert "/opt/pybpfobj/bpf_progs/" in (ROOT / "Dockerfile").read_text()
    assert (ROOT / "bpf_progs" / (obj.stem + ".bpf.c")).exists()
    assert env["PIN_DIR"].startswith("/sys/fs/bpf/")


def _run_script(script: str, env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    with open(out, "wb") as f:
        return subprocess.Popen(["/bin/sh", "-c", script], env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def test_container_script_loads_pins_survives_restart_and_prestop_unpins(
        objs: Path, bpf_fs: Path, tmp_path: Path) -> None:
    from pybpfobj.programs import Program

    # the container's `pybpfobj` command, from this checkout
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "pybpfobj"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m pybpfobj "$@"\n')
    wrapper.chmod(0o755)
    pin_dir = bpf_fs / "pybpfobj" / "xdp_counter"
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "OBJECT": str(objs / "xdp_counter.o"), "PIN_DIR": str(pin_dir)}
    c = container()
    script = c["args"][0]
    prog_ids = []
    log = tmp_path / "log"
    for _ in range(2):  # the second start is a restarted pod: it keeps the pins
        p = _run_script(script, env, log)
        try:
            # running: pinned, then shown (the pod's log), then waiting
            deadline = time.monotonic() + 30
            while "xdp_count" not in log.read_text():
                assert p.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            with Program.from_pinned(str(pin_dir / "xdp_count")) as prog:
                prog_ids.append(prog.id)
            readiness = subprocess.run(c["readinessProbe"]["exec"]["command"], env=env, capture_output=True,
                                       text=True, check=False)
            assert readiness.returncode == 0, readiness.stderr
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=30)
        assert p.returncode in (0, -signal.SIGTERM), log.read_text()
        assert "Error" not in log.read_text()
    assert prog_ids[0] == prog_ids[1]
    stop = subprocess.run(c["lifecycle"]["preStop"]["exec"]["command"], env=env, check=False)
    assert stop.returncode == 0
    assert not pin_dir.exists()
