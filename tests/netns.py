"""Network namespaces and veth pairs for attach tests (iproute2).

:class:`VethPair` makes a fresh network namespace holding one end of a
veth pair (with a 10.x address and IPv6 off, so only our traffic flows),
and leaves the other end, without any address, in the test process's own
namespace, where programs are attached.  Packets sent from inside the
namespace (``send_udp``, ``ping``) arrive on the outer end, through XDP and
tc ingress.  Everything is removed in ``close()`` (use ``with``).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from typing import Self

_seq = itertools.count()


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip"] + (["netns", "exec", ns, "ip"] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def in_ns(ns: str, *cmd: str, check: bool = True, timeout: float = 30,
          stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` inside namespace ``ns`` (``ip netns exec``)."""
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], check=check, capture_output=True, text=True,
                          timeout=timeout, input=stdin)


class VethPair:
    """``outer`` (in our namespace, no address) <-> ``inner`` (in ``ns``, ``inner_addr``/24)."""

    def __init__(self) -> None:
        n = f"{os.getpid() % 10000}{next(_seq)}"
        third = (os.getpid() + next(_seq)) % 250 + 1
        self.ns = f"pbo-ns{n}"
        self.outer = f"pbo{n}o"[:15]
        self.inner = f"pbo{n}i"[:15]
        self.inner_addr = f"10.213.{third}.2"
        self.outer_addr = f"10.213.{third}.1"  # only a neighbour entry in ns, never configured
        self._made_ns = False
        self._made_link = False
        try:
            ip("netns", "add", self.ns)
            self._made_ns = True
            ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
            self._made_link = True
            ip("link", "set", self.inner, "netns", self.ns)
            in_ns(self.ns, "sysctl", "-qw", f"net.ipv6.conf.{self.inner}.disable_ipv6=1")
            subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{self.outer}.disable_ipv6=1"],
                           check=False, capture_output=True)
            ip("addr", "add", f"{self.inner_addr}/24", "dev", self.inner, ns=self.ns)
            ip("link", "set", self.inner, "up", ns=self.ns)
            ip("link", "set", "lo", "up", ns=self.ns)
            ip("link", "set", self.outer, "up")
            with open(f"/sys/class/net/{self.outer}/address") as f:
                mac = f.read().strip()
            # no ARP needed: packets to outer_addr go straight out of the inner end
            ip("neigh", "add", self.outer_addr, "lladdr", mac, "dev", self.inner, "nud", "permanent",
               ns=self.ns)
        except BaseException:
            self.close()
            raise

    def send_udp(self, count: int, payload: bytes = b"pybpfobj", port: int = 9) -> None:
        """Send ``count`` UDP datagrams from inside the namespace to the outer end."""
        code = (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"for _ in range({count}): s.sendto({payload!r},({self.outer_addr!r},{port}))\n"
        )
        in_ns(self.ns, sys.executable, "-c", code)

    def close(self) -> None:
        if self._made_link:
            ip("link", "del", self.outer, check=False)
            self._made_link = False
        if self._made_ns:
            ip("netns", "del", self.ns, check=False)
            self._made_ns = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Netns:
    """A bare network namespace (for flow_dissector), removed on close."""

    def __init__(self) -> None:
        self.name = f"pbo-fd{os.getpid() % 10000}{next(_seq)}"
        ip("netns", "add", self.name)
        self.path = f"/run/netns/{self.name}"

    def close(self) -> None:
        ip("netns", "del", self.name, check=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_runtime_events(tmp_dir: str) -> str:
    """Compile tests/data/runtime_events.bpf.c (event producers) into ``tmp_dir``; returns the .o path."""
    import platform
    import shutil
    from pathlib import Path

    src = Path(__file__).resolve().parent / "data" / "runtime_events.bpf.c"
    out = os.path.join(tmp_dir, "runtime_events.o")
    clang = shutil.which("clang-19") or shutil.which("clang") or "clang"
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    subprocess.run([clang, "-O2", "-g", "-target", "bpf", f"-D__TARGET_ARCH_{arch}",
                    f"-I/usr/include/{platform.machine()}-linux-gnu", "-c", str(src), "-o", out],
                   check=True, capture_output=True)
    return out
