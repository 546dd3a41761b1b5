"""VLAN trunks to pods: ovs-cni's `trunk` syntax, parsed once for every config source.

`"trunk": [{"id": 100}, {"minID": 200, "maxID": 210}]` lists the VLANs a pod's port
carries tagged, in a CNI network config and per attachment in config.yaml alike.
An `id` entry may list, under `addresses`, the addresses the pod may send from on
that VLAN (port security); without them the VLAN is guarded by the pod's MAC alone.

The attachment's own VLAN (its `vlan` rule, or a pin) decides the untagged side:
- not among the trunk's VLANs: it is the native VLAN, untagged frames are in it
  (OVS `vlan_mode=native-untagged`, `tag=VLAN`), and the pod's leased address is its
  address there, untagged;
- among them: there is no native VLAN (`vlan_mode=trunk`, no tag), untagged frames
  arrive nowhere, and the pod's leased address (from that VLAN's network, on its
  interface as for any pod) is its address on that VLAN, tagged.

An empty list is refused, never written: Open vSwitch reads an empty `trunks` as
"every VLAN", and a pod must never get every VLAN by accident. One parser for
both config sources; its ValueError names the key (`trunk[1].maxID`), the value
and the fix, and each caller raises it as its own error type.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable

from plugin import names

ADDRESSES = "addresses"
EXAMPLE = '[{"id": 100}, {"minID": 200, "maxID": 210}]'


@dataclass(frozen=True)
class TrunkEntry:
    """One entry of a trunk: VLANs `low`..`high` (equal for an `id` entry), and the
    addresses the pod may send from on them (an `id` entry's only)."""

    low: int
    high: int
    addresses: tuple[str, ...] = ()

    def vlans(self) -> range:
        return range(self.low, self.high + 1)


class TrunkError(ValueError):
    """A trunk that cannot be used: which key, its value, and why (with the fix)."""

    def __init__(self, key: str, value: Any, why: str) -> None:
        super().__init__(f"{key} = {value!r} {why}")
        self.key, self.value, self.why = key, value, why


def parse(value: Any, key: str = "trunk") -> tuple[TrunkEntry, ...]:
    """The trunk `value` (ovs-cni's syntax) lists, validated; TrunkError says why not."""
    if not isinstance(value, list):
        raise TrunkError(key, value, f"must be a list of VLAN entries like {EXAMPLE}")
    if not value:
        raise TrunkError(key, value, "lists no VLAN (Open vSwitch would carry every VLAN): "
                         "list the VLANs the pod may use, or leave the key out")
    entries, owner = [], {}
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        entry = _entry(item, where)
        for vlan in entry.vlans():
            if vlan in owner:
                raise TrunkError(where, item, f"lists VLAN {vlan} again (also in "
                                 f"{owner[vlan]}): list each VLAN once")
            owner[vlan] = where
        entries.append(entry)
    return tuple(entries)


def _entry(item: Any, where: str) -> TrunkEntry:
    if not isinstance(item, dict):
        raise TrunkError(where, item, 'must be {"id": VLAN} or {"minID": VLAN, "maxID": VLAN}')
    unknown = sorted(set(map(str, item)) - {"id", "minID", "maxID", ADDRESSES})
    if unknown:
        raise TrunkError(f"{where}.{unknown[0]}", item[unknown[0]],
                         f"is not a trunk key (id, minID, maxID, {ADDRESSES})")
    if "id" in item:
        if "minID" in item or "maxID" in item:
            raise TrunkError(where, item, "gives both id and minID/maxID: use one of them")
        vlan = _vlan(item["id"], f"{where}.id")
        return TrunkEntry(vlan, vlan, _addresses(item.get(ADDRESSES, []), f"{where}.{ADDRESSES}"))
    if "minID" not in item or "maxID" not in item:
        raise TrunkError(where, item, 'needs "id", or both "minID" and "maxID"')
    if ADDRESSES in item:
        raise TrunkError(f"{where}.{ADDRESSES}", item[ADDRESSES], "applies to an id entry only: "
                         "an address belongs to one VLAN; give that VLAN its own id entry")
    low, high = _vlan(item["minID"], f"{where}.minID"), _vlan(item["maxID"], f"{where}.maxID")
    if low > high:
        raise TrunkError(f"{where}.maxID", high, f"is below minID {low}: a range runs from "
                         "minID up to maxID")
    return TrunkEntry(low, high)


def _vlan(value: Any, key: str) -> int:
    if not isinstance(value, int):  # a JSON number, never "100"
        raise TrunkError(key, value, f"must be a VLAN id as a number, {names.VLAN_MIN} to "
                         f"{names.VLAN_MAX}")
    try:
        return names.vlan(value)
    except ValueError as exc:
        raise TrunkError(key, value, str(exc)) from None


def _addresses(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TrunkError(key, value, 'must be a list of addresses like ["10.1.0.5/24"]')
    found = []
    for i, text in enumerate(value):
        try:
            if not isinstance(text, str):
                raise ValueError("not a string")
            found.append(str(ipaddress.ip_interface(text)))
        except ValueError:
            raise TrunkError(f"{key}[{i}]", text, 'must be an IP address like "10.1.0.5/24"') \
                from None
    return tuple(dict.fromkeys(found))


def vlans(trunk: Iterable[TrunkEntry]) -> list[int]:
    """Every VLAN the trunk carries, in order (empty: not a trunk)."""
    return sorted(vlan for entry in trunk for vlan in entry.vlans())


def native(trunk: Iterable[TrunkEntry], vlan: int) -> bool:
    """Whether the attachment's `vlan` is its port's untagged (native) VLAN: always without
    a trunk; with one, when the trunk does not carry `vlan` tagged (the module's docstring)."""
    return vlan not in vlans(trunk)


def outside(trunk: Iterable[TrunkEntry], allowed: frozenset[int] | None) -> int | None:
    """The first VLAN of the trunk not in `allowed` (None: every VLAN allowed)."""
    if allowed is None:
        return None
    return next((vlan for vlan in vlans(trunk) if vlan not in allowed), None)


def from_record(items: Any) -> tuple[TrunkEntry, ...]:
    """A trunk as an attachment record's JSON holds it (`asdict`); ValueError if malformed."""
    try:
        return tuple(TrunkEntry(int(i["low"]), int(i["high"]), tuple(i.get(ADDRESSES, ())))
                     for i in items or ())
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"malformed trunk ({exc})") from None
