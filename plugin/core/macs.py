"""One MAC per bridge and VLAN: the rule doctor checks and setup enforces for a MAC a pod asks
for (one definition, so the two never disagree).

A VLAN is one Ethernet segment: two interfaces on it with one MAC steal each
other's frames, whichever network, allocator or pod request gave them the MAC.
Only this node's interfaces can be seen here (its records); across nodes a
derived MAC follows from an address the allocators keep unique
(plugin/ipam/mac.py), and a requested one is the pod's owner's responsibility.
"""

from __future__ import annotations

from typing import Iterable

from plugin.core.records import Attachment
from plugin.ipam.mac import mac_for


def effective(record: Attachment) -> str:
    """The MAC the interface has (or will have): the recorded one, else the one its
    addresses give; "" for an intent that has neither yet."""
    return record.mac or (mac_for(*record.addresses) if record.addresses else "")


def clashes(records: Iterable[Attachment]) -> list[tuple[Attachment, Attachment]]:
    """Each interface whose MAC an earlier one of `records` has on the same bridge and VLAN,
    with that earlier one."""
    seen: dict[tuple[str, int, str], Attachment] = {}
    found = []
    for record in records:
        mac = effective(record)
        if not mac:
            continue
        other = seen.setdefault((record.bridge, record.vlan, mac), record)
        if other is not record:
            found.append((record, other))
    return found


def holders(records: Iterable[Attachment], bridge: str, vlan: int, mac: str,
            mine: tuple[str, str]) -> list[Attachment]:
    """The interfaces other than `mine` (infra id, interface) that have `mac` on this bridge
    and VLAN."""
    return [r for r in records if (r.infra_id, r.interface) != mine
            and (r.bridge, r.vlan) == (bridge, vlan) and effective(r) == mac]


def who(record: Attachment) -> str:
    return f"{record.namespace}/{record.pod} {record.interface} ({record.infra_id[:12]})"
