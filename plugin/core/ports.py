"""The port facade: what a pod's OVS port is, whichever plumber makes the pod's end.

A plumber differs in one thing only: how the pod's end of the veth is made and
addressed (pipework for a Docker container, a veth into a namespace path for a
CRI pod). Everything else about the port is the same, so it lives here, once:
the bridges' readiness, the port with its tag and marks in one OVSDB
transaction, the transmit checksum offload the bridge's datapath needs, the
checks after plugging, the wait for the datapath, the conflict probe, the
announcement, the differences from what is wanted, and removal (one unplug
path for every plumber). Per-port features (port security rules, QoS rows,
meters, trunks) belong here too.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from pipework_wrapper import iproute
from pipework_wrapper.ovs import Ovs, Port
from plugin.core import marks, rules
from plugin.core.plumbing import Plumber, Sandbox, Undo, plumbers
from plugin.core.records import Attachment
from plugin.errors import AddressConflict, BackendError, NotReady, ToolFailed

if TYPE_CHECKING:
    from pipework_wrapper.probe import Answer
    from plugin.config.schema import Config
    from plugin.core.policy import Want
    from plugin.ipam.model import Lease

OFFLOADED = "offloaded"
CHECKSUM_HINT = ("run setup (CNI: ADD) again or `vlanpipe init`, which turn it off; see "
                 "pod_tx_checksum in config.yaml")
BRIDGE_HINT = ("run the plugin's init command with the same bridge and datapath_type "
               "(or ovs-vsctl add-br BRIDGE -- set Bridge BRIDGE datapath_type=netdev)")


def checksum_off_wanted(config: "Config", datapath: str) -> bool:
    """Whether pods on a bridge of this datapath_type need transmit checksum offload
    off (`pod_tx_checksum`; `auto`: on the userspace datapath, which forwards a veth's
    frames with the TCP/UDP checksum unwritten: see pipework_wrapper/ethtool.py)."""
    policy = config.pod_tx_checksum
    return policy == "off" or (policy == "auto" and datapath == "netdev")


def _announce(netns: str, ifname: str, addresses: list[str]) -> None:
    """`pipework_wrapper.announce`, imported by the calls that plug (it loads ctypes)."""
    from pipework_wrapper.announce import announce

    announce(netns, ifname, addresses)


def _probe(netns: str, ifname: str, addresses: list[str], wait: float) -> list["Answer"]:
    from pipework_wrapper.probe import probe  # likewise

    return probe(netns, ifname, addresses, wait)


class PodPorts:
    """Makes (`plug`) and removes (`remove`) pods' ports on OVS bridges."""

    def __init__(self, config: "Config", plumbing: dict[str, Plumber] | None = None,
                 ovs: Ovs | None = None, ip: Any = iproute,
                 announcer: Callable[[str, str, list[str]], None] | None = None,
                 prober: Callable[..., list["Answer"]] | None = None) -> None:
        """`ovs`, `ip`, `announcer`, `prober` and the plumbers' own wrappers are what unit
        tests replace with fakes of their shape."""
        self.config = config
        self.plumbers = plumbing or plumbers(config)
        self.ovs = ovs or Ovs(config.ovs_timeout)
        self.ip = ip
        self.announce = announcer or _announce
        self.probe = prober or _probe

    def plug(self, sandbox: Sandbox, record: Attachment, leases: list["Lease"], push: Undo,
             stale: bool) -> None:
        """Attach `record` (its addresses: `leases`, one per family) in `sandbox`; every step
        pushes its undo before it runs.

        `stale`: an earlier attempt for this container recorded this interface, so a
        port of that name may be left in OVSDB. The port is named from this container's
        id: nothing else can own it, and left in place it would make pipework refuse
        ("exists and is up") or skip its add-port.
        """
        port, ifname = record.port, record.interface
        if stale or self.ip.link_exists(port):
            self.ovs.delete_ports([port])
            self.ip.delete_link(port)
        push(lambda: self.ovs.delete_ports([port]))
        push(lambda: self.ip.delete_link(port))  # the pod's end goes with it
        datapath = self._plug_port(record)
        self.plumbers[sandbox.plumber].make(sandbox, record, leases, push)
        self._settle_checksum(sandbox.netns, ifname, datapath)
        self._check(sandbox, record)
        self._wait_in_datapath(port)
        self._unique_on_the_wire(sandbox.netns, record)
        self.announce(sandbox.netns, ifname, list(record.addresses))

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
        found = []
        for record, lines, state in self._judged(infra_id, pairs, netns):
            if state == OFFLOADED:
                lines = [f"{record.interface} in the pod leaves TCP/UDP checksums to "
                         f"transmit offload on {record.bridge}, a userspace-datapath bridge, "
                         f"so its TCP and UDP are dropped; {CHECKSUM_HINT}"]
            elif state:
                lines = [state]
            found += lines
        return found + rules.recorded_differences(self.config, self.ovs, infra_id,
                                                  [record for record, _ in pairs])

    def as_wanted(self, infra_id: str, pairs: list[tuple[Attachment, "Want"]],
                  netns: str = "") -> tuple[set[str], list[str]]:
        """The interfaces of these records that are plugged as wanted (one OVSDB read), and
        those of them whose checksum offload was on where it drops TCP and UDP, turned
        off here in place (pods attached by a release that left it on)."""
        plugged, repaired = set(), []
        for record, lines, state in self._judged(infra_id, pairs, netns):
            if lines:
                continue
            if state == OFFLOADED:
                self._checksum_off(netns, record.interface)
                repaired.append(record.interface)
            elif state:
                continue  # unreadable inside the pod: plugged again
            plugged.add(record.interface)
        return plugged, repaired

    def _judged(self, infra_id: str, pairs: list[tuple[Attachment, "Want"]],
                netns: str) -> list[tuple[Attachment, list[str], str]]:
        """Each record with how its port differs (one OVSDB read for all) and, for a port
        as wanted when the pod's `netns` is given, its checksum state (`_checksum`)."""
        ports = {p.name: p for p in self.ovs.ports(**marks.of_container(infra_id))}
        judged = []
        for record, want in pairs:
            lines = self._differs(ports, record, want)
            state = "" if lines or not netns else self._checksum(ports[record.port], netns,
                                                                  record.interface)
            judged.append((record, lines, state))
        return judged

    def _checksum(self, port: Port, netns: str, ifname: str) -> str:
        """"" when the interface's offload is as the bridge needs, OFFLOADED when it is on
        where it must be off, else why it could not be read."""
        if not checksum_off_wanted(self.config, port.datapath):
            return ""
        try:
            return OFFLOADED if self.ip.tx_checksum(netns, ifname) else ""
        except ToolFailed as exc:
            return exc.line()

    def _differs(self, ports: dict[str, Port], record: Attachment, want: "Want") -> list[str]:
        port = ports.get(record.port)
        if port is None:
            return [f"port {record.port} is not in Open vSwitch"]
        found = []
        if port.bridge != want.bridge:
            found.append(f"port {port.name} is on bridge {port.bridge or '(none)'}, "
                         f"not {want.bridge}")
        if port.tag != record.vlan or record.vlan != want.vlan:
            found.append(f"port {port.name} has VLAN {port.tag}, wanted {want.vlan}")
        if port.error:
            found.append(f"port {port.name} has an error: {port.error}")
        if marks.Marks.read(port.external_ids) != record.marks(self.config.node_name):
            found.append(f"port {port.name} does not carry this attachment's marks")
        if not self.ip.link_exists(port.name):
            found.append(f"host veth {port.name} does not exist")
        return found

    def remove(self, infra_id: str, ports: list[str], only: set[str] | None) -> list[Port]:
        """Delete these ports and their veths, and any other port marked with the container
        (of `only` these interfaces, if given); return the marked ports that were there.
        The kernel's slow veth destruction overlaps the OVSDB commit."""
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
        return marked

    def _plug_port(self, record: Attachment) -> str:
        """The port with its tag and marks, in one OVSDB transaction, made before its link;
        the bridge's datapath_type, read in the same transaction.

        pipework adds a port only when `list-ports` lacks it, so with the port already
        there no call waits while ovs-vswitchd reconfigures every port of the bridge (a
        wait that grows with the ports); ovs-vswitchd takes the device as it appears.
        The transaction fails on a bridge OVSDB does not have: said plainly.
        """
        try:
            return self.ovs.plug(record.bridge, record.port, record.vlan,
                                 record.marks(self.config.node_name).external_ids())
        except ToolFailed:
            if record.bridge not in self.ovs.bridges():
                raise NotReady(f"Open vSwitch bridge {record.bridge} does not exist",
                               BRIDGE_HINT) from None
            raise

    def _settle_checksum(self, netns: str, ifname: str, datapath: str) -> None:
        """The pod's new interface computes its own TCP/UDP checksums where the bridge
        needs it, or setup fails (and rolls back): a pod that pings but cannot talk is
        worse than no pod."""
        if checksum_off_wanted(self.config, datapath):
            self._checksum_off(netns, ifname)

    def _checksum_off(self, netns: str, ifname: str) -> None:
        if self.ip.set_tx_checksum(netns, ifname, False):
            raise BackendError(
                f"transmit checksum offload of {ifname} in the pod stays on after it was "
                "turned off; on a userspace-datapath bridge its TCP and UDP would be dropped",
                "check the interface's driver (ethtool -k), or set pod_tx_checksum: on "
                "where OVS has userspace-tso-enable=true")

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

    def _unique_on_the_wire(self, netns: str, record: Attachment) -> None:
        """No other host on the VLAN answers for the pod's addresses (`conflict_probe`):
        probed once the datapath switches the port, before the announcement would
        overwrite the other host in its neighbours' caches. The core keeps the lease."""
        if not self.config.conflict_probe or not record.addresses:
            return
        by_ip = {a.split("/")[0]: a for a in record.addresses}
        found = tuple((by_ip.get(a.address, a.address), a.mac) for a in self.probe(
            netns, record.interface, list(by_ip.values()),
            self.config.conflict_probe_wait_ms / 1000))
        if found:
            raise AddressConflict("; ".join(
                f"address {address} is already used by MAC {mac} on bridge {record.bridge} "
                f"VLAN {record.vlan}" for address, mac in found),
                "find that host (the MAC names it) and remove the address from it",
                record.interface, record.network, found)

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
