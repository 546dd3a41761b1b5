"""`gc`: sweep what belongs to gone pods or broken interfaces.

It starts from the ownership marks in OVSDB, the plugin's records and the
allocators' leases, never from names. A pod's sandbox is judged the way its
plumber reaches it (`liveness.py`): Docker for a container, the namespace
itself for a CRI runtime's. What it finds is only a candidate: under the
pod's lock, just before anything is removed, it is asked about again, so a
pod set up while gc ran is never touched. Without Docker, Docker's containers
are not judged: each is reported as such (the command exits with Docker's code
after the rest is done), never counted alive in silence.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from pipework_wrapper import iproute
from pipework_wrapper.ovs import Ovs
from plugin import locks, names
from plugin.calllog import CallLog
from plugin.config import cache
from plugin.config.schema import Config
from plugin.core import marks
from plugin.core.attach import Core
from plugin.core.bandwidth import Limits
from plugin.core.records import RecordStore
from plugin.errors import Failure
from plugin.identity import Identity
from plugin.ops import conflicts
from plugin.ops.actions import (FAILED, KEPT, NOT_JUDGED, REMOVED, SKIPPED, WOULD_REMOVE,
                                Action)
from plugin.ops.listing import Row, State, rows
from plugin.ops.liveness import Liveness

STALE_TEMP_SECONDS = 60.0


@dataclass
class Candidate:
    """A pod gc would collect, and the check it must still pass under the pod's lock."""

    pod: Identity
    check: Callable[[], bool]  # asked under the pod's lock: still to be collected?
    interfaces: set[str] = field(default_factory=set)
    actions: list[Action] = field(default_factory=list)  # what collecting it removes


def sweep(config: Config, log: CallLog, dry_run: bool = False) -> list[Action]:
    """Remove what belongs to gone pods or broken interfaces; return every removal made (or
    that would be made), every one refused under the lock, and everything not judged."""
    liveness = Liveness(config)
    core = Core(config, log)
    done: list[Action] = []
    candidates: dict[str, Candidate] = {}

    def propose(who: Identity, what: str, why: str, check: Callable[[], bool]) -> None:
        whose = f"{who.namespace}/{who.pod}"
        if not names.plaintext(who.infra_id):
            done.append(Action(SKIPPED, what, whose,
                               f"{why}, but its container id {who.infra_id!r} is malformed"))
            return
        found = candidates.setdefault(who.infra_id, Candidate(who.pod_part(), check))
        found.interfaces.add(who.interface)
        found.actions.append(Action(WOULD_REMOVE, what, whose, why))

    listed = rows(config, liveness)
    unjudged = f"Docker does not answer at {config.docker_url}"
    for row in listed:
        what = f"port {row.port} ({row.interface}{', ' + row.address if row.address else ''})"
        if row.kind is State.GONE:
            propose(row.who, what, "its container is gone", _gone(liveness, row))
        elif row.kind is State.BROKEN:
            propose(row.who, what, "its interface is broken",
                    _broken(config, row.infra_id, row.interface))
        elif row.kind is State.UNJUDGED:
            done.append(Action(NOT_JUDGED, what, f"{row.namespace}/{row.pod}", unjudged))
    # Leases the allocators hold for this node (in etcd, another node's containers cannot
    # be seen from here): a lease whose pod is gone, or that no record and no port holds.
    by_pod = {r.infra_id: r for r in listed if r.infra_id}
    verdicts: dict[str, bool | None] = {}

    def verdict(infra: str) -> bool | None:
        if infra not in verdicts:
            verdicts[infra] = _lease_alive(liveness, by_pod.get(infra), infra)
        return verdicts[infra]

    for owner, lease in core.allocators.collectable(lambda infra: verdict(infra) is not False):
        row = by_pod.get(owner.infra_id)
        propose(owner, f"lease {lease.address} on {lease.network}",
                "its container is gone" if row else "no record and no port holds it",
                _gone(liveness, row) if row else _unattached(core, owner.infra_id))
    for owner, lease in core.allocators.collectable(lambda infra: verdict(infra) is not None):
        done.append(Action(NOT_JUDGED, f"lease {lease.address} on {lease.network}",
                           f"{owner.namespace}/{owner.pod}", unjudged))
    for found in candidates.values():
        done += found.actions if dry_run else _collect(core, found)
    done += netns_links(dry_run)
    done += stale_rules(config, dry_run)
    done += _leftover_files(config, dry_run)
    done += _limits_left(config, dry_run)
    return done + conflicts.kept(config)


def stale_rules(config: Config, dry_run: bool) -> list[Action]:
    """The plugin's rules whose port no longer exists (del-port leaves them, and a new port
    given the same OpenFlow number would inherit them), one action per bridge; only
    rules with the plugin's cookies are read or removed (`core/rules.py`)."""
    from pipework_wrapper.ofctl import Ofctl
    from plugin.core import rules
    from plugin.ops.reconcile import bridges_in_use

    ovs, ofctl = Ovs(config.ovs_timeout), Ofctl(config.ovs_timeout)
    actions = []
    try:
        bridges = bridges_in_use(config, ovs.ports()) & ovs.bridges()
    except Failure as exc:
        return [Action(FAILED, "the plugin's OpenFlow rules", "", exc.line())]
    for bridge in sorted(bridges):
        what = f"OpenFlow rules on bridge {bridge}"
        try:
            found = rules.ours(ofctl, bridge)  # before the ports: see rules.stale
            gone = rules.stale(found, [p.name for p in ovs.ports() if p.bridge == bridge])
            if gone and not dry_run:
                rules.sweep(ofctl, bridge, gone)
        except Failure as exc:
            actions.append(Action(FAILED, what, "", exc.line()))
            continue
        if gone:
            count = sum(len(found[c]) for c in gone)
            actions.append(Action(WOULD_REMOVE if dry_run else REMOVED,
                                  f"{count} {what}", "",
                                  f"the {len(gone)} port(s) they guarded no longer exist"))
    return actions


