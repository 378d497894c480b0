"""Attaching programs: XDP and tc on veth pairs in test namespaces (real packets, map
counters), sockmap/sockhash verdicts and parsers, flow_dissector, and bad requests."""

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
from pybpfobj.errors import NotFoundError, ProgramError, UnsupportedError
from pybpfobj.links import Link
from pybpfobj.loader import BpfObject

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from netns import Netns, VethPair

UDP = 17
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def progs_all(need_root: None, objs: Path) -> Iterator[Any]:
    with BpfObject(objs / "progs_all.o") as obj:
        obj.load()
        yield obj


@pytest.fixture
def veth(need_root: None) -> Iterator[VethPair]:
    with VethPair() as vp:
        yield vp


def _packets(obj: Any, map_name: str, proto: int) -> int:
    v = obj.maps[map_name][proto]
    return int(v.packets if hasattr(v, "packets") else v["packets"])


def test_xdp_link_counts_udp_packets_sent_through_veth(progs_all: Any, veth: VethPair, bpffs: Path) -> None:
    before = _packets(progs_all, "xdp_proto_count", UDP)
    with links.attach_xdp(progs_all.programs["xdp_count_proto"], veth.outer) as link:
        assert link.kind == "xdp" and link.id > 0
        assert links.xdp_attached(veth.outer) == progs_all.programs["xdp_count_proto"].id
        link.pin(str(bpffs / "xdp_link"))
        assert Link.from_pinned(str(bpffs / "xdp_link")).id == link.id
        veth.send_udp(7)
        assert _packets(progs_all, "xdp_proto_count", UDP) - before == 7
        link.unpin()
    assert links.xdp_attached(veth.outer) == 0


def test_xdp_netlink_attachment_detaches_only_our_program(progs_all: Any, veth: VethPair) -> None:
    prog = progs_all.programs["xdp_count_proto"]
    link = prog.attach_xdp(veth.outer, link=False, mode="skb")
    try:
        assert link.kind == "xdp-netlink"
        assert links.xdp_attached(veth.outer) == prog.id
        with pytest.raises(UnsupportedError, match="cannot be pinned"):
            link.pin("/nonexistent/pin")
    finally:
        link.detach()
    assert links.xdp_attached(veth.outer) == 0


@pytest.mark.parametrize("mode", ["tcx", "netlink"])
def test_tc_ingress_counts_udp_packets(progs_all: Any, veth: VethPair, mode: str) -> None:
    if mode == "tcx" and not links.has_tcx():
        pytest.skip("kernel without tcx")
    before = _packets(progs_all, "tc_proto_count", UDP)
    with progs_all.programs["tc_count_proto"].attach_tc(veth.outer, "ingress", mode=mode) as link:
        assert link.kind == ("tcx" if mode == "tcx" else "tc-netlink")
        veth.send_udp(5)
        assert _packets(progs_all, "tc_proto_count", UDP) - before == 5
    veth.send_udp(2)
    assert _packets(progs_all, "tc_proto_count", UDP) - before == 5
    qdiscs = subprocess.run(["tc", "qdisc", "show", "dev", veth.outer], capture_output=True, text=True,
                            check=True).stdout
    assert "clsact" not in qdiscs


def test_tcx_link_can_be_pinned_and_outlives_the_handle(progs_all: Any, veth: VethPair, bpffs: Path) -> None:
    if not links.has_tcx():
        pytest.skip("kernel without tcx")
    before = _packets(progs_all, "tc_proto_count", UDP)
    link = links.attach_tc(progs_all.programs["tc_count_proto"], veth.outer, "ingress")
    link.pin(str(bpffs / "tcx"))
    link.close()
    veth.send_udp(3)
    assert _packets(progs_all, "tc_proto_count", UDP) - before == 3
    pinned = Link.from_pinned(str(bpffs / "tcx"))
    pinned.detach()
    pinned.unpin()
    pinned.close()
    veth.send_udp(3)
    assert _packets(progs_all, "tc_proto_count", UDP) - before == 3


def test_xdp_attach_to_missing_interface_is_not_found(progs_all: Any) -> None:
    with pytest.raises(NotFoundError, match="network interface 'pbo-missing0' not found"):
        links.attach_xdp(progs_all.programs["xdp_count_proto"], "pbo-missing0")


def test_xdp_attach_of_tc_program_is_refused_and_nothing_attached(progs_all: Any, veth: VethPair) -> None:
    with pytest.raises(ProgramError, match="tc_count_proto is of type sched_cls; an XDP hook needs xdp"):
        links.attach_xdp(progs_all.programs["tc_count_proto"], veth.outer)
    assert links.xdp_attached(veth.outer) == 0


def test_tc_attach_of_xdp_program_is_refused(progs_all: Any, veth: VethPair) -> None:
    with pytest.raises(ProgramError, match="xdp_count_proto is of type xdp; a tc hook needs sched_cls"):
        links.attach_tc(progs_all.programs["xdp_count_proto"], veth.outer)


