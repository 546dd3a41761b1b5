"""The node config's `cni` section: what a network config written by a namespace user
(through Multus) may choose, held by `plugin.config.tenant` against each network config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plugin import names
from plugin.config.networks import MTU_MAX, MTU_MIN
from plugin.config.reader import Section
from plugin.config.security import pair_cidrs
from plugin.errors import Failure
from plugin.ipam.addresses import parse_vlans


@dataclass(frozen=True)
class CniPolicy:
    """What a CNI network config (written by a namespace user, through Multus) may choose."""

    bridges: frozenset[str] = frozenset({"k8s_br"})  # bridges it may name
    vlans: frozenset[int] | None = None  # VLANs it (or a pod) may ask for; None: all
    ipam_types: tuple[str, ...] = ("host-local", "static")  # IPAM plugins it may delegate to
    ipam_data_dir: str = ""  # where a delegate keeps its state ("": the delegate's default)
    mtus: tuple[int, int] = (1280, 9000)  # the MTUs it may ask for, both included
    universal_macs: bool = False  # a pod may ask for a MAC whose U/L bit is clear
    port_security_choice: bool = False  # whether it may set `port_security`
    address_pair_cidrs: tuple[Any, ...] = ()  # where its allowed_address_pairs may lie

    def allows_mac(self, mac: str) -> bool:
        """A requested MAC must be locally administered (bit 1 of its first byte set), so
        a pod cannot take a vendor's address, a NIC's or a router's, unless the node says
        so."""
        return self.universal_macs or bool(int(mac[:2], 16) & 2)

    def allows_vlan(self, vlan: int) -> bool:
        return self.vlans is None or vlan in self.vlans

    def allows_mtu(self, mtu: int) -> bool:
        return self.mtus[0] <= mtu <= self.mtus[1]


def parse(section: Section, bridge: str) -> CniPolicy:
    """The node config's `cni` section (defaults: the node's bridge, every VLAN)."""
    bridges = section.typed("bridges", list, [bridge])
    for i, name in enumerate(bridges):
        try:
            names.ifname(name if isinstance(name, str) else "")
        except Failure:
            raise section.error(f"{section.key('bridges')}[{i}]", name, "is not a bridge name") \
                from None
    vlans = section.convert("vlans", parse_vlans,
                            'a list of VLAN ids (1-4094) or "A-B" ranges, or "all"', "all")
    types = section.typed("ipam", list, list(CniPolicy.ipam_types))
    for i, kind in enumerate(types):
        if not isinstance(kind, str) or not names.plaintext(kind):
            raise section.error(f"{section.key('ipam')}[{i}]", kind, "is not a plugin name")
    data_dir = section.string("ipam_data_dir", "") and section.absolute_path("ipam_data_dir")
    mtu = section.section("mtu")
    mtus = (mtu.integer("min", CniPolicy.mtus[0], MTU_MIN, MTU_MAX),
            mtu.integer("max", CniPolicy.mtus[1], MTU_MIN, MTU_MAX))
    mtu.done()
    if mtus[0] > mtus[1]:
        raise section.error(section.key("mtu"), mtu.data, "must have min no greater than max")
    universal = section.boolean("universal_macs", CniPolicy.universal_macs)
    choice = section.boolean("port_security_choice", False)
    cidrs = pair_cidrs(section)
    section.done()
    return CniPolicy(frozenset(bridges), None if vlans in (None, "all") else vlans,
                     tuple(types), data_dir, mtus, universal, choice, cidrs)
