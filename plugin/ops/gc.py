"""`gc`: sweep what belongs to gone containers or broken interfaces.

It starts from the ownership marks in OVSDB, the plugin's records and the
allocators' leases, never from names, and it needs Docker: without it,
nothing can be known to be gone.
"""

from __future__ import annotations

from pipework_wrapper import iproute
from pipework_wrapper.docker_lookup import running_ids
from plugin import names
from plugin.calllog import CallLog
from plugin.config.schema import Config
from plugin.core.attach import Core
from plugin.core.policy import PodRef
from plugin.errors import InputError
from plugin.ops.listing import rows


def sweep(config: Config, log: CallLog, dry_run: bool = False) -> list[str]:
    """Remove what belongs to gone containers or broken interfaces; return what was (or
    would be) done."""
    alive = running_ids(config.docker_url, config.docker_timeout)
    core = Core(config, log)
    actions: list[str] = []
    targets: dict[str, tuple[str, str, set[str]]] = {}

    def target(namespace: str, pod: str, infra: str, interface: str, what: str) -> None:
        try:
            names.infra_id(infra)
        except InputError:
            actions.append(f"skip {what}: its infra id {infra!r} is malformed")
            return
        targets.setdefault(infra, (namespace, pod, set()))[2].add(interface)
        actions.append(f"remove {what}")

    for row in rows(config, alive):
        if row.state in ("container gone", "interface error"):
            target(row.namespace, row.pod, row.infra_id, row.interface,
                   f"{row.state}: {row.namespace}/{row.pod} {row.interface} port {row.port} "
                   f"{row.address}")
    # The allocators' own judgement of which leases are this node's to collect (in etcd,
    # another node's containers are invisible here); detach then releases them.
    for owner, lease in core.allocators.collectable(lambda infra: infra in alive):
        target(owner.namespace, owner.pod, owner.infra_id, owner.interface,
               f"lease {lease.address} on {lease.network} of {owner.namespace}/{owner.pod} "
               f"({owner.infra_id[:12]} {owner.interface})")
    if not dry_run:
        for infra, (namespace, pod, interfaces) in targets.items():
            core.detach(PodRef(namespace, pod, infra), interfaces)
    for pid in iproute.dangling_netns_links():
        actions.append(f"remove dangling {iproute.netns_link(pid)}")
        if not dry_run:
            iproute.remove_netns_link(pid)
    return actions
