"""What a network of the config is, once read: the types the allocators work from.

`plugin.config.networks` reads and checks the `networks` section into these (subnets
that do not overlap, one network per VLAN, gateway and exclusions inside the subnet,
a non-empty pool, the range resolved), so the allocators trust the `NetworkConfig`
they get.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from plugin.policy.bandwidth import Bandwidth

TYPE_CHECKING = False  # the records' module is not loaded on teardown (issue 23)
if TYPE_CHECKING:
    from plugin.ipam.model import IPAddress, IPInterface, IPNetwork, Lease, Route


@dataclass(frozen=True)
class NetworkConfig:
    """One network's addresses of one family: the VLANs it serves and where they come from.

    A dual-stack network (`subnets: [v4, v6]`) is two of these with the same name, claimed
    together; each keeps its leases under its own `store` name (the IPv4 family under the
    network's name, so a network that gains IPv6 keeps its leases).
    `vlans` None means "every VLAN no other network claims" (config "all").
    For dynamic allocators `range_start`/`range_end` are always resolved.
    """

    name: str
    vlans: frozenset[int] | None
    allocator: str
    subnet: IPNetwork | None = None
    range_start: IPAddress | None = None
    range_end: IPAddress | None = None
    gateway: IPAddress | None = None
    default_route: bool = False  # the pod's default traffic of this family via `gateway`
    exclude: tuple[IPNetwork, ...] = ()
    routes: tuple[Route, ...] = ()
    mtu: int | None = None
    address: IPInterface | None = None
    pods: Mapping[str, IPInterface] = field(default_factory=lambda: MappingProxyType({}))
    store: str = ""  # where its leases are kept ("": under the name)
    bandwidth: Bandwidth = Bandwidth()  # its pods' limits unless a pod asks for others

    @property
    def key(self) -> str:
        return self.store or self.name

    def lease(self, address: IPInterface) -> Lease:
        """What a pod holding `address` on this network needs to configure it: the gateway
        only if the operator asked for the pod's default traffic to go through it."""
        from plugin.ipam.model import Lease

        return Lease(network=self.name, address=address,
                     gateway=self.gateway if self.default_route else None,
                     routes=self.routes, mtu=self.mtu)

    def static_addresses(self) -> list[IPInterface]:
        return ([self.address] if self.address else []) + list(self.pods.values())

    @property
    def version(self) -> int:
        """Its addresses' family, 4 or 6 (a dynamic network has a subnet; a static one at
        least one address: both checked when the config is read)."""
        return (self.subnet or self.static_addresses()[0]).version
