"""The lease record both stores keep per address: JSON, self-describing, checked on read.

A record names its kind, network and address besides its owner, so a file or
key that does not say exactly what its name says is recognised as corrupt or
foreign: it is reported and its address stays out of use.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from typing import Any

from plugin.identity import Identity

TYPE_CHECKING = False  # the records' module is not loaded on teardown (issue 23)
if TYPE_CHECKING:
    from plugin.ipam.model import IPAddress, IPInterface, IPNetwork


KIND = "vlanpipe.lease/v1"
# The owner (an attachment's Identity) is stored as these fields at the top level; listed,
# not derived, so that records stay readable whatever the type gains.
OWNER_FIELDS = ("infra_id", "interface", "namespace", "pod", "node")


@dataclass(frozen=True)
class Record:
    """A lease as a store keeps it: the address, its owner and when it was claimed.

    `conflict`: the MAC of another host that answered for the address when `owner`'s
    setup probed the VLAN (plugin/core/ports.py). Such a record holds the address for
    nobody (no owner index names it): no claim can take it, gc never frees it, only
    `vlanpipe lease clear` does; `created` is then when the conflict was found."""

    network: str
    address: IPInterface
    owner: Identity
    created: str
    conflict: str = ""


def new_record(network: str, address: IPInterface, owner: Identity, conflict: str = "") -> Record:
    return Record(network, address, owner,
                  time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), conflict)


def encode(record: Record) -> bytes:
    body: dict[str, Any] = {"kind": KIND, "network": record.network,
                            "address": str(record.address)}
    body.update({name: getattr(record.owner, name) for name in OWNER_FIELDS})
    body["created"] = record.created
    if record.conflict:
        body["conflict"] = record.conflict
    return json.dumps(body, sort_keys=True).encode()


def decode(data: bytes, network: str, address: IPAddress | None = None) -> Record:
    """The record stored under `address` (if given) of `network`; ValueError says why not."""
    body = _body(data, network)
    try:
        stored = ipaddress.ip_interface(str(body.get("address")))
    except ValueError:
        raise ValueError(f"bad address {body.get('address')!r}") from None
    if address is not None and stored.ip != address:
        raise ValueError(f"holds address {stored.ip}, not {address}")
    return Record(network, stored, _owner(body), str(body.get("created", "")),
                  body.get("conflict", ""))


def listed(data: bytes, network: str, subnet: IPNetwork, name: str) -> tuple[Identity, str] | None:
    """The owner and address text of the valid record keyed `name` in `subnet`, when its
    address is `name` as str() writes it, told by C calls alone; None when that cannot be
    told so (`decode` then says what the record holds, or what is wrong with it).

    `list --cluster` reads 100,000 records: parsing each address into an object was half
    of its CPU (issue 23). A None costs a second, full read, so both read alike."""
    try:
        body = _body(data, network)
        owner = _owner(body)
    except ValueError:
        return None
    text = body.get("address")
    if text != f"{name}/{subnet.prefixlen}" or not _spelled(name, subnet):
        return None
    return owner, text


def _body(data: bytes, network: str) -> dict[str, Any]:
    """The record's JSON, checked to be a record of `network`."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc.__class__.__name__})") from None
    if not isinstance(body, dict) or body.get("kind") != KIND:
        raise ValueError(f"not a {KIND} record")
    if body.get("network") != network:
        raise ValueError(f"names network {body.get('network')!r}, not {network!r}")
    return body


def _owner(body: dict[str, Any]) -> Identity:
    fields = {name: body.get(name) for name in OWNER_FIELDS}
    owner_fields = {k: v for k, v in fields.items() if isinstance(v, str)}
    if len(owner_fields) != len(OWNER_FIELDS) or not fields["infra_id"] or not fields["interface"]:
        raise ValueError("owner fields missing or not strings")
    if not isinstance(body.get("conflict", ""), str):
        raise ValueError("conflict is not a MAC")
    return Identity(**owner_fields)


def _spelled(text: str, subnet: IPNetwork) -> bool:
    """Whether `text` is an address of `subnet` exactly as str() writes it. The C library
    reads it and writes it back (the same canonical form as ipaddress, RFC 5952, except
    for an IPv4 tail in IPv6, which is left to ipaddress)."""
    family = socket.AF_INET if subnet.version == 4 else socket.AF_INET6
    try:
        packed = socket.inet_pton(family, text)
    except OSError:
        return False
    if socket.inet_ntop(family, packed) != text or (family == socket.AF_INET6 and "." in text):
        return False
    number = int.from_bytes(packed, "big")
    return int(subnet.network_address) <= number <= int(subnet.broadcast_address)
