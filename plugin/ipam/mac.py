"""MAC addresses derived from IP addresses.

A fixed locally administered prefix (0a:58, as ovs-cni and Kubernetes use) plus
four bytes of the address: two pods of one VLAN can only share a MAC if they
share an address, which the allocators prevent. It also makes a MAC seen on the
wire traceable to its pod without a lookup.
"""

from __future__ import annotations

import ipaddress
from typing import Union

PREFIX = (0x0A, 0x58)


# A runtime alias, so `typing.Union`: a `|` of classes needs Python 3.10.
Address = Union[str, ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Interface,
                ipaddress.IPv6Interface]


def mac_for(*addresses: Address) -> str:
    """`0a:58:` and the pod's IPv4 bytes; for an IPv6-only pod, its address's last four
    bytes (unique on a VLAN: an IPv6 network's range lies within one /96)."""
    found = [_ip(a) for a in addresses]
    address = next((a for a in found if a.version == 4), found[0])
    return ":".join(f"{byte:02x}" for byte in (*PREFIX, *address.packed[-4:]))


def _ip(address: Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, str):
        address = ipaddress.ip_interface(address)
    if isinstance(address, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return address.ip
    return address
