"""One real etcd for the cluster parts, and leases written into it as a cluster would have.

The etcd runs from a temp dir as the tests start it (tests/support/etcd_server.py). Leases
are written in the store's own key format (`EtcdStore.lease_ops`, the puts a claim makes)
through transactions of at most 128 operations (etcd's default --max-txn-ops): the
benchmark fills in seconds what a cluster fills over months, and reads it as a node would.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

from plugin.config.etcd import parse_etcd
from plugin.config.networks import parse_networks
from plugin.config.reader import Section
from plugin.ipam.leaserecord import new_record
from plugin.identity import Identity
from plugin.ipam.networks import NetworkConfig
from plugin.ipam.stores.etcd_config import EtcdConfig
from plugin.ipam.pool import Pool
from plugin.ipam.stores.etcd import EtcdStore
from plugin.ipam.stores.etcd_client import EtcdConnection, put_op
from tests.support import etcd_server

MAX_OPS = 128  # etcd's default --max-txn-ops


@dataclass
class EtcdBed:
    """A running etcd in a folder of its own; `close()` stops it and removes the folder."""

    folder: str
    server: etcd_server.EtcdServer

    @classmethod
    def start(cls, workdir: str) -> "EtcdBed":
        folder = tempfile.mkdtemp(prefix="etcd-", dir=workdir)
        try:
            return cls(folder, etcd_server.start(os.path.join(folder, "data")))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def config(self, prefix: str, timeout: float = 5.0) -> EtcdConfig:
        config = parse_etcd(Section("bench", {"endpoints": [self.server.url], "prefix": prefix,
                                              "timeout": timeout}))
        assert config is not None
        return config

    def close(self) -> None:
        etcd_server.stop(self.server)
        shutil.rmtree(self.folder, ignore_errors=True)


def etcd_network(name: str, subnet: str) -> NetworkConfig:
    return parse_networks([Section("bench", {"name": name, "vlans": [22], "subnet": subnet,
                                             "allocator": "etcd"})])[0]


def owner(node: str, index: int) -> Identity:
    return Identity("bench", f"22-pod-{index}", f"{node}-{index:058x}", "eth1", node)


def scattered(pool: Pool, count: int, rng: random.Random) -> list[int]:
    """`count` addresses of the pool drawn at random: no run a rotation could skip at once."""
    candidates = list(pool.rotation(None))
    return [int(address) for address in rng.sample(candidates, count)]


def fill(etcd: EtcdConnection, store: EtcdStore, pool: Pool, numbers: Iterable[int],
         nodes: list[str], rng: random.Random, old_nodes: frozenset[str] = frozenset()) -> int:
    """Leases on `numbers`, owners spread over `nodes` (`len(numbers) // len(nodes)` each, in
    turn), written in batches of MAX_OPS operations, and the rotation point put at random.
    Every other lease of `old_nodes` is written as a release before the index by node did
    (its owner key without the node). Returns the number of transactions."""
    batch: list[dict] = []
    transactions = 0
    for index, number in enumerate(numbers):
        record = new_record(store.network.name, pool.interface(pool.address(number)),
                            owner(nodes[index % len(nodes)], index))
        ops = store.lease_ops(record)
        if record.owner.node in old_nodes and index // len(nodes) % 2:
            ops[1] = put_op(f"{store.base}owner/{record.owner.key}",
                            str(record.address).encode())
        if len(batch) + len(ops) > MAX_OPS:
            etcd.txn([], batch)
            transactions += 1
            batch = []
        batch += ops
    last = pool.address(rng.randint(pool.first, pool.last))
    batch.append(put_op(store.base + "last_reserved", str(last).encode()))
    etcd.txn([], batch)
    return transactions + 1


def stamp_nodes(etcd: EtcdConnection, prefix: str, nodes: list[str], seen: float) -> None:
    """Every node last seen at `seen`, running this release (the cluster upgraded, its
    leases of before still there): long gone, so `gc --node` needs no --force."""
    body = f'{{"seen": {round(seen)}, "indexed": true}}'.encode()
    for chunk in _chunks([put_op(f"{prefix}/nodes/{n}", body) for n in nodes], MAX_OPS):
        etcd.txn([], chunk)


def _chunks(items: list[dict], size: int) -> Iterator[list[dict]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def day_ago() -> float:
    return time.time() - 86400
