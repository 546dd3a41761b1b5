"""doctor's MAC check: on its own node, no two interfaces on one bridge and VLAN with one
MAC, whatever network, allocator or request gave them (a VLAN is one segment)."""

from __future__ import annotations

import pytest

from plugin.config.schema import parse
from plugin.core.records import Attachment, RecordStore
from plugin.errors import Failure
from plugin.identity import Identity
from plugin.ops.doctor import _macs


def config(tmp_path):
    return parse({"state_dir": str(tmp_path / "state"), "node_name": "n1",
                  "networks": [{"name": "v6", "vlans": [40], "subnet": "fd00:40::/64"},
                               {"name": "v22", "vlans": [22], "subnet": "fd00:22::/64"}]},
                 "test")


def attach(tmp_path, index: int, network: str, address: str, vlan: int = 40,
           bridge: str = "k8s_br", mac: str = "") -> None:
    infra_id = f"{index:064x}"
    RecordStore(str(tmp_path / "state")).save(infra_id, [Attachment(
        who=Identity("ns", f"pod-{index}", infra_id, "eth1"),
        bridge=bridge, port=f"vp{index:012x}", vlan=vlan, network=network,
        addresses=(address,), mac=mac)])


def test_pods_of_two_networks_on_one_vlan_have_distinct_macs(tmp_path):
    """Issue 19 item 9: the same last 32 bits in two networks' addresses, on one VLAN
    (a network named from a CNI config serves any VLAN)."""
    attach(tmp_path, 1, "v6", "fd00:40::1/64")
    attach(tmp_path, 2, "v22", "fd00:22::1/64")
    assert _macs(config(tmp_path)) == "2 interface(s), each MAC once on its bridge and VLAN"


def test_one_mac_twice_on_one_bridge_and_vlan_is_reported_across_networks(tmp_path):
    """Issue 19 item 9: doctor grouped by network and missed a MAC shared by two networks'
    pods on one VLAN (here a MAC a pod asked for); it groups by bridge and VLAN now."""
    attach(tmp_path, 1, "v6", "fd00:40::1/64", mac="0a:58:00:00:00:01")
    attach(tmp_path, 2, "v22", "fd00:22::1/64", mac="0a:58:00:00:00:01")
    attach(tmp_path, 3, "v22", "fd00:22::2/64", vlan=22, mac="0a:58:00:00:00:01")
    attach(tmp_path, 4, "v22", "fd00:22::3/64", bridge="br1", mac="0a:58:00:00:00:01")
    with pytest.raises(Failure) as found:
        _macs(config(tmp_path))
    line = found.value.message
    assert line.startswith("1 MAC(s) shared on a VLAN: 0a:58:00:00:00:01 of ns/pod-")
    assert line.endswith(" on k8s_br VLAN 40")
    assert "ns/pod-1 eth1 (000000000000)" in line and "ns/pod-2 eth1 (000000000000)" in line


def test_two_sandboxes_of_one_pod_with_one_mac_are_a_clash(tmp_path):
    """A pod's new sandbox beside its dead one's leftover record: two ports, one MAC."""
    attach(tmp_path, 1, "v6", "fd00:40::1/64", mac="0a:58:00:00:00:01")
    RecordStore(str(tmp_path / "state")).save("f" * 64, [Attachment(
        who=Identity("ns", "pod-1", "f" * 64, "eth1"), bridge="k8s_br",
        port="vpffffffffffff", vlan=40, network="v6", addresses=("fd00:40::9/64",),
        mac="0a:58:00:00:00:01")])
    with pytest.raises(Failure, match="1 MAC.s. shared on a VLAN"):
        _macs(config(tmp_path))
