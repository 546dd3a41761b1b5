"""The static allocator: one fixed address for every pod, or a per-pod map.

The fixed address is the reference plugin's behaviour, kept for exact
compatibility. Nothing is stored: the config is the record, so release has
nothing to free and there are no leases to list or collect.
"""

from __future__ import annotations

import ipaddress

from plugin.errors import AddressRefused, AllocationError
from plugin.identity import Identity
from plugin.ipam.networks import NetworkConfig

TYPE_CHECKING = False  # the records' module is not loaded on teardown (issue 23)
if TYPE_CHECKING:
    from plugin.ipam.model import Conflicted, Damaged, IPAddress, IPInterface, Lease, Request


class StaticAllocator:
    def __init__(self, network: NetworkConfig) -> None:
        self.network = network

    def allocate(self, owner: Identity, requested: Request | None = None) -> Lease:
        if requested is not None:
            return self.network.lease(self._requested(requested))
        address = self.network.pods.get(f"{owner.namespace}/{owner.pod}", self.network.address)
        if address is None:
            raise AllocationError(
                f"network {self.network.name} has no static address for pod "
                f"{owner.namespace}/{owner.pod}",
                f"add '{owner.namespace}/{owner.pod}' to its pods map or give it an address",
            )
        return self.network.lease(address)

    def _requested(self, requested: Request) -> IPInterface:
        """An address asked for, with the prefix of the block of this network it lies in.
        A pod may ask only for an address the config gives; an operator may pin any of
        the block's."""
        given = self.network.static_addresses()
        if not requested.pinned:
            found = next((a for a in given if a.ip == requested.address), None)
            if found is None:
                raise AddressRefused(f"{requested.what} is not one network "
                                     f"{self.network.name} gives",
                                     "ask for one of its static addresses, or for none")
            return found
        blocks = [a.network for a in given]
        if self.network.subnet is not None:
            blocks.insert(0, self.network.subnet)
        for block in blocks:
            if requested.address.version == block.version and requested.address in block:
                return ipaddress.ip_interface(f"{requested.address}/{block.prefixlen}")
        raise AddressRefused(f"{requested.what} is not on network {self.network.name}",
                             "pin an address of that network's subnet, or pin another VLAN")

    def release(self, owner: Identity) -> bool:
        return False

    def leases(self) -> list[tuple[Identity, Lease]]:
        return []

    def damaged(self) -> list[Damaged]:
        return []

    def mark_conflicted(self, owner: Identity, address: IPAddress, mac: str) -> bool:
        return False  # the config is the record: only changing it keeps an address out

    def conflicted(self) -> list[Conflicted]:
        return []
