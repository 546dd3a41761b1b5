"""The plugin's OpenFlow rules as a bridge holds them, judged against what they should be.

`flows.py` says what the rules are; this module reads them back (one dump per
bridge, by the plugin's cookie prefix) and judges them: whether an attachment's
rules are exactly those its record asks for, how many frames its drop rules
stopped, which cookies belong to ports that no longer exist, which of the
bridge's default rules are missing.

The order rules go in (`plugin/ops/reconcile.py` follows it): a bridge in
`fail_mode=secure` without rules forwards nothing, and one whose table 0 sends
everything to an empty table 1 forwards nothing either. On a bridge an
ovs-vswitchd restart left empty, the forwarding rule (table 1) goes first,
then each attachment's rules, then table 0's default: no pod is admitted before
its guard. Switching a live bridge to secure cannot be done without a cut:
Open vSwitch flushes every rule of a bridge without a controller when its fail
mode changes (checked here: a rule of another cookie is gone too), so the
switch is followed at once by one bundle holding the default rules, every
attachment's and the rules others had (`others`), read before it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Iterable, Mapping

from pipework_wrapper.ofctl import Flow, Ofctl
from pipework_wrapper.ovs import Port
from plugin.core import flows
from plugin.ipam.mac import mac_for

if TYPE_CHECKING:
    from plugin.config.schema import Config
    from plugin.core.records import Attachment

SECURE = "secure"  # the fail mode in which a bridge without rules forwards nothing
Key = tuple[int, int, frozenset, str]  # table, priority, match fields, actions


def line_key(line: str) -> Key:
    """What identifies a wanted `add ...` line once the switch has it: its table, priority,
    match fields (in any order) and actions; the cookie is judged by the dump's filter."""
    body = line.split(" ", 1)[1]
    match, actions = body.split(",actions=", 1)
    fields, table, priority = [], 0, 32768
    for part in match.split(","):
        name, _, value = part.partition("=")
        if name == "table":
            table = int(value)
        elif name == "priority":
            priority = int(value)
        elif name != "cookie":
            fields.append(part)
    return table, priority, frozenset(fields), actions


def flow_key(flow: Flow) -> Key:
    return flow.table, flow.priority, frozenset(p for p in flow.match.split(",") if p), \
        flow.actions


def same(lines: list[str], found: list[Flow]) -> bool:
    """Whether the GUARD rules `found` under one cookie are exactly `lines` (the cookie's
    rules in other tables, an egress meter's, are another feature's)."""
    found = guarding(found)
    return len(found) == len(lines) and {flow_key(f) for f in found} == set(map(line_key, lines))


def guarding(found: Iterable[Flow]) -> list[Flow]:
    """Of an attachment's rules, its guard's (table GUARD)."""
    return [f for f in found if f.table == flows.GUARD]


def by_cookie(found: Iterable[Flow]) -> dict[int, list[Flow]]:
    grouped: dict[int, list[Flow]] = {}
    for flow in found:
        grouped.setdefault(flow.cookie, []).append(flow)
    return grouped


def ours(ofctl: Ofctl, bridge: str) -> dict[int, list[Flow]]:
    """Every rule of `bridge` with the plugin's cookie prefix, by cookie (one read)."""
    return by_cookie(ofctl.dump(bridge, flows.PREFIX, flows.MASK))


def wanted(record: "Attachment", port: Port | None, node_default: bool) -> list[str] | None:
    """The `add` lines `record`'s port must have ([] when unguarded), or None when they
    cannot be known: the port is missing or has no OpenFlow number (an interface error,
    or ovs-vswitchd has not taken it yet)."""
    if port is None or port.ofport is None or not record.addresses:
        return None  # (no addresses: only intended, setup has not finished)
    if not record.mac:  # a first-release record may lack it: the MAC follows from them
        record = replace(record, mac=mac_for(*record.addresses))
    guard = flows.guard_of(record, port.ofport, node_default)
    return flows.guard_rules(guard) if guard is not None else []


