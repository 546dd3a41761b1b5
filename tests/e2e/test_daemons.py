"""Smoke tests of the real-daemon fixtures, and proof that this machine's
userspace OVS datapath isolates VLANs (the property the plugin is about).

Containers are wired by hand here (veth + ovs-vsctl), not with pipework or the
plugin, so a failure points at the host, not at project code.
"""

from __future__ import annotations

import os
import secrets
from typing import Callable

import pytest

from tests.support import hostnet
from tests.support.hostnet import Container
from tests.support.scope import Scope

SUBNET = "10.222.22"  # only on the test bridge, which has no uplink


def attach(bridge: str, c: Container, address: str, tag: int) -> str:
    """Give ``c`` an eth1 with ``address`` on ``bridge`` VLAN ``tag``; return the host veth."""
    suffix = secrets.token_hex(3)
    host, guest = f"vt{suffix}", f"vg{suffix}"
    hostnet.run(["ip", "link", "add", host, "type", "veth", "peer", "name", guest])
    try:
        hostnet.run(["ip", "link", "set", guest, "netns", str(c.pid)])
        hostnet.in_netns(c.pid, "ip", "link", "set", guest, "name", "eth1")
        hostnet.in_netns(c.pid, "ip", "addr", "add", address, "dev", "eth1")
        hostnet.in_netns(c.pid, "ip", "link", "set", "eth1", "up")
        hostnet.run(["ip", "link", "set", host, "up"])
        hostnet.ovs("add-port", bridge, host, f"tag={tag}")
    except Exception:
        detach(host)
        raise
    return host


def detach(host: str) -> None:
    """Undo attach(): the OVS port first, then the veth pair (both ends go)."""
    hostnet.ovs("--if-exists", "del-port", host)
    hostnet.run(["ip", "link", "del", host], check=False)


def ip(c: Container) -> str:
    return hostnet.container_addresses(c.id, "eth1")[0].split("/")[0]


def test_vlans_isolate_on_userspace_datapath(
    bridge: str, make_container: Callable[..., Container]
) -> None:
    a, b, c = (make_container(h) for h in ("a22", "b22", "c23"))
    ports = []
    try:
        for n, (ctr, tag) in enumerate(((a, 22), (b, 22), (c, 23)), start=1):
            ports.append(attach(bridge, ctr, f"{SUBNET}.{n}/24", tag))
        assert hostnet.container_addresses(a.id, "eth1") == [f"{SUBNET}.1/24"]
        seen = hostnet.ovs_ports()
        assert {seen[p]["tag"] for p in ports} == {22, 23}
        assert all(seen[p]["bridge"] == bridge for p in ports)

        # Same VLAN: reachable both ways (first packets go through an upcall: retry).
        assert hostnet.wait_until(lambda: hostnet.ping(a.id, ip(b)), timeout=10)
        assert hostnet.ping(b.id, ip(a))
        # Different VLAN, same subnet: nothing gets through.
        assert not hostnet.ping(a.id, ip(c), timeout=1)
        assert not hostnet.ping(c.id, ip(b), timeout=1)
    finally:
        for p in ports:
            detach(p)


def test_ping_refuses_addresses_off_the_test_interfaces(container: Container) -> None:
    with pytest.raises(ValueError):
        hostnet.ping(container.id, "127.0.0.1")
    with pytest.raises(ValueError):  # eth0 (docker0) subnet: would go out via Docker
        hostnet.ping(container.id, "172.17.0.1")


def test_the_leak_check_sees_what_a_dead_container_leaves(
    scope: Scope, bridge: str, make_container: Callable[..., Container]
) -> None:
    """A port whose container died stays in OVS: bridge_leaks and the scope must see it."""
    victim = make_container("victim")
    port = attach(bridge, victim, f"{SUBNET}.9/24", 22)
    try:
        hostnet.remove_container(victim.id)
        # The netns died, and the veth pair with it; the Port row did not.
        assert hostnet.wait_until(lambda: port not in hostnet.host_links(), timeout=10)
        assert f"OVS port {port} still on bridge {bridge}" in hostnet.bridge_leaks(bridge)
        assert any(leak.startswith(f"OVS port {port} (bridge {bridge}, tag 22")
                   for leak in scope.leaks())
    finally:
        detach(port)
    assert hostnet.bridge_leaks(bridge) == []


def test_the_leak_check_sees_links_and_netns_entries_of_its_own_only(scope: Scope) -> None:
    name = f"vp{secrets.token_hex(3)}"
    other = f"vp{secrets.token_hex(3)}"
    netns = os.path.join(hostnet.NETNS_DIR, f"vlanpipe-test-{secrets.token_hex(3)}")
    scope.links.add(name)
    scope.netns.add(netns)
    hostnet.run(["ip", "link", "add", name, "type", "veth", "peer", "name", other])
    try:
        os.symlink(f"/proc/{os.getpid()}/ns/net", netns)  # what pipework leaves on failure
        leaks = scope.leaks()
        assert f"host link {name}" in leaks and netns in leaks
        assert not any(other in leak for leak in leaks)  # not registered: someone else's
    finally:
        hostnet.run(["ip", "link", "del", name])
        if os.path.lexists(netns):
            os.unlink(netns)
    assert scope.leaks() == []