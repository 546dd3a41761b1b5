"""The network configuration on stdin: decoded, validated once, then held to the node's rules.

Who writes it: on a plain node root (a file in /etc/cni/net.d), but with Multus
anyone who may create a NetworkAttachmentDefinition in a namespace. So it may
choose only what a network is: its bridge and VLAN (within the node config's
`cni` allow-lists), MTU, bandwidth limits (within the node's `bandwidth_max`), and
its addresses: a delegated IPAM plugin of the
allowed types whose settings name no path or endpoint, or one of the node's
networks by name (`vlanpipe.network`). Node-level settings (binaries, paths,
endpoints, timeouts, pools) come from the node config only; one in the
`vlanpipe` object is refused with code 7, naming it.

Other top-level keys are the spec's, Multus's or the reference bridge-style
variant's: accepted and logged as ignored (escaped, cut short), never fatal.

Keys are judged as the delegated IPAM plugin (Go: host-local, static) reads them,
without regard to case: two keys of one object that differ only in case (or are
the same) are refused, and so is a known key in another case (`IPAM`); in `ipam`,
a key that reads as a place (dir, path, file, socket, conf) in any case is refused.
The delegate then gets this validated document re-serialised, never the bytes
the runtime sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from plugin import names
from plugin.config import schema, tenant
from plugin.config.networks import MTU_MAX, MTU_MIN
from plugin.config.schema import Config
from plugin.config.tenant import refused
from plugin.errors import shown
from plugin.frontends.cni import injected
from plugin.frontends.cni.injected import VALID_ATTACHMENTS
from plugin.frontends.cni.podargs import PodRequest, limits, pod_request
from plugin.policy.bandwidth import Bandwidth
from plugin.frontends.cni.tenantjson import invalid, named

KNOWN = frozenset({"cniVersion", "name", "type", "bridge", "vlan", "mtu", "ipam", "dns", "args",
                   "runtimeConfig", "capabilities", "prevResult", "vlanpipe", "isDefaultGateway",
                   "bandwidth", VALID_ATTACHMENTS})
IGNORED = {
    "isGateway": "an OVS bridge carrying tagged VLANs gets no gateway address; "
                 "give the network a gateway outside vlanpipe",
    "forceAddress": "vlanpipe never sets an address on the bridge",
    "ipMasq": "vlanpipe sets up no NAT; the VLAN is layer 2",
    "hairpinMode": "a Linux-bridge setting; Open vSwitch ports have no hairpin mode",
}
PLUGIN_OBJECT_KEYS = ("network",)  # all a network config may set in its `vlanpipe` object
# Words that make a key of a delegated IPAM config name a place on the node, whatever its
# value and case (dataDir, resolvConf, daemonSocketPath, a logFile, a kubeconfig...).
PLACE_WORDS = ("dir", "path", "file", "sock", "conf")
_FOLDED_KNOWN = {key.casefold(): key for key in KNOWN}


@dataclass(frozen=True)
class NetConf:
    """A tenant's network config, validated against the node's `cni` policy."""

    cni_version: str
    name: str
    type: str
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
    bandwidth: Bandwidth = Bandwidth()  # the network's limits for pods that ask for none
    warnings: tuple[str, ...] = ()

    @property
    def ipam_type(self) -> str | None:
        """The delegated IPAM plugin, or None for vlanpipe's own allocators."""
        return self.ipam.get("type") or None

    def forwarded(self) -> dict[str, Any]:
        """The document a delegated plugin gets: only the keys vlanpipe knows and checked
        (with what libcni injected: runtimeConfig, args, prevResult)."""
        return {key: value for key, value in self.document.items() if key in KNOWN}


def unread(version: str, why: str) -> NetConf:
    """DEL's stand-in for a network config past the limits (tenantjson): it chooses nothing,
    so DEL removes what the attachment record names; the refusal goes to the log."""
    return NetConf(cni_version=version, name="", type="", document={},
                   warnings=(f"{why}: DEL removes what the attachment record names",))


def version_of(document: Mapping[str, Any]) -> str:
    version = document.get("cniVersion")
    if not isinstance(version, str) or not version:
        raise invalid("cniVersion", version, "is required: the spec version, like \"1.0.0\"")
    return version


def parse(document: Mapping[str, Any]) -> NetConf:
    for key in document:
        known = _FOLDED_KNOWN.get(key.casefold())
        if known is not None and known != key:
            raise invalid(named(key), document[key], f"is '{known}' in another case: a Go "
                           f"plugin would read it as {known}; write '{known}'")
    name = document.get("name")
    if not isinstance(name, str) or not names.plaintext(name):
        raise invalid("name", name, "must be the network's name: letters, digits, '_', '.', '-'")
    kind = document.get("type")
    if not isinstance(kind, str) or not kind:
        raise invalid("type", kind, "must name the plugin")
    return NetConf(
        cni_version=version_of(document), name=name, type=kind, document=document,
        bridge=_typed(document, "bridge", str, "a bridge name"),
        vlan=_vlan(document.get("vlan")),
        mtu=_mtu(document.get("mtu")),
        ipam=_ipam(document.get("ipam")),
        dns=_typed(document, "dns", dict, "a mapping (nameservers, domain, search, options)") or {},
        default_gateway=document.get("isDefaultGateway") is True,
        request=pod_request(_typed(document, "runtimeConfig", dict, "a mapping") or {},
                            injected.args_cni(document.get("args"))),
        prev_result=injected.prev_result(document.get("prevResult")),
        valid_attachments=injected.valid_attachments(document.get(VALID_ATTACHMENTS)),
        network=_plugin_object(document.get("vlanpipe")),
        bandwidth=limits(document.get("bandwidth"), "bandwidth"),
        warnings=tuple(_warnings(document)),
    )


