"""Attach and detach a pod's VLAN interfaces: the one core both front-ends call.

It orchestrates and rolls back; it knows nothing of argv, environment
variables or exit codes, and touches no port itself (the plumbers do).
`attach` is all-or-nothing: every step that creates something pushes its undo
first, and any failure runs the undos in reverse, because the kubelet (and a
CNI runtime) retries with a new infra container and never tears down the
failed one. `detach` works from OVSDB marks and the plugin's records alone,
so it succeeds when the container, the port or the record is already gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from plugin import names
from plugin.calllog import CallLog
from plugin.config.schema import Config, refuse_shared_dir
from plugin.core import marks
from plugin.core.plumbing import Plumber, Sandbox, plumbers
from plugin.core.policy import PodRef, Want
from plugin.core.records import Attachment, RecordStore
from plugin.ipam.mac import mac_for
from plugin.ipam.model import Lease, Owner
from plugin.locks import pod_lock

if TYPE_CHECKING:
    from plugin.ipam.allocators import Allocators


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


class Core:
    def __init__(self, config: Config, log: CallLog, allocators: "Allocators | None" = None,
                 plumbing: dict[str, Plumber] | None = None) -> None:
        refuse_shared_dir(config.state_dir, "state_dir")
        self.config = config
        self.log = log
        self.records = RecordStore(config.state_dir)
        if allocators is None:
            from plugin.ipam.allocators import Allocators

            allocators = Allocators.for_config(config)
        self.allocators = allocators
        self.plumbers = plumbing or plumbers(config)
        self.any_plumber = next(iter(self.plumbers.values()))

    def attach(self, ref: PodRef, wants: list[Want], sandbox: Sandbox) -> list[Attachment]:
        """Attach every wanted interface, or none of them."""
        plumber = self.plumbers[sandbox.plumber]
        with pod_lock(self.config.state_dir, ref.infra_id, self.config.lock_timeout):
            previous = self.records.load(ref.infra_id)
            current = self._attached(ref, previous, wants)
            if current:
                self.log.set(result="already attached")
                return current
            plumber.bridges_ready(w.bridge for w in wants)
            others = [r for r in previous if r.interface not in {w.interface for w in wants}]
            undo = Undo()
            try:
                prepared = [self._prepare(ref, want, undo) for want in wants]
                # Recorded before any link exists: if this process is killed from here on,
                # gc finds the ports, veths and leases of the container by these records.
                undo.push(lambda: self._restore(ref.infra_id, previous))
                self.records.save(ref.infra_id, others + [record for record, _ in prepared])
                recorded = {r.interface for r in previous}
                for record, lease in prepared:
                    plumber.plug(sandbox, record, lease, undo.push,
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
        with pod_lock(self.config.state_dir, ref.infra_id, self.config.lock_timeout) as lock:
            records = self.records.load(ref.infra_id)
            gone = [r for r in records if not only or r.interface in only]
            interfaces = (set(only) if only else
                          {a.interface for a in self.config.attachments}
                          | {r.interface for r in records})
            ports = sorted({names.host_veth(ref.infra_id, i) for i in interfaces}
                           | {r.port for r in gone})
            marked = self.any_plumber.unplug(ref.infra_id, ports, only)
            interfaces |= {p.external_ids.get(marks.KEYS["interface"], "")
                           for p in marked} - {""}
            for interface in sorted(interfaces):
                self.allocators.release(Owner(ref.infra_id, interface, ref.namespace, ref.pod,
                                              self.config.node_name))
            kept = [r for r in records if r not in gone]
            self._restore(ref.infra_id, kept)
            if not kept:
                lock.discard()
            removed = sorted({r.port for r in gone} | {p.name for p in marked})
            self.log.set(port=",".join(removed) or None)
            return removed

    def differences(self, ref: PodRef, want: Want) -> list[str]:
        """How the attachment of `want.interface` differs from `want` (CNI CHECK)."""
        record = next((r for r in self.records.load(ref.infra_id)
                       if r.interface == want.interface), None)
        if record is None:
            return [f"no attachment of {want.interface} is recorded for container "
                    f"{ref.infra_id[:12]}"]
        return self.any_plumber.differences(ref.infra_id, [(record, want)])

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
        pairs = [(records[w.interface], w) for w in wants]
        if self.any_plumber.differences(ref.infra_id, pairs):
            return []
        return [record for record, _ in pairs]

    def _prepare(self, ref: PodRef, want: Want, undo: Undo) -> tuple[Attachment, Lease]:
        """The lease and the record of one interface: every address before any link."""
        owner = Owner(ref.infra_id, want.interface, ref.namespace, ref.pod, self.config.node_name)
        lease = want.lease
        if lease is None:
            lease = self.allocators.allocate(owner, want.vlan, want.pin)
            undo.push(lambda: self.allocators.release(owner))
        vlan = lease.vlan or want.vlan
        record = Attachment(
            namespace=ref.namespace, pod=ref.pod, infra_id=ref.infra_id,
            interface=want.interface, bridge=want.bridge,
            port=names.host_veth(ref.infra_id, want.interface), vlan=vlan,
            address=str(lease.address), network=lease.network,
            mac=want.mac or mac_for(lease.address.ip),
            gateway=str(lease.gateway or ""), primary=want.primary,
            cni_network=want.cni_network)
        self.log.set(vlan=vlan, address=record.address, port=record.port)
        return record, lease
