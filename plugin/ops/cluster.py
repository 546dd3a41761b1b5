"""Operators' view of the cluster's leases in etcd, and freeing those of a node gone for good.

Each node's gc judges only its own leases: another node's containers cannot
be seen from here. A node that is gone for good therefore keeps its addresses
until an operator says it is gone (`gc --node NAME`). Nothing is freed on
silence alone (an exec plugin has no daemon, so a quiet node is not a dead
one), but the command refuses when the node showed a recent sign of life (a
claim or release in etcd, which stamps `nodes/<name>`), unless forced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from plugin.config.schema import Config
from plugin.errors import ConfigError, InputError
from plugin.ops.actions import REMOVED, WOULD_REMOVE, Action

if TYPE_CHECKING:
    from plugin.ipam.allocators import Allocators

RECENT_SECONDS = 600.0  # a node seen this recently may well be alive


@dataclass(frozen=True)
class ClusterLease:
    """One lease in etcd as `list --cluster` shows it: whose, on which node, last seen when."""

    network: str
    address: str
    node: str
    namespace: str
    pod: str
    infra_id: str
    interface: str
    node_seen: str  # when the node last claimed or released an address, or "never"


def leases(config: Config) -> Iterator[ClusterLease]:
    """Every lease in etcd, with its node and when that node was last seen, as etcd's pages
    come (network by network, in key order): printed as read, never all held at once."""
    allocators = etcd_allocators(config, "list --cluster")
    seen = {node: _when(when) for node, when in allocators.nodes_seen().items()}
    for network, owner, address in allocators.cluster_leases():
        yield ClusterLease(network, address, owner.node, owner.namespace, owner.pod,
                           owner.infra_id, owner.interface, seen.get(owner.node, "never"))


@dataclass(frozen=True)
class Freed:
    """What `gc --node` did or would do, and notes for the operator (a full read of a
    network's leases, where old ones may hide from the index by node)."""

    actions: list[Action]
    notes: list[str]


def free_node(config: Config, node: str, force: bool, dry_run: bool) -> Freed:
    """Release every etcd lease of `node`, found through the index by node; refuse if it
    was seen recently (or is this one)."""
    allocators = etcd_allocators(config, "gc --node")
    if node == config.node_name and not force:
        raise InputError(f"node {node} is this node", "run gc without --node to sweep it")
    stamp = allocators.node_revision(node)
    last = allocators.nodes_seen().get(node)
    if last is not None and time.time() - last < RECENT_SECONDS and not force:
        raise InputError(f"node {node} was seen {round(time.time() - last)} s ago "
                         f"({_when(last)}): it may be alive",
                         "make sure it is gone for good, then add --force")
    freed = []
    found, notes = allocators.node_leases(node)
    emptied, released = True, set()
    for owner, lease in found:
        if not dry_run and (owner, lease.network) not in released:  # dual stack: both at once
            released.add((owner, lease.network))
            emptied = allocators.release(owner, lease.network) and emptied
        freed.append(Action(WOULD_REMOVE if dry_run else REMOVED,
                            f"lease {lease.address} on {lease.network}",
                            f"{owner.namespace}/{owner.pod}",
                            f"node {node} is gone ({owner.infra_id[:12]} {owner.interface})"))
    if not dry_run and emptied:  # its stamp would keep its leases from being indexed
        allocators.forget_node(node, stamp)
    return Freed(freed, notes)


def etcd_allocators(config: Config, command: str) -> Allocators:
    """The allocators, for a command that reads etcd: without an etcd section there is
    nothing it could read, and an empty answer would look like "no lease"."""
    if config.etcd is None:
        raise ConfigError(f"etcd is not configured: {command} reads the cluster's leases in "
                          f"etcd, and {config.source} has no etcd section",
                          "add an etcd: section (endpoints, prefix) as on the other nodes")
    return config.allocators()


def _when(seen: float | None) -> str:
    if seen is None:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seen))
