"""Which sandbox a CNI call names, and the facts about it that the result reports.

The runtime names a container and a network namespace, and the two must
agree, or the interface would land in a pod the runtime did not mean (or in
the host). With Docker as the runtime (cri-dockerd) CNI_NETNS is
`/proc/<PID>/ns/net`; comparing namespace inodes rather than paths also
accepts a bind mount of the same namespace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from plugin import names
from plugin.config.schema import Config
from plugin.core.plumbing import Sandbox, docker_sandbox
from plugin.errors import ContainerError, ContainerNotFound, InputError
from plugin.frontends.cni.errors import INVALID_ENVIRONMENT, UNKNOWN_CONTAINER, CniError

RUNTIME_HINT = "vlanpipe's CNI mode works with Docker as the container runtime (cri-dockerd)"


@dataclass(frozen=True)
class HostLink:
    """The host end of the pod's veth, as the result reports it."""

    name: str
    mac: str
    mtu: int | None


def locate(config: Config, container_id: str, netns: str) -> Sandbox:
    """The sandbox of the running Docker container `container_id`, whose netns is `netns`."""
    try:
        names.infra_id(container_id)
        sandbox = docker_sandbox(config, container_id)
    except (InputError, ContainerError, ContainerNotFound) as exc:
        raise CniError(UNKNOWN_CONTAINER, f"CNI_CONTAINERID: {exc.message}",
                       f"{RUNTIME_HINT}; {exc.hint}") from None
    if not same_namespace(netns, sandbox.netns):
        raise CniError(INVALID_ENVIRONMENT,
                       f"CNI_NETNS {netns} is not the network namespace of container "
                       f"{container_id[:12]} (PID {sandbox.pid})",
                       f"{RUNTIME_HINT}: CNI_NETNS must be {sandbox.netns}")
    return sandbox


def same_namespace(one: str, other: str) -> bool:
    try:
        a, b = os.stat(one), os.stat(other)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def host_link(name: str) -> HostLink:
    """MAC and MTU of a host link from sysfs: no process for a fact the kernel exposes."""
    base = os.path.join("/sys/class/net", name)
    try:
        with open(os.path.join(base, "address"), encoding="ascii") as handle:
            mac = handle.read().strip()
        with open(os.path.join(base, "mtu"), encoding="ascii") as handle:
            mtu: int | None = int(handle.read())
    except (OSError, ValueError):
        return HostLink(name, "", None)
    return HostLink(name, mac, mtu)
