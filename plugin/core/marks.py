"""The ownership marks on Open vSwitch ports: the one definition of their keys.

OVSDB `external_ids` is where the plugin says that a port is its own and whose
it is. Teardown, gc, list and the CNI GC find ports by these marks, never by
name, and never touch a port without `owner=vlanpipe`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

from plugin.identity import Identified, Identity

OWNER_KEY, OWNER = "owner", "vlanpipe"
# Field of Marks (or of its Identity) -> its external_ids key.
KEYS = {
    "namespace": "vlanpipe-namespace",
    "pod": "vlanpipe-pod",
    "infra_id": "vlanpipe-infra-id",
    "interface": "vlanpipe-interface",
    "address": "vlanpipe-address",
    "network": "vlanpipe-network",
    "node": "vlanpipe-node",
    "cni_network": "vlanpipe-cni-network",
    "plumber": "vlanpipe-plumber",
    "netns": "vlanpipe-netns",
    "netns_id": "vlanpipe-netns-id",
}


_WHO = tuple(f.name for f in fields(Identity))


@dataclass(frozen=True)
class Marks(Identified):
    """Whose a port is (`who`, with the node that made it): enough to tear it down and
    release its lease with no container."""

    who: Identity = Identity()
    address: str = ""
    network: str = ""
    cni_network: str = ""  # the CNI network (config name) whose GC may collect the port
    plumber: str = ""  # which plumber made it (gc judges a netns attachment without Docker)
    netns: str = ""  # the namespace path the netns plumber was given
    netns_id: str = ""  # "device:inode" of that path at ADD: the path alone may be reused

    def external_ids(self) -> dict[str, str]:
        ids = {OWNER_KEY: OWNER}
        values = {**{name: getattr(self.who, name) for name in _WHO},
                  **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "who"}}
        ids.update({KEYS[name]: value for name, value in values.items() if value})
        return ids

    @classmethod
    def read(cls, external_ids: Mapping[str, str]) -> "Marks | None":
        """The marks of a pod's port, or None if the port is not one (not the plugin's, or
        its uplink)."""
        if external_ids.get(OWNER_KEY) != OWNER or external_ids.get(ROLE_KEY):
            return None
        values = {name: external_ids.get(key, "") for name, key in KEYS.items()}
        return cls(Identity(**{name: values.pop(name) for name in _WHO}), **values)


ROLE_KEY, UPLINK = "vlanpipe-role", "uplink"


def uplink(node: str) -> dict[str, str]:
    """The marks of a node's uplink: the plugin's, but no pod's."""
    return {OWNER_KEY: OWNER, ROLE_KEY: UPLINK, KEYS["node"]: node}


def is_uplink(external_ids: Mapping[str, str]) -> bool:
    return external_ids.get(OWNER_KEY) == OWNER and external_ids.get(ROLE_KEY) == UPLINK


def owned() -> dict[str, str]:
    """The condition every port of the plugin meets."""
    return {OWNER_KEY: OWNER}


def of_container(infra_id: str) -> dict[str, str]:
    return {OWNER_KEY: OWNER, KEYS["infra_id"]: infra_id}


def of_cni_network(name: str) -> dict[str, str]:
    return {OWNER_KEY: OWNER, KEYS["cni_network"]: name}
