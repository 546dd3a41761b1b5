"""`gc`: sweep what belongs to gone pods or broken interfaces.

It starts from the ownership marks in OVSDB, the plugin's records and the
allocators' leases, never from names. A pod's sandbox is judged the way its
plumber reaches it (`liveness.py`): Docker for a container, the namespace
itself for a CRI runtime's. What it finds is only a candidate: under the
pod's lock, just before anything is removed, it is asked about again, so a
pod set up while gc ran is never touched. Without Docker, Docker's containers
are not judged (and gc says so, with Docker's exit code, after doing the rest).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from pipework_wrapper import iproute
from pipework_wrapper.ovs import Ovs
from plugin import locks, names
from plugin.calllog import CallLog
from plugin.config import cache
from plugin.config.schema import Config
from plugin.core import marks
from plugin.core.attach import Core
from plugin.core.policy import PodRef
from plugin.core.records import RecordStore
from plugin.errors import DockerUnavailable, Failure
from plugin.ops.listing import Row, rows
from plugin.ops.liveness import Liveness

STALE_TEMP_SECONDS = 60.0


@dataclass
class Candidate:
    """A pod gc would collect, and the check it must still pass under the pod's lock."""

    namespace: str
    pod: str
    check: Callable[[], bool]  # asked under the pod's lock: still to be collected?
    interfaces: set[str] = field(default_factory=set)


def sweep(config: Config, log: CallLog, dry_run: bool = False) -> list[str]:
    """Remove what belongs to gone pods or broken interfaces; return what was (or would
    be) done."""
    liveness = Liveness(config)
    core = Core(config, log)
    actions: list[str] = []
    candidates: dict[str, Candidate] = {}
    unjudged = 0

    def propose(namespace: str, pod: str, infra: str, interface: str, what: str,
                check: Callable[[], bool]) -> None:
        if not names.plaintext(infra):
            actions.append(f"skip {what}: its container id {infra!r} is malformed")
            return
        candidates.setdefault(infra, Candidate(namespace, pod, check)).interfaces.add(interface)
        actions.append(f"remove {what}")

    listed = rows(config, liveness)
    for row in listed:
        what = (f"{row.state}: {row.namespace}/{row.pod} {row.interface} port {row.port} "
                f"{row.address}")
        if row.state == "container gone":
            propose(row.namespace, row.pod, row.infra_id, row.interface, what,
                    _gone(liveness, row))
        elif row.state == "interface error":
            propose(row.namespace, row.pod, row.infra_id, row.interface, what,
                    _broken(config, row.infra_id, row.interface))
        elif row.state == "docker down":
            unjudged += 1
    # Leases the allocators hold for this node (in etcd, another node's containers cannot
    # be seen from here): a lease with no attachment of its pod left, or whose pod is gone.
    by_pod = {r.infra_id: r for r in listed if r.infra_id}
    for owner, lease in core.allocators.collectable(lambda infra: _lease_alive(
            liveness, by_pod.get(infra), infra) is not False):
        row = by_pod.get(owner.infra_id)
        propose(owner.namespace, owner.pod, owner.infra_id, owner.interface,
                f"lease {lease.address} on {lease.network} of {owner.namespace}/{owner.pod} "
                f"({owner.infra_id[:12]} {owner.interface})",
                _gone(liveness, row) if row else _unattached(core, owner.infra_id))
    if not dry_run:
        for infra, found in candidates.items():
            actions += _collect(core, infra, found)
    for pid in iproute.dangling_netns_links():
        actions.append(f"remove dangling {iproute.netns_link(pid)}")
        if not dry_run:
            iproute.remove_netns_link(pid)
    actions += _leftover_files(config, dry_run)
    if unjudged:
        log.set(actions=actions)
        raise DockerUnavailable(f"Docker does not answer at {config.docker_url}: {unjudged} "
                                "attachment(s) of Docker containers were not judged",
                                "start dockerd and run gc again (the rest was swept)")
    return actions


def _collect(core: Core, infra: str, found: Candidate) -> list[str]:
    """Detach one candidate if, under its lock, it is still to be collected."""
    verdict: list[bool] = []
    try:
        core.detach(PodRef(found.namespace, found.pod, infra), found.interfaces,
                    only_if=lambda: verdict.append(found.check()) or verdict[-1])
    except Failure as exc:
        return [f"failed on {infra[:12]}: {exc.line()}"]
    return [] if all(verdict) else [f"kept {infra[:12]}: it is in use again"]


def _lease_alive(liveness: Liveness, row: Row | None, infra: str) -> bool | None:
    if row is not None:
        return liveness.alive(infra, row.plumber, row.netns, row.netns_id, row.port)
    if names.is_docker_id(infra):
        return liveness.alive(infra, "pipework")
    return False  # no port, no record, and Docker cannot be its runtime: nothing holds it


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


def _leftover_files(config: Config, dry_run: bool) -> list[str]:
    """Files killed calls left: unused pod locks, half-written records and config cache
    entries. (A cache entry of a config file that is gone stays, a few hundred bytes until
    the next reboot: the file may come back.)"""
    records = RecordStore(config.state_dir)
    actions = [f"remove unused lock {path}" for path in locks.sweep_unused(
        os.path.join(config.state_dir, "locks"), records.has, dry_run)]
    for folder in (records.directory, cache.RUNTIME_DIR):
        actions += sweep_half_written(folder, dry_run)
    return actions


def sweep_half_written(folder: str, dry_run: bool,
                       older_than: float = STALE_TEMP_SECONDS) -> list[str]:
    """The `.tmp-*` files of `folder` that a killed call was writing (a live write lasts
    milliseconds): records and config cache entries are both written that way."""
    try:
        names_ = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    actions = []
    for name in names_:
        path = os.path.join(folder, name)
        try:
            if not name.startswith(".tmp-") or time.time() - os.lstat(path).st_mtime <= older_than:
                continue
            if not dry_run:
                os.unlink(path)
        except FileNotFoundError:
            continue
        actions.append(f"remove half-written {path}")
    return actions
