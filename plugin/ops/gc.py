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
from plugin.core.attach import Core, PodRef
from plugin.errors import InputError
from plugin.ipam.mac import mac_for
from plugin.core.records import OWNER

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
        state = _state(infra, alive, broken=bool(port.error) or not iproute.link_exists(port.name))
        rows[port.name] = Row(ids.get("vlanpipe-namespace", ""), ids.get("vlanpipe-pod", ""),
                              infra, ids.get("vlanpipe-interface", ""), port.name, port.bridge,
                              port.tag, address, _mac(address), state)
    for infra in core.records.infra_ids():
        for record in core.records.load(infra):
            if record.port not in rows:
                state = _state(infra, alive, broken=False, missing=True)
                rows[record.port] = Row(record.namespace, record.pod, infra, record.interface,
                                        record.port, record.bridge, record.vlan, record.address,
                                        record.mac, state)
    return sorted(rows.values(), key=lambda r: (r.namespace, r.pod, r.interface))


def _state(infra: str, alive: set[str] | None, broken: bool, missing: bool = False) -> str:
    if alive is not None and infra not in alive:
        return "container gone"
    if missing:
        return "port missing"
    if broken:
        return "interface error"
    return "docker down" if alive is None else "ok"


def sweep(core: Core, dry_run: bool = False) -> list[str]:
    """Remove what belongs to gone containers or broken interfaces; return what was (or
    would be) done. Needs Docker: without it, nothing can be known to be gone."""
    alive = running_ids(core.config.docker_url, core.config.docker_timeout)
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

    for row in attachments(core, alive):
        if row.state in ("container gone", "interface error"):
            target(row.namespace, row.pod, row.infra_id, row.interface,
                   f"{row.state}: {row.namespace}/{row.pod} {row.interface} port {row.port} "
                   f"{row.address}")
    # The allocators' own judgement of which leases are this node's to collect (in etcd,
    # another node's containers are invisible here); detach then releases them.
    for owner, lease in core.ipam.gc(lambda infra: infra in alive, dry_run=True):
        target(owner.namespace, owner.pod, owner.infra_id, owner.interface,
               f"lease {lease.address} on {lease.network} of {owner.namespace}/{owner.pod} "
               f"({owner.infra_id[:12]} {owner.interface})")
    if not dry_run:
        for infra, (namespace, pod, interfaces) in targets.items():
            core.detach(PodRef(namespace, pod, infra), interfaces)
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
