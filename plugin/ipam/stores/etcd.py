"""The cluster-wide allocator in etcd, and the operator's pins.

Keys, under the configured prefix P:

    P/ipam/<network>/addr/<address>              lease record (JSON, records.py)
    P/ipam/<network>/owner/<infra_id>/<iface>    the address it holds, as "10.0.0.5/24"
    P/ipam/<network>/last_reserved               rotation point, shared by every node
    P/pins/<namespace>/<pod>                     {"vlan": 22, "address": "10.22.0.50/24"}

A claim is one transaction: the address key and the owner key must both be
absent (create_revision 0), then both are put, so they share one mod_revision;
release deletes both only while both still carry it. Two nodes racing for one
address: one transaction wins, the other moves to the next candidate. Two
calls for one owner: the loser finds the owner key and returns its record.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import random
from dataclasses import dataclass
from typing import Iterator, Literal

from plugin.errors import AllocationError
from plugin import names
from plugin.ipam.model import Damaged, IPAddress, Lease, Owner, Pin
from plugin.ipam.stores.etcd_client import (EtcdConnection, absent, branch_entries, delete_op, put_op,
                                  range_op, unchanged)
from plugin.ipam.networks import NetworkConfig
from plugin.ipam.pool import Pool
from plugin.ipam.leaserecord import Record, decode, encode, new_record

log = logging.getLogger(__name__)

PROBES = 4  # candidates found taken before listing the taken addresses once
SPREAD = 8  # after a miss, racing nodes pick at random among this many candidates
RETRIES = 8  # transactions lost to a concurrent change of the same owner


@dataclass(frozen=True)
class _Held:
    """The owner key as found: its revision (0 if absent) and the valid record it names."""

    revision: int
    record: Record | None


class EtcdSource:
    def __init__(self, network: NetworkConfig, etcd: EtcdConnection, prefix: str) -> None:
        self.network = network
        self.pool = Pool.of(network)
        self.etcd = etcd
        self.base = f"{prefix}/ipam/{network.name}/"

    def _address_key(self, address: IPAddress) -> str:
        return f"{self.base}addr/{address}"

    def _owner_key(self, owner: Owner) -> str:
        return f"{self.base}owner/{owner.key}"

    def allocate(self, owner: Owner, requested: IPAddress | None = None) -> Lease:
        if requested is not None and (why := self.pool.refusal(requested)) is not None:
            raise AllocationError(f"pinned address {requested} cannot be used on network "
                                  f"{self.network.name}: it {why}", "change the pin")
        for _ in range(RETRIES):
            held, last = self._held(owner)
            if held.record is not None and requested in (None, held.record.address.ip):
                return self.network.lease(held.record.address)
            record = self._claim_requested(owner, requested, held) if requested is not None \
                else self._claim_next(owner, held, last)
            if record is not None:
                return self.network.lease(record.address)
        raise AllocationError(f"network {self.network.name}: the lease of {owner.key} kept "
                              "changing under concurrent setups", "retry the setup")

    def _held(self, owner: Owner) -> tuple[_Held, IPAddress | None]:
        """The owner's key and the rotation point, read in one round trip."""
        _, responses = self.etcd.txn([], [range_op(self._owner_key(owner)),
                                          range_op(self.base + "last_reserved")])
        found, last = branch_entries(responses, 0), branch_entries(responses, 1)
        if not found:
            return _Held(0, None), _parse_address(last[0].value if last else None)
        address = _parse_address(found[0].value)
        record = self._read(address) if address is not None else None
        if record is not None and record.owner.key != owner.key:
            record = None
        return _Held(found[0].mod_revision, record), _parse_address(last[0].value if last else None)

    def _read(self, address: IPAddress) -> Record | None:
        entry = self.etcd.get(self._address_key(address))
        if entry is None:
            return None
        try:
            return decode(entry.value, self.network.name, address)
        except ValueError as exc:
            log.warning("etcd key %s: %s; its address stays out of use", entry.key, exc)
            return None

    def _claim_next(self, owner: Owner, held: _Held, last: IPAddress | None) -> Record | None:
        """Probe from the rotation point; after PROBES misses, list the taken keys once.

        Uncontended, the first candidate is free: one transaction. After a miss
        the candidates are tried in shuffled windows, so nodes racing from the
        same rotation point spread out instead of colliding on every address.
        """
        taken: set[str] = set()
        misses = 0
        for candidate in _spread(self.pool.rotation(last)):
            if self._address_key(candidate) in taken:
                continue
            outcome = self._claim(owner, candidate, held, rotate=True)
            if outcome != "taken":
                return outcome if isinstance(outcome, Record) else None
            misses += 1
            if misses == PROBES:
                taken = {entry.key for entry in self.etcd.scan(self.base + "addr/", keys_only=True)}
        prefix = self.base + "addr/"
        in_use = self.pool.count_addresses(
            [entry.key[len(prefix):] for entry in self.etcd.scan(prefix, keys_only=True)])
        raise AllocationError(
            f"network {self.network.name} exhausted: {in_use} addresses in use",
            f"its pool holds {self.pool.size}; free the leases of dead pods (gc on every node) "
            "or widen the network's range")

    def _claim_requested(self, owner: Owner, requested: IPAddress, held: _Held) -> Record | None:
        outcome = self._claim(owner, requested, held, rotate=False)
        if outcome == "taken":
            holder = self._read(requested)
            who = (f"pod {holder.owner.namespace}/{holder.owner.pod} on node {holder.owner.node}"
                   if holder else "a record that cannot be read")
            raise AllocationError(f"pinned address {requested} of network {self.network.name} "
                                  f"is held by {who}", "release it first or change the pin")
        return outcome if isinstance(outcome, Record) else None

    def _claim(self, owner: Owner, address: IPAddress, held: _Held,
               rotate: bool) -> Record | Literal["taken", "raced"]:
        """One transaction: a Record, "taken" (address in use) or "raced" (owner changed)."""
        record = new_record(self.network.name, self.pool.interface(address), owner)
        owner_key = self._owner_key(owner)
        owner_check = unchanged(owner_key, held.revision) if held.revision else absent(owner_key)
        puts = [put_op(self._address_key(address), encode(record)),
                put_op(owner_key, str(record.address).encode())]
        if rotate:
            puts.append(put_op(self.base + "last_reserved", str(address).encode()))
        if held.record is not None:  # a pin moved this owner: free its old address too
            puts.append(delete_op(self._address_key(held.record.address.ip)))
        won, responses = self.etcd.txn([absent(self._address_key(address)), owner_check], puts,
                                       [range_op(owner_key)])
        if won:
            return record
        now = branch_entries(responses, 0)
        return "raced" if (now[0].mod_revision if now else 0) != held.revision else "taken"

    def lookup(self, owner: Owner) -> Lease | None:
        held, _ = self._held(owner)
        return self.network.lease(held.record.address) if held.record is not None else None

    def release(self, owner: Owner) -> bool:
        """Delete owner and address keys while both still carry the claim's revision."""
        owner_key = self._owner_key(owner)
        for _ in range(RETRIES):
            entry = self.etcd.get(owner_key)
            if entry is None:
                return False
            address = _parse_address(entry.value)
            checks = [unchanged(owner_key, entry.mod_revision)]
            if address is not None:
                address_key = self._address_key(address)
                won, _ = self.etcd.txn(checks + [unchanged(address_key, entry.mod_revision)],
                                       [delete_op(owner_key), delete_op(address_key)])
                if won:
                    return True
            won, _ = self.etcd.txn(checks, [delete_op(owner_key)])
            if won:  # the address key was not ours to delete: leave it, say so
                log.warning("etcd key %s named %s, whose record is not from the same claim; "
                            "kept the address record", owner_key, address)
                return False
        return False

    def leases(self) -> list[tuple[Owner, Lease]]:
        found, damaged = self._scan()
        for item in damaged:
            log.warning("%s: %s; left alone, its address is not reused", item.where, item.reason)
        return found

    def damaged(self) -> list[Damaged]:
        return self._scan()[1]

    def _scan(self) -> tuple[list[tuple[Owner, Lease]], list[Damaged]]:
        found: list[tuple[int, Owner, Lease]] = []
        damaged: list[Damaged] = []
        for entry in self.etcd.scan(self.base + "addr/"):
            name = entry.key[len(self.base + "addr/"):]
            try:
                address = ipaddress.ip_address(name)
                if address not in self.network.subnet:  # type: ignore[operator]
                    raise ValueError(f"address outside subnet {self.network.subnet}")
                record = decode(entry.value, self.network.name, address)
            except ValueError as exc:
                damaged.append(Damaged(self.network.name, entry.key, str(exc)))
                continue
            found.append((int(address), record.owner, self.network.lease(record.address)))
        return [(owner, lease) for _, owner, lease in sorted(found, key=lambda f: f[0])], damaged