def differences(record: "Attachment", port: Port | None, found: list[Flow],
                node_default: bool) -> list[str]:
    """How the rules under `record`'s cookie differ from what its record asks for (CHECK,
    doctor); `found`: the rules under that cookie."""
    lines, found = wanted(record, port, node_default), guarding(found)
    if lines is None:
        return [f"port {record.port} has no OpenFlow number, so its rules cannot be judged"]
    if same(lines, found):
        return []
    if not lines:
        return [f"port {record.port} is not guarded by its record, but {len(found)} rule(s) "
                "of its cookie are on the bridge"]
    if not found:
        return [f"port {record.port} has none of its {len(lines)} port security rules: "
                "it is unguarded"]
    return [f"port {record.port} has {len(found)} port security rule(s) that differ from "
            f"the {len(lines)} its record asks for"]


def recorded_differences(config: "Config", ofctl: Ofctl, ports: Mapping[str, Port],
                         records: list["Attachment"]) -> list[str]:
    """How the rules of these records (one container's, whose marked ports by name are
    `ports`) differ from what each asks for (CNI CHECK). Judged for records that say (`port_security`, written by setups that
    install rules); a record of an earlier release, whose ADD made none, is doctor's and
    reconcile's (doctor names it unguarded until reconcile has given it its rules)."""
    judged = [r for r in records if r.port_security]
    if not judged:
        return []
    return [line for record in judged if record.port in ports  # a missing one: said before
            for line in differences(record, ports[record.port],
                                    guarding(ofctl.dump(record.bridge,
                                                        flows.cookie(record.port))),
                                    config.port_security)]


def drops(found: list[Flow]) -> int:
    """Frames an attachment's rules dropped: what its port tried to send as someone else."""
    return sum(f.packets for f in found if f.actions == "drop")


def forward_line() -> str:
    return next(line for line in flows.bridge_rules() if f"table={flows.FORWARD}," in line)


def guard_default_line() -> str:
    return next(line for line in flows.bridge_rules() if f"table={flows.GUARD}," in line)


def bridge_missing(found: dict[int, list[Flow]]) -> list[str]:
    """The bridge's own default rules it lacks (in the order they must be added)."""
    have = {flow_key(f) for f in found.get(flows.BRIDGE, [])}
    return [line for line in (forward_line(), guard_default_line())
            if line_key(line) not in have]


def stale(found: dict[int, list[Flow]], ports: Iterable[str]) -> list[int]:
    """Cookies of attachment rules whose port is no longer on the bridge. Read the rules
    before the ports: a setup adds its port before its rules, so a rule read first
    belongs to a port the later read still lists, unless that port is gone."""
    live = {flows.cookie(name) for name in ports}
    return sorted(c for c in found if c != flows.BRIDGE and c not in live)


def sweep(ofctl: Ofctl, bridge: str, cookies: list[int]) -> None:
    """Delete the rules of these cookies, and only those, in one ovs-ofctl."""
    ofctl.delete(bridge, [flows.forget(c) for c in cookies])


def bridge_lines() -> list[str]:
    """The bridge's default rules, forwarding first (see the module's docstring)."""
    return [forward_line(), guard_default_line()]


def others(everything: list[Flow]) -> list[str]:
    """`add` lines that put back the rules of others on a bridge, and the plugin's own
    outside GUARD (an egress meter's): OVS flushes every rule of a bridge when its fail
    mode changes, so they are read first and restored with the guard's in one bundle.
    OVS's own default (cookie 0, table 0, priority 0, NORMAL: standalone mode's) and the
    bridge's default rules are left out: the plugin's defaults replace them."""
    kept = [f for f in everything if (not flows.ours(f.cookie) or (
                f.table != flows.GUARD and f.cookie != flows.BRIDGE))
            and (f.cookie, f.table, f.priority, f.match) != (0, 0, 0, "")]
    return [f"add cookie={f.cookie:#x},table={f.table},priority={f.priority}"
            f"{',' + f.match if f.match else ''},actions={f.actions}" for f in kept]
