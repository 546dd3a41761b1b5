"""The `uplink` section of the node config: the host interface that carries the bridges'
VLANs to the physical network. Loaded only when a config has the section (issue 23);
`plugin.ops.uplink` puts it on the bridge.
"""

from __future__ import annotations

from dataclasses import dataclass

from plugin import names
from plugin.config.reader import Section
from plugin.ipam.addresses import parse_vlans


@dataclass(frozen=True)
class Uplink:
    """The host interface that carries the bridge's VLANs to the physical network (a trunk)."""

    interface: str
    bridge: str
    vlans: frozenset[int] | None = None  # None: every VLAN


def parse_uplink(section: Section, bridge: str) -> Uplink:
    """A section with data (`plugin.config.schema` answers None for an empty one)."""
    interface = section.convert("interface", names.ifname, "an interface name")
    on = section.convert("bridge", names.ifname, "a bridge name", bridge)
    vlans = section.convert("vlans", parse_vlans,
                            'a list of VLAN ids (1-4094) or "A-B" ranges, or "all"', "all")
    section.done()
    return Uplink(interface, on, None if vlans in (None, "all") else vlans)
