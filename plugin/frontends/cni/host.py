"""What the front-end checks on the host before it asks the core for anything.

The core finds the container by id; a CNI runtime also names a network
namespace, and the two must agree, or the interface would land in a pod the
runtime did not mean (or in the host). With Docker as the runtime
(cri-dockerd) CNI_NETNS is `/proc/<PID>/ns/net`; comparing namespace inodes
rather than paths also accepts a bind mount of the same namespace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipework_wrapper import iproute
from pipework_wrapper.docker_lookup import InfraContainer, inspect
from pipework_wrapper.ovs import Ovs
from plugin import names
from plugin.frontends.cni.errors import INVALID_ENVIRONMENT, UNKNOWN_CONTAINER, CniError
from plugin.config.schema import Config
from plugin.errors import ContainerError, InputError

RUNTIME_HINT = "vlanpipe's CNI mode works with Docker as the container runtime (cri-dockerd)"
BRIDGE_HINT = ("create the bridge: `vlanpipe init` with the same bridge and datapath_type, or "
               "ovs-vsctl add-br BRIDGE -- set Bridge BRIDGE datapath_type=netdev")


@dataclass(frozen=True)
class HostLink:
    """The host end of the pod's veth, as the result reports it."""

    name: str
    mac: str
    mtu: int | None


def bridge_problem(ovs: Ovs, bridge: str) -> str | None:
    """Why pipework could not plug into `bridge` now, or None.

    A bridge row without a device is what a stopped ovs-vswitchd or a `system`
    bridge without the kernel module leaves: pipework needs the device.
    """
    if ovs.bridge(bridge) is None:
        return f"bridge {bridge} does not exist in Open vSwitch"
    if not iproute.link_exists(bridge):
        return f"bridge {bridge} exists in OVSDB but has no device (is ovs-vswitchd running?)"
    return None


def container(config: Config, container_id: str, netns: str) -> InfraContainer:
    """The running Docker container `container_id`, whose network namespace is `netns`."""
    try:
        names.infra_id(container_id)
        found = inspect(container_id, config.docker_url, config.docker_timeout)
    except (InputError, ContainerError) as exc:
        raise CniError(UNKNOWN_CONTAINER, f"CNI_CONTAINERID: {exc.message}",
                       f"{RUNTIME_HINT}; {exc.hint}") from None
    if not found.running or found.pid <= 0:
        raise CniError(UNKNOWN_CONTAINER, f"container {container_id[:12]} is not running",
                       "the runtime must start the pod sandbox before ADD")
    if not same_namespace(netns, f"/proc/{found.pid}/ns/net"):
        raise CniError(INVALID_ENVIRONMENT,
                       f"CNI_NETNS {netns} is not the network namespace of container "
                       f"{container_id[:12]} (PID {found.pid})",
                       f"{RUNTIME_HINT}: CNI_NETNS must be /proc/{found.pid}/ns/net")
    return found


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
