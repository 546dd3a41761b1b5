"""What the plumbers share: where the pod is, and the `ip` commands that address it.

A plumber makes the pod's end of the veth; the port itself, its checks and its
removal are the port facade's (plugin/core/ports.py), the same for every plumber.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from pipework_wrapper import iproute
from plugin.core.records import Attachment
from plugin.errors import ContainerError
from plugin.ipam.model import default_halves

if TYPE_CHECKING:
    from plugin.config.schema import Config
    from plugin.ipam.model import Lease

Undo = Callable[[Callable[[], object]], None]  # pushes one compensating action


@dataclass(frozen=True)
class Sandbox:
    """Where a pod's network namespace is, and what reaches it."""

    plumber: str
    netns: str          # a path to the namespace, e.g. /proc/<PID>/ns/net
    container: str = ""  # the Docker id pipework finds the container by
    pid: int = 0
    netns_id: str = ""  # "device:inode" of `netns` when it was chosen (netns plumber)


def addressing(ifname: str, leases: list["Lease"]) -> list[str]:
    """`ip` commands (run inside the pod) that give `ifname` these addresses. IPv6
    addresses skip duplicate address detection: usable when setup returns."""
    return [f"addr add {lease.address} dev {ifname}"
            f"{' nodad' if lease.address.version == 6 else ''}" for lease in leases]


def default_routes(ifname: str, gateways: tuple[str, ...]) -> list[str]:
    """The family's default traffic through each gateway given ("" for none), as the two
    halves of its address space (`default_halves`): never pipework's `ADDR@GATEWAY`,
    which deletes the pod's default route (Docker's, the cluster network) for good."""
    return [f"route replace {half} via {gateway} dev {ifname}"
            for gateway in gateways if gateway
            for half in default_halves(ipaddress.ip_address(gateway).version)]


def routing(ifname: str, leases: list["Lease"]) -> list[str]:
    """`ip` commands for the networks' own routes (after the addresses: on-link gateways)."""
    return [f"route replace {route.destination}"
            f"{f' via {route.gateway}' if route.gateway else ''} dev {ifname}"
            for lease in leases for route in lease.routes]


def still_there(netns: str, netns_id: str) -> bool:
    """The namespace a record names is still the one at its path: device and inode are
    both the same (a path comes back with a reused PID, and inodes are reused too)."""
    found = iproute.namespace_id(netns) if netns else None
    return found is not None and f"{found[0]}:{found[1]}" == netns_id


def docker_sandbox(config: "Config", container_id: str) -> Sandbox:
    """The running Docker container `container_id`, reached through pipework."""
    from pipework_wrapper.docker_lookup import inspect  # setup's, not teardown's

    found = inspect(container_id, config.docker_url, config.docker_timeout)
    if not found.running or found.pid <= 0:
        raise ContainerError(f"infra container {container_id[:12]} is not running",
                             "start the pod's infra container before setup")
    return Sandbox("pipework", f"/proc/{found.pid}/ns/net", found.id, found.pid)


class Plumber:
    """One way into a pod's network namespace: it makes the pod's end of the veth (its
    name, MAC, MTU, addresses and routes) once the port exists (plugin/core/ports.py
    does the rest, the same for every plumber)."""

    name: ClassVar[str]

    def __init__(self, config: "Config", ip: Any = iproute) -> None:
        """`ip` is the wrapper (unit tests pass a fake of its shape)."""
        self.config = config
        self.ip = ip

    def make(self, sandbox: Sandbox, record: Attachment, leases: list["Lease"],
             push: Undo) -> None:
        """The pod's end of `record`'s veth in `sandbox`, named, addressed (`leases`, one
        per family) and routed; every step pushes its undo before it runs."""
        raise NotImplementedError
