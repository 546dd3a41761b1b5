"""`reconcile`: put back every rule the plugin owns, and only those.

OpenFlow rules are not stored in OVSDB: an ovs-vswitchd restart drops them all,
and attachments recorded by earlier releases never had any. Reconcile makes each
bridge the plugin uses fail closed with its default rules, gives each of this
node's attachments exactly the rules its record asks for (one bundle per
attachment, under the pod's lock, so it never runs beside the pod's setup or
teardown), and sweeps rules whose port no longer exists (del-port leaves them,
and a new port given the same OpenFlow number would inherit them). It reads and
changes only rules with the plugin's cookie prefix (no replace-flows, no
flush), with one exception Open vSwitch imposes: switching a bridge to secure
flushes all of its rules, so that one time (an upgrade, a new bridge) the rules
of others are read first and put back in the same bundle as the plugin's.

Idempotent: when everything is in place it only reads (one ovs-vsctl and one
dump of the plugin's rules per bridge, one more ovs-vsctl) and changes nothing. `init` runs it; so does the watcher after
an ovs-vswitchd restart.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field

from pipework_wrapper.ofctl import Flow, Ofctl
from pipework_wrapper.ovs import Ovs, Port
from plugin.config.schema import Config
from plugin.core import flows, marks, rules
from plugin.core.bandwidth import Limits
from plugin.core.records import Attachment, RecordStore
from plugin.errors import Failure
from plugin.locks import pod_lock


@dataclass
class Outcome:
    """What one reconcile changed (one line per bridge or pod), and what it could not do."""

    changed: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    bridges_failed: list[str] = field(default_factory=list)  # not secured: init fails on it


def bridges_in_use(config: Config, ports: list[Port]) -> set[str]:
    """The bridges the plugin uses on this node: those its config names (init makes or
    adopts them) and every bridge holding one of this node's ports."""
    named = {a.bridge for a in config.attachments} | (
        {config.uplink.bridge} if config.uplink else set()) | set(config.cni.bridges)
    return named | {p.bridge for p in ports if p.bridge and _this_node(config, p)}


def reconcile(config: Config) -> Outcome:
    """Every bridge in use fails closed with its rules; every attachment of this node has
    its record's rules; rules of gone ports are swept. See the module's docstring."""
    ovs, ofctl = Ovs(config.ovs_timeout), Ofctl(config.ovs_timeout)
    outcome = Outcome()
    modes = ovs.fail_modes()
    for bridge in sorted(bridges_in_use(config, ovs.ports()) & set(modes)):
        at = len(outcome.changed)  # the bridge's line goes before its pods'
        try:
            if modes[bridge] != rules.SECURE:
                changes = _make_secure(config, ovs, ofctl, bridge, modes[bridge], outcome)
            else:
                changes = _restore(config, ovs, ofctl, bridge, outcome)
        except Failure as exc:
            outcome.failures.append(exc)
            outcome.bridges_failed.append(bridge)
            outcome.changed.append(f"bridge {bridge}: not reconciled: {exc.line()}")
            continue
        if changes:
            outcome.changed.insert(at, f"bridge {bridge}: " + "; ".join(changes))
    return outcome


def _restore(config: Config, ovs: Ovs, ofctl: Ofctl, bridge: str, outcome: Outcome) -> list[str]:
    """A bridge already in secure mode: the forwarding default, then each attachment's rules
    (one bundle each, under its pod's lock), then the admission default (see
    core/rules.py for why in this order); then the sweep."""
    found = rules.ours(ofctl, bridge)  # before the ports: see rules.stale
    on_bridge = [p for p in ovs.ports() if p.bridge == bridge]
    records = _records(config)
    missing = rules.bridge_missing(found)
    if rules.forward_line() in missing:
        ofctl.bundle(bridge, [rules.forward_line()])
    for port in on_bridge:
        record = records.get(port.name)
        if record is not None and _this_node(config, port):
            mine = found.get(flows.cookie(port.name), [])
            for line in (_guard(config, ovs, ofctl, record, port, mine, outcome),
                         _limits(config, ovs, ofctl, record, port, mine, outcome)):
                if line:
                    outcome.changed.append(line)
    if rules.guard_default_line() in missing:
        ofctl.bundle(bridge, [rules.guard_default_line()])
    changes = ["default rules installed"] if missing else []
    gone = rules.stale(found, [p.name for p in on_bridge])
    rules.sweep(ofctl, bridge, gone)
    if gone:
        changes.append(f"swept the rules of {len(gone)} port(s) that no longer exist")
    return changes


