"""The network configuration on stdin: decoded, validated once, then held to the node's rules.

Who writes it: on a plain node root (a file in /etc/cni/net.d), but with Multus
anyone who may create a NetworkAttachmentDefinition in a namespace. So it may
choose only what a network is: its bridge and VLAN (within the node config's
`cni` allow-lists), MTU, and its addresses: a delegated IPAM plugin of the
allowed types whose settings name no path or endpoint, or one of the node's
networks by name (`vlanpipe.network`). Node-level settings (binaries, paths,
endpoints, timeouts, pools) come from the node config only; one in the
`vlanpipe` object is refused with code 7, naming it.

Other top-level keys are the spec's, Multus's or the reference bridge-style
variant's: accepted and logged as ignored (escaped, cut short), never fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from plugin import names
from plugin.config import schema
from plugin.config.reader import Section
from plugin.config.schema import Config, InterfaceSpec
from plugin.core.policy import VlanRule
from plugin.frontends.cni.errors import DECODE_FAILURE, INVALID_CONFIG, CniError
from plugin.frontends.cni.podargs import PodRequest, pod_request
from plugin.ipam.networks import MTU_MAX, MTU_MIN

VALID_ATTACHMENTS = "cni.dev/valid-attachments"
KNOWN = frozenset({"cniVersion", "name", "type", "bridge", "vlan", "mtu", "ipam", "dns", "args",
                   "runtimeConfig", "capabilities", "prevResult", "vlanpipe", "isDefaultGateway",
                   VALID_ATTACHMENTS})
IGNORED = {
    "isGateway": "an OVS bridge carrying tagged VLANs gets no gateway address; "
                 "give the network a gateway outside vlanpipe",
    "forceAddress": "vlanpipe never sets an address on the bridge",
    "ipMasq": "vlanpipe sets up no NAT; the VLAN is layer 2",
    "hairpinMode": "a Linux-bridge setting; Open vSwitch ports have no hairpin mode",
}
PLUGIN_OBJECT_KEYS = ("network",)  # all a network config may set in its `vlanpipe` object
SHOWN = 60  # characters of a value or key shown in a message or the log
# Settings in a delegated IPAM config that name places on the node, whatever their value.
IPAM_PLACES = frozenset({"dataDir", "daemonSocketPath", "resolvConf"})


@dataclass(frozen=True)
class NetConf:
    """A tenant's network config, validated against the node's `cni` policy."""

    cni_version: str
    name: str
    type: str
    raw: bytes
    document: Mapping[str, Any]
    bridge: str | None = None
    vlan: int | Mapping[str, Any] | None = None
    mtu: int | None = None
    ipam: Mapping[str, Any] = field(default_factory=dict)
    dns: Mapping[str, Any] = field(default_factory=dict)
    default_gateway: bool = False
    request: PodRequest = PodRequest()
    prev_result: Mapping[str, Any] | None = None
    valid_attachments: frozenset[tuple[str, str]] = frozenset()
    network: str | None = None  # one of the node's networks, by name (vlanpipe.network)
    warnings: tuple[str, ...] = ()

    @property
    def ipam_type(self) -> str | None:
        """The delegated IPAM plugin, or None for vlanpipe's own allocators."""
        return self.ipam.get("type") or None


def decode(stdin: bytes) -> dict[str, Any]:
    try:
        document = json.loads(stdin)
    except RecursionError:
        raise CniError(DECODE_FAILURE, "network config on stdin is not JSON (nested too deep)",
                       "the runtime must send the network config as one JSON object") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise CniError(DECODE_FAILURE, f"network config on stdin is not JSON ({exc})",
                       "the runtime must send the network config as one JSON object") from None
    if not isinstance(document, dict):
        raise CniError(DECODE_FAILURE, "network config on stdin is not a JSON object",
                       "the runtime must send the network config as one JSON object")
    return document


def version_of(document: Mapping[str, Any]) -> str:
    version = document.get("cniVersion")
    if not isinstance(version, str) or not version:
        raise _invalid("cniVersion", version, "is required: the spec version, like \"1.0.0\"")
    return version


