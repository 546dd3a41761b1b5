"""Fakes at the boundaries real daemons cannot be made to misbehave at on cue.

`MemoryStore` is a lease store in a dict, with hooks to make a claim lose a race
or find its address taken; the allocator's algorithm is tested over it. The
host fakes (`FakeHost` and friends) stand in for pipework, ovs-vsctl, ip and
Docker at the wrapper boundary, keeping just enough state (links, ports,
addresses inside pods) for the core's rollback and idempotence to be checked.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from pipework_wrapper.errors import ToolFailed
from pipework_wrapper.ovs import Port
from pipework_wrapper.probe import Answer
from plugin.core.flows import BRIDGE
from tests.support.fake_ofctl import FakeOfctl
from plugin.ipam.leaserecord import Record
from plugin.identity import Identity
from plugin.ipam.model import Damaged, IPAddress
from plugin.ipam.stores import Claimed, Held, Outcome


@dataclass
class MemoryStore:
    """A `Store` in memory. `before_claim(record)` may return an outcome to force
    ("raced", "taken") or None to let the claim proceed. With `lookahead`, a lost claim
    says which probed candidates are free, as the etcd store does."""

    spread: int = 1
    lookahead: int = 0
    records: dict[str, Record] = field(default_factory=dict)    # address -> record
    owners: dict[str, tuple[str, int]] = field(default_factory=dict)  # owner key -> (address, rev)
    last: IPAddress | None = None
    revision: int = 0
    before_claim: Callable[[Record], Outcome | None] = lambda record: None
    calls: dict[str, int] = field(default_factory=dict)
    damaged_records: list[Damaged] = field(default_factory=list)
    probed: list[list[IPAddress]] = field(default_factory=list)  # each claim's probe

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def exclusive(self) -> contextlib.AbstractContextManager[object]:
        self._count("exclusive")
        return contextlib.nullcontext()

    def held(self, owner: Identity) -> Held:
        self._count("held")
        address, revision = self.owners.get(owner.key, ("", 0))
        return Held(self.records.get(address), revision, self.last)

    def claim(self, record: Record, held: Held, rotate: bool,
              probe: Sequence[IPAddress] = ()) -> Claimed:
        self._count("claim")
        self.probed.append(list(probe))
        outcome = self._claim(record, held, rotate)
        if outcome != "taken" or not self.lookahead:
            return Claimed(outcome)
        return Claimed(outcome, frozenset(a for a in probe if str(a) not in self.records))

    def _claim(self, record: Record, held: Held, rotate: bool) -> Outcome:
        forced = self.before_claim(record)
        if forced is not None:
            return forced
        address = str(record.address.ip)
        if self.owners.get(record.owner.key, ("", 0))[1] != held.revision:
            return "raced"
        if address in self.records:
            return "taken"
        self.revision += 1
        if held.record is not None:
            self.records.pop(str(held.record.address.ip), None)
        self.records[address] = record
        self.owners[record.owner.key] = (address, self.revision)
        if rotate:
            self.last = record.address.ip
        return "won"

    def read(self, address: IPAddress) -> Record | None:
        return self.records.get(str(address))

    def taken(self) -> list[str]:
        self._count("taken")
        return list(self.records)

    def release(self, owner: Identity) -> bool:
        address, _ = self.owners.pop(owner.key, ("", 0))
        return self.records.pop(address, None) is not None

    def scan(self) -> tuple[list[Record], list[Damaged]]:
        return sorted(self.records.values(), key=lambda r: int(r.address.ip)), \
            list(self.damaged_records)


class FakeHost:
    """The host as pipework, ovs-vsctl and ip leave it, in memory.

    `fail_at(step, nth=1)` makes the nth call of a step raise the wrapper's own
    failure, after the effects of the steps before it (pipework has `set -e` and
    no trap: a failure midway leaves what it already made). Steps: "ovs:plug",
    "ovs:delete", "ip:delete", "ip:mtu", "ip:route", "ip:addresses",
    "pipework:veth", "pipework:port", "pipework:address", "ip:veth", "ip:batch",
    "ip:offload", "probe", "announce", "ofctl:bundle", "ofctl:delete".

