"""QA sweep of attaching: XDP in each mode as ``ip link`` and ``bpftool net`` see it, links
reopened from pins, netlink attachments dropped or sharing a clsact qdisc, closed links."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pybpfobj import links
from pybpfobj.constants import ATTACH_TYPE
from pybpfobj.errors import BpfError, LibbpfError
from pybpfobj.kernel import attach
from pybpfobj.links import Link
from pybpfobj.loader import BpfObject

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from netns import VethPair


@pytest.fixture
def progs_all(need_root: None, objs: Path) -> Iterator[Any]:
    with BpfObject(objs / "progs_all.o") as obj:
        obj.load()
        yield obj


@pytest.fixture
def veth(need_root: None) -> Iterator[VethPair]:
    with VethPair() as vp:
        yield vp


def _ip_link(dev: str) -> str:
    return subprocess.run(["ip", "-d", "link", "show", dev], capture_output=True, text=True, check=True).stdout


def _tc_filters(dev: str, direction: str) -> str:
    return subprocess.run(["tc", "filter", "show", "dev", dev, direction], capture_output=True, text=True,
                          check=True).stdout


def _has_clsact(dev: str) -> bool:
    out = subprocess.run(["tc", "qdisc", "show", "dev", dev], capture_output=True, text=True, check=True).stdout
    return "clsact" in out


@pytest.mark.parametrize(("mode", "word"), [("skb", "xdpgeneric"), ("drv", "xdp "), (None, "xdp ")])
@pytest.mark.parametrize("link", [True, False])
def test_xdp_attach_in_each_mode_shows_in_ip_link_and_detach_clears_it(
        progs_all: Any, veth: VethPair, mode: str | None, word: str, link: bool) -> None:
    p = progs_all.programs["xdp_count_proto"]
    att = links.attach_xdp(p, veth.outer, mode=mode, link=link)
    try:
        shown = _ip_link(veth.outer)
        assert f" {word}" in shown and f"prog/xdp id {p.id} " in shown
        with pytest.raises(LibbpfError, match=f"attaching xdp_count_proto to interface {veth.outer}: "
                                              "Device or resource busy"):
            links.attach_xdp(p, veth.outer, mode=mode, link=link)
    finally:
        att.detach()
        att.close()
    assert "prog/xdp" not in _ip_link(veth.outer)
    assert links.xdp_attached(veth.outer) == 0


def test_xdp_on_lo_works_generic_but_native_is_refused(progs_all: Any) -> None:
    p = progs_all.programs["xdp_count_proto"]
    with pytest.raises(LibbpfError, match="attaching xdp_count_proto to interface lo: Operation not supported"):
        links.attach_xdp(p, "lo", mode="drv")
    with links.attach_xdp(p, "lo", mode="skb"):
        assert links.xdp_attached("lo") == p.id
    assert links.xdp_attached("lo") == 0


def test_xdp_link_reopened_from_its_pin_knows_interface_and_program(progs_all: Any, veth: VethPair,
                                                                    bpffs: Path) -> None:
    p = progs_all.programs["xdp_count_proto"]
    lk = links.attach_xdp(p, veth.outer)
    lk.pin(str(bpffs / "xdp_link"))
    ifindex = lk.ifindex
    lk.close()
    assert links.xdp_attached(veth.outer) == p.id  # the pin keeps it attached
    reopened = Link.from_pinned(str(bpffs / "xdp_link"))
    try:
        assert (reopened.kind, reopened.ifindex, reopened.prog_id) == ("xdp", ifindex, p.id)
        net = subprocess.run(["bpftool", "net", "show", "dev", veth.outer], capture_output=True, text=True,
                             check=False).stdout
        assert f"{veth.outer}({ifindex}) driver id {p.id}" in net
        reopened.detach()  # detach works through any handle, pinned or not
        assert links.xdp_attached(veth.outer) == 0
        reopened.unpin()
        assert not (bpffs / "xdp_link").exists()
    finally:
        reopened.close()


def test_pinning_a_closed_link_says_it_is_closed(progs_all: Any, veth: VethPair, bpffs: Path) -> None:
    lk = links.attach_xdp(progs_all.programs["xdp_count_proto"], veth.outer)
    lk.close()
    assert links.xdp_attached(veth.outer) == 0  # closing an unpinned link detaches
    with pytest.raises(BpfError, match=f"cannot pin xdp link at {bpffs}/l: the link handle is closed"):
        lk.pin(str(bpffs / "l"))
    assert not (bpffs / "l").exists()


def test_dropped_netlink_xdp_attachment_stays_but_frees_its_program_fd(progs_all: Any, veth: VethPair) -> None:
    p = progs_all.programs["xdp_count_proto"]
    gc.collect()
    before = set(os.listdir("/proc/self/fd"))
    links.attach_xdp(p, veth.outer, link=False)  # result dropped on purpose
    gc.collect()
    assert set(os.listdir("/proc/self/fd")) <= before
    assert links.xdp_attached(veth.outer) == p.id
    subprocess.run(["ip", "link", "set", veth.outer, "xdp", "off"], check=True)


def test_tc_netlink_detach_keeps_the_clsact_qdisc_while_another_filter_uses_it(progs_all: Any,
                                                                              veth: VethPair) -> None:
    first = links.attach_tc(progs_all.programs["tc_count_proto"], veth.outer, mode="netlink")  # makes clsact
    second = links.attach_tc(progs_all.programs["tc_classifier"], veth.outer, mode="netlink")
    first.detach()
    shown = _tc_filters(veth.outer, "ingress")
    assert "tc_classifier" in shown and "tc_count_proto" not in shown
    second.detach()  # the last filter goes: the clsact we made goes with it
    assert not _has_clsact(veth.outer)


def test_tc_netlink_detach_leaves_a_clsact_it_did_not_create(progs_all: Any, veth: VethPair) -> None:
    subprocess.run(["tc", "qdisc", "add", "dev", veth.outer, "clsact"], check=True)
    lk = links.attach_tc(progs_all.programs["tc_count_proto"], veth.outer, "egress", mode="netlink")
    assert "tc_count_proto" in _tc_filters(veth.outer, "egress")
    lk.detach()
    assert _tc_filters(veth.outer, "egress") == "" and _has_clsact(veth.outer)


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_tcx_link_detach_vs_close(progs_all: Any, veth: VethPair, bpffs: Path, direction: str) -> None:
    p = progs_all.programs["tc_count_proto"]
    lk = links.attach_tc(p, veth.outer, direction, mode="tcx")
    lk.pin(str(bpffs / "tcx"))
    lk.close()  # pinned: still attached
    reopened = Link.from_pinned(str(bpffs / "tcx"))
    try:
        assert (reopened.kind, reopened.ifindex, reopened.prog_id) == ("tcx", lk.ifindex, p.id)
        at = ATTACH_TYPE[f"tcx_{direction}"]
        assert attach.prog_query(lk.ifindex, at) == [p.id]  # tcx queries take the ifindex as target
        reopened.detach()
        assert attach.prog_query(lk.ifindex, at) == []
        assert reopened.id > 0  # a detached link still exists until its last reference goes
    finally:
        reopened.unpin()
        reopened.close()
