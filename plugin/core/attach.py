"""Attach and detach a pod's VLAN interfaces: the one core both front-ends call.

It knows nothing of argv, environment variables or exit codes. `attach` is
all-or-nothing: every step that creates something pushes its undo first, and
any failure runs the undos in reverse, because the kubelet (and a CNI
runtime) retries with a new infra container and never tears down the failed
one. `detach` works from OVSDB marks and the plugin's records alone, so it
succeeds when the container, the port or the record is already gone.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable

from pipework_wrapper import iproute, pipework
from pipework_wrapper.docker_lookup import InfraContainer, inspect
from pipework_wrapper.ovs import Ovs, Port
from plugin import names
from plugin.calllog import CallLog
from plugin.config.schema import Config, refuse_shared_dir
from plugin.errors import BackendError, ContainerError
from plugin.ipam.allocators import Ipam
from plugin.ipam.model import Lease, Owner
from plugin.ipam.mac import mac_for
from plugin.locks import pod_lock
from plugin.core.records import Attachment, RecordStore


@dataclass(frozen=True)
class PodRef:
    namespace: str
    pod: str
    infra_id: str

    @classmethod
    def checked(cls, namespace: str, pod: str, infra_id: str) -> "PodRef":
        return cls(names.namespace(namespace), names.pod(pod), names.infra_id(infra_id))


class Undo:
    """A stack of compensating actions, run newest first when an attach fails."""

    def __init__(self) -> None:
        self.actions: list[Callable[[], object]] = []

    def push(self, action: Callable[[], object]) -> None:
        self.actions.append(action)

    def run(self) -> list[str]:
        problems = []
        for action in reversed(self.actions):
            try:
                action()
            except Exception as exc:  # keep undoing: one stuck step must not leak the rest
                problems.append(str(exc))
        self.actions.clear()
        return problems


@dataclass(frozen=True)
class Want:
    """One interface a front-end asks for.

    `lease` is set when the caller already has an address (a CNI IPAM plugin), `mac` when
    the pod asks for one, `marks` are extra external_ids written in the same transaction
    as the ownership marks (the CNI network's name, which its GC finds ports by).
    """

    interface: str
    bridge: str
    vlan: int
    primary: bool = True
    lease: Lease | None = None
    mac: str | None = None
    marks: tuple[tuple[str, str], ...] = ()


class Core:
    def __init__(self, config: Config, log: CallLog) -> None:
        refuse_shared_dir(config.state_dir, "state_dir")
        self.config = config
        self.log = log
        self.ovs = Ovs(config.ovs_timeout)
        self.records = RecordStore(config.state_dir)
        self.ipam = Ipam(config.networks, config.etcd, config.state_dir, config.node_name)

    def init(self) -> None:
        for bridge in sorted({a.bridge for a in self.config.attachments}):
            self.ovs.ensure_bridge(bridge, self.config.datapath_type)

    def planned(self, ref: PodRef) -> list[Want]:
        """The exec front-end's wants: every configured attachment, VLAN by its rule or pin."""
        pin = self.ipam.pinned(ref.namespace, ref.pod) if self.config.vlan_pins else None
        return [Want(spec.interface, spec.bridge,
                     pin.vlan if pin and spec.primary else spec.vlan.tag_for(ref.namespace, ref.pod),
                     spec.primary)
                for spec in self.config.attachments]

    def attach(self, ref: PodRef, wants: list[Want]) -> list[Attachment]:
        """Attach every wanted interface, or none of them."""
        with pod_lock(self.config.state_dir, ref.infra_id):
            previous = self.records.load(ref.infra_id)
            with self.log.phase("check"):
                current = self._attached(ref, previous, wants)
            if current:
                self.log.set(result="already attached")
                return current
            with self.log.phase("docker"):
                container = self._container(ref.infra_id)
            with self.log.phase("bridges"):
                self._bridges_ready({w.bridge for w in wants})
            others = [r for r in previous if r.interface not in {w.interface for w in wants}]
            undo = Undo()
            try:
                prepared = [self._prepare(ref, want, undo) for want in wants]
                # Recorded before any link exists: if this process is killed from here on,
                # gc finds the ports, veths and leases of the container by these records.
                undo.push(lambda: self._restore(ref.infra_id, previous))
                self.records.save(ref.infra_id, others + [record for record, _ in prepared])
                recorded = {r.interface for r in previous}
                for (record, lease), want in zip(prepared, wants):
                    self._plug(container, record, lease, dict(want.marks), undo,
                               stale=record.interface in recorded)
            except BaseException as exc:
                problems = undo.run()
                if problems and isinstance(exc, Exception):
                    self.log.set(rollback_errors=problems)
                raise
            return [record for record, _ in prepared]

    def detach(self, ref: PodRef, only: set[str] | None = None) -> list[str]:
        """Delete the ports, veths and leases of this infra container (of `only` these
        interfaces, if given); return the ports removed. Absent things are fine.

        Port names are hashed from (infra id, interface), so they are known without asking
        OVSDB first; the same transaction that deletes them reports any other port still
        marked with this infra id (a config changed since setup), which is then removed too.
        """
        with pod_lock(self.config.state_dir, ref.infra_id) as lock:
            records = self.records.load(ref.infra_id)
            gone = [r for r in records if not only or r.interface in only]
            interfaces = (set(only) if only else
                          {a.interface for a in self.config.attachments}
                          | {r.interface for r in records})
            ports = sorted({names.host_veth(ref.infra_id, i) for i in interfaces}
                           | {r.port for r in gone})
            with self.log.phase("unplug"):
                leftovers = self._unplug(ref.infra_id, ports, only)
            interfaces |= {p.external_ids.get("vlanpipe-interface", "") for p in leftovers} - {""}
            with self.log.phase("release"):
                for interface in sorted(interfaces):
                    self.ipam.release(Owner(ref.infra_id, interface, ref.namespace, ref.pod,
                                            self.config.node_name))
            kept = [r for r in records if r not in gone]
            self._restore(ref.infra_id, kept)
            if not kept:
                lock.discard()
            removed = sorted({r.port for r in gone} | {p.name for p in leftovers})
            self.log.set(port=",".join(removed) or None)
            return removed

    def _unplug(self, infra_id: str, ports: list[str], only: set[str] | None) -> list[Port]:
        """Delete ports and veths; the kernel's slow veth destruction overlaps the OVSDB commit."""
        failures: list[Exception] = []

        def delete_links() -> None:
            try:
                for name in ports:
                    iproute.delete_link(name)
            except Exception as exc:  # re-raised below, in the caller's thread
                failures.append(exc)

        links = threading.Thread(target=delete_links)
        links.start()
        try:
            marked = self.ovs.delete_ports_then_find(ports, **{"vlanpipe-infra-id": infra_id})
        finally:
            links.join()
        if failures:
            raise failures[0]
        leftovers = [p for p in marked
                     if not only or p.external_ids.get("vlanpipe-interface") in only]
        if leftovers:
            self.ovs.delete_ports([p.name for p in leftovers])
            for port in leftovers:
                iproute.delete_link(port.name)
        return leftovers

    def _restore(self, infra_id: str, records: list[Attachment]) -> None:
        if records:
            self.records.save(infra_id, records)
        else:
            self.records.delete(infra_id)

    def _attached(self, ref: PodRef, recorded: list[Attachment],
                  wants: list[Want]) -> list[Attachment]:
        """The records, if every wanted interface is still plugged as recorded."""
        records = {r.interface: r for r in recorded}
        if any(w.interface not in records for w in wants):
            return []
        ports = {p.name: p for p in self.ovs.ports(**{"vlanpipe-infra-id": ref.infra_id})}
        current = []
        for want in wants:
            record = records[want.interface]
            port = ports.get(record.port)
            if (port is None or port.bridge != want.bridge or port.tag != want.vlan
                    or record.vlan != want.vlan or port.error
                    or not iproute.link_exists(record.port)):
                return []
            current.append(record)
        return current

    def _bridges_ready(self, wanted: set[str]) -> None:
        """Before anything is created: pipework's own message for a missing bridge
        ("I do not know how to setup interface") or an unreachable OVS says neither."""
        missing = sorted(wanted - self.ovs.bridges())
        if missing:
            raise BackendError(f"Open vSwitch bridge {', '.join(missing)} does not exist",
                               "run the plugin's init command (or ovs-vsctl add-br)")

    def _container(self, infra_id: str) -> InfraContainer:
        container = inspect(infra_id, self.config.docker_url, self.config.docker_timeout)
        if not container.running or container.pid <= 0:
            raise ContainerError(f"infra container {infra_id[:12]} is not running",
                                 "start the pod's infra container before setup")
        self.log.set(pid=container.pid)
        return container

    def _prepare(self, ref: PodRef, want: Want, undo: Undo) -> tuple[Attachment, Lease]:
        """The lease and the record of one interface: every address before any link."""
        owner = Owner(ref.infra_id, want.interface, ref.namespace, ref.pod, self.config.node_name)
        lease = want.lease
        if lease is None:
            with self.log.phase(f"allocate-{want.interface}"):
                pin = (self.ipam.pinned(ref.namespace, ref.pod)
                       if self.config.vlan_pins and want.primary else None)
                lease = self.ipam.allocate(owner, want.vlan, pin)
            undo.push(lambda: self.ipam.release(owner))
        vlan = lease.vlan or want.vlan
        record = Attachment(
            namespace=ref.namespace, pod=ref.pod, infra_id=ref.infra_id,
            interface=want.interface, bridge=want.bridge,
            port=names.host_veth(ref.infra_id, want.interface), vlan=vlan,
            address=str(lease.address), network=lease.network,
            mac=want.mac or mac_for(lease.address.ip),
            gateway=str(lease.gateway or ""), primary=want.primary)
        self.log.set(vlan=vlan, address=record.address, port=record.port)
        return record, lease

    def _plug(self, container: InfraContainer, record: Attachment, lease: Lease,
              marks: dict[str, str], undo: Undo, stale: bool) -> None:
        """`stale`: an earlier attempt for this container recorded this interface, so a port
        of that name may be left in OVSDB; otherwise only a leftover link can be there."""
        port, ifname = record.port, record.interface
        if stale or iproute.link_exists(port):
            with self.log.phase(f"clear-{ifname}"):
                self._clear_stale(port)
        self._push_cleanup(undo, port, container.pid)
        with self.log.phase(f"pipework-{ifname}"):
            derived_mac = record.mac == mac_for(lease.address.ip)
            quiet = os.path.join(self.config.state_dir, "quiet-arping")
            pipework.attach(self.config.pipework, pipework.argv(
                record.bridge, container.id, ifname, port, record.address, record.vlan,
                gateway=record.gateway or None, mac=record.mac), self.config.pipework_timeout,
                quiet_dir=quiet if derived_mac and not self.config.announce_arp else None)
        with self.log.phase(f"mark-{ifname}"):
            self.ovs.plug(record.bridge, port, record.vlan,
                          {**record.external_ids(self.config.node_name), **marks})
        with self.log.phase(f"verify-{ifname}"):
            self._finish(container.pid, ifname, port, lease)

    def _clear_stale(self, port: str) -> None:
        """A port or link already named like ours is a leftover of this container's killed setup.

        The name is hashed from the infra id, so nothing else can own it; left in
        place it would make pipework refuse ("exists and is up") or skip add-port.
        """
        self.ovs.delete_ports([port])
        iproute.delete_link(port)

    def _push_cleanup(self, undo: Undo, port: str, pid: int) -> None:
        netns_existed = os.path.lexists(iproute.netns_link(pid))
        undo.push(lambda: self.ovs.delete_ports([port]))
        undo.push(lambda: iproute.delete_link(port))
        if not netns_existed:
            undo.push(lambda: iproute.remove_netns_link(pid))

    def _finish(self, pid: int, ifname: str, port: str, lease: Lease) -> None:
        """What pipework does not do (MTU, extra routes), then a check of what it did."""
        if lease.mtu:
            iproute.set_mtu(pid, ifname, port, lease.mtu)
        for route in lease.routes:
            iproute.add_route(pid, ifname, str(route.destination),
                              str(route.gateway) if route.gateway else None)
        found = iproute.container_addresses(pid, ifname)
        if str(lease.address) not in found:
            raise BackendError(
                f"after pipework, {ifname} in the container has {found or 'no address'}, "
                f"not {lease.address}", "see the plugin log for pipework's output")
        if not iproute.link_exists(port):
            raise BackendError(f"after pipework, host veth {port} does not exist",
                               "see the plugin log for pipework's output")

