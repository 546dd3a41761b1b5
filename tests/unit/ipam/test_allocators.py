"""The facade the core calls: VLAN to network, pins, release everywhere, gc, import cost."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plugin.errors import AddressRefused, AllocationError, ConfigError
from plugin.ipam.allocators import Allocators
from plugin.ipam.model import Request
from tests.support.ipamdata import networks, owner

LOCAL22 = {"name": "v22", "vlans": [22, "24-25"], "subnet": "10.22.0.0/24", "gateway": "10.22.0.1"}
STATIC23 = {"name": "v23", "vlans": [23], "address": "10.23.0.5/24"}
ETCD30 = {"name": "v30", "vlans": [30], "subnet": "10.30.0.0/24", "allocator": "etcd"}


def test_each_vlan_goes_to_its_network(tmp_path):
    ipam = Allocators(networks(LOCAL22, STATIC23, {"name": "rest", "vlans": "all",
                                             "subnet": "10.99.0.0/24"}), None, str(tmp_path), "n1")
    assert [ipam.network_name(v) for v in (22, 24, 23, 99)] == ["v22", "v22", "v23", "rest"]
    assert str(ipam.allocate(owner(1), 22)[0].address) == "10.22.0.2/24"
    assert str(ipam.allocate(owner(2), 23)[0].address) == "10.23.0.5/24"
    assert str(ipam.allocate(owner(3), 99)[0].address) == "10.99.0.1/24"
    assert [lease.address for _, lease in ipam.leases() if _.infra_id == owner(1).infra_id] \
        == [ipam.allocate(owner(1), 22)[0].address]


DUAL = {"name": "dual", "vlans": [40], "subnets": [
    "10.40.0.0/24", {"subnet": "fd00:40::/64", "gateway": "fd00:40::1"}]}


def test_a_dual_stack_network_gives_one_address_per_family_all_or_none(tmp_path):
    ipam = Allocators(networks(DUAL), None, str(tmp_path), "n1")
    v4, v6 = ipam.allocate(owner(1), 40)
    assert (str(v4.address), str(v6.address)) == ("10.40.0.1/24", "fd00:40::2/64")
    assert (v4.network, v6.network, v6.gateway) == ("dual", "dual", None)  # no default_route
    asked = ipam.allocate(owner(2), 40, (Request(ipaddress.ip_address("fd00:40::99")),))
    assert [str(lease.address) for lease in asked] == ["10.40.0.2/24", "fd00:40::99/64"]
    assert sorted(os.listdir(tmp_path / "ipam")) == ["dual", "dual@6"]  # IPv4 keeps its store
    with pytest.raises(AddressRefused, match="is IPv6; network v22 has no such subnet"):
        Allocators(networks(LOCAL22), None, str(tmp_path), "n1").allocate(
            owner(3), 22, (Request(ipaddress.ip_address("fd00::1")),))
    assert ipam.release(owner(1), "dual") is True
    assert [str(lease.address) for _, lease in ipam.leases()] == ["10.40.0.2/24",
                                                                  "fd00:40::99/64"]


def test_a_vlan_no_network_serves_is_a_clear_error(tmp_path):
    ipam = Allocators(networks(LOCAL22), None, str(tmp_path), "n1")
    with pytest.raises(AllocationError, match="no network serves VLAN 23"):
        ipam.allocate(owner(1), 23)


def test_an_etcd_network_needs_the_etcd_section(tmp_path):
    with pytest.raises(ConfigError, match="network 'v30' uses allocator etcd but the config "
                                          "has no etcd section"):
        Allocators(networks(ETCD30), None, str(tmp_path), "n1")


def test_release_on_the_named_network_is_idempotent_and_anywhere_tries_them_all(tmp_path):
    ipam = Allocators(networks(LOCAL22, STATIC23), None, str(tmp_path), "n1")
    ipam.allocate(owner(1), 22)
    assert ipam.release(owner(1), "v23") is False  # not there: the lease stays
    assert len(ipam.leases()) == 1
    assert ipam.release(owner(1), "v22") is True
    assert ipam.release(owner(1), "v22") is False
    ipam.allocate(owner(2), 22)
    assert ipam.release_anywhere(owner(2)) == [] and ipam.leases() == []


def test_leases_carry_the_node_and_the_dead_are_collectable(tmp_path):
    ipam = Allocators(networks(LOCAL22), None, str(tmp_path), "node-a")
    for i in range(4):
        ipam.allocate(owner(i), 22)
    assert {o.node for o, _ in ipam.leases()} == {"node-a"}
    alive = {owner(0).infra_id, owner(2).infra_id}.__contains__
    dead = ipam.collectable(alive)
    assert [o.infra_id for o, _ in dead] == [owner(1).infra_id, owner(3).infra_id]
    assert len(ipam.leases()) == 4
    for o, lease in dead:
        ipam.release(o, lease.network)
    assert [o.infra_id for o, _ in ipam.leases()] == [owner(0).infra_id, owner(2).infra_id]
    assert ipam.collectable(alive) == []


def test_without_etcd_there_are_no_pins(tmp_path):
    assert Allocators(networks(LOCAL22), None, str(tmp_path), "n1").pinned("ns", "pod") is None


def test_importing_and_using_local_networks_does_not_load_the_etcd_client(tmp_path):
    code = (
        "import sys\n"
        "from plugin.ipam.allocators import Allocators\nfrom plugin.config.networks import parse_networks\n"
        "from plugin.identity import Identity\n"
        f"ipam = Allocators(parse_networks([]), None, {str(tmp_path)!r}, 'n1')\n"
        "ipam.allocate(Identity('ns', 'pod', 'ab' * 32, 'eth1'), 22)\n"
        "print(sorted(m for m in ('etcd3gw', 'requests', 'urllib3') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]" and out.stderr == ""
