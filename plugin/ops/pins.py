"""`pin set|get|del NAMESPACE/POD`: the operator's pins in etcd, without etcdctl.

A pin is read by setup (`vlan.pinned: true`) from `<prefix>/pins/<ns>/<pod>`.
It is checked here the way setup will read it (the same decoder), and against
this node's networks: its VLAN must be served by one, and its address must lie
in that network's subnet, so a typo fails now rather than at the pod's next
setup.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from plugin import names
from plugin.config.schema import Config
from plugin.errors import AllocationError, Failure, InputError
from plugin.ipam import cluster
from plugin.ipam.allocators import Allocators
from plugin.ops.cluster import etcd_allocators


def _pod(who: str) -> tuple[str, str]:
    namespace, sep, pod = who.partition("/")
    if not sep:
        raise InputError(f"pod {who!r} is not NAMESPACE/POD", "name it as default/22-web")
    return names.namespace(namespace), names.pod(pod)


def _connection(config: Config, command: str):
    from plugin.ipam.stores.etcd_client import EtcdConnection

    allocators = etcd_allocators(config, command)
    assert config.etcd is not None
    return allocators, EtcdConnection(config.etcd)


def put(config: Config, who: str, vlan: str, address: str | None) -> dict[str, Any]:
    namespace, pod = _pod(who)
    allocators, etcd = _connection(config, "pin set")
    body: dict[str, Any] = {"vlan": _vlan(vlan)}
    if address is not None:
        body["address"] = address
    value = json.dumps(body).encode()
    try:
        pin = cluster.decode_pin(value)
    except ValueError as exc:
        raise InputError(f"pin {json.dumps(body)} of {who}: {exc}",
                         "give a VLAN and an address with its prefix length") from None
    _served(allocators, pin.vlan, pin.address)
    cluster.write_pin(etcd, config.etcd.prefix, namespace, pod, value)
    return body


def get(config: Config, who: str) -> dict[str, Any]:
    namespace, pod = _pod(who)
    _, etcd = _connection(config, "pin get")
    pin = cluster.read_pin(etcd, config.etcd.prefix, namespace, pod)
    if pin is None:
        raise Failure(f"{who} has no pin", f"set one with 'vlanpipe pin set {who} VLAN'")
    return {"vlan": pin.vlan, **({"address": str(pin.address)} if pin.address else {})}


def delete(config: Config, who: str) -> str:
    namespace, pod = _pod(who)
    _, etcd = _connection(config, "pin del")
    if cluster.delete_pin(etcd, config.etcd.prefix, namespace, pod):
        return f"removed the pin of {who}"
    return f"{who} had no pin"


def _vlan(text: str) -> int:
    try:
        return names.vlan(text)
    except ValueError as exc:
        raise InputError(f"VLAN {text!r} {exc}", "give a tag between 1 and 4094") from None


def _served(allocators: Allocators, vlan: int, address: Any) -> None:
    """The VLAN has a network here, and the address lies in its subnet of that family."""
    try:
        families = allocators.families_for(vlan)
    except AllocationError as exc:
        raise InputError(exc.message, exc.hint) from None
    if address is None:
        return
    subnets = [n.subnet for n in families if n.subnet is not None]
    if not any(address.version == s.version and address.ip in s for s in subnets):
        raise InputError(f"address {address} is not in network '{families[0].name}' that "
                         f"serves VLAN {vlan} ({', '.join(map(str, subnets)) or 'no subnet'})",
                         "pin an address of that network's subnet")
    if ipaddress.ip_network(address, strict=False) not in subnets:
        raise InputError(f"address {address} has another prefix length than network "
                         f"'{families[0].name}' ({', '.join(map(str, subnets))})",
                         "give the subnet's prefix length")
