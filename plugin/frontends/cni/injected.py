"""What the runtime adds to a network config (libcni, Multus), its shape checked:
`prevResult` (CHECK, and a chained ADD), `args` (the pod annotation's cni-args),
`runtimeConfig` (`podargs`) and GC's `cni.dev/valid-attachments`. A wrong shape is
code 7, naming the key. The tenant's own keys are judged in `plugin.config.netconf`;
`CallConf` is both together, the network config as the handlers see it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from plugin.config import netconf
from plugin.config.netconf import VALID_ATTACHMENTS, NetConf, invalid, typed
from plugin.frontends.cni.podargs import PodRequest, pod_request


@dataclass(frozen=True)
class CallConf(NetConf):
    """A tenant's network config, each key judged, with what the runtime added for this call."""

    request: PodRequest = PodRequest()
    prev_result: Mapping[str, Any] | None = None
    valid_attachments: frozenset[tuple[str, str]] = frozenset()


def parse(document: Mapping[str, Any]) -> CallConf:
    """The tenant's keys judged (`plugin.config.netconf.parse`), then what the runtime added."""
    conf = netconf.parse(document)
    return CallConf(**{f.name: getattr(conf, f.name) for f in fields(conf)},
                    request=pod_request(typed(document, "runtimeConfig", dict, "a mapping") or {},
                                        args_cni(document.get("args"))),
                    prev_result=prev_result(document.get("prevResult")),
                    valid_attachments=valid_attachments(document.get(VALID_ATTACHMENTS)))


def unread(version: str, why: str) -> CallConf:
    """DEL's stand-in for a network config past the limits (tenantjson): it chooses nothing,
    so DEL removes what the attachment record names; the refusal goes to the log."""
    return CallConf(cni_version=version, name="", type="", document={},
                    warnings=(f"{why}: DEL removes what the attachment record names",))


def prev_result(value: Any) -> Mapping[str, Any] | None:
    """A previous result: its lists are lists (a chained result is passed through)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("prevResult", value, "must be a CNI result")
    for key in ("interfaces", "ips", "routes"):
        if value.get(key) is not None and not isinstance(value[key], list):
            raise invalid(f"prevResult.{key}", value[key], "must be a list")
        if any(not isinstance(item, dict) for item in value.get(key) or []):
            raise invalid(f"prevResult.{key}", value[key], "must be a list of objects")
    if value.get("dns") is not None and not isinstance(value["dns"], dict):
        raise invalid("prevResult.dns", value["dns"], "must be a mapping")
    return {**value, **{key: value.get(key) or [] for key in ("interfaces", "ips", "routes")}}


def args_cni(value: Any) -> Mapping[str, Any]:
    """`args.cni`: what Multus copies from the pod's annotation (cni-args)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not isinstance(value.get("cni", {}), dict):
        raise invalid("args", value, 'must be a mapping like {"cni": {"vlan": 22}}')
    return value.get("cni", {})


def valid_attachments(value: Any) -> frozenset[tuple[str, str]]:
    """GC's list of the attachments the runtime still holds: (container id, interface)."""
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(
            isinstance(a, dict) and isinstance(a.get("containerID"), str)
            and isinstance(a.get("ifname"), str) for a in value):
        raise invalid(VALID_ATTACHMENTS, value,
                      'must be a list of {"containerID": ..., "ifname": ...}')
    return frozenset((a["containerID"], a["ifname"]) for a in value)
