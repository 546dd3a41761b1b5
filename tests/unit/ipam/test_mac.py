"""MAC addresses derived from IP addresses."""

from __future__ import annotations

import ipaddress

import pytest

from plugin.ipam.mac import mac_for


@pytest.mark.parametrize(("address", "mac"), [
    ("10.22.0.5", "0a:58:0a:16:00:05"),
    ("192.168.255.126/24", "0a:58:c0:a8:ff:7e"),
    (ipaddress.ip_address("10.0.0.1"), "0a:58:0a:00:00:01"),
    (ipaddress.ip_interface("10.0.0.1/8"), "0a:58:0a:00:00:01"),
    ("10.22.0.5/24", "0a:58:0a:16:00:05"),
])
def test_mac_is_prefix_plus_the_ipv4_bytes(address, mac):
    assert mac_for(address) == mac
    assert mac_for(address, "fd00:22::99/64") == mac_for("fd00:22::99/64", address) == mac


def test_ipv6_only_pods_of_two_networks_on_one_vlan_get_distinct_macs():
    """Issue 19 item 9: fd00:22::1 and fd00:40::1 end in the same 32 bits; their MACs were
    one. Now an IPv6-only pod's MAC hashes its whole address, never in the IPv4 prefix."""
    one, other = mac_for("fd00:22::1/64"), mac_for("fd00:40::1/64")
    assert one != other
    assert not one.startswith("0a:") and not other.startswith("0a:")


def test_a_pod_keeps_its_mac_wherever_its_addresses_are_given():
    """A pod moved to another node with its address gets the same MAC there."""
    assert mac_for("fd00:22::1/64") == mac_for("fd00:22::1") == mac_for(
        ipaddress.ip_address("fd00:22::1"))


def test_ipv6_only_macs_of_a_large_range_do_not_repeat():
    net = ipaddress.ip_network("fd00:22::/116")
    macs = {mac_for(a) for a in net.hosts()}
    assert len(macs) == net.num_addresses - 1


@pytest.mark.parametrize("address", ["10.0.0.1", "fd00::1", "fd00::2", "fd00:1::7"])
def test_prefix_is_locally_administered_unicast(address):
    first = int(mac_for(address).split(":")[0], 16)
    assert first & 0b10 and not first & 0b01


def test_distinct_addresses_of_a_large_vlan_get_distinct_macs():
    net = ipaddress.ip_network("10.0.0.0/16")
    macs = {mac_for(a) for a in net.hosts()}
    assert len(macs) == net.num_addresses - 2
