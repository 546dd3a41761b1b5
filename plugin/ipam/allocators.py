"""The allocators of every network: the one object the core asks for addresses.

`Allocators` picks the network that serves a VLAN (or the VLAN an operator pinned in
etcd), hands the work to that network's allocator and knows nothing of how it
stores leases. Importing it stays cheap: the etcd client and the
HTTP stack behind it are imported on first use of an etcd network or a pin, so
`status` on a node without etcd never pays for them.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterator

from plugin.errors import AddressRefused, AllocationError, ConfigError, Failure
from plugin.identity import Identity
from plugin.ipam.leaserecord import Record
from plugin.ipam.pooled import PoolAllocator
from plugin.ipam.stores.files import FileStore
from plugin.ipam.networks import NetworkConfig
from plugin.ipam.static import StaticAllocator

if TYPE_CHECKING:
    from plugin.ipam.model import Allocator, Conflicted, Damaged, Lease, Pin, Request
    from plugin.ipam.stores.etcd import EtcdStore
    from plugin.ipam.stores.etcd_client import EtcdConnection
    from plugin.ipam.stores.etcd_config import EtcdConfig
    from plugin.ipam.stores.etcd_index import EtcdIndex

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # never warn on status's stderr


class Allocators:
    allocator = "vlanpipe"
    ipam = ""

    def __init__(self, networks: tuple[NetworkConfig, ...], etcd: EtcdConfig | None,
                 state_dir: str, node: str) -> None:
        for network in networks:
            if network.allocator == "etcd" and etcd is None:
                raise ConfigError(f"network '{network.name}' uses allocator etcd but the config "
                                  "has no etcd section", "add etcd.endpoints to the config")
        self.networks = networks
        self.etcd = etcd
        self.state_dir = state_dir
        self.node = node
        self._by_vlan: dict[int, list[NetworkConfig]] = {}
        self._fallback: list[NetworkConfig] = []
        for network in networks:  # a dual-stack network's two families follow each other
            for vlan in network.vlans or ():
                self._by_vlan.setdefault(vlan, []).append(network)
            if network.vlans is None:
                self._fallback.append(network)
        self._sources: dict[str, Allocator] = {}
        self._connection: EtcdConnection | None = None
        self._pins: dict[tuple[str, str], Pin | None] = {}

    def families_for(self, vlan: int) -> list[NetworkConfig]:
        """The network serving `vlan`: one family, or two (dual-stack)."""
        found = self._by_vlan.get(vlan, self._fallback)
        if not found:
            raise AllocationError(f"no network serves VLAN {vlan}",
                                  'add the VLAN to a network\'s vlans, or give one network vlans: "all"')
        return found

    def network_name(self, vlan: int) -> str:
        return self.families_for(vlan)[0].name

    def pinned(self, namespace: str, pod: str) -> Pin | None:
        """The operator's pin for a pod (read once per process), or None without etcd."""
        if self.etcd is None or not namespace or not pod:
            return None
        if (namespace, pod) not in self._pins:
            from plugin.ipam.cluster import read_pin

            self._pins[namespace, pod] = read_pin(self._etcd(), self.etcd.prefix, namespace, pod)
        return self._pins[namespace, pod]

    def allocate(self, owner: Identity, vlan: int,
                 requested: tuple[Request, ...] = ()) -> list[Lease]:
        """The owner's leases on the network of `vlan`, one per family, all or none (the
        caller releases the network if a later family fails). `requested` (an operator's
        pin, or what a pod asks for, at most one per family) is reserved exactly or refused."""
        families = self.families_for(vlan)
        versions = {f.version for f in families}
        for request in requested:
            if request.address.version not in versions and families[0].allocator != "static":
                raise AddressRefused(f"{request.what} is IPv{request.address.version}; network "
                                     f"{families[0].name} has no such subnet",
                                     "ask for an address of the network's families")
        leases = []
        for family in families:
            mine = next((r for r in requested if family.allocator == "static"
                         or r.address.version == family.version), None)
            leases.append(self._source(family).allocate(self._stamped(owner), mine))
        return leases

    def release(self, owner: Identity, network: str) -> bool:
        """Free the owner's leases on `network` (the one its record names), every family;
        True if one was held. A failure is raised: only this network's pods are affected."""
        released = False
        for family in (n for n in self.networks if n.name == network):
            released = self._source(family).release(self._stamped(owner)) or released
        return released

    def release_anywhere(self, owner: Identity) -> list[str]:
        """Free the owner's lease on every network, best effort, when no record names one;
        return what failed (an allocator that is down must not fail another's pods)."""
        problems = []
        for network in self.networks:
            try:
                self._source(network).release(self._stamped(owner))
            except Failure as exc:
                problems.append(f"network {network.name}: {exc.line()}")
        return problems

    def leases(self) -> list[tuple[Identity, Lease]]:
        return [item for network in self.networks for item in self._source(network).leases()]

    def mark_conflicted(self, owner: Identity, network: str, address: str, mac: str) -> bool:
        ip = ipaddress.ip_interface(address).ip
        return any(self._source(family).mark_conflicted(self._stamped(owner), ip, mac)
                   for family in self.networks
                   if family.name == network and family.version == ip.version)

    def conflicted(self) -> list[Conflicted]:
        """Every address kept out of use on the wire's word, in etcd of every node."""
        return [item for network in self.networks
                for item in self._source(network).conflicted()]

    def clear(self, address: str) -> list[Record]:
        """Free `address` on every pooled network whose subnet holds it, where it is
        conflicted; the records found there (conflicted or not)."""
        ip = ipaddress.ip_address(address)
        found = []
        for network in self.networks:
            source = self._source(network)
            if isinstance(source, PoolAllocator) and ip in network.subnet:  # type: ignore[operator]
                record = source.clear(ip)
                if record is not None:
                    found.append(record)
        return found

    def damaged(self) -> list[Damaged]:
        return [item for network in self.networks for item in self._source(network).damaged()]

    def cluster_leases(self) -> Iterator[tuple[str, Identity, str]]:
        """Network, owner and address text of every lease in etcd, of every node, network
        by network in key order, read a page at a time (100,000 leases are never held at
        once)."""
        from plugin.ipam.model import Damaged

        for network in self._etcd_networks():
            for item in self._store(network).listing():
                if isinstance(item, Damaged):
                    log.warning("%s: %s; left alone, its address is not reused", item.where,
                                item.reason)
                else:
                    yield (network.name, *item)

    def node_leases(self, node: str) -> tuple[list[tuple[Identity, Lease]], list[str]]:
        """One node's leases in etcd, read through the index by node; and, per network
        without the index mark, a note that every record was read to find old ones."""
        found, notes = [], []
        for network in self._etcd_networks():
            leases = self._index(network).of_node(node)
            found += [(r.owner, network.lease(r.address)) for r in leases.records]
            if leases.scanned is not None:
                notes.append(f"network {network.name}: no node index yet (leases written "
                             f"before it may exist): read all {leases.scanned} leases; "
                             "'init' on a node of this release indexes them")
        return found, notes

    def index_leases(self) -> list[str]:
        """Index the old owner keys of every etcd network (a one-off, then one read each)."""
        done = []
        for network in self._etcd_networks():
            result = self._index(network).index()
            if result.waiting:
                done.append(f"network {network.name}: not indexed by node yet: waiting for "
                            f"{len(result.waiting)} nodes of an earlier release (first "
                            f"{', '.join(result.waiting[:3])}) to run this one, or gc --node")
            elif result.moved or result.raced or not result.marked:
                done.append(f"network {network.name}: {result.moved} old leases indexed, "
                            f"{result.skipped} stale owner keys left alone, {result.raced} "
                            f"changed meanwhile{'' if result.marked else ' (not marked)'}")
        return done

    def nodes_seen(self) -> dict[str, float]:
        """When each node last claimed or released an address in etcd (unix time)."""
        if self.etcd is None:
            return {}
        from plugin.ipam.cluster import nodes_seen

        return nodes_seen(self._etcd(), self.etcd.prefix)

    def node_revision(self, node: str) -> int:
        """The revision of a node's stamp in etcd (0: none, or no etcd)."""
        if self.etcd is None:
            return 0
        from plugin.ipam.cluster import node_revision

        return node_revision(self._etcd(), self.etcd.prefix, node)

    def forget_node(self, node: str, revision: int) -> bool:
        """Delete the stamp of a node gone for good, unless it stamped since `revision`."""
        if self.etcd is None or not revision:
            return False
        from plugin.ipam.cluster import forget_node

        return forget_node(self._etcd(), self.etcd.prefix, node, revision)

    def collectable(self, alive: Callable[[str], bool]) -> list[tuple[Identity, Lease]]:
        """The leases of this node whose infra container is not `alive`.

        In etcd only this node's leases are judged: another node's containers
        cannot be seen from here. The local store holds this node's alone.
        """
        mine = []
        for network in self.networks:
            if network.allocator == "etcd":  # through the index by node, not every node's
                records = self._index(network).of_node(self.node).records
                mine += [(record.owner, network.lease(record.address)) for record in records]
            else:
                mine += self._source(network).leases()
        return [(owner, lease) for owner, lease in mine if not alive(owner.infra_id)]

    def _etcd_networks(self) -> list[NetworkConfig]:
        return [network for network in self.networks if network.allocator == "etcd"]

    def _index(self, network: NetworkConfig) -> EtcdIndex:
        from plugin.ipam.stores.etcd_index import EtcdIndex

        return EtcdIndex(self._store(network))

    def _store(self, network: NetworkConfig) -> EtcdStore:
        """The store of an etcd network's allocator."""
        source = self._source(network)
        assert isinstance(source, PoolAllocator)
        return source.store  # type: ignore[return-value]

    def _stamped(self, owner: Identity) -> Identity:
        return owner if owner.node else replace(owner, node=self.node)

    def _source(self, network: NetworkConfig) -> Allocator:
        if network.key not in self._sources:
            self._sources[network.key] = self._new_source(network)
        return self._sources[network.key]

    def _new_source(self, network: NetworkConfig) -> Allocator:
        if network.allocator == "static":
            return StaticAllocator(network)
        if network.allocator == "local":
            return PoolAllocator(network, FileStore(network, self.state_dir))
        from plugin.ipam.stores.etcd import EtcdStore

        assert self.etcd is not None  # checked in __init__
        return PoolAllocator(network, EtcdStore(network, self._etcd(), self.etcd.prefix,
                                                self.node))

    def _etcd(self) -> EtcdConnection:
        if self._connection is None:
            from plugin.ipam.stores.etcd_client import EtcdConnection

            assert self.etcd is not None
            self._connection = EtcdConnection(self.etcd)
        return self._connection
