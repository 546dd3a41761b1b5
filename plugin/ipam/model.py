"""The records and the one protocol every address source implements.

The core never knows which allocator serves a pod: it asks for a `Lease` for an
owner (the attachment's `Identity`, with its node) and hands it back on teardown.
Allocation is keyed by the owner's infra container id and interface, so a repeated
setup gets the same lease and a repeated release is harmless.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol, Union

from plugin.identity import Identity

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class Pin:
    """An operator's choice, kept in etcd, of a pod's VLAN and maybe its address.

    It lets a pod be moved to another VLAN (the article's "complex scenario")
    without renaming it, and gives a pod a known address.
    """

    vlan: int
    address: IPInterface | None = None


@dataclass(frozen=True)
class Request:
    """An address asked for by name: an operator's pin may be any usable host of the subnet
    (operators keep pins apart from the dynamic range); a pod's request must lie in the
    range, so it cannot take an address kept for a pin."""

    address: IPAddress
    pinned: bool = False

    @property
    def what(self) -> str:
        return f"{'pinned' if self.pinned else 'requested'} address {self.address}"


@dataclass(frozen=True)
class Damaged:
    """A record an allocator cannot read: reported, never reused, never deleted by us."""

    network: str
    where: str
    reason: str


@dataclass(frozen=True)
class Conflicted:
    """An address kept out of use: when `found_by`'s setup probed the VLAN, the host with
    `mac` answered for it (doctor lists it; `vlanpipe lease clear ADDRESS` frees it)."""

    network: str
    address: str
    mac: str
    found_by: Identity
    since: str


@dataclass(frozen=True)
class Route:
    """A route a network gives its pods (no gateway: on-link)."""

    destination: IPNetwork
    gateway: IPAddress | None = None


def default_halves(version: int) -> tuple[str, str]:
    """The two halves of a family's address space: the routes through which a network
    asked to (`default_route: true`, CNI `isDefaultGateway`) takes the pod's default
    traffic. More specific than any default route, they win over the pod's own (Docker's
    eth0) without touching it, leave the other family alone, and vanish with the
    interface, so after teardown the pod routes exactly as before setup."""
    return ("0.0.0.0/1", "128.0.0.0/1") if version == 4 else ("::/1", "8000::/1")


@dataclass(frozen=True)
class Lease:
    """An address handed out, with what the pod needs to use it. `gateway` is set only
    when the pod's default traffic of that family goes through it (see `default_halves`)."""

    network: str
    address: IPInterface
    gateway: IPAddress | None = None
    routes: tuple[Route, ...] = ()
    mtu: int | None = None


class Allocator(Protocol):
    """The addresses of one network (static, or a pool over a disk or etcd store)."""

    def allocate(self, owner: Identity, requested: Request | None = None) -> Lease:
        """Return the owner's lease, creating it if it has none.

        `requested` must be handed out exactly, or refused.
        """

    def release(self, owner: Identity) -> bool:
        """Free the owner's lease; True if one existed. Never fails on absence."""

    def leases(self) -> list[tuple[Identity, Lease]]:
        """Every lease held, for gc and list (conflicted ones aside)."""

    def damaged(self) -> list[Damaged]:
        """Records found corrupt or foreign: their addresses stay out of use."""

    def mark_conflicted(self, owner: Identity, address: IPAddress, mac: str) -> bool:
        """Turn the owner's lease of `address` into a conflicted one that holds it for
        nobody (another host, `mac`, uses it); False where nothing can be kept."""

    def conflicted(self) -> list[Conflicted]:
        """The addresses kept out of use because another host answered for them."""


class Addresses(Protocol):
    """What the core asks for addresses: vlanpipe's allocators, or a delegated IPAM plugin."""

    # Recorded with each attachment, so that its release goes where its claim went:
    # "vlanpipe" or "delegated", and for a delegated plugin the ipam config it was given (JSON).
    allocator: str
    ipam: str

    def network_name(self, vlan: int) -> str:
        """The network a lease on `vlan` would come from (recorded before the claim)."""

    def allocate(self, owner: Identity, vlan: int,
                 requested: tuple[Request, ...] = ()) -> list[Lease]:
        """The owner's leases, one per family of the network; `requested` reserved exactly
        or refused."""

    def release(self, owner: Identity, network: str) -> bool:
        """Free the owner's lease on `network`."""

    def release_anywhere(self, owner: Identity) -> list[str]:
        """Free the owner's lease wherever it is, best effort; what failed."""

    def mark_conflicted(self, owner: Identity, network: str, address: str, mac: str) -> bool:
        """Keep the owner's lease of `address` ("a/len") on `network` out of use for good
        (another host, `mac`, answered for it); False where the source cannot."""
