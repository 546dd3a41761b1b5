"""No duplicate address on the wire: the conflict probe's verdict on a new pod's addresses.

The probe itself (an RFC 5227 ARP probe, an IPv6 DAD solicitation, sent from
the pod's namespace) is `pipework_wrapper.probe`; this step runs it once the
datapath switches the port, before the announcement would overwrite the other
host in its neighbours' caches, and turns an answer into an AddressConflict
naming the MAC. The core keeps the lease marked conflicted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from plugin.errors import AddressConflict

if TYPE_CHECKING:
    from pipework_wrapper.probe import Answer
    from plugin.config.schema import Config
    from plugin.core.records import Attachment

Prober = Callable[[str, str, "list[str]", float], "list[Answer]"]


def probe(netns: str, ifname: str, addresses: list[str], wait: float) -> list["Answer"]:
    """`pipework_wrapper.probe`, imported by the calls that plug (it loads ctypes)."""
    from pipework_wrapper.probe import probe as send

    return send(netns, ifname, addresses, wait)


def unique_on_the_wire(config: "Config", prober: Prober, netns: str,
                       record: "Attachment") -> None:
    """No other host on the VLAN answers for the pod's addresses (`conflict_probe`)."""
    if not config.conflict_probe or not record.addresses:
        return
    by_ip = {a.split("/")[0]: a for a in record.addresses}
    found = tuple((by_ip.get(a.address, a.address), a.mac) for a in prober(
        netns, record.interface, list(by_ip.values()), config.conflict_probe_wait_ms / 1000))
    if found:
        raise AddressConflict("; ".join(
            f"address {address} is already used by MAC {mac} on bridge {record.bridge} "
            f"VLAN {record.vlan}" for address, mac in found),
            "find that host (the MAC names it) and remove the address from it",
            record.interface, record.network, found)
