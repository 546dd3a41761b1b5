"""Networks, owners and lookups for the allocator tests, as plain functions."""

from __future__ import annotations

from typing import Any

from plugin.config.networks import parse_networks
from plugin.config.reader import Section
from plugin.identity import Identity
from plugin.ipam.networks import NetworkConfig


def networks(*items: dict[str, Any]) -> tuple[NetworkConfig, ...]:
    """Networks parsed from plain dicts, as the config file would give them."""
    return parse_networks([Section("test.yaml", item, f"networks[{i}]")
                           for i, item in enumerate(items)])


def network(**fields: Any) -> NetworkConfig:
    fields.setdefault("name", "net")
    return networks(fields)[0]


def lookup(allocator, who: Identity):
    """The owner's lease without creating anything: what the store holds for it."""
    record = allocator.store.held(who).record
    return allocator.network.lease(record.address) if record else None


def owner(index: int, node: str = "", interface: str = "eth1") -> Identity:
    return Identity(infra_id=f"{index:064x}", interface=interface, namespace="ns",
                 pod=f"22-pod-{index}", node=node)