def bind(conf: NetConf, node: Config, ifname: str) -> Config:
    """The call's Config: the node's, with what this network chose, where the node allows it
    (judged with the node config, `plugin.config.tenant`)."""
    return tenant.bind(tenant.NetworkChoice(conf.name, conf.bridge, conf.vlan, conf.mtu,
                                            conf.ipam_type, conf.network), node, ifname)


def _typed(document: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = document.get(key)
    if value is not None and not isinstance(value, kind):
        raise invalid(key, value, f"must be {what}")
    return value


def _vlan(value: Any) -> int | Mapping[str, Any] | None:
    """A tag for every pod (`22`), or a rule object as in config.yaml (`{"rule": "fixed", ...}`).

    A regex rule is the node's alone: Python's matcher has no time limit, so a tenant's pattern
    that backtracks would keep root busy for as long as the runtime lets the call run.
    """
    if isinstance(value, dict) and value.get("rule") == "regex":
        raise refused("vlan.rule", "regex", "is a rule only the node's config may set (a "
                       "pattern's matching time has no bound); use pod-name-prefix, "
                       "namespace-map or a tag, or set the regex in config.yaml's vlan")
    if value is None or isinstance(value, dict):
        return value
    try:
        if not isinstance(value, int):  # a JSON number, unlike the all-string annotations
            raise ValueError("must be a VLAN id as a number")
        return names.vlan(value)
    except ValueError as exc:
        raise invalid("vlan", value, f"{exc}, or a rule object like "
                       '{"rule": "pod-name-prefix"}') from None


def _mtu(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not MTU_MIN <= value <= MTU_MAX:
        raise invalid("mtu", value, f"must be an integer between {MTU_MIN} and {MTU_MAX}")
    return value


def _ipam(value: Any) -> Mapping[str, Any]:
    if value is None or value == {}:
        return {}
    if not isinstance(value, dict):
        raise invalid("ipam", value, "must be a mapping")
    kind = value.get("type")
    if not isinstance(kind, str) or not names.plaintext(kind):
        raise invalid("ipam.type", kind, "must name an IPAM plugin on CNI_PATH (host-local, "
                       "static); leave ipam out to use the node's networks")
    place = _place(value, "ipam")
    if place is not None:
        raise refused(*place, "names a path, a file or an endpoint on the node (in any case: "
                       "the plugin reads keys without regard to case), which only the node "
                       "config may choose (cni.ipam_data_dir)")
    return value


def _place(value: Any, key: str) -> tuple[str, Any] | None:
    """The first setting below `value` that names a place on the node: a key that reads as
    one in any case, at any depth, or a value that is a path or an endpoint."""
    if isinstance(value, dict):
        for k, v in value.items():
            if any(word in k.casefold() for word in PLACE_WORDS):
                return f"{key}.{named(k)}", v
            found = _place(v, f"{key}.{named(k)}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _place(v, f"{key}[{i}]")
            if found is not None:
                return found
    elif _names_a_place(value):
        return key, value
    return None


def _names_a_place(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith(("/", "~", ".")) or "://" in value
                                       or value.startswith("unix:"))


def _plugin_object(value: Any) -> str | None:
    """The `vlanpipe` object: the name of a node network, and nothing node-level."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("vlanpipe", value, 'must be a mapping like {"network": "pods"}')
    for key in value:
        if key in schema.top_level_keys():
            raise refused(f"vlanpipe.{key}", value[key], "is a node-level setting: only the "
                           "node's config (root's) may set it")
        if key not in PLUGIN_OBJECT_KEYS:
            raise invalid(f"vlanpipe.{shown(key)}", value[key],
                           f"is not a setting (a network config may set: "
                           f"{', '.join(PLUGIN_OBJECT_KEYS)})")
    network = value.get("network")
    if network is not None and (not isinstance(network, str) or not names.plaintext(network)):
        raise invalid("vlanpipe.network", network, "must name one of the node's networks")
    return network


def _warnings(document: Mapping[str, Any]) -> list[str]:
    found = []
    for key in sorted(document):
        if key in IGNORED:
            found.append(f"{key} ignored: {IGNORED[key]}")
        elif key not in KNOWN:
            found.append(f"unknown key {shown(key)} ignored")
    if "isDefaultGateway" in document and not isinstance(document["isDefaultGateway"], bool):
        found.append("isDefaultGateway is not true or false: taken as false")
    return found