def parse(document: Mapping[str, Any], raw: bytes) -> NetConf:
    name = document.get("name")
    if not isinstance(name, str) or not names.plaintext(name):
        raise _invalid("name", name, "must be the network's name: letters, digits, '_', '.', '-'")
    kind = document.get("type")
    if not isinstance(kind, str) or not kind:
        raise _invalid("type", kind, "must name the plugin")
    return NetConf(
        cni_version=version_of(document), name=name, type=kind, raw=raw, document=document,
        bridge=_typed(document, "bridge", str, "a bridge name"),
        vlan=_vlan(document.get("vlan")),
        mtu=_mtu(document.get("mtu")),
        ipam=_ipam(document.get("ipam")),
        dns=_typed(document, "dns", dict, "a mapping (nameservers, domain, search, options)") or {},
        default_gateway=document.get("isDefaultGateway") is True,
        request=pod_request(_typed(document, "runtimeConfig", dict, "a mapping") or {},
                            _args_cni(document.get("args"))),
        prev_result=_prev_result(document.get("prevResult")),
        valid_attachments=_valid_attachments(document.get(VALID_ATTACHMENTS)),
        network=_plugin_object(document.get("vlanpipe")),
        warnings=tuple(_warnings(document)),
    )


def bind(conf: NetConf, node: Config, ifname: str) -> Config:
    """The call's Config: the node's, with what this network chose, where the node allows it."""
    policy = node.cni
    bridge = conf.bridge or node.bridge
    if bridge not in policy.bridges:
        raise _refused("bridge", bridge, "is not a bridge this node lets networks use "
                       f"(cni.bridges: {', '.join(sorted(policy.bridges))})")
    if isinstance(conf.vlan, int) and not policy.allows_vlan(conf.vlan):
        raise _refused("vlan", conf.vlan, "is not a VLAN this node lets networks use (cni.vlans)")
    if conf.ipam_type and conf.ipam_type not in policy.ipam_types:
        raise _refused("ipam.type", conf.ipam_type, "is not an IPAM plugin this node lets "
                       f"networks use (cni.ipam: {', '.join(policy.ipam_types) or 'none'})")
    networks = node.networks
    if conf.network is not None:
        # Every family of the network (a dual-stack one is two NetworkConfigs of one name)
        # serves every VLAN of this network config. The node's other networks serve none
        # but stay known: DEL releases on the network an attachment's record names.
        if not any(n.name == conf.network for n in node.networks):
            raise _refused("vlanpipe.network", conf.network, "is not a network of this node "
                           f"(networks: {', '.join(n.name for n in node.networks)})")
        networks = tuple(replace(n, vlans=None if n.name == conf.network else ())
                         for n in node.networks)
    rule = next(a.vlan for a in node.attachments if a.primary)
    if isinstance(conf.vlan, int):
        rule = VlanRule("fixed", tag=conf.vlan)
    elif conf.vlan is not None:
        rule = schema.vlan_rule(Section(f"CNI network '{conf.name}'", conf.vlan, "vlan"))
    return replace(node, bridge=bridge, networks=networks,
                   attachments=(InterfaceSpec(ifname or "net1", bridge, rule),))


