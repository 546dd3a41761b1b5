"""The cluster-wide store in etcd.

Keys, under the configured prefix P:

    P/ipam/<network>/addr/<address>                     lease record (JSON, leaserecord.py)
    P/ipam/<network>/owner/<node>/<infra_id>/<iface>    the address it holds, as "10.0.0.5/24"
                                                        (and the index by node: etcd_index.py)
    P/ipam/<network>/last_reserved                      rotation point, shared by every node
    P/ipam/<network>/indexed                            every lease is under the index by node
    P/nodes/<node>                                      {"seen": <unix time>, "indexed": true}:
                                                        the node's last claim or release, in
                                                        the same transaction

A claim is one transaction: the address key and the owner key must both be
as the caller read them (absent, or the owner's at its revision), then both
are put, so they share one mod_revision; release deletes both only while both
still carry it. Two nodes racing for one address: one transaction wins, the
other is told "taken" and moves on. Two calls for one owner: the loser is told
"raced" and reads the owner key again.

The owner key names the node: container ids repeat across nodes (`ctr run --cni`
gives `<namespace>-<name>`), and an owner is one interface of one container on one
node. Releases before this one wrote `owner/<infra_id>/<iface>`; such a key is
still read and released, but only when the record it names is this owner's, node
included (another node's, written by a node not yet upgraded, is left alone). A
claim for that owner replaces it with today's key; nothing else rewrites it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import time
from contextlib import AbstractContextManager
from typing import Iterator, Sequence

from plugin.identity import Identity
from plugin.ipam.leaserecord import Record, decode, encode, listed, new_record
from plugin.ipam.model import Damaged, IPAddress
from plugin.ipam.networks import NetworkConfig
from plugin.ipam.stores import Claimed, Held
from plugin.ipam.stores.etcd_client import (EtcdConnection, Entry, absent, branch_entries,
                                            delete_op, put_op, range_op, unchanged)

log = logging.getLogger(__name__)

RETRIES = 8  # releases lost to a concurrent change of the same owner


class EtcdStore:
    spread = 8  # nodes race for the same candidates: after a miss, pick among 8 at random
    # A lost claim reads this many next candidates in its failure branch: in a pool 90 %
    # full, one of 64 random addresses is free but for 0.1 % of the time (0.9^64), so a
    # claim costs one extra round trip, not one per taken address (issue 23). The branch
    # stays under etcd's default --max-txn-ops of 128.
    lookahead = 64

    def __init__(self, network: NetworkConfig, etcd: EtcdConnection, prefix: str,
                 node: str = "") -> None:
        self.network = network
        self.etcd = etcd
        self.base = f"{prefix}/ipam/{network.key}/"
        self.nodes = f"{prefix}/nodes/"
        self.node_key = self.nodes + node if node else ""

    def _address_key(self, address: IPAddress) -> str:
        return f"{self.base}addr/{address}"

    def _owner_key(self, owner: Identity) -> str:
        return f"{self.base}owner/{owner.node}/{owner.key}"

    def _old_owner_key(self, owner: Identity) -> str:
        """Where releases before the node was in the key kept the owner's address."""
        return f"{self.base}owner/{owner.key}"

    def exclusive(self) -> AbstractContextManager[object]:
        return contextlib.nullcontext()  # every claim is a compare-and-set transaction

    def held(self, owner: Identity) -> Held:
        """The owner's key (today's, else an earlier release's) and the rotation point, read
        in one round trip."""
        old_key = self._old_owner_key(owner)
        _, responses = self.etcd.txn([], [range_op(self._owner_key(owner)),
                                          range_op(self.base + "last_reserved"),
                                          range_op(old_key)])
        found, last = branch_entries(responses, 0), branch_entries(responses, 1)
        rotation = parse_address(last[0].value if last else None)
        if found:
            return Held(self._record(owner, found[0].value), found[0].mod_revision, rotation)
        old = branch_entries(responses, 2)
        record = self._record(owner, old[0].value) if old else None
        if record is None:  # none, or another node's: today's key is the one to create
            return Held(None, 0, rotation)
        return Held(record, old[0].mod_revision, rotation, old_key)

    def _record(self, owner: Identity, value: bytes) -> Record | None:
        """The record an owner key points at, if it is this owner's, node included."""
        address = parse_address(value)
        record = self.read(address) if address is not None else None
        return record if record is not None and same_owner(record.owner, owner) else None

    def claim(self, record: Record, held: Held, rotate: bool,
              probe: Sequence[IPAddress] = ()) -> Claimed:
        address = record.address.ip
        owner_key = self._owner_key(record.owner)
        if held.old_key:  # replace the earlier release's key with today's, atomically
            checks = [unchanged(held.old_key, held.revision), absent(owner_key)]
        else:
            checks = [unchanged(owner_key, held.revision) if held.revision
                      else absent(owner_key)]
        puts = self.lease_ops(record)
        if held.old_key:
            puts.append(delete_op(held.old_key))
        if rotate:
            puts.append(put_op(self.base + "last_reserved", str(address).encode()))
        if held.record is not None:  # a pin moved this owner: free its old address too
            puts.append(delete_op(self._address_key(held.record.address.ip)))
        puts += self.seen_ops()
        looks = [range_op(self._address_key(candidate), keys_only=True) for candidate in probe]
        won, responses = self.etcd.txn([absent(self._address_key(address)), *checks], puts,
                                       [range_op(held.old_key or owner_key), *looks])
        if won:
            return Claimed("won")
        now = branch_entries(responses, 0)
        if (now[0].mod_revision if now else 0) != held.revision:
            return Claimed("raced")
        return Claimed("taken", frozenset(candidate for index, candidate in enumerate(probe, 1)
                                          if not branch_entries(responses, index)))

    def lease_ops(self, record: Record) -> list[dict]:
        """The two puts that make a lease: its address record and its owner key (the
        node's index: `owner/<node>/` lists one node's leases)."""
        return [put_op(self._address_key(record.address.ip), encode(record)),
                put_op(self._owner_key(record.owner), str(record.address).encode())]

    def read(self, address: IPAddress) -> Record | None:
        entry = self.etcd.get(self._address_key(address))
        return self.record_of(entry) if entry is not None else None

    def record_of(self, entry: Entry) -> Record | None:
        """The valid record an address key holds; a bad one is logged and stays out of use."""
        address = parse_address(entry.key.rsplit("/", 1)[-1].encode())
        try:
            if address is None:
                raise ValueError("not an address key")
            return decode(entry.value, self.network.name, address)
        except ValueError as exc:
            log.warning("etcd key %s: %s; its address stays out of use", entry.key, exc)
            return None

    def taken(self) -> list[str]:
        prefix = self.base + "addr/"
        return [entry.key[len(prefix):] for entry in self.etcd.scan(prefix, keys_only=True)]

    def release(self, owner: Identity) -> bool:
        """Delete owner and address keys while both still carry the claim's revision (and,
        for an earlier release's owner key, while its record is this owner's). Today's key
        and the earlier one are read together: init's index pass (etcd_index.py) may move
        the one to the other between two reads."""
        owner_key, old_key = self._owner_key(owner), self._old_owner_key(owner)
        for _ in range(RETRIES):
            _, responses = self.etcd.txn([], [range_op(owner_key), range_op(old_key)])
            found, old = branch_entries(responses, 0), branch_entries(responses, 1)
            if found:
                done = self._release_at(found[0])
            elif old:
                done = self._release_old_at(owner, old[0])
            else:
                return False
            if done is not None:
                return done
        return False

    def _release_at(self, entry: Entry) -> bool | None:
        """Today's owner key and its record, both at the claim's revision; None if the
        owner key changed since it was read (read again)."""
        address = parse_address(entry.value)
        checks = [unchanged(entry.key, entry.mod_revision)]
        if address is not None:
            address_key = self._address_key(address)
            won, _ = self.etcd.txn(checks + [unchanged(address_key, entry.mod_revision)],
                                   [delete_op(entry.key), delete_op(address_key),
                                    *self.seen_ops()])
            if won:
                return True
        won, _ = self.etcd.txn(checks, [delete_op(entry.key)])
        if won:  # the address key was not ours to delete: leave it, say so
            log.warning("etcd key %s named %s, whose record is not from the same claim; "
                        "kept the address record", entry.key, address)
            return False
        return None

    def _release_old_at(self, owner: Identity, entry: Entry) -> bool | None:
        """A lease an earlier release wrote (owner key without the node), if its record is
        this owner's; both keys still as read, or nothing is deleted (None: read again)."""
        record = self._record(owner, entry.value)
        if record is None:
            return False  # another node's lease: not ours to touch
        address_key = self._address_key(record.address.ip)
        won, _ = self.etcd.txn([unchanged(entry.key, entry.mod_revision),
                                unchanged(address_key, entry.mod_revision)],
                               [delete_op(entry.key), delete_op(address_key), *self.seen_ops()])
        return True if won else None

    def conflict(self, owner: Identity, address: IPAddress, mac: str) -> bool:
        """One transaction, while the owner key and the address record are still the claim's
        (one mod revision): the address record becomes the conflicted one, the owner key
        goes. An earlier release's owner key is not converted: none is that recent."""
        entry = self.etcd.get(self._owner_key(owner))
        if entry is None or parse_address(entry.value) != address:
            return False
        held = self.read(address)
        if held is None:
            return False
        address_key = self._address_key(address)
        won, _ = self.etcd.txn(
            [unchanged(entry.key, entry.mod_revision),
             unchanged(address_key, entry.mod_revision)],
            [put_op(address_key, encode(new_record(self.network.name, held.address, owner,
                                                   mac))),
             delete_op(entry.key), *self.seen_ops()])
        return won

    def clear(self, address: IPAddress) -> Record | None:
        entry = self.etcd.get(self._address_key(address))
        if entry is None:
            return None
        record = self.read(address)
        if record is not None and record.conflict:
            won, _ = self.etcd.txn([unchanged(entry.key, entry.mod_revision)],
                                   [delete_op(entry.key)])
            if not won:
                return self.read(address)  # changed meanwhile: say what it is now
        return record

    def seen_ops(self) -> list[dict]:
        """This node's sign of life, put in a transaction the call makes anyway: no extra
        round trip, and nothing that could fail the call on its own. `indexed`: the node
        runs a release that keeps the index by node (etcd_index.py waits for every node)."""
        if not self.node_key:
            return []
        return [put_op(self.node_key, json.dumps({"seen": round(time.time()), "indexed": True})
                       .encode())]

    def records(self) -> Iterator[Record | Damaged]:
        """Every record in key order, read a page at a time; what cannot be read, as such."""
        prefix = self.base + "addr/"
        for entry in self.etcd.pages(prefix):
            yield self._checked(entry.key[len(prefix):], entry)

    def listing(self) -> Iterator[tuple[Identity, str] | Damaged]:
        """Every record in key order as `list --cluster` shows it, its owner and address
        text: those `leaserecord.listed` can tell valid as read, any other as `records`
        would yield it."""
        prefix, subnet = self.base + "addr/", self.network.subnet
        assert subnet is not None  # a pooled network
        for entry in self.etcd.pages(prefix):
            name = entry.key[len(prefix):]
            found = listed(entry.value, self.network.name, subnet, name)
            if found is None:
                item = self._checked(name, entry)
                found = item if isinstance(item, Damaged) else (item.owner, str(item.address))
            yield found

    def _checked(self, name: str, entry: Entry) -> Record | Damaged:
        """The record of address key `name`, or what is wrong with it."""
        try:
            try:
                record = decode(entry.value, self.network.name)
            except ValueError:
                ipaddress.ip_address(name)  # a key that names no address says so first
                raise
            if name != str(record.address.ip):  # the key names it as str() wrote it, or
                address = ipaddress.ip_address(name)  # another spelling of it, or not
                if record.address.ip != address:
                    raise ValueError(f"holds address {record.address.ip}, not {address}")
            if record.address.ip not in self.network.subnet:  # type: ignore[operator]
                raise ValueError(f"address outside subnet {self.network.subnet}")
            return record
        except ValueError as exc:
            return Damaged(self.network.name, entry.key, str(exc))

    def scan(self) -> tuple[list[Record], list[Damaged]]:
        found: list[Record] = []
        damaged: list[Damaged] = []
        for item in self.records():
            if isinstance(item, Damaged):
                damaged.append(item)
            else:
                found.append(item)
        return sorted(found, key=lambda record: int(record.address.ip)), damaged


def same_owner(one: Identity, other: Identity) -> bool:
    """One interface of one container on one node: the identity of a lease's owner."""
    return (one.node, one.key) == (other.node, other.key)


def parse_address(value: bytes | None) -> IPAddress | None:
    """An address stored as "10.0.0.5" or "10.0.0.5/24"; None if absent or unreadable."""
    if not value:
        return None
    try:
        return ipaddress.ip_interface(value.decode().strip()).ip
    except (UnicodeDecodeError, ValueError):
        return None
