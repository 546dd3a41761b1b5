"""MAC addresses derived from IP addresses.

A fixed locally administered prefix (0a:58, as ovs-cni and Kubernetes use) plus
four bytes of the address: two pods of one VLAN can only share a MAC if they
share an address, which the allocators prevent. It also makes a MAC seen on the
wire traceable to its pod without a lookup.
"""

from __future__ import annotations

import ipaddress

PREFIX = (0x0A, 0x58)


def mac_for(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address
            | ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> str:
    """`0a:58:` and the IPv4 bytes; for IPv6 the last four bytes of the address."""
    if isinstance(address, str):
        address = ipaddress.ip_interface(address)
    if isinstance(address, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        address = address.ip
    tail = address.packed[-4:]
    return ":".join(f"{byte:02x}" for byte in (*PREFIX, *tail))