def _typed(document: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = document.get(key)
    if value is not None and not isinstance(value, kind):
        raise _invalid(key, value, f"must be {what}")
    return value


def _vlan(value: Any) -> int | Mapping[str, Any] | None:
    """A tag for every pod (`22`), or a rule object as in config.yaml (`{"rule": "fixed", ...}`).

    A regex rule is the node's alone: Python's matcher has no time limit, so a tenant's pattern
    that backtracks would keep root busy for as long as the runtime lets the call run.
    """
    if isinstance(value, dict) and value.get("rule") == "regex":
        raise _refused("vlan.rule", "regex", "is a rule only the node's config may set (a "
                       "pattern's matching time has no bound); use pod-name-prefix, "
                       "namespace-map or a tag, or set the regex in config.yaml's vlan")
    if value is None or isinstance(value, dict):
        return value
    try:
        if not isinstance(value, int):  # a JSON number, unlike the all-string annotations
            raise ValueError("must be a VLAN id as a number")
        return names.vlan(value)
    except ValueError as exc:
        raise _invalid("vlan", value, f"{exc}, or a rule object like "
                       '{"rule": "pod-name-prefix"}') from None


def _mtu(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not MTU_MIN <= value <= MTU_MAX:
        raise _invalid("mtu", value, f"must be an integer between {MTU_MIN} and {MTU_MAX}")
    return value


def _ipam(value: Any) -> Mapping[str, Any]:
    if value is None or value == {}:
        return {}
    if not isinstance(value, dict):
        raise _invalid("ipam", value, "must be a mapping")
    kind = value.get("type")
    if not isinstance(kind, str) or not names.plaintext(kind):
        raise _invalid("ipam.type", kind, "must name an IPAM plugin on CNI_PATH (host-local, "
                       "static); leave ipam out to use the node's networks")
    for key, found in _leaves(value, "ipam"):
        if key.rsplit(".", 1)[-1] in IPAM_PLACES or _names_a_place(found):
            raise _refused(key, found, "names a path or an endpoint on the node, which only "
                           "the node config may choose (cni.ipam_data_dir)")
    return value


def _leaves(value: Any, key: str) -> list[tuple[str, Any]]:
    """Every (dotted key, value) below a JSON value."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{key}.{k}")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{key}[{i}]")]
    return [(key, value)]


def _names_a_place(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith(("/", "~", ".")) or "://" in value
                                       or value.startswith("unix:"))


def _plugin_object(value: Any) -> str | None:
    """The `vlanpipe` object: the name of a node network, and nothing node-level."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid("vlanpipe", value, 'must be a mapping like {"network": "pods"}')
    for key in value:
        if key in schema.top_level_keys():
            raise _refused(f"vlanpipe.{key}", value[key], "is a node-level setting: only the "
                           "node's config (root's) may set it")
        if key not in PLUGIN_OBJECT_KEYS:
            raise _invalid(f"vlanpipe.{_cut(key)}", value[key],
                           f"is not a setting (a network config may set: "
                           f"{', '.join(PLUGIN_OBJECT_KEYS)})")
    network = value.get("network")
    if network is not None and (not isinstance(network, str) or not names.plaintext(network)):
        raise _invalid("vlanpipe.network", network, "must name one of the node's networks")
    return network


def _prev_result(value: Any) -> Mapping[str, Any] | None:
    """A previous result: its lists are lists (a chained result is passed through)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid("prevResult", value, "must be a CNI result")
    for key in ("interfaces", "ips", "routes"):
        if value.get(key) is not None and not isinstance(value[key], list):
            raise _invalid(f"prevResult.{key}", value[key], "must be a list")
        if any(not isinstance(item, dict) for item in value.get(key) or []):
            raise _invalid(f"prevResult.{key}", value[key], "must be a list of objects")
    if value.get("dns") is not None and not isinstance(value["dns"], dict):
        raise _invalid("prevResult.dns", value["dns"], "must be a mapping")
    return {**value, **{key: value.get(key) or [] for key in ("interfaces", "ips", "routes")}}


def _args_cni(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not isinstance(value.get("cni", {}), dict):
        raise _invalid("args", value, 'must be a mapping like {"cni": {"vlan": 22}}')
    return value.get("cni", {})


def _valid_attachments(value: Any) -> frozenset[tuple[str, str]]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(
            isinstance(a, dict) and isinstance(a.get("containerID"), str)
            and isinstance(a.get("ifname"), str) for a in value):
        raise _invalid(VALID_ATTACHMENTS, value,
                       'must be a list of {"containerID": ..., "ifname": ...}')
    return frozenset((a["containerID"], a["ifname"]) for a in value)


def _warnings(document: Mapping[str, Any]) -> list[str]:
    found = []
    for key in sorted(document):
        if key in IGNORED:
            found.append(f"{key} ignored: {IGNORED[key]}")
        elif key not in KNOWN:
            found.append(f"unknown key {_cut(key)} ignored")
    if "isDefaultGateway" in document and not isinstance(document["isDefaultGateway"], bool):
        found.append("isDefaultGateway is not true or false: taken as false")
    return found


def _cut(value: Any) -> str:
    """A value from the network config as it may be shown: escaped, on one line, bounded."""
    text = ascii(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def _invalid(key: str, value: Any, why: str) -> CniError:
    return CniError(INVALID_CONFIG, f"network config key '{key}' = {_cut(value)} {why}",
                    "fix the network config (the file in /etc/cni/net.d or the "
                    "NetworkAttachmentDefinition)")


def _refused(key: str, value: Any, why: str) -> CniError:
    return CniError(INVALID_CONFIG, f"network config key '{key}' = {_cut(value)} {why}",
                    "change the network config, or ask the node's administrator (the node "
                    "config's cni section)")
