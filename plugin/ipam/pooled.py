"""The one allocation algorithm for networks with a pool: rotation, probing, exhaustion, pins.

It runs over a `Store` (disk or etcd) and never looks inside one. A claim
starts just after the store's rotation point, which makes an allocation cost
O(1) in the addresses in use (the next candidate is almost always free) and
rotates through the range instead of handing a just-freed address to the next
pod. After PROBES taken candidates the store lists its addresses once, and
probing skips them. Where writers race (etcd, several nodes), candidates
after a miss are tried in shuffled windows, so racers spread out instead of
colliding on every address.
"""

from __future__ import annotations

import itertools
import logging
import random
from typing import Iterator

from plugin.errors import AddressRefused, AllocationError
from plugin.identity import Identity
from plugin.ipam.leaserecord import Record, new_record
from plugin.ipam.networks import NetworkConfig
from plugin.ipam.pool import Pool
from plugin.ipam.stores import Held, Store

TYPE_CHECKING = False  # the records' module is not loaded on teardown (issue 23)
if TYPE_CHECKING:
    from plugin.ipam.model import Conflicted, Damaged, IPAddress, Lease, Request

log = logging.getLogger(__name__)

PROBES = 8  # candidates found taken before the store lists its addresses once
RETRIES = 8  # claims lost to a concurrent change of the same owner


class PoolAllocator:
    def __init__(self, network: NetworkConfig, store: Store) -> None:
        self.network = network
        self.pool = Pool.of(network)
        self.store = store

    def allocate(self, owner: Identity, requested: Request | None = None) -> Lease:
        """The owner's lease, claimed if it has none; `requested` exactly or not at all."""
        if requested is not None and (why := self.pool.refusal(
                requested.address, in_range=not requested.pinned)) is not None:
            raise AddressRefused(f"{requested.what} cannot be used on network "
                                 f"{self.network.name}: it {why}", _change(requested))
        with self.store.exclusive():
            for _ in range(RETRIES):
                held = self.store.held(owner)
                if held.record is not None and (requested is None
                                                or requested.address == held.record.address.ip):
                    return self.network.lease(held.record.address)
                record = (self._claim_next(owner, held) if requested is None
                          else self._claim_requested(owner, requested, held))
                if record is not None:
                    return self.network.lease(record.address)
        raise AllocationError(f"network {self.network.name}: the lease of {owner.key} kept "
                              "changing under concurrent setups", "retry the setup")

    def release(self, owner: Identity) -> bool:
        return self.store.release(owner)

    def leases(self) -> list[tuple[Identity, Lease]]:
        records, damaged = self.store.scan()
        for item in damaged:
            log.warning("%s: %s; left alone, its address is not reused", item.where, item.reason)
        return [(r.owner, self.network.lease(r.address)) for r in records if not r.conflict]

    def damaged(self) -> list[Damaged]:
        return self.store.scan()[1]

    def mark_conflicted(self, owner: Identity, address: IPAddress, mac: str) -> bool:
        return self.store.conflict(owner, address, mac)

    def conflicted(self) -> list[Conflicted]:
        from plugin.ipam.model import Conflicted

        return [Conflicted(r.network, str(r.address), r.conflict, r.owner, r.created)
                for r in self.store.scan()[0] if r.conflict]

    def clear(self, address: IPAddress) -> Record | None:
        """Free a conflicted address (`Store.clear`): the record found, if any."""
        return self.store.clear(address)

    def _claim_next(self, owner: Identity, held: Held) -> Record | None:
        """The first free candidate from the rotation point; None if the owner raced.

        A lost claim of a store that looks ahead (etcd) says which of the next candidates
        were free: those are tried next, in random order (racers spread out), and only
        when none is left does a claim look further. After PROBES lost claims the store
        lists its addresses once, and the walk skips them (a pool near exhaustion).
        """
        taken: frozenset[str] = frozenset()
        misses = 0
        order = _spread(self.pool.rotation(held.last), self.store.spread)
        known_free: list[IPAddress] = []
        for candidate in itertools.chain(itertools.islice(order, 1),
                                         _refilled(known_free, order)):
            if str(candidate) in taken:
                continue
            probe = [] if known_free else _peek(order, self.store.lookahead, taken)
            record = new_record(self.network.name, self.pool.interface(candidate), owner)
            claimed = self.store.claim(record, held, rotate=True, probe=probe)
            if claimed.outcome == "won":
                return record
            if claimed.outcome == "raced":
                return None
            if claimed.free is not None:
                free = [address for address in probe if address in claimed.free]
                random.shuffle(free)
                known_free.extend(free)
            misses += 1
            if misses == PROBES:
                taken = frozenset(self.store.taken())
        in_use = self.pool.count_addresses(self.store.taken())
        raise AllocationError(
            f"network {self.network.name} exhausted: {in_use} addresses in use",
            f"its pool holds {self.pool.size}; free the leases of dead pods (gc on every node) "
            "or widen the network's range")

    def _claim_requested(self, owner: Identity, requested: Request, held: Held) -> Record | None:
        record = new_record(self.network.name, self.pool.interface(requested.address), owner)
        outcome = self.store.claim(record, held, rotate=False).outcome
        if outcome == "taken":
            holder = self.store.read(requested.address)
            who = (f"pod {holder.owner.namespace}/{holder.owner.pod} on node {holder.owner.node}"
                   if holder else "a record that cannot be read")
            raise AllocationError(f"{requested.what} of network {self.network.name} is held "
                                  f"by {who}", f"release it first, or {_change(requested)}")
        return record if outcome == "won" else None


def _change(requested: Request) -> str:
    return "change the pin" if requested.pinned else "ask for another address, or none"


def _refilled(known_free: list[IPAddress], order: Iterator[IPAddress]) -> Iterator[IPAddress]:
    """The candidates a lost claim found free first, then the walk's next one."""
    while True:
        if known_free:
            yield known_free.pop(0)
            continue
        following = next(order, None)
        if following is None:
            return
        yield following


def _peek(order: Iterator[IPAddress], count: int, taken: frozenset[str]) -> list[IPAddress]:
    """The next `count` candidates of the walk not known taken, consumed from it: a lost
    claim looks at them, and those found free are tried next; the others are not again."""
    return [address for address in itertools.islice(order, count) if str(address) not in taken]


def _spread(candidates: Iterator[IPAddress], width: int) -> Iterator[IPAddress]:
    """The first candidate, then the rest in windows of `width`, each shuffled."""
    yield from itertools.islice(candidates, 1)
    while window := list(itertools.islice(candidates, width)):
        random.shuffle(window)
        yield from window
