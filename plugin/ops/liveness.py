"""Whether a pod's sandbox still exists, judged the way its plumber reaches it.

A Docker container (the pipework plumber) is alive while Docker runs it; a
namespace a CRI runtime made (the netns plumber) is judged without Docker: its
host veth still exists (a veth dies with the namespace that holds its peer),
and the recorded path still names the recorded namespace (device and inode,
since paths come back with reused PIDs and inodes are reused too).
"""

from __future__ import annotations

from pipework_wrapper import iproute
from pipework_wrapper.docker_lookup import inspect, running_ids
from plugin.config.schema import Config
from plugin.core.plumbing import still_there
from plugin.errors import ContainerNotFound, DockerUnavailable


class Liveness:
    def __init__(self, config: Config) -> None:
        self.config = config
        try:
            self.running: set[str] | None = running_ids(config.docker_url,
                                                        config.docker_timeout)
        except DockerUnavailable:
            self.running = None  # Docker's containers cannot be judged

    def alive(self, infra_id: str, plumber: str, netns: str = "", netns_id: str = "",
              port: str = "") -> bool | None:
        """True, False, or None when it cannot be told (Docker does not answer)."""
        if plumber == "netns":
            return iproute.link_exists(port) and still_there(netns, netns_id)
        if self.running is None:
            return None
        return infra_id in self.running

    def alive_now(self, infra_id: str, plumber: str, netns: str = "", netns_id: str = "",
                  port: str = "") -> bool:
        """Asked again just before anything is removed (under the pod's lock): anything but
        a sure 'gone' counts as alive."""
        if plumber == "netns":
            return iproute.link_exists(port) and still_there(netns, netns_id)
        try:
            return inspect(infra_id, self.config.docker_url, self.config.docker_timeout).running
        except ContainerNotFound:
            return False
        except DockerUnavailable:
            return True
