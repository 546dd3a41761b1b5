"""What the runtime adds to a network config (libcni, Multus), its shape checked:
`prevResult` (CHECK, and a chained ADD), `args` (the pod annotation's cni-args)
and GC's `cni.dev/valid-attachments`. A wrong shape is code 7, naming the key.
"""

from __future__ import annotations

from typing import Any, Mapping

from plugin.frontends.cni.tenantjson import invalid

VALID_ATTACHMENTS = "cni.dev/valid-attachments"


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
