"""Containers looked up through the Docker SDK.

Setup needs Docker for the infra container's PID (pipework finds the container
by id, the plugin reaches its network namespace by PID); teardown and status
work from OVSDB and the plugin's records, so they keep working while dockerd
is down. gc and list ask which containers still run.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipework_wrapper.errors import ContainerNotFound, DockerUnavailable
from pipework_wrapper.timing import timed

# Pinned rather than "auto": negotiating costs one more request on every setup, and every
# dockerd since 20.10 speaks 1.41.
API_VERSION = "1.41"
DOCKER_HINT = "start dockerd or set docker_url in the config"


@dataclass(frozen=True)
class InfraContainer:
    """What pipework and the plugin need of a Docker container: its id, name and PID."""

    id: str
    name: str
    pid: int
    running: bool


def inspect(container_id: str, base_url: str, timeout: float) -> InfraContainer:
    from docker.errors import DockerException, NotFound
    from requests import RequestException

    try:
        with timed("docker"), _client(base_url, timeout) as client:
            data = client.inspect_container(container_id)
    except NotFound:
        raise ContainerNotFound(f"container {container_id[:12]} is unknown to Docker",
                                "pass the id of the pod's running infra container") from None
    except (DockerException, RequestException) as exc:
        raise DockerUnavailable(f"Docker does not answer at {base_url} ({_short(exc)})",
                                DOCKER_HINT) from None
    state = data.get("State") or {}
    return InfraContainer(data["Id"], data.get("Name", "").lstrip("/"),
                          int(state.get("Pid") or 0), bool(state.get("Running")))


def running_ids(base_url: str, timeout: float) -> set[str]:
    """Full ids of every running container: one API call, for sweeps and listings."""
    from docker.errors import DockerException
    from requests import RequestException

    try:
        with timed("docker"), _client(base_url, timeout) as client:
            return {c["Id"] for c in client.containers(quiet=True)}
    except (DockerException, RequestException) as exc:
        raise DockerUnavailable(f"Docker does not answer at {base_url} ({_short(exc)})",
                                "start dockerd: without it the plugin cannot tell which pods "
                                "are gone") from None


def _client(base_url: str, timeout: float):
    """A low-level API client: no container objects to build, one request per question."""
    import docker

    return docker.APIClient(base_url=base_url, timeout=timeout, version=API_VERSION)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
