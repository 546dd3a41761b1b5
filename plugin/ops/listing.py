"""`list`: one row per attachment the plugin owns, found in OVSDB or in its records.

Ports are found by the ownership marks (`owner=vlanpipe` and this node's name),
never by name: a port the plugin did not mark is never listed as its own, and
neither is one another node's plugin marked on a shared Open vSwitch (gc works
from this list, so it never touches those either).

A port marked with another node's name that this node's own records name was made
here under an earlier `node_name`: it is listed as `marked for node OLD` (not
`port missing`), which gc leaves alone and doctor explains. It is not adopted:
the old name is also on the pod's leases and in etcd (see `doctor`'s node name check).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from pipework_wrapper import iproute
from pipework_wrapper.ovs import Ovs
from plugin.config.schema import Config
from plugin.core import marks
from plugin.core.records import RecordStore
from plugin.identity import Identified, Identity
from plugin.ops import uplink
from plugin.ops.liveness import Liveness
from plugin.ipam.mac import mac_for

class State(str, Enum):
    """What a row is: gc and doctor decide on these, never on the text `list` shows (a
    str, so `--json` gives the value)."""

    OK = "ok"
    GONE = "container gone"
    MISSING = "port missing"
    BROKEN = "interface error"
    UNJUDGED = "docker down"
    RENAMED = "marked for node"  # made here under an earlier node_name (`marked_for`)
    UPLINK = "uplink"
    DAMAGED = "damaged record"


@dataclass(frozen=True)
class Row(Identified):
    """One attachment as `list` shows it (`who`, without the node: the list is this node's):
    `state` is the text, `kind` what gc acts on."""

    who: Identity
    port: str
    bridge: str
    vlan: int | None
    address: str
    mac: str
    state: str
    plumber: str = ""
    netns: str = ""
    netns_id: str = ""
    kind: State = State.OK
    marked_for: str = ""  # the node name its port carries, for State.RENAMED


def rows(config: Config, liveness: Liveness) -> list[Row]:
    """One row per attachment found in OVSDB or in the records, with its state."""
    rows = {}
    uplinks = []
    records, damaged = RecordStore(config.state_dir).all()
    macs = {record.port: record.mac for attached in records.values() for record in attached}
    elsewhere: dict[str, str] = {}  # port -> the node name it is marked with, if not ours
    for port in Ovs(config.ovs_timeout).ports(**marks.owned()):
        found = marks.Marks.read(port.external_ids)
        if found is None:  # the uplink: no pod's
            if config.uplink and port.name == config.uplink.interface:
                uplinks.append(Row(Identity(pod="(uplink)", interface=port.name), port.name,
                                   port.bridge, None, "", "",
                                   f"uplink, trunks {uplink.describe(port)}", kind=State.UPLINK))
            continue
        if found.node != config.node_name:
            # another node's (a second plugin on this Open vSwitch): not ours to list,
            # unless our records name it (below)
            elsewhere[port.name] = found.node
            continue
        alive = liveness.alive(found.infra_id, found.plumber, found.netns, found.netns_id,
                               port.name)
        kind = _state(alive, broken=bool(port.error) or not iproute.link_exists(port.name))
        rows[port.name] = Row(replace(found.who, node=""), port.name, port.bridge, port.tag,
                              found.address, macs.get(port.name) or _mac(found.address), kind.value,
                              found.plumber, found.netns, found.netns_id, kind)
    for infra, attached in records.items():
        for record in attached:
            if record.port not in rows:
                alive = liveness.alive(infra, record.plumber, record.netns, record.netns_id,
                                       record.port)
                renamed = elsewhere.get(record.port, "")
                kind = _state(alive, broken=False, missing=True, renamed=bool(renamed))
                text = f"{kind.value} {renamed}" if renamed and kind is State.RENAMED \
                    else kind.value
                rows[record.port] = Row(replace(record.who, infra_id=infra), record.port,
                                        record.bridge, record.vlan,
                                        ",".join(record.addresses), record.mac, text,
                                        record.plumber, record.netns, record.netns_id, kind,
                                        renamed)
    listed = sorted(rows.values(), key=lambda r: (r.namespace, r.pod, r.interface))
    return listed + uplinks + [
        Row(Identity(), d.path, "", None, "", "", f"damaged record: {d.reason}",
            kind=State.DAMAGED) for d in damaged]


def _state(alive: bool | None, broken: bool, missing: bool = False,
           renamed: bool = False) -> State:
    if alive is False:
        return State.GONE
    if renamed:
        return State.RENAMED
    if missing:
        return State.MISSING
    if broken:
        return State.BROKEN
    return State.UNJUDGED if alive is None else State.OK


def _mac(addresses: str) -> str:
    """The MAC that follows from a port's address marks ("a/len,b/len"): for a port without
    a record only (the record holds the MAC the pod got, a requested one included)."""
    try:
        return mac_for(*addresses.split(","))
    except (ValueError, IndexError):
        return ""
