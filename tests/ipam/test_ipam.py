"""The facade the core calls: VLAN to network, pins, release everywhere, gc, import cost."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from plugin.errors import AllocationError, BackendError, ConfigError
from plugin.ipam.allocators import Allocators
from plugin.ipam.model import Pin
from plugin.ipam.stores.etcd_client import EtcdConnection, b64
from tests.ipam.conftest import networks, owner
from tests.support import etcd_server

LOCAL22 = {"name": "v22", "vlans": [22, "24-25"], "subnet": "10.22.0.0/24", "gateway": "10.22.0.1"}
STATIC23 = {"name": "v23", "vlans": [23], "address": "10.23.0.5/24"}
ETCD30 = {"name": "v30", "vlans": [30], "subnet": "10.30.0.0/24", "allocator": "etcd"}


def test_each_vlan_goes_to_its_network(tmp_path):
    ipam = Allocators(networks(LOCAL22, STATIC23, {"name": "rest", "vlans": "all",
                                             "subnet": "10.99.0.0/24"}), None, str(tmp_path), "n1")
    assert [ipam.network_for(v).name for v in (22, 24, 23, 99)] == ["v22", "v22", "v23", "rest"]
    assert str(ipam.allocate(owner(1), 22).address) == "10.22.0.2/24"
    assert str(ipam.allocate(owner(2), 23).address) == "10.23.0.5/24"
    assert str(ipam.allocate(owner(3), 99).address) == "10.99.0.1/24"
    assert ipam.lookup(owner(1), 22).address == ipam.allocate(owner(1), 22).address


def test_a_vlan_no_network_serves_is_a_clear_error(tmp_path):
    ipam = Allocators(networks(LOCAL22), None, str(tmp_path), "n1")
    with pytest.raises(AllocationError, match="no network serves VLAN 23"):
        ipam.allocate(owner(1), 23)


def test_an_etcd_network_needs_the_etcd_section(tmp_path):
    with pytest.raises(ConfigError, match="network 'v30' uses allocator etcd but the config "
                                          "has no etcd section"):
        Allocators(networks(ETCD30), None, str(tmp_path), "n1")


def test_release_covers_every_network_and_is_idempotent(tmp_path):
    ipam = Allocators(networks(LOCAL22, STATIC23), None, str(tmp_path), "n1")
    ipam.allocate(owner(1), 22)
    assert ipam.release(owner(1)) is True
    assert ipam.release(owner(1)) is False
    assert ipam.leases() == []


def test_leases_carry_the_node_and_the_dead_are_collectable(tmp_path):
    ipam = Allocators(networks(LOCAL22), None, str(tmp_path), "node-a")
    for i in range(4):
        ipam.allocate(owner(i), 22)
    assert {o.node for o, _ in ipam.leases()} == {"node-a"}
    alive = {owner(0).infra_id, owner(2).infra_id}.__contains__
    dead = ipam.collectable(alive)
    assert [o.infra_id for o, _ in dead] == [owner(1).infra_id, owner(3).infra_id]
    assert len(ipam.leases()) == 4
    for o, _ in dead:
        ipam.release(o)
    assert [o.infra_id for o, _ in ipam.leases()] == [owner(0).infra_id, owner(2).infra_id]
    assert ipam.collectable(alive) == []


def test_gc_in_etcd_judges_only_this_nodes_leases(tmp_path, etcd_config):
    node_a = Allocators(networks(ETCD30), etcd_config, str(tmp_path / "a"), "node-a")
    node_b = Allocators(networks(ETCD30), etcd_config, str(tmp_path / "b"), "node-b")
    node_a.allocate(owner(1), 30)
    node_b.allocate(owner(2), 30)
    assert [o.node for o, _ in node_a.leases()] == ["node-a", "node-b"]
    dead = node_a.collectable(lambda infra_id: False)
    assert [o.node for o, _ in dead] == ["node-a"]
    for o, _ in dead:
        node_a.release(o)
    assert [o.node for o, _ in node_b.leases()] == ["node-b"]


def put_pin(etcd_config, namespace: str, pod: str, body: bytes) -> None:
    key = f"{etcd_config.prefix}/pins/{namespace}/{pod}"
    EtcdConnection(etcd_config).call("kv/put", {"key": b64(key), "value": b64(body)})


def test_a_pin_moves_the_pod_to_its_vlan_and_address(tmp_path, etcd_config):
    ipam = Allocators(networks(LOCAL22, ETCD30), etcd_config, str(tmp_path), "n1")
    me = owner(1)
    put_pin(etcd_config, me.namespace, me.pod, json.dumps({"vlan": 30,
                                                           "address": "10.30.0.77/24"}).encode())
    pin = ipam.pinned(me.namespace, me.pod)
    assert pin == Pin(30, ipaddress.ip_interface("10.30.0.77/24"))
    lease = ipam.allocate(me, 22, pin)  # the name says 22; the pin says 30
    assert (lease.network, str(lease.address), lease.vlan) == ("v30", "10.30.0.77/24", 30)
    assert ipam.lookup(me, 22, pin) == lease
    assert ipam.release(me) is True
    assert ipam.allocate(me, 22).network == "v22"  # the pin applies where the caller passes it


def test_a_pin_without_address_picks_the_vlan_only(tmp_path, etcd_config):
    ipam = Allocators(networks(LOCAL22, STATIC23), etcd_config, str(tmp_path), "n1")
    put_pin(etcd_config, "ns", "22-pod-1", b'{"vlan": 23}')
    lease = ipam.allocate(owner(1), 22, ipam.pinned("ns", "22-pod-1"))
    assert (lease.network, str(lease.address), lease.vlan) == ("v23", "10.23.0.5/24", 23)
    assert ipam.pinned("ns", "22-pod-2") is None


@pytest.mark.parametrize(("body", "why"), [
    (b"{", "not JSON"),
    (b'{"vlan": 4095}', "vlan 4095 must be a VLAN id between 1 and 4094"),
    (b'{"vlan": "22"}', "vlan '22' is not an integer"),
    (b'{"vlan": 22, "addr": "x"}', "nothing else"),
    (b'{"vlan": 22, "address": "nonsense"}', "does not appear to be an IPv4 or IPv6"),
])
def test_an_unreadable_pin_is_an_error_not_a_guess(tmp_path, etcd_config, body, why):
    ipam = Allocators(networks(LOCAL22), etcd_config, str(tmp_path), "n1")
    put_pin(etcd_config, "ns", "22-pod-1", body)
    with pytest.raises(AllocationError, match="pin .*/pins/ns/22-pod-1 in etcd is unreadable") \
            as caught:
        ipam.pinned("ns", "22-pod-1")
    assert why in str(caught.value) and "etcdctl del" in str(caught.value)
    assert ipam.leases() == []


def test_without_etcd_there_are_no_pins(tmp_path):
    assert Allocators(networks(LOCAL22), None, str(tmp_path), "n1").pinned("ns", "pod") is None


def test_release_frees_local_leases_even_when_etcd_is_down(tmp_path, etcd_config):
    dead = replace(etcd_config, endpoints=(f"http://127.0.0.1:{etcd_server.free_port()}",))
    ipam = Allocators(networks(LOCAL22, ETCD30), dead, str(tmp_path), "n1")
    ipam.allocate(owner(1), 22)
    with pytest.raises(BackendError, match="etcd unreachable"):
        ipam.release(owner(1))
    assert Allocators(networks(LOCAL22), None, str(tmp_path), "n1").leases() == []


def test_importing_and_using_local_networks_does_not_load_the_etcd_client(tmp_path):
    code = (
        "import sys\n"
        "from plugin.ipam.allocators import Allocators\nfrom plugin.ipam.networks import parse_networks\n"
        "from plugin.ipam.model import Owner\n"
        f"ipam = Allocators(parse_networks([]), None, {str(tmp_path)!r}, 'n1')\n"
        "ipam.allocate(Owner('ab' * 32, 'eth1', 'ns', 'pod'), 22)\n"
        "print(sorted(m for m in ('etcd3gw', 'requests', 'urllib3') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]" and out.stderr == ""
