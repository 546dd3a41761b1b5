"""Whose an attachment is: the one type that names a pod's interface everywhere.

A front-end names the pod (namespace, pod, infra container id), the core adds the
interface to make an attachment's identity, and the same value is the owner of
its lease (with the node, which makes it unique across nodes on a shared store),
the identity part of its OVSDB marks and of its record, and of a `list` row.
Its conversions live once each: to and from OVSDB marks in `plugin.core.marks`,
to and from a lease record in `plugin.ipam.leaserecord`, to and from the flat
shape of a record file and `list --json` here (`flat`, `unflat`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping

from plugin import names

# The parts a record file and a `list` row hold, at the top level: the node is the node's own.
STORED = ("namespace", "pod", "infra_id", "interface")


@dataclass(frozen=True)
class Identity:
    """One pod (namespace and pod name, empty when a CNI runtime gives none, and its sandbox
    id), and when it names an attachment, one interface of it; `node` where it must be
    unique across nodes (a lease's owner, a port's marks)."""

    namespace: str = ""
    pod: str = ""
    infra_id: str = ""
    interface: str = ""
    node: str = ""

    @classmethod
    def checked(cls, namespace: str, pod: str, infra_id: str) -> "Identity":
        """A pod named by the kubelet, each name validated (`plugin.names`)."""
        return cls(names.namespace(namespace), names.pod(pod), names.infra_id(infra_id))

    def with_interface(self, interface: str, node: str = "") -> "Identity":
        """This pod's attachment of `interface` (on `node`, for a lease's owner or marks)."""
        return replace(self, interface=interface, node=node)

    def pod_part(self) -> "Identity":
        """The pod alone: what the core attaches and detaches by."""
        return Identity(self.namespace, self.pod, self.infra_id)

    @property
    def key(self) -> str:
        """One interface of one container: what an allocator keys a lease by."""
        return f"{self.infra_id}/{self.interface}"


class Identified:
    """A record that holds its `Identity` in `who` reads as its parts (`record.interface`)."""

    who: Identity

    @property
    def namespace(self) -> str:
        return self.who.namespace

    @property
    def pod(self) -> str:
        return self.who.pod

    @property
    def infra_id(self) -> str:
        return self.who.infra_id

    @property
    def interface(self) -> str:
        return self.who.interface

    @property
    def node(self) -> str:
        return self.who.node


def flat(item: Any) -> dict[str, Any]:
    """`asdict` of a dataclass that holds its identity in `who`, with the identity's STORED
    parts at the top level, first: the shape record files and `list --json` have always had
    (records of every release load, and tools reading the JSON see no change)."""
    body = asdict(item)
    who = body.pop("who")
    return {**{part: who[part] for part in STORED}, **body}


def unflat(item: Mapping[str, Any]) -> dict[str, Any]:
    """`flat`'s inverse: the keyword arguments of the dataclass. KeyError names a missing part."""
    return {"who": Identity(**{part: item[part] for part in STORED}),
            **{k: v for k, v in item.items() if k not in STORED}}
