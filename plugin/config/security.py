"""Port security settings: whether a network's ports are guarded, and the extra addresses
(allowed address pairs) its pods may send from, read and validated once, here.

Who decides what: the node key `port_security` is the default for every network; a
network of the node config may say otherwise and list `allowed_address_pairs` (root
wrote it: any address). A CNI network config, which a tenant may write, may set
`port_security` only where the node's `cni.port_security_choice` allows it, and list
pairs only inside the node's `cni.address_pair_cidrs` (default: none allowed); that
judgement is `plugin.config.tenant`'s. The guard itself is `plugin.core.flows`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from plugin.config.reader import Section

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
PAIR_FORMAT = '{"ip": "10.1.2.3" (or 10.1.2.3/32, an IPv6 address), "mac": optional unicast MAC}'


@dataclass(frozen=True)
class PortSecurity:
    """A network's setting: guarded or not, and its allowed address pairs, each (address,
    the MAC it may come from: "" for the pod's own)."""

    on: bool = True
    pairs: tuple[tuple[str, str], ...] = ()


def parse_pair(item: Any) -> tuple[str, str]:
    """One allowed address pair as (address, MAC or ""); ValueError says what is wrong."""
    if not isinstance(item, dict) or not isinstance(item.get("ip"), str) \
            or set(item) - {"ip", "mac"}:
        raise ValueError(f"must be a mapping {PAIR_FORMAT}")
    try:
        address = ipaddress.ip_interface(item["ip"].strip())
    except ValueError:
        raise ValueError("has an ip that is not an IP address") from None
    if address.network.prefixlen != address.max_prefixlen:
        raise ValueError("has an ip that is a network, not one address (/32 or /128)")
    mac = item.get("mac", "")
    if not isinstance(mac, str) or (mac and not unicast_mac(mac)):
        raise ValueError("has a mac that is not a unicast MAC like 02:00:00:00:00:01")
    return str(address.ip), mac.lower()


def unicast_mac(text: str) -> bool:
    return bool(_MAC.fullmatch(text.lower())) and not int(text[:2], 16) & 1 \
        and text.lower() != "00:00:00:00:00:00"


class BadPair(ValueError):
    """What is wrong with a list of pairs: `where` is "" (the list) or "[i]" (an item)."""

    def __init__(self, where: str, item: Any, why: str) -> None:
        super().__init__(why)
        self.where, self.item = where, item


def parse_pairs(items: Any) -> tuple[tuple[str, str], ...]:
    """A list of pairs, or BadPair naming the item and what is wrong with it."""
    if not isinstance(items, list):
        raise BadPair("", items, f"must be a list of {PAIR_FORMAT}")
    found = []
    for i, item in enumerate(items):
        try:
            found.append(parse_pair(item))
        except ValueError as exc:
            raise BadPair(f"[{i}]", item, str(exc)) from None
    return tuple(dict.fromkeys(found))


def network_setting(section: Section, node_on: bool) -> PortSecurity | None:
    """A node network's own setting (None if it sets neither key: the node's applies)."""
    if not section.has("port_security") and not section.has("allowed_address_pairs"):
        return None
    on = section.boolean("port_security", node_on)
    try:
        pairs = parse_pairs(section.raw("allowed_address_pairs", []))
    except BadPair as exc:
        raise section.error(section.key("allowed_address_pairs") + exc.where, exc.item,
                            str(exc)) from None
    return PortSecurity(on, pairs)


def pair_cidrs(section: Section) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`cni.address_pair_cidrs`: where a network config's pairs may lie (default: nowhere)."""
    items = section.typed("address_pair_cidrs", list, [])
    found = []
    for i, item in enumerate(items):
        try:
            found.append(ipaddress.ip_network(item if isinstance(item, str) else "", strict=True))
        except ValueError:
            raise section.error(f"{section.key('address_pair_cidrs')}[{i}]", item,
                                "is not a CIDR like 10.1.2.0/28") from None
    return tuple(found)


def inside(address: str, cidrs: tuple[Any, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == net.version and ip in net for net in cidrs)
