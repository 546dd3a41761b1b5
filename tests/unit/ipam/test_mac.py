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
    ("fd00::c0a8:ff7e", "0a:58:c0:a8:ff:7e"),
    ("fd00:1::1/64", "0a:58:00:00:00:01"),
])
def test_mac_is_prefix_plus_last_four_bytes(address, mac):
    assert mac_for(address) == mac


def test_prefix_is_locally_administered_unicast():
    first = int(mac_for("10.0.0.1").split(":")[0], 16)
    assert first & 0b10 and not first & 0b01


def test_distinct_addresses_of_a_large_vlan_get_distinct_macs():
    net = ipaddress.ip_network("10.0.0.0/16")
    macs = {mac_for(a) for a in net.hosts()}
    assert len(macs) == net.num_addresses - 2
