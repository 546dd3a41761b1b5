"""The port facade: what a pod's OVS port is, whichever plumber makes the pod's end.

A plumber differs in one thing only: how the pod's end of the veth is made and
addressed (pipework for a Docker container, a veth into a namespace path for a
CRI pod). Everything else about the port is the same, so it lives here, once:
the bridges' readiness, the port with its tag, marks and OpenFlow number in one
OVSDB transaction, its port security rules installed before the pod's end exists
(`plugin.core.guard`), the transmit checksum offload the bridge's datapath needs
(`plugin.core.checksum`), the checks after plugging, the wait for the datapath,
the conflict probe (`plugin.core.conflicts`), the announcement, the differences
from what is wanted (`plugin.core.rules` for the guard's), and removal of the
port, its veth, its rules and its limits (one unplug path for every plumber).
Per-port features (bandwidth limits: `plugin.core.bandwidth`; trunks) live in
modules of their own that this facade calls.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from pipework_wrapper import iproute
from pipework_wrapper.ofctl import Ofctl
from pipework_wrapper.ovs import Ovs, Port
from plugin.core import bandwidth, conflicts, marks, rules
from plugin.core.checksum import OFFLOADED, PodChecksums
from plugin.core.guard import PortGuard
from plugin.core.records import Attachment
from plugin.errors import BackendError, NotReady, ToolFailed
from plugin.policy import trunk as trunks

if TYPE_CHECKING:
    from plugin.config.schema import Config
    from plugin.core.plumbing import Plumber, Sandbox, Undo
    from plugin.core.policy import Want
    from plugin.ipam.model import Lease

BRIDGE_HINT = ("run the plugin's init command with the same bridge and datapath_type "
               "(or ovs-vsctl add-br BRIDGE -- set Bridge BRIDGE datapath_type=netdev)")


def _announce(netns: str, ifname: str, addresses: list[str]) -> None:
    """`pipework_wrapper.announce`, imported by the calls that plug (it loads ctypes)."""
    from pipework_wrapper.announce import announce

    announce(netns, ifname, addresses)


class PodPorts:
    """Makes (`plug`) and removes (`remove`) pods' ports on OVS bridges."""

    def __init__(self, config: "Config", plumbing: dict[str, Plumber] | None = None,
                 ovs: Ovs | None = None, ip: Any = iproute,
                 announcer: Callable[[str, str, list[str]], None] | None = None,
                 prober: conflicts.Prober | None = None,
                 ofctl: Ofctl | None = None) -> None:
        """`ovs`, `ip`, `announcer`, `prober`, `ofctl` and the plumbers' own wrappers are what unit
        tests replace with fakes of their shape."""
        self.config = config
        self._plumbers = plumbing  # made by the first plug: teardown and CHECK need none
        self.ovs = ovs or Ovs(config.ovs_timeout)
        self.ip = ip
        self.announce = announcer or _announce
        self.probe = prober or conflicts.probe
        self.guard = PortGuard(config, self.ovs, ofctl, ip)
        self.checksums = PodChecksums(config, ip)
        self.limits = bandwidth.Limits(self.ovs, config.ovs_timeout, ofctl)

    def plumbers(self) -> dict[str, Plumber]:
        """Every plumber by name, made on first use (they import pipework's and the netns
        plumber's modules, which only plugging needs)."""
        if self._plumbers is None:
            from plugin.core.plumbing import plumbers

            self._plumbers = plumbers(self.config)
        return self._plumbers

    def plug(self, sandbox: Sandbox, record: Attachment, leases: list["Lease"], push: Undo,
             earlier: Attachment | None) -> Attachment:
        """Attach `record` (its addresses: `leases`, one per family) in `sandbox`; every step
        pushes its undo before it runs. Returns the record as plugged (with the pod's
        IPv6 link-local addresses, which its guard admits).

        The guard's rules exist before the pod's end does (`plugin.core.guard`); their
        undo is pushed first, so a rollback removes them last, after the link.

        `earlier`: this interface's record from an earlier attempt for this container (or
        an attachment that is no longer as wanted: its limits, trunk or VLAN changed), so a
        port of that name may be left in OVSDB. The port is named from this container's
        id: nothing else can own it, and left in place it would make pipework refuse
        ("exists and is up") or skip its add-port. Its egress meter goes first, while the
        port still holds the number that names it: left, it would keep limiting the port
        made again on that number.
        """
        port, ifname = record.port, record.interface
        self.limits.check(record)
        if earlier is not None or self.ip.link_exists(port):
            if earlier is not None and earlier.bandwidth.egress:
                self.limits.remove_meter(earlier)
            self.ovs.delete_ports([port])
            self.ip.delete_link(port)
            self.limits.remove_qos(record)  # the earlier port's, which OVSDB keeps
        push(self.guard.undo(record))
        if record.bandwidth.ingress:  # runs after the port's deletion, which leaves its QoS
            push(lambda: self.limits.remove_qos(record))
        push(lambda: self.ovs.delete_ports([port]))
        push(lambda: self.ip.delete_link(port))  # the pod's end goes with it
        datapath, ofport = self.guard.plug(record, lambda number: self._plug_port(record, number))
        self.guard.install(record, ofport)
        self.plumbers()[sandbox.plumber].make(sandbox, record, leases, push)
        record = self.guard.settle(sandbox.netns, record, ofport)
        self.checksums.settle(sandbox.netns, ifname, datapath)
        self._check(sandbox, record)
        self._wait_in_datapath(port)
        self.limits.apply(record, ofport, push)
        conflicts.unique_on_the_wire(self.config, self.probe, sandbox.netns, record)
        self.announce(sandbox.netns, ifname, list(record.addresses))
        return record

    def bridges_ready(self, wanted: Iterable[str], ask_ovsdb: bool = True) -> None:
        """A missing bridge or an unreachable OVS, said plainly (pipework's own message,
        "I do not know how to setup interface", says neither).

        A bridge row without a device is what a stopped ovs-vswitchd, or a `system`
        bridge without the kernel module, leaves: the port could not pass traffic.
        Setup (`ask_ovsdb=False`) asks OVSDB only when a device is missing: its port
        transaction (`_plug_port`) is its OVSDB check.
        """
        bridges = sorted(set(wanted))
        if not ask_ovsdb and all(self.ip.link_exists(b) for b in bridges):
            return
        known = self.ovs.bridges()
        for bridge in bridges:
            if bridge not in known:
                raise NotReady(f"Open vSwitch bridge {bridge} does not exist", BRIDGE_HINT)
            if not self.ip.link_exists(bridge):
                raise NotReady(f"bridge {bridge} exists in OVSDB but has no device "
                               "(is ovs-vswitchd running?)", BRIDGE_HINT)

    def differences(self, infra_id: str, pairs: list[tuple[Attachment, "Want"]],
                    netns: str = "") -> list[str]:
        """How the ports of these records differ from what is wanted (empty: as wanted);
        with the pod's `netns`, its interfaces' checksum offload is judged too."""
        found, ports = [], self._ports(infra_id)
        for record, lines, state in self._judged(ports, pairs, netns):
            if state == OFFLOADED:
                lines = [self.checksums.problem(record.interface, record.bridge)]
            elif state:
                lines = [state]
            found += lines
        return found + rules.recorded_differences(self.config, self.guard.ofctl, ports,
                                                  [record for record, _ in pairs])

    def as_wanted(self, infra_id: str, pairs: list[tuple[Attachment, "Want"]],
                  netns: str = "") -> tuple[set[str], list[str]]:
        """The interfaces of these records that are plugged as wanted (one OVSDB read), and
        those of them whose checksum offload was on where it drops TCP and UDP, turned
        off here in place (pods attached by a release that left it on)."""
        plugged, repaired = set(), []
        for record, lines, state in self._judged(self._ports(infra_id), pairs, netns):
            if lines:
                continue
            if state == OFFLOADED:
                self.checksums.turn_off(netns, record.interface)
                repaired.append(record.interface)
            elif state:
                continue  # unreadable inside the pod: plugged again
            plugged.add(record.interface)
        return plugged, repaired

    def _ports(self, infra_id: str) -> dict[str, Port]:
        """The container's marked ports by name: one OVSDB read for every judgement."""
        return {p.name: p for p in self.ovs.ports(**marks.of_container(infra_id))}

    def _judged(self, ports: dict[str, Port], pairs: list[tuple[Attachment, "Want"]],
                netns: str) -> list[tuple[Attachment, list[str], str]]:
        """Each record with how its port (of `ports`) differs and, for a port as wanted when
        the pod's `netns` is given, its checksum state (`PodChecksums.state`)."""
        judged = []
        for record, want in pairs:
            lines = self._differs(ports, record, want)
            state = "" if lines or not netns else self.checksums.state(
                ports[record.port].datapath, netns, record.interface)
            judged.append((record, lines, state))
        return judged

    def _differs(self, ports: dict[str, Port], record: Attachment, want: "Want") -> list[str]:
        port = ports.get(record.port)
        if port is None:
            return [f"port {record.port} is not in Open vSwitch"]
        found = []
        if port.bridge != want.bridge:
            found.append(f"port {port.name} is on bridge {port.bridge or '(none)'}, "
                         f"not {want.bridge}")
        native = trunks.native(record.trunk, record.vlan)
        if port.tag != (record.vlan if native else None) or record.vlan != want.vlan:
            found.append(f"port {port.name} has VLAN {port.tag}, wanted {want.vlan}"
                         f"{'' if native else ' (tagged, no native VLAN)'}")
        if list(port.trunks) != trunks.vlans(record.trunk) or record.trunk != want.trunk:
            found.append(f"port {port.name} trunks VLANs {list(port.trunks) or 'none'}, wanted "
                         f"{trunks.vlans(want.trunk) or 'none'}"
                         f"{'' if record.trunk == want.trunk else ' (the trunk changed)'}")
        if port.error:
            found.append(f"port {port.name} has an error: {port.error}")
        if record.bandwidth != want.bandwidth:
            found.append(f"port {port.name} has bandwidth limits {record.bandwidth.shown()}, "
                         f"wanted {want.bandwidth.shown()}")
        if marks.Marks.read(port.external_ids) != record.marks(self.config.node_name):
            found.append(f"port {port.name} does not carry this attachment's marks")
        if not self.ip.link_exists(port.name):
            found.append(f"host veth {port.name} does not exist")
        return found

    def remove(self, infra_id: str, ports: list[str], only: set[str] | None,
               records: Iterable[Attachment] = ()) -> list[Port]:
        """Delete these ports, their veths and their rules, and any other port marked with
        the container (of `only` these interfaces, if given); return the marked ports that
        were there. The kernel's slow veth destruction overlaps the OVSDB commit; the
        rules go last, once nothing can send through the ports. A port's bridge is its
        record's (of `records`), else the one OVSDB had it on. What enforced the bandwidth
        limits of `records` goes too: meters before their port, QoS after."""
        records = list(records)
        limited = [r for r in records if r.bandwidth.ingress or r.bandwidth.egress]
        for record in limited:
            if record.bandwidth.egress:
                self.limits.remove_meter(record)
        failures: list[Exception] = []

        def delete_links() -> None:
            try:
                for name in ports:
                    self.ip.delete_link(name)
            except Exception as exc:  # re-raised below, in the caller's thread
                failures.append(exc)

        links = threading.Thread(target=delete_links)
        links.start()
        try:
            marked = self.ovs.find_then_delete(ports, **marks.of_container(infra_id))
        finally:
            links.join()
        if failures:
            raise failures[0]
        marked = [p for p in marked
                  if not only or p.external_ids.get(marks.KEYS["interface"]) in only]
        leftovers = [p.name for p in marked if p.name not in ports]
        if leftovers:  # a config changed since setup: ports under other names
            self.ovs.delete_ports(leftovers)
            for name in leftovers:
                self.ip.delete_link(name)
        where = {p.name: p.bridge for p in marked if p.bridge}
        where.update({r.port: r.bridge for r in records})
        self.guard.remove((where.get(name, ""), name) for name in {*ports, *leftovers})
        for record in limited:
            if record.bandwidth.ingress:
                self.limits.remove_qos(record)
        return marked

    def _plug_port(self, record: Attachment, ofport: int) -> str:
        """The port with its tag (and trunk), marks and OpenFlow number, in one OVSDB
        transaction, made before its link; the bridge's datapath_type, read in the same
        transaction.

        pipework adds a port only when `list-ports` lacks it, so with the port already
        there no call waits while ovs-vswitchd reconfigures every port of the bridge (a
        wait that grows with the ports); ovs-vswitchd takes the device as it appears.
        The transaction fails on a bridge OVSDB does not have: said plainly. An ingress
        limit's QoS is made in it too, so the port never exists without its limit.
        """
        try:
            return self.ovs.plug(record.bridge, record.port, record.vlan,
                                 record.marks(self.config.node_name).external_ids(), ofport,
                                 trunks.vlans(record.trunk),
                                 trunks.native(record.trunk, record.vlan),
                                 qos=bandwidth.qos(record, self.config.node_name))
        except ToolFailed:
            if record.bridge not in self.ovs.bridges():
                raise NotReady(f"Open vSwitch bridge {record.bridge} does not exist",
                               BRIDGE_HINT) from None
            raise

    def _wait_in_datapath(self, port: str) -> None:
        """Until the datapath switches the port's traffic (read from the link's flags, no
        process), so that the announcement that follows is not dropped; bounded by the
        OVS timeout."""
        deadline = time.monotonic() + self.config.ovs_timeout
        while not self.ip.in_datapath(port):
            if time.monotonic() > deadline:
                raise BackendError(
                    f"Open vSwitch did not take port {port} into its datapath within "
                    f"{self.config.ovs_timeout:g} s", "check ovs-vswitchd (its log, "
                    "ovs-vsctl get Interface PORT error)")
            time.sleep(0.002)

    def _check(self, sandbox: Sandbox, record: Attachment) -> None:
        """After plugging: the addresses are on the pod's interface, the host veth exists."""
        ifname, port = record.interface, record.port
        found = self.ip.container_addresses(sandbox.netns, ifname)
        missing = [a for a in record.addresses if a not in found]
        if missing:
            raise BackendError(
                f"after plugging, {ifname} in the pod has {found or 'no address'}, "
                f"not {', '.join(missing)}", "see the plugin log for the commands' output")
        if not self.ip.link_exists(port):
            raise BackendError(f"after plugging, host veth {port} does not exist",
                               "see the plugin log for the commands' output")
