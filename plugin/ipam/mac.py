"""MAC addresses derived from IP addresses, so a pod that moves keeps its MAC.

A pod with an IPv4 address gets a fixed locally administered prefix (0a:58, as
ovs-cni and Kubernetes use) and its four IPv4 bytes: two pods of one VLAN can only
share such a MAC if they share an IPv4 address, which no segment can carry anyway,
and a MAC seen on the wire names its pod's address. An IPv6 address does not fit
in a MAC, and its last bytes repeat across networks (fd00:22::1 and fd00:40::1 may
be on one VLAN, reached from two networks or two nodes' configs), so an IPv6-only
pod's MAC is 44 bits of a hash of its addresses, with a first byte (x e) that an
IPv4-derived MAC (0a) never has. Both depend on the addresses alone: a pod moved to
another node with its address keeps its MAC, and switches need not relearn it.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Union

PREFIX = (0x0A, 0x58)


# A runtime alias, so `typing.Union`: a `|` of classes needs Python 3.10.
Address = Union[str, ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Interface,
                ipaddress.IPv6Interface]


def mac_for(*addresses: Address) -> str:
    """`0a:58:` and the pod's IPv4 bytes; for an IPv6-only pod, `?e:` and 40 more bits,
    all from a SHA-256 of its addresses (in any order)."""
    found = [_ip(a) for a in addresses]
    ipv4 = next((a for a in found if a.version == 4), None)
    if ipv4 is not None:
        return _text((*PREFIX, *ipv4.packed))
    digest = hashlib.sha256(",".join(sorted(str(a) for a in found)).encode()).digest()
    # Locally administered (bit 1 set), unicast (bit 0 clear), and never 0x0a.
    return _text(((digest[0] & 0xF0) | 0x0E, *digest[1:6]))


def _text(octets: tuple[int, ...]) -> str:
    return ":".join(f"{byte:02x}" for byte in octets)


def _ip(address: Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, str):
        address = ipaddress.ip_interface(address)
    if isinstance(address, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return address.ip
    return address