OpenFlow rules are kept per bridge by `ofctl` (tests/support/fake_ofctl.py); a port's
OpenFlow number is in `ofports`.

    A pod interface starts with transmit checksum offload on, as a veth does;
    `offload_stuck` makes turning it off have no effect (a driver that ignores it).
    """

    def __init__(self) -> None:
        self.bridges: set[str] = set()
        self.links: set[str] = set()
        self.ports: dict[str, Port] = {}
        self.addresses: dict[tuple[str, str], list[str]] = {}  # (netns path, ifname) -> addresses
        self.netns_links: set[int] = set()
        self.peers: dict[str, tuple[str, str]] = {}  # host end of a veth -> (netns, pod ifname)
        self.containers: dict[str, int] = {}  # Docker id -> PID, as pipework finds them
        # Namespace path -> (device, inode); the plugin's own is the host's.
        self.namespaces: dict[str, tuple[int, int]] = {"/proc/self/ns/net": (4, 1)}
        self.calls: list[str] = []
        self.announced: list[tuple[str, str, list[str]]] = []
        self.probed: list[tuple[str, str, list[str], float]] = []
        # Other hosts on the wire: (bridge, VLAN, IP) -> MAC; a probe of a pod plugged
        # there hears that MAC answer (`probe`).
        self.wire: dict[tuple[str, int, str], str] = {}
        self.ipv6_defaults: dict[str, tuple[str, str]] = {}  # pod netns -> (disable, dad)
        self.datapath_stuck = False  # ovs-vswitchd never takes a port into its datapath
        self.datapaths: dict[str, str] = {}  # bridge -> datapath_type (default netdev)
        self.offload: dict[tuple[str, str], bool] = {}  # (netns, ifname) -> tx checksum on
        self.offload_stuck = False
        self.ofports: dict[str, int] = {}  # port -> ofport_request
        self.link_locals: dict[tuple[str, str], list[str]] = {}  # (netns, ifname) -> fe80::
        # QoS rows by UUID: (the port made with it, the Qos); like OVSDB's, they outlive it.
        self.qos: dict[str, tuple[str, Any]] = {}
        self.qos_stuck = False  # ovs-vswitchd never puts a port's htb qdisc on its device
        self._failures: dict[str, int] = {}
        self.fail_modes: dict[str, str] = {}  # bridge -> fail_mode ("" standalone)
        self.ovs = FakeOvs(self)
        self.ofctl = FakeOfctl(self.bridges, self.step)
        self.ip = FakeIp(self)
        self.pipework = FakePipework(self)

    def fail_at(self, step: str, nth: int = 1) -> None:
        self._failures[step] = nth

    def step(self, name: str) -> None:
        self.calls.append(name)
        if self._failures.get(name) == self.calls.count(name):
            raise ToolFailed(f"injected failure at {name}")

    def announce(self, netns: str, ifname: str, addresses: list[str]) -> None:
        self.step("announce")
        self.announced.append((netns, ifname, list(addresses)))

    def probe(self, netns: str, ifname: str, addresses: list[str], wait: float) -> list[Answer]:
        """The conflict probe: answers from `wire` for the port whose pod end this is."""
        self.step("probe")
        self.probed.append((netns, ifname, list(addresses), wait))
        port = next((self.ports.get(host) for host, peer in self.peers.items()
                     if peer == (netns, ifname)), None)
        if port is None:
            return []
        ips = [a.split("/")[0] for a in addresses]
        return [Answer(ip, self.wire[port.bridge, port.tag, ip]) for ip in ips
                if (port.bridge, port.tag, ip) in self.wire]

    def leftovers(self) -> list[str]:
        """Everything a pod's attachment leaves on the host (bridges aside)."""
        return ([f"link {n}" for n in sorted(self.links)]
                + [f"port {n}" for n in sorted(self.ports)]
                + [f"address {a} in {netns} {ifname}"
                   for (netns, ifname), found in sorted(self.addresses.items()) for a in found]
                + [f"netns link {pid}" for pid in sorted(self.netns_links)]
                + [f"rule on {bridge}: {rule}"
                   for bridge, rules in sorted(self.ofctl.rules.items())
                   for rule in rules if rule.cookie != BRIDGE]
                + [f"QoS row of {port}" for port, _ in sorted(self.qos.values())])