def _limits(config: Config, ovs: Ovs, ofctl: Ofctl, record: Attachment, port: Port,
            found: list[Flow], outcome: Outcome) -> str:
    """An egress-limited attachment whose meter rule is gone (an ovs-vswitchd restart drops
    meters and rules alike) gets its meter and rule back, under the pod's lock; its line,
    or "" when nothing changed. Without this the limit would be lifted until a new setup."""
    if not record.bandwidth.egress or port.ofport is None \
            or any(f.table == flows.FORWARD for f in found):
        return ""
    who = _who(record)
    try:
        with pod_lock(config.state_dir, record.infra_id, config.lock_timeout):
            current = ovs.port(record.port)
            if current is None or current.ofport != port.ofport:
                return ""  # torn down or replaced meanwhile: its setup made its own
            Limits(ovs, config.ovs_timeout, ofctl).restore(record, port.ofport)
    except Failure as exc:
        outcome.failures.append(exc)
        return f"{who}: egress limit not restored: {exc.line()}"
    return f"{who}: egress limit restored"


def _make_secure(config: Config, ovs: Ovs, ofctl: Ofctl, bridge: str, mode: str,
                 outcome: Outcome) -> list[str]:
    """A bridge not yet failing closed (an upgrade, or a bridge init just made). Open vSwitch
    flushes every rule of the bridge when its fail mode changes, so under the locks of all
    this node's pods on it (in one order: no deadlock with another reconcile), the rules
    that must survive are read, the mode switched, and all put back in one bundle: the
    defaults, each attachment's, and those of others."""
    pods = sorted({p.external_ids.get(marks.KEYS["infra_id"], "") for p in ovs.ports()
                   if p.bridge == bridge and _this_node(config, p)} - {""})
    with ExitStack() as held:
        for infra_id in pods:
            held.enter_context(pod_lock(config.state_dir, infra_id, config.lock_timeout))
        everything = ofctl.dump(bridge, 0, 0)
        on_bridge = [p for p in ovs.ports() if p.bridge == bridge]
        records = _records(config)
        guards, guarded = [], []
        for port in on_bridge:
            record = records.get(port.name)
            lines = rules.wanted(record, port, config.port_security) \
                if record is not None and _this_node(config, port) else None
            if lines:
                guards += lines
                guarded.append(f"{_who(record)}: guard rules installed")
        ours = rules.by_cookie(f for f in everything if flows.ours(f.cookie))
        ovs.set_fail_mode(bridge, rules.SECURE)
        ofctl.bundle(bridge, rules.bridge_lines() + guards + rules.others(everything))
    outcome.changed += guarded
    gone = rules.stale(ours, [p.name for p in on_bridge])
    swept = [f"swept the rules of {len(gone)} port(s) that no longer exist"] if gone else []
    return [f"fail_mode {rules.SECURE} (was {mode or 'standalone'}), default rules "
            "installed", *swept]


def _records(config: Config) -> dict[str, Attachment]:
    """This node's records by port (damaged files are doctor's)."""
    found, _ = RecordStore(config.state_dir).all()
    return {r.port: r for attached in found.values() for r in attached}


def _who(record: Attachment) -> str:
    return f"{record.namespace}/{record.pod} {record.interface} (port {record.port})"


def _this_node(config: Config, port: Port) -> bool:
    found = marks.Marks.read(port.external_ids)
    return found is not None and found.node == config.node_name


def _guard(config: Config, ovs: Ovs, ofctl: Ofctl, record: Attachment, port: Port,
           found: list[Flow], outcome: Outcome) -> str:
    """One attachment's rules made exactly its record's, if they are not; its line, or ""
    when nothing changed. Judged from the bulk reads first, then again under the pod's
    lock (a setup or teardown may have run since), where the change is made."""
    lines = rules.wanted(record, port, config.port_security)
    if lines is None or rules.same(lines, found):
        return ""  # no OpenFlow number: a broken interface, which gc removes
    who = _who(record)
    try:
        with pod_lock(config.state_dir, record.infra_id, config.lock_timeout):
            now = next((r for r in RecordStore(config.state_dir).load(record.infra_id)
                        if r.port == record.port), None)
            current = ovs.port(record.port)
            if now is None or current is None or current.bridge != port.bridge:
                return ""  # torn down (or moved) meanwhile: its teardown took its rules
            lines = rules.wanted(now, current, config.port_security)
            if lines is None or rules.same(lines, ofctl.dump(port.bridge,
                                                             flows.cookie(record.port))):
                return ""
            ofctl.bundle(port.bridge, [flows.unguard(record.port), *lines])
    except Failure as exc:
        outcome.failures.append(exc)
        return f"{who}: not reconciled: {exc.line()}"
    if not lines:
        return f"{who}: rules removed (its port is not guarded)"
    return f"{who}: {'rules replaced' if found else 'guard rules installed'}"
