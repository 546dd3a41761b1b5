"""Attach and detach a pod's VLAN interfaces: the one core both front-ends call.

It orchestrates and rolls back; it knows nothing of argv, environment
variables or exit codes, and touches no port itself (the port facade,
plugin/core/ports.py, does, with the plumber the sandbox names).
`attach` is all-or-nothing: every step that creates something pushes its undo
first, and any failure runs the undos in reverse, because the kubelet (and a
CNI runtime) retries with a new infra container and never tears down the
failed one. `detach` works from OVSDB marks and the plugin's records alone,
so it succeeds when the container, the port or the record is already gone.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Iterator

from plugin import names
from plugin.calllog import CallLog
from plugin.config.files import check_private_dir
from plugin.config.schema import Config
from plugin.core import bandwidth, marks
from plugin.core.ports import PodPorts
from plugin.core.records import Attachment, RecordStore
from plugin.errors import AddressConflict, AllocationError
from plugin.ipam.mac import mac_for
from plugin.identity import Identity
from plugin.locks import locked, pod_busy, pod_lock

if TYPE_CHECKING:  # setup's: teardown does not load their modules
    from plugin.core.plumbing import Sandbox
    from plugin.core.policy import Want
    from plugin.ipam.model import Addresses, Lease, Request


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
    def __init__(self, config: Config, log: CallLog, allocators: Addresses | None = None,
                 ports: PodPorts | None = None,
                 recorded: Callable[[Attachment], Addresses] | None = None) -> None:
        """`recorded` gives the addresses a record's claim came from when they may differ
        from `allocators` (CNI: the network config changed between ADD and DEL)."""
        check_private_dir(config.state_dir, "state_dir")
        self.config = config
        self.log = log
        self.records = RecordStore(config.state_dir)
        self.allocators = allocators if allocators is not None else config.allocators()
        self.ports = ports or PodPorts(config)
        self.recorded = recorded

    def attach(self, ref: Identity, wants: list[Want], sandbox: Sandbox) -> list[Attachment]:
        """Attach every wanted interface, or none of them.

        The records are written twice before any link exists: first the intent (which
        network each lease will come from), then, once the addresses are claimed, the
        whole attachment. Whenever this process is killed, they name what to undo.
        """
        with pod_lock(self.config.state_dir, ref.infra_id, self.config.lock_timeout):
            previous = self.records.load(ref.infra_id)
            live = self._attached(ref, previous, wants, sandbox.netns)
            todo = [w for w in wants if w.interface not in live]
            if not todo:
                self.log.set(result="already attached")
                return [live[w.interface] for w in wants]
            self.ports.bridges_ready((w.bridge for w in todo), ask_ovsdb=False)
            others = [r for r in previous if r.interface not in {w.interface for w in todo}]
            intended = [self._intent(ref, want, sandbox) for want in todo]
            undo = Undo()
            try:
                with self._requested_macs(ref, todo):
                    self.records.save(ref.infra_id, others + intended)
                prepared = [self._claim(ref, want, record, previous, undo)
                            for want, record in zip(todo, intended)]
                self.records.save(ref.infra_id, others + [record for record, _ in prepared])
                recorded = {r.interface: r for r in previous}
                plugged = [self.ports.plug(sandbox, record, leases, undo.push,
                                           earlier=recorded.get(record.interface))
                           for record, leases in prepared]
                if plugged != [record for record, _ in prepared]:  # link-local addresses
                    self.records.save(ref.infra_id, others + plugged)
            except BaseException as exc:
                if isinstance(exc, AddressConflict):
                    self._keep_conflicted(ref, exc)  # before the undo would release it
                problems = undo.run()
                if problems:  # keep the records: they name what is left, for teardown or gc
                    if isinstance(exc, Exception):
                        self.log.set(rollback_errors=problems)
                else:
                    self._restore(ref.infra_id, previous)
                raise
            made = {record.interface: record for record in plugged}
            return [live.get(w.interface) or made[w.interface] for w in wants]

    def detach(self, ref: Identity, only: set[str] | None = None,
               only_if: Callable[[], bool] | None = None) -> list[str]:
        """Delete the ports, veths and leases of this container (of `only` these interfaces,
        if given); return the ports removed. Absent things are fine.

        `only_if` is asked once the pod's lock is held (gc: "is the container still
        gone?"); if it says no, nothing is touched. Port names are hashed from (container
        id, interface), so they are known without asking OVSDB first; the transaction that
        deletes them also lists the ports marked with the container (a config changed
        since setup), which are removed too. A lease is released on the network its
        record (or its port's marks) names; with neither, on every network, best effort.
        """
        with pod_lock(self.config.state_dir, ref.infra_id, self.config.lock_timeout) as lock:
            if only_if is not None and not only_if():
                self.log.set(skipped=f"{ref.infra_id[:12]}: no longer to be collected")
                return []
            records = self.records.load(ref.infra_id)
            gone = [r for r in records if not only or r.interface in only]
            interfaces = (set(only) if only else
                          {a.interface for a in self.config.attachments}
                          | {r.interface for r in records})
            ports = sorted({names.host_veth(ref.infra_id, i) for i in interfaces}
                           | {r.port for r in gone})
            marked = [m for m in (marks.Marks.read(p.external_ids) for p in
                                  self.ports.remove(ref.infra_id, ports, only, gone)) if m]
            networks = {m.interface: m.network for m in marked if m.network}
            networks.update({r.interface: r.network for r in gone})
            claimed = {r.interface: r for r in gone}
            problems = []
            for interface in sorted(interfaces | set(networks)):
                owner = ref.with_interface(interface, self.config.node_name)
                source = self._source(claimed.get(interface))
                if interface in networks:
                    source.release(owner, networks[interface])
                else:
                    problems += source.release_anywhere(owner)
            if problems:
                self.log.set(release_problems=problems)
            kept = [r for r in records if r not in gone]
            self._restore(ref.infra_id, kept)
            if not kept:
                lock.discard()
            removed = sorted({r.port for r in gone}
                             | {names.host_veth(ref.infra_id, m.interface) for m in marked})
            self.log.set(port=",".join(removed) or None)
            return removed

    def differences(self, ref: Identity, want: Want, netns: str = "") -> list[str]:
        """How the attachment of `want.interface` differs from `want` (CNI CHECK); with
        the pod's `netns`, the interface's checksum offload is judged too."""
        record = next((r for r in self.records.load(ref.infra_id)
                       if r.interface == want.interface), None)
        if record is None:
            return [f"no attachment of {want.interface} is recorded for container "
                    f"{ref.infra_id[:12]}"]
        return self.ports.differences(ref.infra_id, [(record, want)], netns)

    @contextmanager
    def _requested_macs(self, ref: Identity, todo: list[Want]) -> Iterator[None]:
        """A MAC a pod asks for is not another interface's on its bridge and VLAN on this
        node (plugin/core/macs.py, doctor's rule); checked before anything is made. Only
        requested MACs: a derived one follows from an address the allocator keeps unique.

        The check and the save of the intent records (which name the MAC) run under one
        node lock, so of two setups asking for one MAC the second sees the first's
        intent. A holder is on the wire when its host veth exists, or about to be while a
        call holds its pod's lock (a setup in flight); a holder with neither (a dead
        sandbox gc has not swept yet, records after a reboot) is not: a pod restarted
        with its MAC must not wait for gc."""
        asked = [w for w in todo if w.mac]
        if not asked:
            yield
            return
        from plugin.core import macs

        def live(record: Attachment) -> bool:
            return self.ports.ip.link_exists(record.port) or (
                record.infra_id != ref.infra_id
                and pod_busy(self.config.state_dir, record.infra_id))

        with locked(os.path.join(self.config.state_dir, "requested-macs.lock"),
                    self.config.lock_timeout):
            found, _ = self.records.all()
            records = [r for attached in found.values() for r in attached]
            for want in asked:
                other = next((r for r in macs.holders(records, want.bridge, want.vlan,
                                                      want.mac or "",
                                                      (ref.infra_id, want.interface))
                              if live(r)), None)
                if other is not None:
                    raise AllocationError(f"requested MAC {want.mac} is already used on bridge "
                                          f"{want.bridge} VLAN {want.vlan} by "
                                          f"{macs.who(other)}",
                                          "ask for another MAC, or none (the address gives one)")
            yield

    def _keep_conflicted(self, ref: Identity, exc: AddressConflict) -> None:
        """Turn the pod's leases that another host answered for into conflicted records
        that hold the address for nobody, so no pod gets it again until an operator
        clears it; the rollback then finds no lease of the pod's to release. Where the
        address source cannot mark (a delegated IPAM plugin, a static address), the
        rollback releases as usual, and the error says so."""
        owner = ref.with_interface(exc.interface, self.config.node_name)
        kept, released = [], []
        for address, mac in exc.found:
            try:
                marked = self.allocators.mark_conflicted(owner, exc.network, address, mac)
            except Exception as failure:  # the rollback still runs, and releases it
                self.log.set(conflict_not_marked=str(failure))
                marked = False
            (kept if marked else released).append(address.split("/")[0])
        self.log.set(conflicted=[f"{a} {m}" for a, m in exc.found])
        if kept:
            exc.add_hint(f"the lease of {', '.join(kept)} is kept as conflicted: once that "
                         f"host is gone, run `vlanpipe lease clear {kept[0]}`")
        if released:
            source = ("the IPAM plugin" if self.allocators.allocator == "delegated"
                      else "its network")
            exc.add_hint(f"{', '.join(released)} was released to {source}, which cannot "
                         "keep it out of use")

    def _source(self, record: Attachment | None) -> Addresses:
        """Where a record's lease came from: as it says, if it says and the front-end knows
        other sources than this call's; else this call's allocators."""
        if record is None or not record.allocator or self.recorded is None:
            return self.allocators
        return self.recorded(record)

    def _restore(self, infra_id: str, records: list[Attachment]) -> None:
        if records:
            self.records.save(infra_id, records)
        else:
            self.records.delete(infra_id)

    def _attached(self, ref: Identity, recorded: list[Attachment], wants: list[Want],
                  netns: str) -> dict[str, Attachment]:
        """The records of the wanted interfaces still plugged as recorded: a second setup
        leaves them alone (and its rollback cannot touch them), but turns off a checksum
        offload an earlier release left on where it drops TCP."""
        records = {r.interface: r for r in recorded}
        pairs = [(records[w.interface], w) for w in wants if w.interface in records]
        if not pairs:
            return {}
        plugged, repaired = self.ports.as_wanted(ref.infra_id, pairs, netns)
        if repaired:
            self.log.set(checksum_offload_turned_off=",".join(repaired))
        return {i: records[i] for i in plugged}

    def _intent(self, ref: Identity, want: Want, sandbox: Sandbox) -> Attachment:
        """The record of one interface before its address: which network will lease it,
        whether its port is guarded (decided here, once: `flows.guard_of`), and the port's
        limits (`bandwidth.resolve`: refused here, before anything is made)."""
        network = self.allocators.network_name(want.vlan)
        security = self.config.security_for(network)
        guarded = security.on if want.port_security is None else want.port_security
        return Attachment(
            who=ref.with_interface(want.interface), bridge=want.bridge,
            port=names.host_veth(ref.infra_id, want.interface), vlan=want.vlan,
            network=network, mac=want.mac or "", primary=want.primary,
            cni_network=want.cni_network, plumber=sandbox.plumber,
            netns=sandbox.netns if sandbox.netns_id else "", netns_id=sandbox.netns_id,
            allocator=self.allocators.allocator, ipam=self.allocators.ipam,
            port_security="on" if guarded else "off",
            pairs=tuple(dict.fromkeys(security.pairs + want.pairs)), trunk=want.trunk,
            bandwidth=bandwidth.resolve(self.config, want.bandwidth, network))

    def _claim(self, ref: Identity, want: Want, intent: Attachment, previous: list[Attachment],
               undo: Undo) -> tuple[Attachment, list[Lease]]:
        """The leases of one interface (one per family, all or none), and its full record.

        A lease the previous record already names on this network is not this call's: a
        rollback keeps it (the restored record names it, so teardown frees it)."""
        from plugin.ipam.model import Request

        owner = ref.with_interface(want.interface, self.config.node_name)
        held = any(r.interface == want.interface and r.addresses and r.network == intent.network
                   for r in previous)
        if not held:
            # Pushed first: a claim can be applied and its reply lost (etcd), so a failed
            # allocate may still have taken an address; the release frees every family.
            undo.push(lambda: self.allocators.release(owner, intent.network))
        leases = self.allocators.allocate(owner, want.vlan, tuple(
            Request(address.ip, want.pinned) for address in want.addresses))
        if want.mtu:
            leases = [replace(lease, mtu=want.mtu) for lease in leases]
        addresses = tuple(str(lease.address) for lease in leases)
        record = replace(intent, addresses=addresses, network=leases[0].network,
                         mac=want.mac or mac_for(*addresses),
                         gateways=tuple(str(lease.gateway or "") for lease in leases))
        self.log.set(vlan=record.vlan, address=",".join(addresses), port=record.port)
        return record, leases
