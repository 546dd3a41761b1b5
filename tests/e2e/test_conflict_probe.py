"""No duplicate address on the wire (issue 21 section 4), on real Open vSwitch: a network
namespace this test makes and plugs into the bridge holds an address on the pod's VLAN, as
a host configured by hand (or a node back from a crash) would. The pod's setup probes the
VLAN from the pod's interface, hears that host's MAC, fails naming it, leaves nothing, and
keeps the lease conflicted so the next setup gets another address."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Iterator

import pytest

from plugin.config import loader
from tests.support import hostnet
from tests.support.cni_runtime import Runtime, pod_args
from tests.support.pluginstate import our_ports
from tests.support.scope import Scope

NS = "default"
ADDRESS_CONFLICT = 1005


@dataclass(frozen=True)
class Squatter:
    """A namespace on the bridge with an address: its MAC is what the probe must hear."""

    netns: str
    port: str
    mac: str


@pytest.fixture
def squatter(scope: Scope, bridge: str) -> Iterator[Callable[[int, str], Squatter]]:
    """Factory ``squatter(vlan, "10.97.0.1/24") -> Squatter``: a namespace of this test's
    holding the address on a veth whose other end is a port of `bridge` tagged `vlan`;
    each is removed (port, veth, namespace) at teardown."""
    made: list[Squatter] = []

    def factory(vlan: int, address: str) -> Squatter:
        token = secrets.token_hex(3)
        netns, port = f"vpsq{token}", f"vpsq{token}"
        scope.netns.add(os.path.join(hostnet.NETNS_DIR, netns))
        scope.links.add(port)
        hostnet.run(["ip", "netns", "add", netns])
        made.append(Squatter(netns, port, ""))
        hostnet.run(["ip", "link", "add", port, "type", "veth", "peer", "name", "sq0",
                     "netns", netns])
        hostnet.run(["ovs-vsctl", "--timeout=10", "add-port", bridge, port, f"tag={vlan}"])
        hostnet.run(["ip", "link", "set", port, "up"])
        flags = ["nodad"] if ":" in address else []  # held at once, as a configured host's
        hostnet.run(["ip", "-n", netns, "addr", "add", address, "dev", "sq0", *flags])
        hostnet.run(["ip", "-n", netns, "link", "set", "sq0", "up"])
        mac = hostnet.run(["ip", "netns", "exec", netns, "cat",
                           "/sys/class/net/sq0/address"]).stdout.strip()
        made[-1] = Squatter(netns, port, mac)
        return made[-1]

    yield factory
    for item in made:
        hostnet.run(["ovs-vsctl", "--timeout=10", "--if-exists", "del-port", bridge, item.port],
                    check=False)
        hostnet.run(["ip", "link", "del", item.port], check=False)
        hostnet.run(["ip", "netns", "delete", item.netns], check=False)


def conflicted(runtime: Runtime) -> list[tuple[str, str]]:
    """(address, MAC) of every lease the node's allocators keep conflicted."""
    return [(c.address, c.mac) for c in
            loader.load(runtime.config_path).allocators().conflicted()]


def live_leases(runtime: Runtime) -> list[str]:
    return sorted(str(lease.address) for _, lease in
                  loader.load(runtime.config_path).allocators().leases())