def _spread(candidates: Iterator[IPAddress]) -> Iterator[IPAddress]:
    """The first candidate, then the rest in windows of SPREAD, each shuffled."""
    yield from itertools.islice(candidates, 1)
    while window := list(itertools.islice(candidates, SPREAD)):
        random.shuffle(window)
        yield from window


def _parse_address(value: bytes | None) -> IPAddress | None:
    """An address stored as "10.0.0.5" or "10.0.0.5/24"; None if absent or unreadable."""
    if not value:
        return None
    try:
        return ipaddress.ip_interface(value.decode().strip()).ip
    except (UnicodeDecodeError, ValueError):
        return None


def read_pin(etcd: EtcdConnection, prefix: str, namespace: str, pod: str) -> Pin | None:
    """The operator's pin for a pod. The network's subnet decides the prefix length."""
    key = f"{prefix}/pins/{namespace}/{pod}"
    entry = etcd.get(key)
    if entry is None:
        return None
    try:
        return _decode_pin(entry.value)
    except ValueError as exc:
        raise AllocationError(f"pin {key} in etcd is unreadable: {exc}",
                              f"fix it, or delete it with 'etcdctl del {key}'") from None


def _decode_pin(value: bytes) -> Pin:
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("not JSON") from None
    if not isinstance(body, dict) or set(body) - {"vlan", "address"}:
        raise ValueError('expected {"vlan": N} with an optional "address" and nothing else')
    vlan = body.get("vlan")
    if not isinstance(vlan, int):
        raise ValueError(f"vlan {vlan!r} is not an integer")
    try:
        vlan = names.vlan(vlan)
    except ValueError as exc:
        raise ValueError(f"vlan {vlan!r} {exc}") from None
    address = body.get("address")
    if address is None:
        return Pin(vlan)
    if not isinstance(address, str):
        raise ValueError(f"address {address!r} is not a string")
    return Pin(vlan, ipaddress.ip_interface(address.strip()))
