"""IPAM delegated to a standard CNI plugin found on CNI_PATH (host-local, static, dhcp...).

Run as the spec's delegation section says: the same environment and the
same network config, its stderr left on ours, its result or CNI error read
from its stdout. Its spec version is asked for first (VERSION), because
Debian's host-local stops at 1.0.0: a 1.1.0 config is handed to it as the
newest version it speaks, which answers in the same shape. Its errors keep
their CNI code; only the message says which plugin spoke.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Mapping

from pipework_wrapper import command
from pipework_wrapper.errors import ToolFailed
from plugin.errors import shown
from plugin.frontends.cni import versions
from plugin.frontends.cni.env import Environment
from plugin.frontends.cni.errors import (DELEGATE_FAILED, INCOMPATIBLE_VERSION, INVALID_CONFIG,
                               INVALID_ENVIRONMENT, UNSUPPORTED_FIELD, CniError)
from plugin.config.netconf import NetConf
from plugin.identity import Identity
from plugin.ipam.model import IPAddress, IPInterface, Lease, Request, Route

TIMEOUT = 60.0  # the runtime has its own bound; this one keeps a hung plugin from holding ours


@dataclass(frozen=True)
class IpamResult:
    """What an IPAM plugin gave: one address per family, each with its gateway; routes."""

    addresses: tuple[tuple[IPInterface, IPAddress | None], ...]
    routes: tuple[Route, ...]
    dns: Mapping[str, Any]

    def gateways(self) -> tuple[str, ...]:
        return tuple(str(gateway or "") for _, gateway in self.addresses)

    def leases(self, network: str, mtu: int | None, default_gateway: bool) -> list[Lease]:
        """The leases the core plugs in, with the routes of each family. A gateway becomes
        the pod's default route only when the config asks (isDefaultGateway), as the
        reference bridge plugin does."""
        return [Lease(network=network, address=address,
                      gateway=gateway if default_gateway else None, mtu=mtu,
                      routes=tuple(r for r in self.routes
                                   if r.destination.version == address.version))
                for address, gateway in self.addresses]


class Delegate:
    def __init__(self, conf: NetConf, env: Environment, data_dir: str = "") -> None:
        assert conf.ipam_type is not None
        self.kind = conf.ipam_type
        self.conf = conf
        self.env = env
        self.data_dir = data_dir

    @classmethod
    def recorded(cls, conf: NetConf, env: Environment, name: str,
                 ipam: Mapping[str, Any]) -> "Delegate":
        """The plugin an attachment's record names (`NetConf.as_recorded`)."""
        return cls(conf.as_recorded(name, ipam), env)

    def add(self) -> IpamResult:
        return parse_result(self.kind, self._run("ADD", self._version()))

    def delete(self, container_id: str, ifname: str) -> None:
        self._run("DEL", self._version(), {"CNI_CONTAINERID": container_id, "CNI_IFNAME": ifname})

    def check(self) -> None:
        version = self._version()
        if versions.at_least(version, "0.4.0"):
            self._run("CHECK", version)

    def status(self) -> None:
        """Asked only of a plugin that speaks 1.1.0: older ones have no STATUS."""
        version = self._version()
        if versions.at_least(version, "1.1.0"):
            self._run("STATUS", version)

    def collect(self) -> None:
        """GC, for a plugin that speaks 1.1.0 (older ones had each stale attachment's DEL)."""
        version = self._version()
        if versions.at_least(version, "1.1.0"):
            self._run("GC", version)

    def _version(self) -> str:
        answer = self._exec("VERSION", json.dumps({"cniVersion": self.conf.cni_version}).encode(),
                            {})
        theirs = answer.get("supportedVersions") if answer else None
        if not isinstance(theirs, list):
            theirs = []
        chosen = versions.negotiate(self.conf.cni_version, theirs)
        if chosen is None:
            raise CniError(INCOMPATIBLE_VERSION, f"IPAM plugin {self.kind} speaks no CNI version "
                           f"vlanpipe can use ({theirs})", "use a newer IPAM plugin")
        return chosen

    def _run(self, command: str, version: str,
             overrides: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """The network config as vlanpipe validated it, re-serialised (never the runtime's
        bytes: their duplicate keys would be read the Go way): `NetConf.forwarded`."""
        document = self.conf.forwarded(version, self.data_dir)
        return self._exec(command, json.dumps(document).encode(), overrides or {})

    def _exec(self, cni_command: str, stdin: bytes,
              overrides: Mapping[str, str]) -> dict[str, Any] | None:
        """Run the plugin with the call's environment plus `overrides`; its stderr goes on
        ours (a runtime logs it)."""
        try:
            done = command.run(self._path(), [], timeout=TIMEOUT, ok=range(256), input=stdin,
                               env={**self.env.variables, "CNI_COMMAND": cni_command,
                                    **overrides})
        except ToolFailed as exc:
            raise CniError(DELEGATE_FAILED, f"IPAM plugin {self.kind}: {exc.message}",
                           "see the IPAM plugin's own log") from None
        if done.stderr:
            sys.stderr.write(done.stderr)
        answer = _json(done.stdout)
        if done.code != 0:
            raise _failure(self.kind, cni_command, done.code, answer, done.stdout)
        if done.stdout.strip() and answer is None:
            raise CniError(DELEGATE_FAILED, f"IPAM plugin {self.kind} answered {cni_command} "
                           "with something that is not a JSON object", done.stdout[:200])
        return answer

    def _path(self) -> str:
        if not self.env.path:
            raise CniError(INVALID_ENVIRONMENT, "CNI_PATH is not set",
                           f"ipam.type {self.kind} is an IPAM plugin looked up on CNI_PATH")
        for directory in self.env.path:
            candidate = os.path.join(directory, self.kind)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        raise CniError(INVALID_CONFIG, f"IPAM plugin {self.kind} is not on CNI_PATH "
                       f"({':'.join(self.env.path)})",
                       "install it (Debian: containernetworking-plugins, in /usr/lib/cni) "
                       "or fix ipam.type")


class DelegatedAddresses:
    """A delegated IPAM plugin in the place of vlanpipe's allocators: the core allocates
    (ADD) and releases (DEL) through it, and undoes an ADD that fails later like any
    other step. The last answer stays for the result (its gateway and DNS)."""

    allocator = "delegated"

    def __init__(self, delegate: Delegate) -> None:
        self.delegate = delegate
        self.answer: IpamResult | None = None

    @property
    def ipam(self) -> str:
        delegate = self.delegate
        return json.dumps(delegate.conf.forwarded_ipam(delegate.data_dir), sort_keys=True)

    def network_name(self, vlan: int) -> str:
        return self.delegate.conf.name

    def allocate(self, owner: Identity, vlan: int,
                 requested: tuple[Request, ...] = ()) -> list[Lease]:
        conf = self.delegate.conf
        self.answer = self.delegate.add()
        return self.answer.leases(conf.name, conf.mtu, conf.default_gateway)

    def release(self, owner: Identity, network: str = "") -> bool:
        self.delegate.delete(owner.infra_id, owner.interface)
        return True

    def release_anywhere(self, owner: Identity) -> list[str]:
        self.release(owner)
        return []

    def mark_conflicted(self, owner: Identity, network: str, address: str, mac: str) -> bool:
        """An IPAM plugin has no verb for "keep this out of use": the rollback releases
        it through DEL, and the error says so."""
        return False


def parse_result(kind: str, answer: Mapping[str, Any] | None) -> IpamResult:
    """The addresses an IPAM result holds (one per family), with gateways, routes and DNS."""
    answer = answer or {}
    ips = answer.get("ips")
    if not isinstance(ips, list) or not ips:
        raise CniError(DELEGATE_FAILED, f"IPAM plugin {kind} returned no address",
                       "check its configuration (ranges, subnet)")
    addresses = []
    for ip in ips:
        try:
            address = ipaddress.ip_interface(ip["address"])
            gateway = ipaddress.ip_address(ip["gateway"]) if ip.get("gateway") else None
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CniError(DELEGATE_FAILED, f"IPAM plugin {kind} returned an unreadable "
                           f"address {shown(ip)}", "check the IPAM plugin") from None
        addresses.append((address, gateway))
    if len({a.version for a, _ in addresses}) != len(addresses):
        given = ", ".join(str(a) for a, _ in addresses)
        raise CniError(UNSUPPORTED_FIELD, f"IPAM plugin {kind} returned {len(ips)} addresses "
                       f"({given})", "vlanpipe gives an interface one address per family: "
                       "configure one range of each family in ipam")
    routes, dns = answer.get("routes") or [], answer.get("dns") or {}
    return IpamResult(tuple(addresses), _routes(kind, routes),
                      dns if isinstance(dns, dict) else {})


def _routes(kind: str, routes: Any) -> tuple[Route, ...]:
    if not isinstance(routes, list):
        return ()
    found = []
    for route in routes:
        try:
            gateway = route.get("gw")
            found.append(Route(ipaddress.ip_network(route["dst"], strict=False),
                               ipaddress.ip_address(gateway) if gateway else None))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CniError(DELEGATE_FAILED, f"IPAM plugin {kind} returned an unreadable "
                           f"route {shown(route)}", "check the IPAM plugin") from None
    return tuple(found)


def _failure(kind: str, command: str, status: int, answer: Mapping[str, Any] | None,
             output: str) -> CniError:
    code = answer.get("code") if answer else None
    if answer and isinstance(code, int) and not isinstance(code, bool) and code > 0:
        return CniError(code, f"IPAM plugin {kind}: {answer.get('msg') or 'failed'}",
                        str(answer.get("details") or ""))
    return CniError(DELEGATE_FAILED, f"IPAM plugin {kind} failed {command} (exit {status})",
                    output[:200] or "it printed no CNI error")


def _json(output: str) -> dict[str, Any] | None:
    try:
        answer = json.loads(output)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None