class FakeOvs:
    def __init__(self, host: FakeHost) -> None:
        self.host = host

    def bridges(self) -> set[str]:
        return set(self.host.bridges)

    def ports(self, **match: str) -> list[Port]:
        return [replace(p, datapath=self.host.datapaths.get(p.bridge, "netdev"))
                for p in self.host.ports.values()
                if all(p.external_ids.get(k) == v for k, v in match.items())]

    def ofports(self) -> set[int]:
        return {n for name, n in self.host.ofports.items() if name in self.host.ports}

    def fail_modes(self) -> dict[str, str]:
        return {b: self.host.fail_modes.get(b, "") for b in self.host.bridges}

    def set_fail_mode(self, bridge: str, mode: str) -> None:
        """Open vSwitch flushes a bridge's rules when its fail mode changes."""
        if self.host.fail_modes.get(bridge, "") != mode:
            self.host.ofctl.rules[bridge] = []
        self.host.fail_modes[bridge] = mode

    def plug(self, bridge: str, port: str, tag: int, external_ids: dict[str, str],
             ofport: int | None = None, trunks: Sequence[int] = (),
             native: bool = True, qos: object = None) -> str:
        self.host.step("ovs:plug")
        if bridge not in self.host.bridges:
            raise ToolFailed(f"ovs-vsctl: no bridge named {bridge}")
        old = self.host.ports.get(port)
        if old is not None and old.bridge != bridge:
            raise ToolFailed(f"port {port} is on bridge {old.bridge}")
        if ofport is None:  # ovs-vswitchd's choice: the port's old number, else the next
            ofport = old.ofport if old is not None and old.ofport else 1 + max(
                [p.ofport or 0 for p in self.host.ports.values()], default=0)
        self.host.ports[port] = Port(port, bridge, tag if native else None, dict(external_ids),
                                     trunks=tuple(trunks), ofport=ofport)
        self.host.ofports[port] = ofport
        if qos is not None:
            self.host.qos[f"qos-{len(self.host.calls)}"] = (port, qos)
        return self.host.datapaths.get(bridge, "netdev")

    def delete_ports(self, ports: list[str]) -> None:
        if ports:
            self.host.step("ovs:delete")
        for name in ports:
            self.host.ports.pop(name, None)
            self.host.ofports.pop(name, None)

    def find_then_delete(self, ports: list[str], **match: str) -> list[Port]:
        found = self.ports(**match)
        self.delete_ports(ports)
        return found

    # Bandwidth limits: QoS rows (each one's queue is "queue-" its UUID); no OpenFlow
    # numbers, so no meters (those run against the real OVS: tests/e2e/test_bandwidth.py).
    def _qos_in_use(self) -> set[str]:
        """The newest QoS made with each port that exists: the one its row refers to."""
        return {max(u for u, (p, _) in self.host.qos.items() if p == port)
                for port, _ in self.host.qos.values() if port in self.host.ports}

    def qos_rows(self, **match: str) -> tuple[list[str], list[str]]:
        found = [u for u, (_, q) in self.host.qos.items()
                 if all(q.external_ids.get(k) == v for k, v in match.items())]
        return found, [f"queue-{u}" for u in found]

    def unreferenced_qos(self, **match: str) -> tuple[list[str], list[str]]:
        unused = [u for u in self.qos_rows(**match)[0] if u not in self._qos_in_use()]
        return unused, [f"queue-{u}" for u in unused]

    def destroy_qos(self, qos: list[str], queues: list[str]) -> None:
        if qos or queues:
            self.host.step("ovs:destroy-qos")
        for uuid in qos:
            assert uuid not in self._qos_in_use(), "OVSDB refuses to destroy a QoS in use"
            self.host.qos.pop(uuid, None)

    def ofport(self, port: str) -> int:
        return self.host.ofports.get(port, -1) if port in self.host.ports else -1


