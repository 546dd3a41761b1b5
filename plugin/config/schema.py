"""The node's configuration: every key, its type, range and default, validated once.

Only root writes it (`plugin.config.loader` checks), so it alone decides what
runs and where the plugin writes: binaries, paths, state and log locations,
endpoints, timeouts, the networks and their pools, and (`cni`) what a network
config written by a namespace user may choose.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from plugin import names
from plugin.config import cnipolicy
from plugin.config.cnipolicy import CniPolicy
from plugin.config.limits import parse_bandwidth
from plugin.config.networks import MTU_MAX, MTU_MIN, parse_networks
from plugin.config.reader import Section
from plugin.config.security import PortSecurity, network_setting
from plugin.errors import ConfigError
from plugin.ipam.networks import NetworkConfig
from plugin.policy import trunk as trunks
from plugin.policy.bandwidth import Bandwidth
from plugin.policy.trunk import TrunkEntry
from plugin.policy.vlan import RULES, VlanRule

if TYPE_CHECKING:  # the etcd and uplink sections' records load when a config has one
    from plugin.config.uplink import Uplink
    from plugin.ipam.allocators import Allocators
    from plugin.ipam.stores.etcd_config import EtcdConfig

STATUS_REPORTS = ("docker", "vlan")
TX_CHECKSUM = ("auto", "off", "on")
PROBE_WAIT_MS = (1, 5000)  # a host on the VLAN answers in about a millisecond


@dataclass(frozen=True)
class InterfaceSpec:
    """One interface every pod gets: which bridge, which name inside, which VLAN rule."""

    interface: str
    bridge: str
    vlan: VlanRule
    primary: bool = True
    trunk: tuple[TrunkEntry, ...] = ()  # VLANs its port also carries tagged (policy.trunk)


@dataclass(frozen=True)
class Config:
    """The node's validated configuration: what runs, where it writes, what pods get."""

    source: str
    bridge: str = "k8s_br"
    bridge_mtu: int = 1500  # init's mtu_request on each bridge's own interface
    datapath_type: str = "netdev"
    pod_tx_checksum: str = "auto"  # auto: off on userspace-datapath bridges; off; on: untouched
    attachments: tuple[InterfaceSpec, ...] = ()
    networks: tuple[NetworkConfig, ...] = ()
    etcd: EtcdConfig | None = None
    vlan_pins: bool = False
    status_report: str = "docker"
    log_file: str = "/var/log/vlanpipe/vlanpipe.log"
    debug: bool = False
    state_dir: str = "/var/lib/vlanpipe"
    node_name: str = field(default_factory=socket.gethostname)
    docker_url: str = "unix:///var/run/docker.sock"
    pipework: str = "pipework"
    ovs_timeout: float = 30.0  # see config.yaml: a full node's burst kept calls over 5 s
    docker_timeout: float = 10.0
    pipework_timeout: float = 60.0
    lock_timeout: float = 90.0
    gc_on_init: bool = False
    conflict_probe: bool = True  # ask the VLAN whether another host has the pod's address
    conflict_probe_wait_ms: int = 200  # how long setup listens for an answer
    cni: CniPolicy = CniPolicy()
    uplink: Uplink | None = None
    bandwidth_max: Bandwidth = Bandwidth()  # the most any pod may get (0: unbounded)
    port_security: bool = True  # the node's default (flows.guard_of's node_default)
    network_security: Mapping[str, PortSecurity] = field(  # the networks' own, by name
        default_factory=lambda: MappingProxyType({}))

    def security_for(self, network: str) -> PortSecurity:
        """The port security of `network`'s ports: its own setting, else the node's."""
        return self.network_security.get(network) or PortSecurity(self.port_security)

    def allocators(self) -> Allocators:
        """The allocators of this node's networks. Imported here, on first use, so that
        reading the config (every call, `status` too) never loads them."""
        from plugin.ipam.allocators import Allocators

        return Allocators(self.networks, self.etcd, self.state_dir, self.node_name)


def parse(data: Any, source: str) -> Config:
    return _parse(Section(source, data))


def top_level_keys() -> frozenset[str]:
    """Every key the node config has, as the parser reads them: the node-level settings."""
    top = Section("(keys)", {})
    _parse(top)
    return frozenset(top.read)


