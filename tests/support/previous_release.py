"""A node on the previous release, for tests of a cluster being upgraded node by node.

`PreviousEtcdStore` is plugin/ipam/stores/etcd.py as of da8d1fa, the last release whose
owner keys did not name the node (`owner/<infra_id>/<iface>`), kept verbatim below this
docstring except for the class name: it writes and releases leases exactly as that release
did, against a real etcd, beside today's store. Today's allocator asks a store for one
more thing, which that release's allocator did not (a lost claim's look at the next
candidates): `PreviousEtcdStore` at the end answers it for the verbatim class, never
looking.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import time
from contextlib import AbstractContextManager
from typing import Sequence

from plugin.ipam.leaserecord import Record, decode, encode
from plugin.identity import Identity
from plugin.ipam.model import Damaged, IPAddress
from plugin.ipam.networks import NetworkConfig
from plugin.ipam.stores import Claimed, Held, Outcome
from plugin.ipam.stores.etcd_client import (EtcdConnection, absent, branch_entries, delete_op,
                                            put_op, range_op, unchanged)

log = logging.getLogger(__name__)

RETRIES = 8  # releases lost to a concurrent change of the same owner


class _PreviousEtcdStore:
    spread = 8  # nodes race for the same candidates: after a miss, pick among 8 at random

    def __init__(self, network: NetworkConfig, etcd: EtcdConnection, prefix: str,
                 node: str = "") -> None:
        self.network = network
        self.etcd = etcd
        self.base = f"{prefix}/ipam/{network.key}/"
        self.node_key = f"{prefix}/nodes/{node}" if node else ""

    def _address_key(self, address: IPAddress) -> str:
        return f"{self.base}addr/{address}"

    def _owner_key(self, owner: Identity) -> str:
        return f"{self.base}owner/{owner.key}"

    def exclusive(self) -> AbstractContextManager[object]:
        return contextlib.nullcontext()  # every claim is a compare-and-set transaction

    def held(self, owner: Identity) -> Held:
        """The owner's key and the rotation point, read in one round trip."""
        _, responses = self.etcd.txn([], [range_op(self._owner_key(owner)),
                                          range_op(self.base + "last_reserved")])
        found, last = branch_entries(responses, 0), branch_entries(responses, 1)
        rotation = _parse_address(last[0].value if last else None)
        if not found:
            return Held(None, 0, rotation)
        address = _parse_address(found[0].value)
        record = self.read(address) if address is not None else None
        if record is not None and record.owner.key != owner.key:
            record = None
        return Held(record, found[0].mod_revision, rotation)

    def claim(self, record: Record, held: Held, rotate: bool) -> Outcome:
        address = record.address.ip
        owner_key = self._owner_key(record.owner)
        owner_check = unchanged(owner_key, held.revision) if held.revision else absent(owner_key)
        puts = [put_op(self._address_key(address), encode(record)),
                put_op(owner_key, str(record.address).encode())]
        if rotate:
            puts.append(put_op(self.base + "last_reserved", str(address).encode()))
        if held.record is not None:  # a pin moved this owner: free its old address too
            puts.append(delete_op(self._address_key(held.record.address.ip)))
        puts += self._seen()
        won, responses = self.etcd.txn([absent(self._address_key(address)), owner_check], puts,
                                       [range_op(owner_key)])
        if won:
            return "won"
        now = branch_entries(responses, 0)
        return "raced" if (now[0].mod_revision if now else 0) != held.revision else "taken"

    def read(self, address: IPAddress) -> Record | None:
        entry = self.etcd.get(self._address_key(address))
        if entry is None:
            return None
        try:
            return decode(entry.value, self.network.name, address)
        except ValueError as exc:
            log.warning("etcd key %s: %s; its address stays out of use", entry.key, exc)
            return None

    def taken(self) -> list[str]:
        prefix = self.base + "addr/"
        return [entry.key[len(prefix):] for entry in self.etcd.scan(prefix, keys_only=True)]

    def release(self, owner: Identity) -> bool:
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
                                       [delete_op(owner_key), delete_op(address_key),
                                        *self._seen()])
                if won:
                    return True
            won, _ = self.etcd.txn(checks, [delete_op(owner_key)])
            if won:  # the address key was not ours to delete: leave it, say so
                log.warning("etcd key %s named %s, whose record is not from the same claim; "
                            "kept the address record", owner_key, address)
                return False
        return False

    def _seen(self) -> list[dict]:
        """This node's sign of life, put in a transaction the call makes anyway: no extra
        round trip, and nothing that could fail the call on its own."""
        if not self.node_key:
            return []
        return [put_op(self.node_key, json.dumps({"seen": round(time.time())}).encode())]

    def scan(self) -> tuple[list[Record], list[Damaged]]:
        found: list[tuple[int, Record]] = []
        damaged: list[Damaged] = []
        prefix = self.base + "addr/"
        for entry in self.etcd.scan(prefix):
            name = entry.key[len(prefix):]
            try:
                address = ipaddress.ip_address(name)
                if address not in self.network.subnet:  # type: ignore[operator]
                    raise ValueError(f"address outside subnet {self.network.subnet}")
                record = decode(entry.value, self.network.name, address)
            except ValueError as exc:
                damaged.append(Damaged(self.network.name, entry.key, str(exc)))
                continue
            found.append((int(address), record))
        return [record for _, record in sorted(found, key=lambda f: f[0])], damaged


def _parse_address(value: bytes | None) -> IPAddress | None:
    """An address stored as "10.0.0.5" or "10.0.0.5/24"; None if absent or unreadable."""
    if not value:
        return None
    try:
        return ipaddress.ip_interface(value.decode().strip()).ip
    except (UnicodeDecodeError, ValueError):
        return None


class PreviousEtcdStore(_PreviousEtcdStore):
    """The previous release's store under today's allocator: its claim as it was, never
    looking ahead."""

    lookahead = 0

    def claim(self, record: Record, held: Held, rotate: bool,  # type: ignore[override]
              probe: Sequence[IPAddress] = ()) -> Claimed:
        return Claimed(super().claim(record, held, rotate))
