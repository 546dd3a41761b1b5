"""`gc`: sweep what belongs to gone containers or broken interfaces.

It starts from the ownership marks in OVSDB, the plugin's records and the
allocators' leases, never from names, and it needs Docker: without it,
nothing can be known to be gone. What it finds is only a candidate: under the
pod's lock, just before anything is removed, the container is asked about
again, so a pod set up while gc ran is never touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from pipework_wrapper import iproute
from pipework_wrapper.docker_lookup import inspect, running_ids
from pipework_wrapper.ovs import Ovs
from plugin import locks, names
from plugin.calllog import CallLog
from plugin.config.schema import Config
from plugin.core import marks
from plugin.core.attach import Core
from plugin.core.records import RecordStore
from plugin.core.policy import PodRef
from plugin.errors import ContainerNotFound, Failure
from plugin.ops.listing import rows


STALE_TEMP_SECONDS = 60.0


@dataclass
class Candidate:
    namespace: str
    pod: str
    interfaces: set[str] = field(default_factory=set)
    broken_only: bool = True  # collected for broken ports only: the container lives


def sweep(config: Config, log: CallLog, dry_run: bool = False) -> list[str]:
    """Remove what belongs to gone containers or broken interfaces; return what was (or
    would be) done."""
    alive = running_ids(config.docker_url, config.docker_timeout)
    core = Core(config, log)
    actions: list[str] = []
    candidates: dict[str, Candidate] = {}

    def propose(namespace: str, pod: str, infra: str, interface: str, what: str,
                broken: bool = False) -> None:
        if not names.plaintext(infra):
            actions.append(f"skip {what}: its container id {infra!r} is malformed")
            return
        found = candidates.setdefault(infra, Candidate(namespace, pod))
        found.interfaces.add(interface)
        found.broken_only = found.broken_only and broken
        actions.append(f"remove {what}")

    for row in rows(config, alive):
        if row.state in ("container gone", "interface error"):
            propose(row.namespace, row.pod, row.infra_id, row.interface,
                    f"{row.state}: {row.namespace}/{row.pod} {row.interface} port {row.port} "
                    f"{row.address}", broken=row.state == "interface error")
    # The allocators' own judgement of which leases are this node's to collect (in etcd,
    # another node's containers are invisible here); detach then releases them.
    for owner, lease in core.allocators.collectable(lambda infra: infra in alive):
        propose(owner.namespace, owner.pod, owner.infra_id, owner.interface,
                f"lease {lease.address} on {lease.network} of {owner.namespace}/{owner.pod} "
                f"({owner.infra_id[:12]} {owner.interface})")
    if not dry_run:
        for infra, found in candidates.items():
            actions += _collect(core, config, infra, found)
    for pid in iproute.dangling_netns_links():
        actions.append(f"remove dangling {iproute.netns_link(pid)}")
        if not dry_run:
            iproute.remove_netns_link(pid)
    return actions + _leftover_files(config, dry_run)


def _leftover_files(config: Config, dry_run: bool) -> list[str]:
    """Files killed calls left in the state directory: unused pod locks, half-written records."""
    records = RecordStore(config.state_dir)
    actions = [f"remove unused lock {path}" for path in locks.sweep_unused(
        os.path.join(config.state_dir, "locks"), records.has, dry_run)]
    for path in records.stale_temp_files(older_than=STALE_TEMP_SECONDS):
        actions.append(f"remove half-written {path}")
        if not dry_run:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    return actions


def _collect(core: Core, config: Config, infra: str, found: Candidate) -> list[str]:
    """Detach one candidate if, under its lock, it is still to be collected."""
    check = _still_broken(config, infra, found.interfaces) if found.broken_only \
        else _still_gone(config, infra)
    verdict: list[bool] = []
    try:
        core.detach(PodRef(found.namespace, found.pod, infra), found.interfaces,
                    only_if=lambda: verdict.append(check()) or verdict[-1])
    except Failure as exc:
        return [f"failed on {infra[:12]}: {exc.line()}"]
    return [] if all(verdict) else [f"kept {infra[:12]}: it is in use again"]


def _still_gone(config: Config, infra: str) -> Callable[[], bool]:
    """Asked under the pod's lock: Docker says the container is gone or stopped now."""
    def gone() -> bool:
        try:
            return not inspect(infra, config.docker_url, config.docker_timeout).running
        except ContainerNotFound:
            return True
    return gone


def _still_broken(config: Config, infra: str, interfaces: set[str]) -> Callable[[], bool]:
    """Asked under the pod's lock: every one of these ports is still in error or veth-less."""
    def broken() -> bool:
        ports = {m.interface: p for p in Ovs(config.ovs_timeout).ports(**marks.of_container(infra))
                 if (m := marks.Marks.read(p.external_ids))}
        return all(i not in ports or ports[i].error or not iproute.link_exists(ports[i].name)
                   for i in interfaces)
    return broken
