"""The candidate addresses of a network and the order they are tried in.

Pure logic, no I/O: the stores (disk, etcd) probe these candidates one by one
with an exclusive create, starting just after the last address they reserved.
Starting there is what makes an allocation cost O(1) in the number of
addresses in use (the next candidate is almost always free) and what rotates
through the range instead of handing a just-freed address to the next pod.
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from plugin.ipam.model import IPAddress, IPInterface, IPNetwork
    from plugin.ipam.networks import NetworkConfig

Span = tuple[int, int]


@dataclass(frozen=True)
class Pool:
    """Integers first..last of a subnet, minus holes (gateway, exclusions)."""

    subnet: IPNetwork
    first: int
    last: int
    gateway: int | None = None
    excluded: tuple[Span, ...] = ()

    @classmethod
    def of(cls, network: "NetworkConfig") -> "Pool":
        if network.subnet is None or network.range_start is None or network.range_end is None:
            raise ValueError(f"network {network.name} has no subnet and range to allocate from")
        return cls(
            subnet=network.subnet,
            first=int(network.range_start),
            last=int(network.range_end),
            gateway=int(network.gateway) if network.gateway is not None else None,
            excluded=tuple((int(b.network_address), int(b.broadcast_address))
                           for b in network.exclude),
        )

    @property
    def holes(self) -> tuple[Span, ...]:
        """Gateway and exclusions clipped to the range, sorted and merged."""
        spans = list(self.excluded)
        if self.gateway is not None:
            spans.append((self.gateway, self.gateway))
        clipped = sorted((max(lo, self.first), min(hi, self.last))
                         for lo, hi in spans if hi >= self.first and lo <= self.last)
        merged: list[Span] = []
        for lo, hi in clipped:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        return tuple(merged)

    @property
    def size(self) -> int:
        """How many addresses can be handed out."""
        return self.last - self.first + 1 - sum(hi - lo + 1 for lo, hi in self.holes)

    def address(self, number: int) -> IPAddress:
        return type(self.subnet.network_address)(number)

    def interface(self, address: IPAddress) -> IPInterface:
        """The address with the subnet's prefix length, as the pod gets it."""
        return ipaddress.ip_interface(f"{address}/{self.subnet.prefixlen}")

    def count_addresses(self, names: list[str]) -> int:
        """How many of `names` (file names, key suffixes) are addresses of the subnet."""
        count = 0
        for name in names:
            try:
                count += ipaddress.ip_address(name) in self.subnet
            except ValueError:
                continue
        return count

    def refusal(self, address: IPAddress, in_range: bool = False) -> str | None:
        """Why `address` cannot be handed out by name, or None if it can: a usable host
        of the subnet, and (`in_range`) within the range."""
        if address.version != self.subnet.version or address not in self.subnet:
            return f"is outside subnet {self.subnet}"
        number = int(address)
        if in_range and not self.first <= number <= self.last:
            return f"is outside the range {self.address(self.first)}-{self.address(self.last)}"
        if number == self.gateway:
            return "is the gateway"
        if any(lo <= number <= hi for lo, hi in self.excluded):
            return "is excluded"
        if self.subnet.num_addresses > 2 and number == int(self.subnet.network_address):
            return "is the network address"
        if (self.subnet.version == 4 and self.subnet.num_addresses > 2
                and number == int(self.subnet.broadcast_address)):
            return "is the broadcast address"
        return None

    def rotation(self, last_reserved: IPAddress | None) -> Iterator[IPAddress]:
        """Every candidate once, starting just after `last_reserved`, wrapping around."""
        start = self.first
        if last_reserved is not None and self.first <= int(last_reserved) < self.last:
            start = int(last_reserved) + 1
        holes = self.holes
        for number in self._walk(start, self.last, holes):
            yield self.address(number)
        for number in self._walk(self.first, start - 1, holes):
            yield self.address(number)

    @staticmethod
    def _walk(low: int, high: int, holes: tuple[Span, ...]) -> Iterator[int]:
        """low..high skipping holes; jumps over a hole in O(log holes), whatever its size."""
        index = bisect.bisect_left([end for _, end in holes], low)
        number = low
        while number <= high:
            if index < len(holes) and holes[index][0] <= number:
                number = holes[index][1] + 1
                index += 1
                continue
            stop = high if index >= len(holes) else min(high, holes[index][0] - 1)
            yield from range(number, stop + 1)
            number = stop + 1
