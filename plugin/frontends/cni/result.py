"""CNI results in the shape of the requested spec version, and what CHECK reads back.

Pure functions: the handlers gather the facts (record, host link, sandbox),
these only shape them. The host end of the veth is listed (without a
sandbox) because chained plugins such as `bandwidth` look for it there.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Mapping

from plugin.frontends.cni import versions
from plugin.frontends.cni.errors import CHECK_FAILED, INVALID_CONFIG, CniError
from plugin.frontends.cni.sandbox import HostLink
from plugin.core.records import Attachment
from plugin.ipam.model import default_halves


@dataclass(frozen=True)
class Expected:
    """What prevResult says the container's interface holds."""

    addresses: tuple[str, ...]
    mac: str


def success(version: str, record: Attachment, sandbox: str, host: HostLink,
            gateways: tuple[str, ...], dns: Mapping[str, Any],
            previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ADD result: `previous` (a chained prevResult) passed through, ours appended.

    One IP per address of the record (one per family), each with the subnet's gateway
    as the IPAM or the node's network has it (`gateways`); the routes of a family's default
    traffic are listed only where the plugin set them (the record has a gateway for it),
    as it set them: the two halves of the family's space.
    """
    previous = previous or {}
    with_mtu = versions.at_least(version, "1.1.0") and host.mtu is not None
    interfaces = [*previous.get("interfaces", []),
                  _interface(host.name, host.mac, None, host.mtu if with_mtu else None),
                  _interface(record.interface, record.mac, sandbox, host.mtu if with_mtu else None)]
    ips, routes = list(previous.get("ips", [])), list(previous.get("routes", []))
    for text, gateway, default in zip(record.addresses, gateways, record.gateways):
        family = ipaddress.ip_interface(text).version
        ip: dict[str, Any] = {"address": text}
        if versions.has_ip_version(version):
            ip = {"version": str(family), **ip}
        if gateway:
            ip["gateway"] = gateway
        ip["interface"] = len(interfaces) - 1
        ips.append(ip)
        if default:
            routes.extend({"dst": half, "gw": default} for half in default_halves(family))
    return {"cniVersion": version, "interfaces": interfaces, "ips": ips, "routes": routes,
            "dns": dict(previous.get("dns") or dns)}


def _interface(name: str, mac: str, sandbox: str | None, mtu: int | None) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name}
    if mac:
        found["mac"] = mac
    if mtu is not None:
        found["mtu"] = mtu
    if sandbox:
        found["sandbox"] = sandbox
    return found


def expected(previous: Mapping[str, Any] | None, ifname: str) -> Expected:
    """Our interface in prevResult (the one named `ifname` inside a sandbox) and its IPs."""
    if previous is None:
        raise CniError(INVALID_CONFIG, "CHECK needs prevResult in the network config",
                       "the runtime must pass the result of the ADD")
    interfaces, ips = previous.get("interfaces"), previous.get("ips")
    if not isinstance(interfaces, list) or not isinstance(ips, list):
        raise CniError(INVALID_CONFIG, "prevResult has no interfaces and ips lists",
                       "the runtime must pass the result of the ADD")
    index = next((i for i, item in enumerate(interfaces) if isinstance(item, dict)
                  and item.get("name") == ifname and item.get("sandbox")), None)
    if index is None:
        raise CniError(CHECK_FAILED, f"prevResult lists no interface {ifname} in a sandbox",
                       "the runtime must pass the result of this attachment's ADD")
    addresses = tuple(str(ip.get("address")) for ip in ips
                      if isinstance(ip, dict) and ip.get("interface") == index)
    return Expected(addresses, str(interfaces[index].get("mac", "")).lower())
