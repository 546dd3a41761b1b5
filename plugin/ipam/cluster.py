"""What operators keep in etcd beside the leases: pins, and when each node was last seen.

    P/pins/<namespace>/<pod>    {"vlan": 22, "address": "10.22.0.50/24"}
    P/nodes/<node>              {"seen": 1796000000}  (written with each claim and release)

A pin lets an operator move a pod to another VLAN (the article's "complex
scenario") without renaming it, or give it a known address that survives a
move to another node.
"""

from __future__ import annotations

import ipaddress
import json

from plugin import names
from plugin.errors import AllocationError
from plugin.ipam.model import Pin
from plugin.ipam.stores.etcd_client import EtcdConnection, delete_op, put_op, unchanged


def pin_key(prefix: str, namespace: str, pod: str) -> str:
    return f"{prefix}/pins/{namespace}/{pod}"


def read_pin(etcd: EtcdConnection, prefix: str, namespace: str, pod: str) -> Pin | None:
    """The operator's pin for a pod. The network's subnet decides the prefix length."""
    key = pin_key(prefix, namespace, pod)
    entry = etcd.get(key)
    if entry is None:
        return None
    try:
        return decode_pin(entry.value)
    except ValueError as exc:
        raise AllocationError(f"pin {key} in etcd is unreadable: {exc}",
                              f"fix it with 'vlanpipe pin set {namespace}/{pod} ...', or "
                              f"remove it with 'vlanpipe pin del {namespace}/{pod}'") from None


def write_pin(etcd: EtcdConnection, prefix: str, namespace: str, pod: str,
              value: bytes) -> None:
    """Store a pin (`value` already read back by `decode_pin`)."""
    etcd.txn([], [put_op(pin_key(prefix, namespace, pod), value)])


def delete_pin(etcd: EtcdConnection, prefix: str, namespace: str, pod: str) -> bool:
    """Remove a pod's pin; whether there was one."""
    _, responses = etcd.txn([], [delete_op(pin_key(prefix, namespace, pod))])
    return bool(responses) and int(responses[0].get("response_delete_range", {})
                                   .get("deleted", 0)) > 0


def decode_pin(value: bytes) -> Pin:
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("not JSON") from None
    if not isinstance(body, dict) or set(body) - {"vlan", "address"}:
        raise ValueError('expected {"vlan": N} with an optional "address" and nothing else')
    vlan = body.get("vlan")
    if not isinstance(vlan, int):
        raise ValueError(f"vlan {vlan!r} is not an integer")
    try:
        vlan = names.vlan(vlan)
    except ValueError as exc:
        raise ValueError(f"vlan {vlan!r} {exc}") from None
    address = body.get("address")
    if address is None:
        return Pin(vlan)
    if not isinstance(address, str):
        raise ValueError(f"address {address!r} is not a string")
    return Pin(vlan, ipaddress.ip_interface(address.strip()))


def nodes_seen(etcd: EtcdConnection, prefix: str) -> dict[str, float]:
    """When each node was last seen; an unreadable entry counts as not seen."""
    base = f"{prefix}/nodes/"
    seen = {}
    for entry in etcd.scan(base):
        try:
            seen[entry.key[len(base):]] = float(json.loads(entry.value)["seen"])
        except (ValueError, KeyError, TypeError):
            continue
    return seen


def node_revision(etcd: EtcdConnection, prefix: str, node: str) -> int:
    """The revision of a node's stamp, 0 if it has none."""
    entry = etcd.get(f"{prefix}/nodes/{node}")
    return entry.mod_revision if entry is not None else 0


def forget_node(etcd: EtcdConnection, prefix: str, node: str, revision: int) -> bool:
    """Delete the stamp of a node freed for good, if it stamped nothing since `revision`:
    a stamp of an earlier release would keep the leases from being marked indexed."""
    key = f"{prefix}/nodes/{node}"
    won, _ = etcd.txn([unchanged(key, revision)], [delete_op(key)])
    return won
