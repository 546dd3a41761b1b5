"""Which interfaces a pod gets, on which bridge and VLAN: the config's rules and the
operator's pins, planned into the `Want`s the core attaches to a pod (an `Identity`).

The rules themselves (`plugin.policy.vlan`) are types the config parses into; a
pin in etcd overrides the rule (and may fix the address) for a pod's primary
interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from plugin.identity import Identity
from plugin.ipam.model import IPInterface, Pin

if TYPE_CHECKING:
    from plugin.config.schema import Config


@dataclass(frozen=True)
class Want:
    """One interface a front-end asks the core for (the pod's `Identity` with `interface`
    names the attachment).

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


def plan(config: "Config", ref: Identity, pinned: Callable[[str, str], Pin | None]) -> list[Want]:
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
