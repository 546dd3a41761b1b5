"""A MAC and addresses a pod asks for through the CNI capabilities `mac` and `ips` (issue 21
section 3), injected as libcni injects them (`tests.support.cni_runtime.with_capabilities`),
through the CNI front-end over the fakes: the node's MAC policy, one MAC per bridge and VLAN,
the address claimed through the network's allocator. The real path:
tests/e2e/test_readme.py::test_the_capabilities_conflist_gives_the_pod_the_mac_and_address_it_asks_for."""

from __future__ import annotations

import yaml

from plugin.core.records import RecordStore
from plugin.locks import pod_lock
from tests.support.cni_runtime import with_capabilities
from tests.unit.test_cni_frontend import NETNS, cni, host, leases, network, node  # noqa: F401

CAPABLE = network(capabilities={"mac": True, "ips": True})
LOCAL = "0a:58:0a:09:00:63"


def test_libcni_injects_only_the_capabilities_a_config_declares():
    plugin = {"type": "vlanpipe", "capabilities": {"mac": True, "ips": False}}
    assert with_capabilities(plugin, mac=LOCAL, ips=["10.9.0.5/24"], bandwidth={}) == {
        **plugin, "runtimeConfig": {"mac": LOCAL}}
    assert "runtimeConfig" not in with_capabilities({"type": "vlanpipe"}, mac=LOCAL)


def test_the_mac_and_address_asked_for_are_the_pods(host, cni, node):
    status, result = cni("ADD", with_capabilities(CAPABLE, mac=LOCAL, ips=["10.9.0.99/24"]),
                         "cri-1", "net1")
    assert status == 0, result
    assert result["interfaces"][1]["mac"] == LOCAL
    assert [ip["address"] for ip in result["ips"]] == ["10.9.0.99/24"]
    assert leases(node) == [("cri-1", "net1")]  # claimed in the network's pool
    (record,) = RecordStore(yaml.safe_load(open(node))["state_dir"]).load("cri-1")
    assert (record.mac, record.addresses) == (LOCAL, ("10.9.0.99/24",))


def test_without_the_capability_declared_nothing_reaches_the_plugin(host, cni):
    status, result = cni("ADD", with_capabilities(network(), mac=LOCAL), "cri-1", "net1")
    assert status == 0 and result["interfaces"][1]["mac"] != LOCAL


def test_an_address_held_by_another_pod_is_refused_by_the_allocator(host, cni, node):
    assert cni("ADD", with_capabilities(CAPABLE, ips=["10.9.0.99/24"]), "cri-1", "net1")[0] == 0
    status, error = cni("ADD", with_capabilities(CAPABLE, ips=["10.9.0.99/24"]), "cri-2",
                        "net1")
    assert status == 1 and error["code"] == 1002, error
    assert "requested address 10.9.0.99 of network pods is held by" in error["msg"]
    assert leases(node) == [("cri-1", "net1")] and len(host.ports) == 1


def test_a_universally_administered_mac_is_refused_unless_the_node_allows_it(host, cni, node):
    vendor = "00:1b:21:0a:0b:0c"  # an Intel NIC's
    status, error = cni("ADD", with_capabilities(CAPABLE, mac=vendor), "cri-1", "net1")
    assert status == 1 and error["code"] == 7, error
    assert error["msg"].startswith(f"runtimeConfig.mac = {vendor} is a universally "
                                   "administered MAC")
    assert "cni.universal_macs" in error["details"]
    assert host.ports == {} and leases(node) == []
    config = yaml.safe_load(open(node))
    config["cni"]["universal_macs"] = True
    with open(node, "w") as handle:
        yaml.safe_dump(config, handle)
    status, result = cni("ADD", with_capabilities(CAPABLE, mac=vendor), "cri-1", "net1")
    assert status == 0 and result["interfaces"][1]["mac"] == vendor


def test_a_mac_is_once_per_bridge_and_vlan(host, cni, node):
    assert cni("ADD", with_capabilities(CAPABLE, mac=LOCAL), "cri-1", "net1")[0] == 0
    status, error = cni("ADD", with_capabilities(CAPABLE, mac=LOCAL), "cri-2", "net1")
    assert status == 1 and error["code"] == 1002, error
    assert error["msg"] == (f"requested MAC {LOCAL} is already used on bridge br0 VLAN 22 by "
                            "/ net1 (cri-1)"), error
    assert len(host.ports) == 1 and leases(node) == [("cri-1", "net1")]
    # Another VLAN is another segment: the same MAC is fine there.
    status, result = cni("ADD", with_capabilities(network(vlan=23, capabilities={"mac": True}),
                                                  mac=LOCAL), "cri-2", "net1")
    assert status == 0, result


def test_a_holder_whose_veth_is_gone_does_not_block_the_mac(host, cni, node):
    """A dead sandbox's record (gc not run yet, or a reboot) puts nothing on the wire: the
    pod's new sandbox may ask for its MAC again."""
    assert cni("ADD", with_capabilities(CAPABLE, mac=LOCAL), "cri-1", "net1")[0] == 0
    host.links.clear()  # the veth died with its namespace
    assert cni("ADD", with_capabilities(CAPABLE, mac=LOCAL), "cri-2", "net1")[0] == 0


def test_a_holder_whose_setup_is_still_running_blocks_the_mac(host, cni, node):
    """A setup in flight has saved its intent (which names the MAC) but has no veth yet:
    while its pod's lock is held it is about to be on the wire, and a second pod asking for
    the MAC meanwhile must be refused, not plugged beside it."""
    assert cni("ADD", with_capabilities(CAPABLE, mac=LOCAL), "cri-1", "net1")[0] == 0
    host.links.clear()  # as before its veth exists
    with pod_lock(yaml.safe_load(open(node))["state_dir"], "cri-1", 5):
        status, error = cni("ADD", with_capabilities(CAPABLE, mac=LOCAL), "cri-2", "net1")
    assert status == 1 and error["code"] == 1002, error
    assert "requested MAC 0a:58:0a:09:00:63 is already used on bridge br0 VLAN 22 by / net1 " \
        "(cri-1)" in error["msg"], error
    assert cni("ADD", with_capabilities(CAPABLE, mac=LOCAL), "cri-2", "net1")[0] == 0
