"""doctor's view of port security: which pods are unguarded, and who tries to spoof.

A pod whose rules are missing (attached by an earlier release, or its rules lost
to an ovs-vswitchd restart nobody reconciled) can send as any other pod: a failed
row naming it. The drop counters of each pod's rules (frames its port sent as
someone else, or a router advertisement, a DHCP reply) are a row of their own,
for information: an operator sees who tries to spoof.
"""

from __future__ import annotations

from pipework_wrapper.ofctl import Flow, Ofctl
from pipework_wrapper.ovs import Ovs
from plugin.config.schema import Config
from plugin.core import flows, marks, rules
from plugin.core.records import RecordStore
from plugin.ops.listing import Row, State

SHOWN = 10
FIX = "run the plugin's reconcile command (init runs it too; vlanpipe-watch after restarts)"


def checks(config: Config, listed: list[Row]) -> list[tuple[str, bool, str, str]]:
    """(name, ok, detail, fix): the guard row, and the drops row. Only pods `list` shows
    as ok are judged here; the others have rows of their own."""
    records, _ = RecordStore(config.state_dir).all()
    by_port = {r.port: r for attached in records.values() for r in attached}
    ports = {p.name: p for p in Ovs(config.ovs_timeout).ports(**marks.owned())}
    ofctl = Ofctl(config.ovs_timeout)
    found: dict[str, dict[int, list[Flow]]] = {}
    unguarded, off, drops = [], [], []
    judged = [r for r in listed if r.kind is State.OK and r.port in by_port]
    for row in judged:
        record, port = by_port[row.port], ports.get(row.port)
        if row.bridge not in found:
            found[row.bridge] = rules.ours(ofctl, row.bridge)
        mine = found[row.bridge].get(flows.cookie(row.port), [])
        who = f"{row.namespace}/{row.pod} {row.interface}"
        problems = rules.differences(record, port, mine, config.port_security)
        if problems:
            unguarded.append(f"{who} ({problems[0]})")
        elif rules.wanted(record, port, config.port_security) == []:
            off.append(who)
        dropped = rules.drops(mine)
        if dropped:
            drops.append((dropped, who))
    off_text = f", {len(off)} unguarded by their config ({', '.join(off[:SHOWN])})" if off else ""
    if unguarded:
        guard = ("pods guarded", False, f"{len(unguarded)} of {len(judged)} attachment(s) "
                 "without the rules their record asks for, so they can send as another pod: "
                 + "; ".join(unguarded[:SHOWN]) + _more(unguarded), FIX)
    else:
        guard = ("pods guarded", True, f"{len(judged) - len(off)} attachment(s) with their "
                 f"port security rules{off_text}", "")
    drops.sort(key=lambda item: (-item[0], item[1]))
    spoof = ("pod drops", True, "frames dropped by port security: " + ", ".join(
        f"{who} {count}" for count, who in drops[:SHOWN]) + _more(drops) if drops
        else "no frame dropped by port security", "")
    return [guard, spoof]


def _more(items: list) -> str:
    return f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