@pytest.mark.parametrize(("prog", "word", "map_name"), [
    ("sk_msg_redirect", "msg_verdict", "sock_hash"),
    ("sk_skb_verdict", "stream_verdict", "sock_map"),
    ("sk_skb_parser", "stream_parser", "sock_hash"),
    ("sk_skb_verdict", "skb_verdict", "sock_map"),
])
def test_sock_map_attach_and_detach(progs_all: Any, prog: str, word: str, map_name: str) -> None:
    p, m = progs_all.programs[prog], progs_all.maps[map_name]
    p.attach(word, m)
    try:
        assert links.attached_programs(m, word) == [p.id]
    finally:
        p.detach(word, m)
    assert links.attached_programs(m, word) == []


def test_sock_verdict_on_array_map_is_refused(progs_all: Any) -> None:
    with pytest.raises(ProgramError, match="event_count is of type array; .* needs a sockmap or sockhash"):
        progs_all.programs["sk_msg_redirect"].attach("msg_verdict", progs_all.maps["event_count"])


def test_xdp_program_as_msg_verdict_is_refused(progs_all: Any) -> None:
    m = progs_all.maps["sock_map"]
    with pytest.raises(ProgramError, match="xdp_count_proto is of type xdp; .* needs a sk_msg program"):
        progs_all.programs["xdp_count_proto"].attach("msg_verdict", m)
    assert links.attached_programs(m, "msg_verdict") == []


def test_flow_dissector_test_run_returns_bpf_ok_and_flow_keys(progs_all: Any) -> None:
    eth_ipv4_udp = (bytes(12) + b"\x08\x00" + bytes.fromhex("450000200000000040110000") + bytes(8)
                    + bytes(8))
    res = progs_all.programs["flow_dissect"].test_run(eth_ipv4_udp)
    assert res.retval == 0  # BPF_OK
    assert res.data_out is not None and len(res.data_out) > 0


def _netns_flow_dissector_ids(ns: str) -> list[int]:
    # BPF_PROG_QUERY on the namespace, from inside it
    code = "from pybpfobj.links import attached_programs as a; print(a(None, 'flow_dissector'))"
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    return [int(x) for x in out.strip().strip("[]").split(",") if x.strip()]


@pytest.mark.parametrize("tool", ["pybpfobj", "bpftool"])
def test_flow_dissector_attach_and_detach_in_a_netns_cli(progs_all: Any, bpffs: Path, tool: str) -> None:
    progs_all.pin_programs(str(bpffs / "p"))
    pin = str(bpffs / "p" / "flow_dissect")
    cmd = [sys.executable, "-m", "pybpfobj"] if tool == "pybpfobj" else ["bpftool"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with Netns() as ns:
        r = subprocess.run(["ip", "netns", "exec", ns.name, *cmd, "prog", "attach", "pinned", pin,
                            "flow_dissector"], capture_output=True, text=True, env=env, check=False)
        assert r.returncode == 0, r.stderr
        assert _netns_flow_dissector_ids(ns.name) == [progs_all.programs["flow_dissect"].id]
        r = subprocess.run(["ip", "netns", "exec", ns.name, *cmd, "prog", "detach", "pinned", pin,
                            "flow_dissector"], capture_output=True, text=True, env=env, check=False)
        assert r.returncode == 0, r.stderr
        assert _netns_flow_dissector_ids(ns.name) == []


def test_flow_dissector_link_in_a_named_netns_detaches_on_close_unless_pinned(progs_all: Any,
                                                                               bpffs: Path) -> None:
    prog = progs_all.programs["flow_dissect"]
    with Netns() as ns:
        with links.attach_flow_dissector(prog, ns.path) as link:
            assert link.kind == "netns" and link.id > 0
            assert _netns_flow_dissector_ids(ns.name) == [prog.id]
        assert _netns_flow_dissector_ids(ns.name) == []
        link = links.attach_flow_dissector(prog, ns.path)
        link.pin(str(bpffs / "fd_link"))
        link.close()
        assert _netns_flow_dissector_ids(ns.name) == [prog.id]  # the pin keeps it
        again = Link.from_pinned(str(bpffs / "fd_link"))
        again.detach()
        again.unpin()
        again.close()
        assert _netns_flow_dissector_ids(ns.name) == []


def test_flow_dissector_link_refuses_other_program_types_and_missing_netns(progs_all: Any) -> None:
    with pytest.raises(ProgramError, match="xdp_count_proto is of type xdp; .*flow dissector needs flow_dissector"):
        links.attach_flow_dissector(progs_all.programs["xdp_count_proto"])
    with pytest.raises(ProgramError, match="cannot open /run/netns/pbo-missing"):
        links.attach_flow_dissector(progs_all.programs["flow_dissect"], "/run/netns/pbo-missing")


def test_from_pinned_of_the_wrong_kind_raises_and_closes_the_fd(progs_all: Any, bpffs: Path) -> None:
    from pybpfobj.errors import BpfError
    from pybpfobj.maps import Map

    path = str(bpffs / "a_prog")
    progs_all.programs["xdp_count_proto"].pin(path)
    gc.collect()  # handles dropped earlier close their fds when collected: not this test's doing
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(BpfError, match=rf"incorrect object type: {path} is not a link \(it is a prog\)") as ei:
        Link.from_pinned(path)
    assert ei.value.errno == 22
    with pytest.raises(BpfError, match=rf"incorrect object type: {path} is not a map \(it is a prog\)"):
        Map.from_pinned(path)
    assert set(os.listdir("/proc/self/fd")) <= before
