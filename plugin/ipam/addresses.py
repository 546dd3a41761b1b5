"""Parsers for the address-like values of the config: VLAN sets, IPs, subnets.

Each raises ValueError with a short reason; `Section.convert` turns that into a
ConfigError naming the file, the key and the value.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from plugin import names

TYPE_CHECKING = False  # the records' module is not loaded on teardown (issue 23)
if TYPE_CHECKING:
    from plugin.ipam.model import IPAddress, IPInterface, IPNetwork


ALL_VLANS = "all"


def parse_vlans(value: Any) -> frozenset[int] | None:
    """A list of ids and "A-B" ranges, or "all" (returned as None: the fallback)."""
    if value == ALL_VLANS:
        return None
    if not isinstance(value, list) or not value:
        raise ValueError('expected a non-empty list of VLAN ids or "A-B" ranges, or "all"')
    vlans: set[int] = set()
    for item in value:
        vlans.update(_vlan_item(item))
    return frozenset(vlans)


def _vlan_item(item: Any) -> range:
    """A VLAN id, or a range "A-B" of them (low to high)."""
    ends = item.split("-") if isinstance(item, str) and item.count("-") == 1 else [item, item]
    if isinstance(item, (int, str)) and not isinstance(item, bool):
        try:
            low, high = (names.vlan(end.strip() if isinstance(end, str) else end) for end in ends)
        except ValueError:
            pass
        else:
            if low <= high:
                return range(low, high + 1)
    raise ValueError(f'{item!r} is neither a VLAN id ({names.VLAN_MIN}-{names.VLAN_MAX}) nor '
                     'a range like "20-29" (low to high)')


def parse_address(value: Any) -> IPAddress:
    """A bare address, IPv4 or IPv6."""
    return ipaddress.ip_address(_text(value))


def parse_subnet(value: Any) -> IPNetwork:
    """A subnet with no host bits set: "10.0.0.1/24" is a typo, not a subnet."""
    text = _text(value)
    if "/" not in text:
        raise ValueError("a prefix length is required, as in 10.22.0.0/24")
    return ipaddress.ip_network(text, strict=True)


def parse_block(value: Any) -> IPNetwork:
    """An address or a CIDR block (an exclusion): a bare address is a /32 or /128."""
    return ipaddress.ip_network(_text(value), strict=True)


def parse_interface(value: Any) -> IPInterface:
    """An address with its prefix length, as a pod's interface carries it."""
    text = _text(value)
    if "/" not in text:
        raise ValueError("a prefix length is required, as in 10.22.0.5/24")
    return ipaddress.ip_interface(text)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value.strip()
