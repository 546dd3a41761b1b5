"""The small interface every lease store implements; the allocation algorithm is elsewhere.

`plugin.ipam.pooled.PoolAllocator` chooses addresses (rotation, probing,
exhaustion, pins) and knows nothing of disk or etcd; a store only keeps
records and answers whether a claim won. Two stores: `files` (node-local,
under a flock) and `etcd` (cluster-wide, by transactions); tests add a fake.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence

from plugin.ipam.leaserecord import Record
from plugin.identity import Identity

TYPE_CHECKING = False  # the records' module is not loaded on teardown (issue 23)
if TYPE_CHECKING:
    from plugin.ipam.model import Damaged, IPAddress


Outcome = Literal["won", "taken", "raced"]


@dataclass(frozen=True)
class Held:
    """What a store knows of one owner before a claim.

    `record`: the owner's valid lease record, or None. `revision`: a store's token
    that a claim checks is unchanged (etcd's mod revision; 0 for "absent").
    `last`: the store's rotation point, read in the same round trip.
    `old_key`: where the record was found if in an earlier release's format (etcd's owner
    key without the node): a claim checks that key instead, and replaces it.
    """

    record: Record | None
    revision: int = 0
    last: IPAddress | None = None
    old_key: str = ""


@dataclass(frozen=True)
class Claimed:
    """A claim's outcome and, when it lost, which of the candidates it was asked to look
    at (`probe`) were free in the same read: the next claim aims at one of those instead of
    paying a round trip per taken address (a store that does not look says None)."""

    outcome: Outcome
    free: frozenset[IPAddress] | None = None


class Store(Protocol):
    # After a taken candidate, racing writers choose among this many (1: no race possible).
    spread: int
    # How many candidates a lost claim looks at for free ones (0: it does not look).
    lookahead: int

    def exclusive(self) -> AbstractContextManager[object]:
        """Held across one allocation: a lock where writers need one, else nothing."""

    def held(self, owner: Identity) -> Held: ...

    def claim(self, record: Record, held: Held, rotate: bool,
              probe: Sequence[IPAddress] = ()) -> Claimed:
        """Take `record.address` for its owner, if nobody holds it and the owner is as `held`
        says ("raced" if not). `rotate`: move the rotation point there. A claim frees
        `held.record`'s address, if any (an owner moved by a pin). Lost, it says which of
        `probe` (at most `lookahead`) were free."""

    def read(self, address: IPAddress) -> Record | None:
        """The valid record holding `address`, if any."""

    def taken(self) -> list[str]:
        """The names of the addresses in use: one listing, for probing past them."""

    def release(self, owner: Identity) -> bool:
        """Free the owner's lease; True if one existed. Absent is fine."""

    def scan(self) -> tuple[list[Record], list[Damaged]]:
        """Every record, and those that cannot be read (their addresses stay out of use)."""

    def conflict(self, owner: Identity, address: IPAddress, mac: str) -> bool:
        """Replace the owner's lease of `address` with a conflicted record (`Record.conflict`)
        that no owner holds, in one step; False if the owner does not hold that address."""

    def clear(self, address: IPAddress) -> Record | None:
        """Delete the record of `address` if it is a conflicted one; return the record found
        (a live lease is returned untouched, for the caller to refuse)."""