def vlanpipe(runtime: Runtime, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plugin.frontends.exec_cli", *argv],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "VLANPIPE_CONFIG": runtime.config_path})


def assert_nothing_left(runtime: Runtime, bridge: str, container, squatter: Squatter) -> None:
    assert set(our_ports(bridge)) == {squatter.port}
    assert hostnet.container_addresses(container.id, "net1") == []
    assert live_leases(runtime) == []


def test_an_address_in_use_on_the_vlan_fails_add_and_is_never_handed_out_again(
        tmp_path, bridge, container, squatter):
    runtime = Runtime(str(tmp_path))
    other = squatter(22, "10.97.0.1/24")  # the pool's first address
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    args = pod_args(NS, "web", container.id)
    error = runtime.fails(ADDRESS_CONFLICT, "ADD", conf, container, args=args)
    assert error["msg"] == (f"address 10.97.0.1/24 is already used by MAC {other.mac} on "
                            f"bridge {bridge} VLAN 22"), error
    assert "vlanpipe lease clear 10.97.0.1" in error["details"], error
    assert_nothing_left(runtime, bridge, container, other)
    assert conflicted(runtime) == [("10.97.0.1/24", other.mac)]
    logged = [r for r in runtime.log_records() if r["command"] == "cni-add"][-1]
    assert logged["conflicted"] == [f"10.97.0.1/24 {other.mac}"], logged

    # The runtime's retry gets another address: the conflicted one stays out of use.
    body = runtime.ok("ADD", conf, container, args=args).body
    assert [ip["address"] for ip in body["ips"]] == ["10.97.0.2/24"]
    runtime.ok("DEL", conf, container, args=args)
    doctor = vlanpipe(runtime, "doctor")
    assert f"10.97.0.1/24 on pods: MAC {other.mac} answered for it" in doctor.stdout
    gc = vlanpipe(runtime, "gc")
    assert gc.returncode == 0 and "kept lease 10.97.0.1/24 on pods" in gc.stdout, gc.stdout
    assert conflicted(runtime) == [("10.97.0.1/24", other.mac)]
    cleared = vlanpipe(runtime, "lease", "clear", "10.97.0.1")
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.strip() == "cleared 10.97.0.1 on pods: it can be handed out again"
    assert conflicted(runtime) == [] and live_leases(runtime) == []
    assert our_ports(bridge).keys() == {other.port}


def test_the_same_address_on_another_vlan_is_no_conflict(tmp_path, bridge, container,
                                                         squatter):
    runtime = Runtime(str(tmp_path))
    squatter(23, "10.97.0.1/24")
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    body = runtime.ok("ADD", conf, container, args=pod_args(NS, "web", container.id)).body
    assert [ip["address"] for ip in body["ips"]] == ["10.97.0.1/24"]
    logged = [r for r in runtime.log_records() if r["command"] == "cni-add"][-1]
    assert "probe" in logged["phases_ms"], logged
    runtime.ok("DEL", conf, container)
    assert conflicted(runtime) == []


def test_an_ipv6_address_in_use_on_the_vlan_is_found_by_duplicate_address_detection(
        tmp_path, bridge, container, squatter):
    runtime = Runtime(str(tmp_path), node={"networks": [
        {"name": "pods6", "vlans": "all", "subnet": "fd00:97::/64"}]})
    conf = runtime.netconf("1.0.0", bridge, vlan=22)
    args = pod_args(NS, "web", container.id)
    other = squatter(22, "fd00:97::1/64")  # the pool's first address
    error = runtime.fails(ADDRESS_CONFLICT, "ADD", conf, container, args=args)
    assert error["msg"] == (f"address fd00:97::1/64 is already used by MAC {other.mac} on "
                            f"bridge {bridge} VLAN 22"), error
    assert_nothing_left(runtime, bridge, container, other)
    assert conflicted(runtime) == [("fd00:97::1/64", other.mac)]
    body = runtime.ok("ADD", conf, container, args=args).body
    assert [ip["address"] for ip in body["ips"]] == ["fd00:97::2/64"]
    runtime.ok("DEL", conf, container, args=args)
    vlanpipe(runtime, "lease", "clear", "fd00:97::1").check_returncode()


def test_a_delegated_address_in_use_is_released_through_the_ipam_plugin(
        tmp_path, bridge, container, squatter):
    """host-local cannot be told to keep an address out: DEL frees it, the error says so."""
    runtime = Runtime(str(tmp_path))
    conf = runtime.netconf("1.0.0", bridge, vlan=22, ipam={
        "type": "host-local", "ranges": [[{"subnet": "10.98.0.0/24"}]]})
    args = pod_args(NS, "web", container.id)
    other = squatter(22, "10.98.0.2/24")  # host-local's first address
    error = runtime.fails(ADDRESS_CONFLICT, "ADD", conf, container, args=args)
    assert other.mac in error["msg"] and "released to the IPAM plugin" in error["details"]
    held = runtime.ipam_data_dir + "/vlan-net"
    assert not any(name[0].isdigit() for name in os.listdir(held)), os.listdir(held)
    assert set(our_ports(bridge)) == {other.port}
    assert hostnet.container_addresses(container.id, "net1") == []


def test_the_kubelets_setup_fails_with_exit_7_and_one_line(tmp_path, bridge, container,
                                                           squatter):
    """The exec front-end: the same probe, the exit code of its one table (7, no address),
    the line on the combined output the kubelet reads; the lease kept as through CNI."""
    from tests.support.kubelet import make_plugin

    plugin = make_plugin(str(tmp_path), {
        "bridge": bridge, "networks": [{"name": "pods", "vlans": "all",
                                        "subnet": "10.96.0.0/24"}]})
    other = squatter(22, "10.96.0.1/24")
    call = plugin("setup", NS, "22-web", container.id)
    assert call.code == 7, call.output
    assert call.lines == [f"myplugin: address 10.96.0.1/24 is already used by MAC {other.mac} on bridge "
                          f"{bridge} VLAN 22; find that host (the MAC names it) and remove the "
                          "address from it; the lease of 10.96.0.1 is kept as conflicted: once "
                          "that host is gone, run `vlanpipe lease clear 10.96.0.1`"], call.output
    assert set(our_ports(bridge)) == {other.port}
    assert hostnet.container_addresses(container.id, "eth1") == []
    plugin.ok("setup", NS, "22-web", container.id)  # the kubelet's retry: the next address
    assert hostnet.container_addresses(container.id, "eth1") == ["10.96.0.2/24"]
    plugin.ok("teardown", NS, "22-web", container.id)
    assert plugin.ok("lease", "clear", "10.96.0.1").lines == [
        "cleared 10.96.0.1 on pods: it can be handed out again"]
