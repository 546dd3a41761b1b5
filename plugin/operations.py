"""Operator commands over what the plugin owns: list the attachments, sweep the dead ones.

Both start from the ownership marks in OVSDB (`owner=vlanpipe`) and the
plugin's own records, never from names: a port the plugin did not mark is
never listed as its own and never touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipework_wrapper import iproute
from pipework_wrapper.docker_lookup import running_ids
from plugin import names
from plugin.core import Core, PodRef
from plugin.errors import InputError
from plugin.ipam.mac import mac_for
from plugin.records import OWNER

STATES = ("ok", "container gone", "port missing", "interface error", "docker down")


@dataclass(frozen=True)
class Row:
    namespace: str
    pod: str
    infra_id: str
    interface: str
    port: str
    bridge: str
    vlan: int | None
    address: str
    mac: str
    state: str


def attachments(core: Core, alive: set[str] | None) -> list[Row]:
    """One row per attachment found in OVSDB or in the records, with its state
    (`alive` None: Docker did not answer, so no container can be called gone)."""
    rows = {}
    for port in core.ovs.ports(owner=OWNER):
        ids = port.external_ids
        infra = ids.get("vlanpipe-infra-id", "")
        address = ids.get("vlanpipe-address", "")
        state = ("interface error" if port.error or not iproute.link_exists(port.name) else
                 "docker down" if alive is None else
                 "ok" if infra in alive else "container gone")
        rows[port.name] = Row(ids.get("vlanpipe-namespace", ""), ids.get("vlanpipe-pod", ""),
                              infra, ids.get("vlanpipe-interface", ""), port.name, port.bridge,
                              port.tag, address, _mac(address), state)
    for infra in core.records.infra_ids():
        for record in core.records.load(infra):
            if record.port not in rows:
                rows[record.port] = Row(record.namespace, record.pod, infra, record.interface,
                                        record.port, record.bridge, record.vlan, record.address,
                                        record.mac, "port missing")
    return sorted(rows.values(), key=lambda r: (r.namespace, r.pod, r.interface))


def sweep(core: Core, dry_run: bool = False) -> list[str]:
    """Remove what belongs to gone containers or broken interfaces; return what was (or
    would be) done. Needs Docker: without it, nothing can be known to be gone."""
    alive = running_ids(core.config.docker_url, core.config.docker_timeout)
    actions = []
    targets: dict[tuple[str, str, str], set[str]] = {}
    for row in attachments(core, alive):
        if row.state == "ok":
            continue
        try:
            names.infra_id(row.infra_id)
        except InputError:
            actions.append(f"skip port {row.port}: its infra id mark {row.infra_id!r} is malformed")
            continue
        targets.setdefault((row.namespace, row.pod, row.infra_id), set()).add(row.interface)
        actions.append(f"remove {row.state}: {row.namespace}/{row.pod} {row.interface} "
                       f"port {row.port} {row.address}")
    if not dry_run:
        for (namespace, pod, infra), interfaces in targets.items():
            only = None if infra not in alive else interfaces
            core.detach(PodRef(namespace, pod, infra), only)
    for owner, lease in core.ipam.gc(lambda infra: infra in alive, dry_run=dry_run):
        actions.append(f"release lease {lease.address} of {owner.namespace}/{owner.pod} "
                       f"({owner.infra_id[:12]} {owner.interface}) on network {lease.network}")
    for link in _dangling_netns_links():
        actions.append(f"remove dangling {link}")
        if not dry_run:
            os.unlink(link)
    return actions


def _dangling_netns_links() -> list[str]:
    """`/var/run/netns/<PID>` symlinks that a failed pipework left to a dead process."""
    try:
        entries = os.listdir(iproute.NETNS_DIR)
    except FileNotFoundError:
        return []
    paths = [os.path.join(iproute.NETNS_DIR, e) for e in entries if e.isdigit()]
    return [p for p in paths if os.path.islink(p) and not os.path.exists(p)]


def _mac(address: str) -> str:
    import ipaddress

    try:
        return mac_for(ipaddress.ip_interface(address).ip)
    except ValueError:
        return ""
