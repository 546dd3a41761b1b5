"""Which interfaces a pod gets, on which bridge and VLAN: the rules and the operator's pins.

The default rule is the reference plugin's: the digits before the first '-' of
the pod name (`22-my-nginx` is VLAN 22). Unlike the reference, the result is
validated, so `nginx-abc` fails before any veth exists. A pin in etcd
overrides the rule (and may fix the address) for a pod's primary interface.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

from plugin import names
from plugin.errors import InputError, shown
from plugin.ipam.model import IPInterface, Pin

if TYPE_CHECKING:
    from plugin.config.schema import Config

RULES = ("pod-name-prefix", "regex", "namespace-map", "fixed")


@dataclass(frozen=True)
class PodRef:
    """Which pod: Kubernetes' names (empty when a CNI runtime gives none) and its sandbox id."""

    namespace: str
    pod: str
    infra_id: str

    @classmethod
    def checked(cls, namespace: str, pod: str, infra_id: str) -> "PodRef":
        return cls(names.namespace(namespace), names.pod(pod), names.infra_id(infra_id))


@dataclass(frozen=True)
class Want:
    """One interface a front-end asks the core for.

    `addresses` are what the allocator must reserve exactly, at most one per family
    (an operator's pin, or what a pod asks for), `mac` a MAC the pod asks for, `mtu`
    the CNI network's MTU (else its allocator network's), `cni_network` the CNI network.
    """

    interface: str
    bridge: str
    vlan: int
    primary: bool = True
    addresses: tuple[IPInterface, ...] = ()
    pinned: bool = False  # `addresses` are an operator's pin, not the pod's request
    mac: str | None = None
    mtu: int | None = None
    cni_network: str = ""


@dataclass(frozen=True)
class VlanRule:
    """How a pod's VLAN is chosen when no pin says otherwise."""

    kind: str = "pod-name-prefix"
    pattern: re.Pattern | None = None
    namespaces: Mapping[str, int] = field(default_factory=dict)
    tag: int | None = None

    def tag_for(self, namespace: str, pod: str) -> int:
        if self.kind == "pod-name-prefix":
            return checked(_prefix(pod), f"pod name {shown(pod)}")
        if self.kind == "regex":
            assert self.pattern is not None
            found = self.pattern.search(pod)
            if not found or found.group("vlan") is None:
                raise InputError(
                    f"pod name {shown(pod)} does not match the VLAN pattern "
                    f"{self.pattern.pattern!r}",
                    "rename the pod or change vlan.pattern in the config",
                )
            return checked(found.group("vlan"), f"pod name {shown(pod)}")
        if self.kind == "namespace-map":
            if namespace not in self.namespaces:
                raise InputError(
                    f"namespace {shown(namespace)} has no VLAN in vlan.namespaces",
                    "add the namespace to vlan.namespaces in the config",
                )
            return self.namespaces[namespace]
        assert self.tag is not None
        return self.tag


def plan(config: "Config", ref: PodRef, pinned: Callable[[str, str], Pin | None]) -> list[Want]:
    """The exec front-end's wants: every configured interface, VLAN by its rule or a pin.

    `pinned` is asked once, and only when pins are on: it reads etcd.
    """
    pin = pinned(ref.namespace, ref.pod) if config.vlan_pins else None
    return [Want(spec.interface, spec.bridge, pin.vlan, spec.primary,
                 addresses=(pin.address,) if pin.address else (), pinned=True)
            if pin and spec.primary else
            Want(spec.interface, spec.bridge, spec.vlan.tag_for(ref.namespace, ref.pod),
                 spec.primary)
            for spec in config.attachments]


def _prefix(pod: str) -> str:
    head, sep, _ = pod.partition("-")
    if not sep or not head.isdigit() or not head.isascii():
        raise InputError(
            f"pod name {shown(pod)} has no VLAN prefix",
            "name the pod '<VLAN>-<name>' (for example '22-my-nginx') or choose another vlan.rule",
        )
    return head


def checked(text: str | int, what: str) -> int:
    """A VLAN tag taken from `what`; its range is names.vlan's."""
    try:
        return names.vlan(text)
    except ValueError:
        raise InputError(
            f"{what} gives VLAN {text}, not a number between {names.VLAN_MIN} and {names.VLAN_MAX}",
            "use a VLAN tag between 1 and 4094",
        ) from None