def _collect(core: Core, found: Candidate) -> list[Action]:
    """Detach one candidate if, under its lock, it is still to be collected."""
    verdict: list[bool] = []
    try:
        core.detach(found.pod, found.interfaces,
                    only_if=lambda: verdict.append(found.check()) or verdict[-1])
    except Failure as exc:
        return [replace(a, outcome=FAILED, why=f"{a.why}; {exc.line()}") for a in found.actions]
    if not all(verdict):
        return [replace(a, outcome=KEPT, why="it is in use again") for a in found.actions]
    return [replace(a, outcome=REMOVED) for a in found.actions]


def netns_links(dry_run: bool) -> list[Action]:
    """The /var/run/netns links a failed pipework left pointing to a dead process. One that
    vanishes between the look and the unlink was removed all the same."""
    found = []
    for pid in iproute.dangling_netns_links():
        if dry_run or iproute.remove_netns_link(pid):
            found.append(Action(WOULD_REMOVE if dry_run else REMOVED, iproute.netns_link(pid),
                                "", "a dangling namespace link a failed pipework left"))
    return found


def _lease_alive(liveness: Liveness, row: Row | None, infra: str) -> bool | None:
    """A lease's pod, as its attachment is judged; with no record and no port, nothing holds
    the lease whatever Docker says (setup records its intent before it claims): it is a
    candidate, judged again under the pod's lock (`_unattached`)."""
    if row is not None:
        return liveness.alive(infra, row.plumber, row.netns, row.netns_id, row.port)
    return False


def _gone(liveness: Liveness, row: Row) -> Callable[[], bool]:
    return lambda: not liveness.alive_now(row.infra_id, row.plumber, row.netns, row.netns_id,
                                          row.port)


def _unattached(core: Core, infra: str) -> Callable[[], bool]:
    """A lease whose pod has neither record nor port: still none under the lock."""
    return lambda: not core.records.load(infra) and not Ovs(
        core.config.ovs_timeout).ports(**marks.of_container(infra))


def _broken(config: Config, infra: str, interface: str) -> Callable[[], bool]:
    """Asked under the pod's lock: the port is still in error or without its veth."""
    def broken() -> bool:
        ports = [p for p in Ovs(config.ovs_timeout).ports(**marks.of_container(infra))
                 if (m := marks.Marks.read(p.external_ids)) and m.interface == interface]
        return all(p.error or not iproute.link_exists(p.name) for p in ports)
    return broken


def _limits_left(config: Config, dry_run: bool) -> list[Action]:
    """What enforced the bandwidth limits of ports that are gone (a teardown that found no
    record, a killed call): QoS and Queue rows of the plugin that no port uses, and the
    plugin's meters whose port number no port of the plugin holds."""
    ovs = Ovs(config.ovs_timeout)
    limits = Limits(ovs, config.ovs_timeout)
    outcome = WOULD_REMOVE if dry_run else REMOVED
    qos, queues = ovs.unreferenced_qos(**marks.owned())
    if not dry_run:
        ovs.destroy_qos(qos, queues)
    actions = [Action(outcome, f"{table} {uuid}", "", "an ingress limit no port uses")
               for table, uuids in (("QoS", qos), ("Queue", queues)) for uuid in uuids]
    bridges = {config.bridge, *config.cni.bridges, *(a.bridge for a in config.attachments)}
    for bridge in sorted(bridges & ovs.bridges()):
        for meter in limits.stale_meters(bridge):
            if not dry_run:
                limits.ofctl.delete_meter(bridge, meter)
            actions.append(Action(outcome, f"meter {meter} on {bridge}", "",
                                  "an egress limit of a port that is gone"))
    return actions


def _leftover_files(config: Config, dry_run: bool) -> list[Action]:
    """Files killed calls left: unused pod locks, half-written records and config cache
    entries. (A cache entry of a config file that is gone stays, a few hundred bytes until
    the next reboot: the file may come back.)"""
    records = RecordStore(config.state_dir)
    outcome = WOULD_REMOVE if dry_run else REMOVED
    actions = [Action(outcome, path, "", "a pod lock no record uses") for path in
               locks.sweep_unused(os.path.join(config.state_dir, "locks"), records.has, dry_run)]
    for folder in (records.directory, cache.RUNTIME_DIR):
        actions += [Action(outcome, path, "", "a half-written file of a killed call")
                    for path in sweep_half_written(folder, dry_run)]
    return actions


def sweep_half_written(folder: str, dry_run: bool,
                       older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """The `.tmp-*` files of `folder` that a killed call was writing (a live write lasts
    milliseconds): records and config cache entries are both written that way. Returns
    their paths; one that vanishes before the unlink was removed all the same."""
    try:
        names_ = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    found = []
    for name in names_:
        path = os.path.join(folder, name)
        try:
            if not name.startswith(".tmp-") or time.time() - os.lstat(path).st_mtime <= older_than:
                continue
        except FileNotFoundError:
            continue
        if not dry_run:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        found.append(path)
    return found
