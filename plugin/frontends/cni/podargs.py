"""What one pod asks of this network: a VLAN, an address, a MAC.

Multus passes them in two places: `runtimeConfig` (the runtime's capabilities
`ips` and `mac`, from the pod's network-selection annotation) and `args.cni`
(the annotation's `cni-args`, free-form). This is what lets one network
attachment definition serve many VLANs. `runtimeConfig` wins where both say
something: it is the runtime's word, `args` the user's.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Mapping

from plugin import names
from plugin.errors import shown
from plugin.frontends.cni.errors import INVALID_CONFIG, UNSUPPORTED_FIELD, CniError
from plugin.ipam.model import IPInterface

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")


@dataclass(frozen=True)
class PodRequest:
    """What the runtime asks for this pod beyond the network config (CNI_ARGS, capabilities)."""

    vlan: int | None = None
    addresses: tuple[IPInterface, ...] = ()
    mac: str | None = None
    mac_from: str = ""  # where the MAC was asked for: "runtimeConfig.mac" or "args.cni.mac"


def pod_request(runtime_config: Mapping[str, Any], args_cni: Mapping[str, Any]) -> PodRequest:
    def pick(key: str) -> tuple[str, Any]:
        for where, source in (("runtimeConfig", runtime_config), ("args.cni", args_cni)):
            if source.get(key) is not None:
                return f"{where}.{key}", source[key]
        return key, None

    mac_from, mac = pick("mac")
    return PodRequest(vlan=_vlan(*pick("vlan")), addresses=_addresses(*pick("ips")),
                      mac=_mac(mac_from, mac), mac_from=mac_from if mac is not None else "")


def _vlan(key: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        return names.vlan(value)  # annotations are often all strings: "22" is taken too
    except ValueError as exc:
        raise _invalid(key, value, str(exc)) from None


def _addresses(key: str, value: Any) -> tuple[IPInterface, ...]:
    """Addresses asked for: at most one per family (a dual-stack network gives both)."""
    if value is None or value == []:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(key, value, 'must be a list of addresses like ["10.0.0.5/24"]')
    found = []
    for text in value:
        if "/" not in text:
            raise _invalid(key, value, "needs a prefix length, as in 10.0.0.5/24")
        try:
            found.append(ipaddress.ip_interface(text.strip()))
        except ValueError:
            raise _invalid(key, value, "is not an address with a prefix length") from None
    if len({a.version for a in found}) != len(found):
        raise CniError(UNSUPPORTED_FIELD, f"{key} = {shown(value)} lists more than one address "
                       "of a family", "vlanpipe gives an interface one address per family")
    return tuple(found)


def _mac(key: str, value: Any) -> str | None:
    if value is None:
        return None
    text = value.lower() if isinstance(value, str) else ""
    if not _MAC.match(text) or int(text[:2], 16) & 1:
        raise _invalid(key, value, "must be a unicast MAC like 0a:58:0a:00:00:05")
    return text


def _invalid(key: str, value: Any, why: str) -> CniError:
    return CniError(INVALID_CONFIG, f"{key} = {shown(value)} {why}",
                    "fix the pod's network-selection annotation (ips, mac, cni-args)")