class FakeIp:
    def __init__(self, host: FakeHost) -> None:
        self.host = host

    def link_locals(self, netns: str, ifname: str) -> list[str]:
        return list(self.host.link_locals.get((netns, ifname), []))

    def link_exists(self, name: str) -> bool:
        return name in self.host.links or name in self.host.bridges

    def in_datapath(self, name: str) -> bool:
        """ovs-vswitchd takes a port's link once both the port and the link exist."""
        return not self.host.datapath_stuck and name in self.host.links \
            and name in self.host.ports

    def root_qdiscs(self, name: str) -> list[str]:
        """ovs-vswitchd puts a port's htb qdisc on its device once both exist."""
        applied = (name in self.host.links and not self.host.qos_stuck
                   and any(port == name for port, _ in self.host.qos.values()))
        return ["htb"] if applied else []

    def delete_link(self, name: str) -> bool:
        if name not in self.host.links:
            return False
        self.host.step("ip:delete")
        self.host.links.discard(name)
        peer = self.host.peers.pop(name, None)  # a veth takes its peer, and its addresses
        if peer is not None:
            self.host.addresses.pop(peer, None)
            self.host.offload.pop(peer, None)
        return True

    def namespace_id(self, netns: str) -> tuple[int, int] | None:
        return self.host.namespaces.get(netns)

    def dangling_netns_links(self) -> list[int]:
        """The /var/run/netns links left pointing to a process that is gone."""
        return sorted(pid for pid in self.host.netns_links
                      if pid not in self.host.containers.values())

    def has_netns_link(self, pid: int) -> bool:
        return pid in self.host.netns_links

    def remove_netns_link(self, pid: int) -> bool:
        present = pid in self.host.netns_links
        self.host.netns_links.discard(pid)
        return present

    def container_addresses(self, netns: str, ifname: str) -> list[str]:
        self.host.step("ip:addresses")
        return list(self.host.addresses.get((netns, ifname), []))

    def set_mtu(self, netns: str, ifname: str, host_ifname: str, mtu: int) -> None:
        self.host.step("ip:mtu")

    def add_veth(self, host_ifname: str, netns: str, ifname: str, mac: str,
                 mtu: int | None) -> None:
        self.host.step("ip:veth")
        if (netns, ifname) in self.host.peers.values():
            raise ToolFailed(f"{ifname} exists in {netns}")
        self.host.links.add(host_ifname)
        self.host.peers[host_ifname] = (netns, ifname)
        self.host.offload[(netns, ifname)] = True

    def enable_ipv6(self, netns: str, ifname: str) -> None:
        self.host.step("ip:ipv6")

    def ipv6_defaults(self, netns: str, values: tuple[str, str] | None = None
                      ) -> tuple[str, str]:
        self.host.step("ip:ipv6-defaults")
        before = self.host.ipv6_defaults.get(netns, ("1", "1"))
        if values is not None:
            self.host.ipv6_defaults[netns] = values
        return before

    def tx_checksum(self, netns: str, ifname: str) -> bool:
        if (netns, ifname) not in self.host.offload:
            raise ToolFailed(f"cannot read the offload of {ifname} in {netns}: no such device")
        return self.host.offload[(netns, ifname)]

    def set_tx_checksum(self, netns: str, ifname: str, on: bool) -> bool:
        self.host.step("ip:offload")
        if (netns, ifname) not in self.host.offload:
            raise ToolFailed(f"cannot set the offload of {ifname} in {netns}: no such device")
        if not self.host.offload_stuck:
            self.host.offload[(netns, ifname)] = on
        return self.host.offload[(netns, ifname)]

    def in_pod(self, netns: str, commands: list[str]) -> None:
        self.host.step("ip:batch")
        for command in commands:
            words = command.split()
            if words[:2] == ["addr", "add"]:
                self.host.addresses.setdefault((netns, words[4]), []).append(words[2])


class FakePipework:
    """pipework's effects, in its order: the /var/run/netns link and the veth, the port, the
    address, then the link removed again."""

    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.runs: list[list[str]] = []
        self.upstream = False  # which generation's usage text it prints

    def generation(self, program: str) -> str:
        return "upstream" if self.upstream else "2014"

    def attach(self, program: str, args: list[str], timeout: float, quiet_dir: str) -> None:
        self.runs.append(list(args))
        bridge, _, ifname, _, host_if, *rest = args
        container, address, mac_vlan = rest[-3:]
        if "/" in address and ":" in address.split("/")[0]:  # IPv6: its defaults must be on
            assert self.host.ipv6_defaults.get(f"/proc/{self.host.containers[container]}"
                                               "/ns/net") == ("0", "0"), "IPv6 is off"
        pid = self.host.containers[container]
        self.host.step("pipework:veth")
        self.host.links.add(host_if)
        self.host.peers[host_if] = (f"/proc/{pid}/ns/net", ifname)
        self.host.offload[(f"/proc/{pid}/ns/net", ifname)] = True
        self.host.netns_links.add(pid)
        self.host.step("pipework:port")
        if host_if not in self.host.ports:
            tag = int(mac_vlan.rsplit("@", 1)[1])
            self.host.ports[host_if] = Port(host_if, bridge, tag, {})
        self.host.step("pipework:address")
        self.host.addresses[(f"/proc/{pid}/ns/net", ifname)] = [address.split("@", 1)[0]]
        self.host.netns_links.discard(pid)  # removed at its end, when nothing failed
