"""One node's leases in etcd without reading the others', and the one-off index of old ones.

The owner keys are the index by node: `owner/<node>/<infra_id>/<iface>` names the address
an owner holds, and a claim writes it, and a release deletes it, in the same transaction
as the address record (etcd.py). `gc --node NAME` reads `owner/NAME/` and that node's
records, not the 100,000 records of a thousand nodes (issue 23: 4.0 s and 215 MB before).

Releases before the node was in the key wrote `owner/<infra_id>/<iface>`: such a lease is
not under `owner/NAME/`, and nodes of those releases write more while they run. So the
network is marked `P/ipam/<network>/indexed` only when no node can write one any more:
every node's stamp (`P/nodes/<node>`, put with each claim and release) says it runs this
release ("indexed": true; `gc --node` deletes the stamp of a node it emptied). Then
`index()` (run by `init`) moves each old key under its record's node, in a transaction
that checks the owner key and the record are still as read and from one claim (same
revision) and that today's key is absent, and rewrites the record so both carry one
revision again, as a claim leaves them: the compare-and-set rules of claim and release
hold throughout. The stamps are read again after the pass, and the mark written if they
still all say so and nothing changed under the pass. Until then `of_node` also reads
every record, a page at a time, and says so.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from plugin.ipam.leaserecord import Record
from plugin.ipam.model import Damaged
from plugin.ipam.stores.etcd import EtcdStore, parse_address
from plugin.ipam.stores.etcd_client import (Entry, absent, branch_entries, delete_op, put_op,
                                            range_op, unchanged)

BATCH = 128  # ranges per transaction when reading a node's records (etcd's --max-txn-ops)


@dataclass(frozen=True)
class NodeLeases:
    """A node's records; `scanned`: how many records were read to find them when the
    network has no index mark (None: the index alone was read)."""

    records: list[Record]
    scanned: int | None = None


@dataclass(frozen=True)
class Indexed:
    """What one pass of `index()` did: old keys moved, left alone (their record is another
    owner's, or not from the same claim: such a key hides no lease of its own), changed
    under the pass (tried again by the next), and whether the network is marked indexed."""

    moved: int = 0
    skipped: int = 0
    raced: int = 0
    marked: bool = False
    waiting: tuple[str, ...] = ()  # nodes whose last stamp is of an earlier release


class EtcdIndex:
    def __init__(self, store: EtcdStore) -> None:
        self.store = store
        self.etcd = store.etcd
        self.mark = store.base + "indexed"

    def of_node(self, node: str) -> NodeLeases:
        """The node's records through its index; without the index mark, also those only a
        read of every record finds (old owner keys)."""
        prefix = f"{self.store.base}owner/{node}/"
        listed = [(entry.key[len(prefix):], parse_address(entry.value))
                  for entry in self.etcd.pages(prefix)]
        records = []
        for start in range(0, len(listed), BATCH):
            chunk = listed[start:start + BATCH]
            _, responses = self.etcd.txn([], [range_op(self.store.base + f"addr/{address}")
                                              for _, address in chunk])
            for index, (key, address) in enumerate(chunk):
                found = branch_entries(responses, index)
                record = self.store.record_of(found[0]) if found and address else None
                if record is not None and (record.owner.node, record.owner.key) == (node, key):
                    records.append(record)  # else stale or foreign: not this node's to free
        if self.etcd.get(self.mark) is not None:
            return NodeLeases(records)
        have, scanned = {record.address.ip for record in records}, 0
        for item in self.store.records():
            scanned += 1
            if (isinstance(item, Record) and item.owner.node == node
                    and item.address.ip not in have):
                records.append(item)
        return NodeLeases(records, scanned)

    def index(self) -> Indexed:
        """Move every old owner key under its record's node; mark the network once none is
        left. Cheap when marked: one read."""
        if self.etcd.get(self.mark) is not None:
            return Indexed(marked=True)
        if self.store.node_key:  # this node runs this release, whether it claimed or not
            self.etcd.txn([], self.store.seen_ops())
        waiting = self._waiting()
        if waiting:
            return Indexed(waiting=waiting)
        prefix = self.store.base + "owner/"
        counts = {"moved": 0, "skipped": 0, "raced": 0}
        old = [entry for entry in self.etcd.pages(prefix)  # not owner/<node>/<infra>/<iface>
               if entry.key[len(prefix):].count("/") == 1]
        for entry in old:
            counts[self._move(entry)] += 1
        waiting = self._waiting()  # a node of an earlier release that came up meanwhile
        if counts["raced"] or waiting:
            return Indexed(**counts, waiting=waiting)
        self.etcd.txn([], [put_op(self.mark, json.dumps({"since": round(time.time())})
                                  .encode())])
        return Indexed(**counts, marked=True)

    def _waiting(self) -> tuple[str, ...]:
        """The nodes whose last stamp was not put by this release (or cannot be read)."""
        waiting = []
        for entry in self.etcd.pages(self.store.nodes):
            try:
                indexed = json.loads(entry.value).get("indexed") is True
            except (ValueError, AttributeError):
                indexed = False
            if not indexed:
                waiting.append(entry.key[len(self.store.nodes):])
        return tuple(waiting)

    def _move(self, entry: Entry) -> str:
        """One old owner key under its record's node, if the record is its owner's and from
        the same claim ("skipped" if not), and nothing changed since it was read ("raced")."""
        address = parse_address(entry.value)
        found = self.etcd.get(self.store.base + f"addr/{address}") if address else None
        record = self.store.record_of(found) if found is not None else None
        old_owner = entry.key[len(self.store.base + "owner/"):]
        if (found is None or record is None or not record.owner.node
                or record.owner.key != old_owner or found.mod_revision != entry.mod_revision):
            return "skipped"
        new_key = f"{self.store.base}owner/{record.owner.node}/{record.owner.key}"
        won, _ = self.etcd.txn(
            [unchanged(entry.key, entry.mod_revision), unchanged(found.key, found.mod_revision),
             absent(new_key)],
            [put_op(found.key, found.value), put_op(new_key, entry.value), delete_op(entry.key)])
        return "moved" if won else "raced"
