"""Smoke test of the two-node bed with BARE pipework (no plugin): the bed behaves like
two nodes cabled to a switch, and leaves nothing behind.

The plugin's own tests across nodes are in test_nodes.py and test_traffic.py; these
check the bed: with Open vSwitch's defaults, bare pipework's pods ping but get no TCP
across (what the plugin fixes), and the bed leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from typing import Callable

import pytest

from tests.nodes.conftest import Pod, pod_mac
from tests.support import hostnet, nodebed
from tests.support.nodebed import NodeBed
from tests.support.traffic import End, tcp


def test_bare_pipework_pods_ping_but_get_no_tcp_across_nodes(bed: NodeBed,
                                                            attach: Callable[..., Pod]) -> None:
    """The defect the plugin's pods must not have (tests/nodes/test_traffic.py), shown with
    bare pipework on the bed's default Open vSwitch: the userspace datapath forwards the
    pods' TCP segments with their checksum left to offload, and the receiver drops them."""
    src, dst = attach(bed.node("a"), 14, 22), attach(bed.node("b"), 15, 22)
    a, b = End.of_pid(src.pid, src.address), End.of_pid(dst.pid, dst.address)
    assert subprocess.run(a.argv("ping", "-c", "1", "-W", "3", b.address),
                          capture_output=True, timeout=20).returncode == 0
    os.environ["TRAFFIC_TIMEOUT"] = "3"
    try:
        with pytest.raises(AssertionError, match="TCP"):
            tcp(b, a, size=1000)
    finally:
        del os.environ["TRAFFIC_TIMEOUT"]


def _attributable(before: hostnet.Snapshot, after: hostnet.Snapshot, names: set[str],
                  pids: set[str]) -> list[str]:
    """New host state that carries one of the bed's names (or, for /var/run/netns, a
    pod's PID, as pipework names it). The host is shared with a test suite running at
    the same time, so anything else new is theirs, not the bed's."""
    return ([f"host link {n}" for n in sorted((after.links - before.links) & names)]
            + [f"host OVS port {n}" for n in sorted((set(after.ports) - set(before.ports)) & names)]
            + [f"{hostnet.NETNS_DIR}/{n}" for n in sorted((after.netns - before.netns) & (names | pids))])


def test_close_leaves_nothing(bed_tools_ready: None) -> None:
    token = secrets.token_hex(3)
    before = hostnet.snapshot()
    bed = NodeBed(nodes=("a", "b"), bridge=f"kb{token}", plug_uplinks=True)
    try:
        pods = []
        for node, octet in ((bed.node("a"), 41), (bed.node("b"), 42)):
            container = bed.start_container(f"close-{octet}")
            hostif = f"vc{token}{octet}"
            node.pipework(container.id, f"10.66.0.{octet}/24", vlan=22, mac=pod_mac(octet),
                          hostif=hostif, announce=False)
            pods.append(container)
        assert nodebed.ping(pods[0].pid, "10.66.0.42").ok
        client = bed.etcd_client()
        client.put(f"/nodebed/{token}", "x")
        assert client.get(f"/nodebed/{token}") == [b"x"]

        names = set()
        for ns in bed.namespaces():
            names |= ns.links()
        for ns in [bed.switch, *bed.nodes.values()]:
            names |= set(ns.ovs("--columns=name", "--bare", "list", "Port").split())
        names -= {"lo", "ovs-netdev"}  # generic names the host has anyway
        pod_pids = {str(c.pid) for c in pods}
        during = hostnet.snapshot()
        assert not _attributable(before, during, names, pod_pids), "the bed touched the host"

        processes = {pid: _cmdline(pid) for pid in bed.processes().values()}
        containers = [c.id for c in pods]
        root = bed.root
    finally:
        closing = time.monotonic()
        problems = bed.close()
        close_s = time.monotonic() - closing
    assert problems == []
    print(f"\nnodebed: close() took {close_s:.2f} s; bed names checked on the host: "
          f"{sorted(names)}")

    after = hostnet.snapshot()
    assert not _attributable(before, after, names, pod_pids)
    unrelated = hostnet.diff(before, after)
    if unrelated:
        print(f"nodebed: host changes meanwhile that are not the bed's: {unrelated}")
    still = {pid: cmd for pid, cmd in processes.items() if _cmdline(pid) == cmd}
    assert not still, f"bed processes still running: {still}"
    assert bed.inside_pids() == [], "processes left in the bed's namespaces"
    for cid in containers:
        assert hostnet.run(["docker", "inspect", cid], check=False).returncode != 0, cid
    assert not hostnet.containers(f"{nodebed.LABEL_KEY}={bed.token}")
    assert not os.path.exists(root)


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return None
