"""The network configuration on stdin: decoded, validated once, then trusted.

Top-level keys are the CNI ones plus this plugin's (`bridge`, `vlan`, `mtu`,
`ipam`) and those of the reference bridge-style variant, which are accepted
and, where they mean nothing on an OVS port made by pipework, logged as
ignored: a config written for the reference must not fail here. Keys this
plugin does not know are logged too, never fatal (Multus and runtimes add
their own). The `vlanpipe` object carries the plugin's own settings (state,
log, allocators, timeouts) and goes through `plugin.config.parse`, so it is
validated exactly as config.yaml is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from plugin import names
from plugin.config import schema as config_module
from plugin.frontends.cni.errors import DECODE_FAILURE, INVALID_CONFIG, CniError
from plugin.frontends.cni.podargs import PodRequest, pod_request
from plugin.config.schema import Config
from plugin.ipam.networks import DEFAULT_NETWORK, MTU_MAX, MTU_MIN

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
# Keys of the vlanpipe object that CNI sets elsewhere, or that only the exec front-end reads.
NOT_IN_PLUGIN_OBJECT = {
    "bridge": "set bridge at the top level of the network config",
    "vlan": "set vlan at the top level of the network config",
    "interface": "the runtime names the interface (CNI_IFNAME)",
    "attachments": "one network config is one attachment; list one per network",
    "status": "the kubelet's exec status is not part of CNI",
    "gc_on_init": "CNI has GC; there is no init",
}


@dataclass(frozen=True)
class NetConf:
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
    plugin: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def ipam_type(self) -> str | None:
        """The delegated IPAM plugin, or None for vlanpipe's own allocators."""
        return self.ipam.get("type") or None


def decode(stdin: bytes) -> dict[str, Any]:
    try:
        document = json.loads(stdin)
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
        prev_result=_typed(document, "prevResult", dict, "a CNI result"),
        valid_attachments=_valid_attachments(document.get(VALID_ATTACHMENTS)),
        plugin=_typed(document, "vlanpipe", dict, "a mapping of vlanpipe settings") or {},
        warnings=tuple(_warnings(document)),
    )


def plugin_config(conf: NetConf, ifname: str) -> Config:
    """The core's Config: the vlanpipe object, with the CNI-level keys put where it reads them."""
    for key, why in NOT_IN_PLUGIN_OBJECT.items():
        if key in conf.plugin:
            raise _invalid(f"vlanpipe.{key}", conf.plugin[key], f"is not read here: {why}")
    data: dict[str, Any] = dict(conf.plugin)
    if conf.bridge is not None:
        data["bridge"] = conf.bridge
    if ifname:
        data["interface"] = ifname
    if isinstance(conf.vlan, int):
        data["vlan"] = {"rule": "fixed", "tag": conf.vlan}
    elif conf.vlan is not None:
        data["vlan"] = conf.vlan
    if conf.mtu is not None:
        data["networks"] = _with_mtu(data.get("networks") or [DEFAULT_NETWORK], conf.mtu)
    return config_module.parse(data, f"CNI network '{conf.name}'")


def _with_mtu(networks: Any, mtu: int) -> Any:
    """The top-level mtu is the default of every network that sets none itself."""
    if not isinstance(networks, list):
        return networks  # parse rejects it, naming the key
    return [{**n, "mtu": mtu} if isinstance(n, dict) and "mtu" not in n else n for n in networks]


def _typed(document: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = document.get(key)
    if value is not None and not isinstance(value, kind):
        raise _invalid(key, value, f"must be {what}")
    return value


def _vlan(value: Any) -> int | Mapping[str, Any] | None:
    """A tag for every pod (`22`), or a rule object as in config.yaml (`{"rule": "regex", ...}`)."""
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
                       "static, dhcp); leave ipam out to use vlanpipe.networks")
    return value


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
            found.append(f"unknown key {key} ignored")
    if "isDefaultGateway" in document and not isinstance(document["isDefaultGateway"], bool):
        found.append("isDefaultGateway is not true or false: taken as false")
    return found


def _invalid(key: str, value: Any, why: str) -> CniError:
    return CniError(INVALID_CONFIG, f"network config key '{key}' = {value!r} {why}",
                    "fix the network config (the file in /etc/cni/net.d or the "
                    "NetworkAttachmentDefinition)")