def _parse(top: Section) -> Config:
    bridge = top.convert("bridge", names.ifname, "a bridge name (1-15 letters, digits, _ . -)", "k8s_br")
    vlan_section = top.section("vlan")
    default_rule = vlan_rule(vlan_section)
    pins = vlan_section.boolean("pinned", False)
    vlan_section.done()
    interface = top.convert("interface", names.ifname, "an interface name", "eth1")
    attachments = _attachments(top, bridge, interface, default_rule, trunk_of(top))
    port_security = top.boolean("port_security", True)
    sections = top.sections("networks")
    settings = [network_setting(section, port_security) for section in sections]
    networks = parse_networks(sections)
    etcd = _etcd(top.section("etcd"))
    status = top.section("status")
    report = status.choice("report", STATUS_REPORTS, "docker")
    status.done()
    log = top.section("log")
    log_file = log.absolute_path("file", Config.log_file)
    debug = log.boolean("debug", False)
    log.done()
    timeouts = top.section("timeouts")
    ovs_timeout = timeouts.number("ovs", Config.ovs_timeout)
    docker_timeout = timeouts.number("docker", 10.0)
    pipework_timeout = timeouts.number("pipework", 60.0)
    lock_timeout = timeouts.number("lock", 90.0)
    timeouts.done()
    probe = top.section("conflict_probe")
    probe_enabled = probe.boolean("enabled", Config.conflict_probe)
    probe_wait = probe.integer("wait_ms", Config.conflict_probe_wait_ms, PROBE_WAIT_MS[0],
                               PROBE_WAIT_MS[1])
    probe.done()
    config = Config(
        source=top.source,
        bridge=bridge,
        bridge_mtu=top.integer("bridge_mtu", Config.bridge_mtu, MTU_MIN, MTU_MAX),
        datapath_type=top.choice("datapath_type", ("netdev", "system", ""), "netdev"),
        pod_tx_checksum=top.choice("pod_tx_checksum", TX_CHECKSUM, "auto"),
        attachments=attachments,
        networks=networks,
        etcd=etcd,
        vlan_pins=pins,
        status_report=report,
        log_file=log_file,
        debug=debug,
        state_dir=top.absolute_path("state_dir", Config.state_dir),
        node_name=top.convert("node_name", names.node, "a node name", "") or socket.gethostname(),
        docker_url=top.string("docker_url", Config.docker_url),
        pipework=top.program("pipework", Config.pipework),
        ovs_timeout=ovs_timeout,
        docker_timeout=docker_timeout,
        pipework_timeout=pipework_timeout,
        lock_timeout=lock_timeout,
        gc_on_init=top.boolean("gc_on_init", False),
        conflict_probe=probe_enabled,
        conflict_probe_wait_ms=probe_wait,
        cni=cnipolicy.parse(top.section("cni"), bridge),
        uplink=_uplink(top.section("uplink"), bridge),
        bandwidth_max=parse_bandwidth(top, "bandwidth_max"),
        port_security=port_security,
        network_security=MappingProxyType({
            section.data["name"]: setting
            for section, setting in zip(sections, settings) if setting is not None}),
    )
    top.done()
    for network in networks:
        for key, value, most in network.bandwidth.exceeding(config.bandwidth_max):
            raise ConfigError(f"config {top.source}: network {network.name}'s bandwidth.{key} "
                              f"= {value} is above bandwidth_max.{key} ({most})",
                              "lower the network's limit or raise bandwidth_max")
    if pins and etcd is None:
        raise top.error("vlan.pinned", True, "needs an etcd section to read pins from")
    return config


def vlan_rule(section: Section) -> VlanRule:
    kind = section.choice("rule", RULES, "pod-name-prefix")
    if kind == "regex":
        pattern = section.convert("pattern", re.compile, "a regular expression")
        if "vlan" not in pattern.groupindex:
            raise section.error(section.key("pattern"), pattern.pattern,
                                "needs a named group (?P<vlan>...)")
        return VlanRule(kind, pattern=pattern)
    if kind == "namespace-map":
        mapping = section.typed("namespaces", dict)
        tags = {}
        for ns, tag in mapping.items():
            if not isinstance(tag, int):
                raise section.error(section.key(f"namespaces.{ns}"), tag, "must be an integer")
            tags[str(ns)] = _config_tag(section, f"namespaces.{ns}", tag)
        return VlanRule(kind, namespaces=tags)
    if kind == "fixed":
        return VlanRule(kind, tag=_config_tag(section, "tag", section.integer("tag")))
    return VlanRule(kind)


def _config_tag(section: Section, key: str, tag: int) -> int:
    try:
        return names.vlan(tag)
    except ValueError as exc:
        raise section.error(section.key(key), tag, str(exc)) from None


def trunk_of(section: Section) -> tuple[TrunkEntry, ...]:
    """The section's `trunk` (none: ()), through the one trunk parser."""
    value = section.raw("trunk", None)
    try:
        return () if value is None else trunks.parse(value, section.key("trunk"))
    except trunks.TrunkError as exc:
        raise section.error(exc.key, exc.value, exc.why) from None


def _attachments(top: Section, bridge: str, interface: str, rule: VlanRule,
                 trunk: tuple[TrunkEntry, ...]) -> tuple[InterfaceSpec, ...]:
    """The `attachments` list, or the one attachment the top-level keys describe (its
    `trunk` too: with a list, each item says its own)."""
    items = top.sections("attachments")
    if not items:
        return (InterfaceSpec(interface, bridge, rule, True, trunk),)
    if trunk:
        raise top.error("trunk", top.raw("trunk"), "applies without an attachments list: "
                        "give the attachment that carries it its own trunk key")
    specs = []
    for item in items:
        vlan = item.section("vlan")
        spec = InterfaceSpec(
            interface=item.convert("interface", names.ifname, "an interface name"),
            bridge=item.convert("bridge", names.ifname, "a bridge name", bridge),
            vlan=vlan_rule(vlan) if item.has("vlan") else rule,
            primary=item.boolean("primary", False),
            trunk=trunk_of(item),
        )
        vlan.done()
        item.done()
        specs.append(spec)
    if sum(s.primary for s in specs) != 1:
        raise top.error("attachments", len(specs), "must mark exactly one attachment primary: true")
    if len({s.interface for s in specs}) != len(specs):
        raise top.error("attachments", [s.interface for s in specs], "must name each interface once")
    return tuple(specs)


def _etcd(section: Section) -> EtcdConfig | None:
    """`parse_etcd`'s answer, None for an absent or empty section without loading it: a
    node without etcd builds none of its records (issue 23)."""
    if not section.data:
        return None
    from plugin.config.etcd import parse_etcd

    return parse_etcd(section)


def _uplink(section: Section, bridge: str) -> Uplink | None:
    if not section.data:
        section.done()
        return None
    from plugin.config.uplink import parse_uplink

    return parse_uplink(section, bridge)
