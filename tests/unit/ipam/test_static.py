"""The static allocator: the reference's fixed address, or a per-pod map."""

from __future__ import annotations

import ipaddress

import pytest

from plugin.ipam.model import Request
from plugin.errors import AddressRefused, AllocationError
from plugin.ipam.static import StaticAllocator
from tests.support.ipamdata import network, owner


def test_fixed_address_for_every_pod_as_the_reference_does():
    source = StaticAllocator(network(vlans=[22], address="192.168.255.126/24"))
    assert {str(source.allocate(owner(i)).address) for i in range(3)} == {"192.168.255.126/24"}


def test_pods_map_and_fallback_address():
    source = StaticAllocator(network(vlans=[22], address="10.5.0.9/24", gateway="10.5.0.1",
                                  pods={"ns/22-pod-1": "10.5.0.2/24"}, mtu=1400,
                                  default_route=True))
    lease = source.allocate(owner(1))
    assert str(lease.address) == "10.5.0.2/24" and lease.mtu == 1400
    assert str(lease.gateway) == "10.5.0.1"
    assert str(source.allocate(owner(2)).address) == "10.5.0.9/24"


def test_pod_missing_from_the_map_is_a_clear_error():
    source = StaticAllocator(network(vlans=[22], pods={"ns/other": "10.5.0.2/24"}))
    with pytest.raises(AllocationError, match="no static address for pod ns/22-pod-1"):
        source.allocate(owner(1))


def test_pinned_address_takes_the_block_prefix():
    source = StaticAllocator(network(vlans=[22], address="10.5.0.9/24"))
    lease = source.allocate(owner(1), Request(ipaddress.ip_address("10.5.0.77"), pinned=True))
    assert str(lease.address) == "10.5.0.77/24"
    with pytest.raises(AllocationError, match="is not on network net"):
        source.allocate(owner(1), Request(ipaddress.ip_address("10.6.0.77"), pinned=True))


def test_nothing_is_stored():
    source = StaticAllocator(network(vlans=[22], address="10.5.0.9/24"))
    source.allocate(owner(1))
    assert source.release(owner(1)) is False
    assert source.leases() == [] and source.damaged() == []


def test_a_pod_may_ask_only_for_an_address_the_config_gives():
    source = StaticAllocator(network(vlans=[22], pods={"ns/other": "10.5.0.2/24"},
                                     address="10.5.0.9/24"))
    assert str(source.allocate(owner(1), Request(ipaddress.ip_address("10.5.0.9"))).address) \
        == "10.5.0.9/24"
    with pytest.raises(AddressRefused, match="requested address 10.5.0.77 is not one network"):
        source.allocate(owner(1), Request(ipaddress.ip_address("10.5.0.77")))
