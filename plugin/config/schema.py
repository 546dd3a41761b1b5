"""The plugin's configuration: found, loaded and validated once, then trusted.

Search order: `--config PATH`, then `$VLANPIPE_CONFIG`, then
`/etc/vlanpipe/config.yaml`, then `config.yaml` beside the installed plugin
executable; with none of them, the built-in defaults (the same values as the
documented config.yaml). The plugin runs as root, so a file that others can
write is refused rather than trusted.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from dataclasses import dataclass, field
from typing import Any

from plugin import names
from plugin.config.reader import Section
from plugin.errors import ConfigError
from plugin.ipam.networks import EtcdConfig, NetworkConfig, parse_etcd, parse_networks
from plugin.core.policy import RULES, VlanRule

ENV_VAR = "VLANPIPE_CONFIG"
SYSTEM_PATH = "/etc/vlanpipe/config.yaml"
STATUS_REPORTS = ("docker", "vlan")


@dataclass(frozen=True)
class InterfaceSpec:
    """One interface every pod gets: which bridge, which name inside, which VLAN rule."""

    interface: str
    bridge: str
    vlan: VlanRule
    primary: bool = True


@dataclass(frozen=True)
class Config:
    source: str
    bridge: str = "k8s_br"
    datapath_type: str = "netdev"
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
    ovs_timeout: float = 5.0
    docker_timeout: float = 10.0
    pipework_timeout: float = 60.0
    lock_timeout: float = 90.0
    gc_on_init: bool = False
    announce_arp: bool = False


def find(explicit: str | None, executable: str) -> str | None:
    """The first config file in the documented search order, or None for defaults."""
    if explicit:
        return explicit
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return from_env
    beside = os.path.join(os.path.dirname(os.path.abspath(executable)), "config.yaml")
    for candidate in (SYSTEM_PATH, beside):
        if os.path.exists(candidate):
            return candidate
    return None


def load(path: str | None) -> Config:
    if path is None:
        return parse({}, "(built-in defaults)")
    return parse(_read_yaml(path), path)


def _read_yaml(path: str) -> Any:
    import yaml

    try:
        with open(path, "rb") as handle:
            _refuse_writable_by_others(path, os.fstat(handle.fileno()))
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot be read ({exc.strerror})",
                          "check the path given by --config or $VLANPIPE_CONFIG") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {path}: not valid YAML{where}",
                          "fix the syntax (indentation, quotes, colons)") from None


def refuse_shared_dir(path: str, what: str) -> None:
    """The plugin runs as root: a directory others can write is one they can steer it by."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        raise ConfigError(f"{what} {path} is writable by users other than its owner",
                          f"run chmod go-w {path}")


def _refuse_writable_by_others(path: str, st: os.stat_result) -> None:
    refuse_shared_dir(os.path.dirname(os.path.abspath(path)), "config directory")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and st.st_uid != os.geteuid():
        raise ConfigError(f"config {path}: writable by users other than its owner",
                          f"run chmod go-w {path}")
    if st.st_mode & stat.S_IWOTH:
        raise ConfigError(f"config {path}: writable by everyone",
                          f"run chmod o-w {path}")


def parse(data: Any, source: str) -> Config:
    top = Section(source, data)
    bridge = top.convert("bridge", names.ifname, "a bridge name (1-15 letters, digits, _ . -)", "k8s_br")
    vlan_section = top.section("vlan")
    default_rule = _vlan_rule(vlan_section)
    pins = vlan_section.boolean("pinned", False)
    vlan_section.done()
    interface = top.convert("interface", names.ifname, "an interface name", "eth1")
    attachments = _attachments(top, bridge, interface, default_rule)
    networks = parse_networks(top.sections("networks"))
    etcd = parse_etcd(top.section("etcd")) if top.has("etcd") else None
    status = top.section("status")
    report = status.choice("report", STATUS_REPORTS, "docker")
    status.done()
    log = top.section("log")
    log_file = log.string("file", Config.log_file)
    debug = log.boolean("debug", False)
    log.done()
    timeouts = top.section("timeouts")
    ovs_timeout = timeouts.number("ovs", 5.0)
    docker_timeout = timeouts.number("docker", 10.0)
    pipework_timeout = timeouts.number("pipework", 60.0)
    lock_timeout = timeouts.number("lock", 90.0)
    timeouts.done()
    config = Config(
        source=source,
        bridge=bridge,
        datapath_type=top.choice("datapath_type", ("netdev", "system", ""), "netdev"),
        attachments=attachments,
        networks=networks,
        etcd=etcd,
        vlan_pins=pins,
        status_report=report,
        log_file=log_file,
        debug=debug,
        state_dir=top.string("state_dir", Config.state_dir),
        node_name=top.string("node_name", "") or socket.gethostname(),
        docker_url=top.string("docker_url", Config.docker_url),
        pipework=top.string("pipework", Config.pipework),
        ovs_timeout=ovs_timeout,
        docker_timeout=docker_timeout,
        pipework_timeout=pipework_timeout,
        lock_timeout=lock_timeout,
        gc_on_init=top.boolean("gc_on_init", False),
        announce_arp=top.boolean("announce_arp", False),
    )
    top.done()
    if pins and etcd is None:
        raise top.error("vlan.pinned", True, "needs an etcd section to read pins from")
    return config


def _vlan_rule(section: Section) -> VlanRule:
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


def _attachments(top: Section, bridge: str, interface: str, rule: VlanRule) -> tuple[InterfaceSpec, ...]:
    items = top.sections("attachments")
    if not items:
        return (InterfaceSpec(interface, bridge, rule, True),)
    specs = []
    for item in items:
        vlan = item.section("vlan")
        spec = InterfaceSpec(
            interface=item.convert("interface", names.ifname, "an interface name"),
            bridge=item.convert("bridge", names.ifname, "a bridge name", bridge),
            vlan=_vlan_rule(vlan) if item.has("vlan") else rule,
            primary=item.boolean("primary", False),
        )
        vlan.done()
        item.done()
        specs.append(spec)
    if sum(s.primary for s in specs) != 1:
        raise top.error("attachments", len(specs), "must mark exactly one attachment primary: true")
    if len({s.interface for s in specs}) != len(specs):
        raise top.error("attachments", [s.interface for s in specs], "must name each interface once")
    return tuple(specs)
