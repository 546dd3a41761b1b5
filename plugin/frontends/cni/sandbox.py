"""Which sandbox a CNI call names, how the plugin reaches it, and what the result reports.

Decided once per ADD (and recorded, so DEL, CHECK and gc follow it):

- Docker knows the container (a 64-hex id it has running) and CNI_NETNS is that
  container's namespace (cri-dockerd): the pipework plumber, as the card asks.
  Comparing namespace inodes rather than paths also accepts a bind mount of it.
- Otherwise CNI_NETNS is a network namespace a runtime made (containerd and CRI-O:
  `/var/run/netns/cni-<uuid>`, or `/proc/<pid>/ns/net` from `ctr run --cni`): the
  netns plumber, which never asks Docker.
- Docker does not answer and CNI_NETNS is a `/proc/<pid>/ns/net` path: that could
  be a Docker container's, so try again later (code 11) rather than guess.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pipework_wrapper import iproute
from plugin import names
from plugin.config.schema import Config
from plugin.core.plumbing import Sandbox, docker_sandbox
from plugin.errors import ContainerError, ContainerNotFound, DockerUnavailable
from plugin.frontends.cni.errors import (INVALID_ENVIRONMENT, TRY_AGAIN_LATER,
                                         UNKNOWN_CONTAINER, CniError)

PROC_NETNS = re.compile(r"/proc/\d+/ns/net\Z")


@dataclass(frozen=True)
class HostLink:
    """The host end of the pod's veth, as the result reports it."""

    name: str
    mac: str
    mtu: int | None


def locate(config: Config, container_id: str, netns: str) -> tuple[Sandbox, str]:
    """The sandbox of this call, and why its plumber was chosen (for the log)."""
    if names.is_docker_id(container_id):
        try:
            sandbox = docker_sandbox(config, container_id)
        except ContainerNotFound:
            pass
        except ContainerError as exc:
            raise CniError(UNKNOWN_CONTAINER, f"CNI_CONTAINERID: {exc.message}", exc.hint) \
                from None
        except DockerUnavailable as exc:
            if PROC_NETNS.match(os.path.normpath(netns)):
                raise CniError(TRY_AGAIN_LATER, f"{exc.message}, and CNI_NETNS {netns} is a "
                               "process's namespace that may be a Docker container's",
                               "start dockerd (or wait for it) and retry") from None
        else:
            if not same_namespace(netns, sandbox.netns):
                raise CniError(INVALID_ENVIRONMENT,
                               f"CNI_NETNS {netns} is not the network namespace of container "
                               f"{container_id[:12]} (PID {sandbox.pid})",
                               f"with Docker as the runtime CNI_NETNS must be {sandbox.netns}")
            return sandbox, "Docker runs the container: pipework"
    return _namespace(netns), "a namespace path Docker does not run: netns"


def _namespace(netns: str) -> Sandbox:
    """A network namespace at `netns` that is not this process's own (the host's)."""
    found = iproute.namespace_id(netns)
    if found is None:
        raise CniError(INVALID_ENVIRONMENT, f"CNI_NETNS {netns} does not exist",
                       "the runtime must create the pod's network namespace before ADD")
    own = iproute.namespace_id("/proc/self/ns/net")
    if own is None or found[0] != own[0]:
        raise CniError(INVALID_ENVIRONMENT, f"CNI_NETNS {netns} is not a network namespace",
                       "pass the path of the pod's network namespace")
    if found == own:
        raise CniError(INVALID_ENVIRONMENT, f"CNI_NETNS {netns} is the host's own network "
                       "namespace", "pass the pod's network namespace")
    return Sandbox("netns", netns, netns_id=f"{found[0]}:{found[1]}")


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
        with open(os.path.join(base, "address"), encoding="utf-8") as handle:
            mac = handle.read().strip()
        with open(os.path.join(base, "mtu"), encoding="utf-8") as handle:
            mtu: int | None = int(handle.read())
    except (OSError, ValueError):
        return HostLink(name, "", None)
    return HostLink(name, mac, mtu)
