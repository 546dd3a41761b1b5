"""A tenant's network config (a CNI call's stdin): each key it may set, judged once.

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
the same) are refused as stdin is decoded (`plugin.frontends.cni.tenantjson`), and
a known key in another case (`IPAM`) here; in `ipam`,
a key that reads as a place (dir, path, file, socket, conf) in any case is refused.
The delegate then gets this validated document re-serialised, never the bytes
the runtime sent (`NetConf.forwarded`).

The judging is here, beside the node config's own parsing, so one place judges
every config source: `tenant.py` then holds the result to the node's `cni`
allow-lists. The CNI front-end only reads stdin within bounds
(`plugin.frontends.cni.tenantjson`) and adds what the runtime injected into the
document (`plugin.frontends.cni.injected`). A refusal is a ConfigError (CNI code 7)
naming the key, the value and who may change it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from plugin import names
from plugin.config import schema
from plugin.config import ipamconf
from plugin.config.networks import MTU_MAX, MTU_MIN
from plugin.config.refusal import invalid, named, refused
from plugin.config.security import BadPair, parse_pairs
from plugin.errors import ConfigError, shown
from plugin.policy import bandwidth, trunk as trunks
from plugin.policy.bandwidth import Bandwidth
from plugin.policy.trunk import TrunkEntry

# What the runtime adds to a tenant's config (libcni, Multus): known here, so that it is
# neither warned about nor dropped from what a delegate gets; its shape is checked by the
# CNI front-end (plugin.frontends.cni.injected), which reads it.
VALID_ATTACHMENTS = "cni.dev/valid-attachments"
INJECTED = ("args", "runtimeConfig", "capabilities", "prevResult", VALID_ATTACHMENTS)

KNOWN = frozenset({"cniVersion", "name", "type", "bridge", "vlan", "mtu", "ipam", "dns",
                   "vlanpipe", "isDefaultGateway", "port_security", "allowed_address_pairs", "trunk",
                   "bandwidth",
                   *INJECTED})
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
_FOLDED_KNOWN = {key.casefold(): key for key in KNOWN}


@dataclass(frozen=True)
class NetConf:
    """A tenant's network config, each key validated (`tenant.bind` then holds it to the
    node's `cni` allow-lists)."""

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
    network: str | None = None  # one of the node's networks, by name (vlanpipe.network)
    port_security: bool | None = None  # None: the node's setting
    pairs: tuple[tuple[str, str], ...] = ()  # allowed address pairs
    trunk: tuple[TrunkEntry, ...] = ()  # VLANs the pod's port carries tagged (policy.trunk)
    bandwidth: Bandwidth = Bandwidth()  # the network's limits for pods that ask for none
    warnings: tuple[str, ...] = ()

    @property
    def ipam_type(self) -> str | None:
        """The delegated IPAM plugin, or None for vlanpipe's own allocators."""
        return self.ipam.get("type") or None

    def forwarded(self, version: str, data_dir: str = "") -> dict[str, Any]:
        """The document a delegated plugin gets, in the spec `version` it speaks: only the keys
        vlanpipe knows and checked (with what libcni injected: runtimeConfig, args,
        prevResult), and the node's choice of where the plugin keeps its state."""
        document = {key: value for key, value in self.document.items() if key in KNOWN}
        document["cniVersion"] = version
        if data_dir:
            document["ipam"] = self.forwarded_ipam(data_dir)
        return document

    def forwarded_ipam(self, data_dir: str = "") -> dict[str, Any]:
        """The ipam config a delegated plugin is given: the network's, where the node keeps
        its state (cni.ipam_data_dir)."""
        return {**self.ipam, "dataDir": data_dir} if data_dir else dict(self.ipam)

    def as_recorded(self, name: str, ipam: Mapping[str, Any]) -> "NetConf":
        """This config as an attachment's record names it: the ipam config its ADD gave the
        delegated plugin (node's dataDir included), under the network name of that ADD, so
        that DEL releases what was claimed after the network config changed."""
        return replace(self, name=name, ipam=dict(ipam),
                       document={**self.document, "name": name, "ipam": dict(ipam)})


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
        bridge=typed(document, "bridge", str, "a bridge name"),
        vlan=_vlan(document.get("vlan")),
        mtu=_mtu(document.get("mtu")),
        ipam=ipamconf.delegated(document.get("ipam")),
        dns=typed(document, "dns", dict, "a mapping (nameservers, domain, search, options)") or {},
        default_gateway=document.get("isDefaultGateway") is True,
        network=_plugin_object(document.get("vlanpipe")),
        port_security=typed(document, "port_security", bool, "true or false"),
        pairs=_pairs(document.get("allowed_address_pairs")),
        trunk=_trunk(document),
        bandwidth=_bandwidth(document.get("bandwidth")),
        warnings=tuple(_warnings(document)),
    )


def _bandwidth(value: Any) -> Bandwidth:
    """The network's limits for pods that ask for none, in the CNI bandwidth plugin's keys."""
    try:
        return bandwidth.parse(value, "bandwidth")
    except ValueError as exc:
        raise ConfigError(str(exc), bandwidth.HINT) from None


def _trunk(document: Mapping[str, Any]) -> tuple[TrunkEntry, ...]:
    """`trunk`, in ovs-cni's syntax, through the one trunk parser (plugin.policy.trunk)."""
    if "trunk" not in document:
        return ()
    try:
        return trunks.parse(document["trunk"])
    except trunks.TrunkError as exc:
        raise invalid(exc.key, exc.value, exc.why) from None


def typed(document: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    """`document[key]`, None if absent; refused unless it is a `kind`."""
    value = document.get(key)
    if value is not None and not isinstance(value, kind):
        raise invalid(key, value, f"must be {what}")
    return value


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    try:
        return parse_pairs(value)
    except BadPair as exc:
        raise invalid(f"allowed_address_pairs{exc.where}", exc.item, str(exc)) from None


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
