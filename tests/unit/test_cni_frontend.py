"""The CNI front-end as a runtime calls it (environment, stdin, stdout, exit status), over
the fakes at the wrapper boundary (`tests/support/wired.py`): ADD marks the port with its
network, DEL is idempotent, and DEL and GC of one interface take exactly that interface,
also once the records are lost. The same commands run against the real daemons in
tests/e2e/test_cni.py; here each outcome is pinned without them."""

from __future__ import annotations

import pytest
import yaml

from pipework_wrapper.ovs import Port
from plugin import names
from plugin.config import loader
from plugin.core import marks
from plugin.core.records import RecordStore
from tests.support.fakes import FakeHost
from tests.support.wired import cni_main, wire

NETNS = {"cri-1": "/var/run/netns/cni-1", "cri-2": "/var/run/netns/cni-2"}


def network(name: str = "vlan22", **keys) -> dict:
    return {"cniVersion": "1.1.0", "name": name, "type": "vlanpipe", "bridge": "br0",
            "vlan": 22, **keys}


@pytest.fixture
def host(monkeypatch) -> FakeHost:
    fake = FakeHost()
    fake.bridges.add("br0")
    for i, path in enumerate(NETNS.values()):
        fake.namespaces[path] = (4, 4026532000 + i)
    wire(monkeypatch, fake)
    return fake


@pytest.fixture
def node(tmp_path) -> str:
    """The node's config.yaml: one pool for every VLAN, Docker never reachable."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "bridge": "br0", "state_dir": str(tmp_path / "state"), "node_name": "n1",
        "log": {"file": str(tmp_path / "log")}, "docker_url": "unix:///nonexistent.sock",
        "networks": [{"name": "pods", "vlans": "all", "subnet": "10.9.0.0/24"}],
        "cni": {"bridges": ["br0"], "vlans": "all"}}))
    return str(path)


@pytest.fixture
def cni(monkeypatch, capsys, node):
    def call(command: str, conf: dict, container: str = "", ifname: str = "",
             netns: str | None = None) -> tuple[int, object]:
        if netns is None and command == "ADD":
            netns = NETNS[container]
        return cni_main(monkeypatch, capsys, node, command, conf, container, ifname,
                        netns or "")
    return call


def leases(node: str) -> list[tuple[str, str]]:
    """(container, interface) of every lease the node's allocators hold."""
    return sorted((o.infra_id, o.interface)
                  for o, _ in loader.load(node).allocators().leases())


def port_of(container: str, ifname: str) -> str:
    return names.host_veth(container, ifname)


def add(cni, container: str, ifname: str, conf: dict | None = None) -> None:
    status, out = cni("ADD", conf or network(), container, ifname)
    assert status == 0, out


def test_an_added_port_carries_its_network_so_gc_of_that_network_collects_it(host, cni, node):
    add(cni, "cri-1", "net1")
    add(cni, "cri-2", "net1", network("other"))
    found = marks.Marks.read(host.ports[port_of("cri-1", "net1")].external_ids)
    assert found is not None and found.cni_network == "vlan22"
    gc = network(**{"cni.dev/valid-attachments": []})
    assert cni("GC", gc) == (0, None)
    assert sorted(host.ports) == [port_of("cri-2", "net1")]  # the other network's stays
    assert leases(node) == [("cri-2", "net1")]


def test_del_of_a_container_never_added_succeeds_and_touches_nothing(host, cni, node):
    add(cni, "cri-2", "net1")
    before = host.leftovers()
    assert cni("DEL", network(), "cri-1", "net1") == (0, None)  # no CNI_NETNS, as after a reboot
    assert host.leftovers() == before and leases(node) == [("cri-2", "net1")]


def test_del_twice_succeeds_and_leaves_nothing(host, cni, node):
    add(cni, "cri-1", "net1")
    assert cni("DEL", network(), "cri-1", "net1", NETNS["cri-1"]) == (0, None)
    assert host.leftovers() == [] and leases(node) == []
    assert cni("DEL", network(), "cri-1", "net1", NETNS["cri-1"]) == (0, None)
    assert host.leftovers() == [] and leases(node) == []


def lose_records_add_renamed_ports(host: FakeHost, node: str, container: str) -> None:
    """The container's records deleted, and beside each of its ports a copy marked the same
    under a name not derived from (container, interface), as an older naming would leave:
    from here only the marks say which port is whose."""
    RecordStore(loader.load(node).state_dir).delete(container)
    for port in [p for p in host.ports.values()
                 if p.external_ids.get(marks.KEYS["infra_id"]) == container]:
        renamed = "old" + port.name[2:]
        host.ports[renamed] = Port(renamed, port.bridge, port.tag, dict(port.external_ids))
        host.links.add(renamed)


def test_del_of_one_interface_without_records_takes_exactly_its_ports(host, cni, node):
    add(cni, "cri-1", "net1")
    add(cni, "cri-1", "net2")
    lose_records_add_renamed_ports(host, node, "cri-1")
    assert cni("DEL", network(), "cri-1", "net1") == (0, None)
    assert sorted(host.ports) == sorted([port_of("cri-1", "net2"), "old" + port_of(
        "cri-1", "net2")[2:]])
    assert leases(node) == [("cri-1", "net2")]


def test_gc_of_one_interface_without_records_takes_exactly_its_ports(host, cni, node):
    add(cni, "cri-1", "net1")
    add(cni, "cri-1", "net2")
    lose_records_add_renamed_ports(host, node, "cri-1")
    valid = [{"containerID": "cri-1", "ifname": "net2"}]
    assert cni("GC", network(**{"cni.dev/valid-attachments": valid})) == (0, None)
    assert sorted(host.ports) == sorted([port_of("cri-1", "net2"), "old" + port_of(
        "cri-1", "net2")[2:]])
    assert leases(node) == [("cri-1", "net2")]
