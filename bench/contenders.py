"""The four ways to give a pod its VLAN port, each as setup/teardown calls.

Same container, bridge, VLAN and address for all of them; each call is one
or more fresh processes timed by `bench.proc.timed`. A contender's setup or
teardown is the sum of its processes (ovs-docker needs `add-port` and then
`set-vlan`; bare pipework needs two commands to be undone). `verify_*` runs
after each call, untimed, so that every contender is proven to have done the
same work before its number counts.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.host import Pod
from bench.proc import Sample, checked
from tests.support import hostnet

NAMESPACE = "default"
INTERFACE = "eth1"
HERE = os.path.dirname(os.path.abspath(__file__))
FLOOR = os.path.join(HERE, "floor.sh")
OVS_DOCKER = "/usr/bin/ovs-docker"


@dataclass(frozen=True)
class Target:
    """Where every contender plugs the pod: bridge, VLAN, address (with prefix)."""

    bridge: str
    vlan: int
    address: str

    @property
    def pod_name(self) -> str:
        """The VLAN rule of the plugin reads the digits before the first '-'."""
        return f"{self.vlan}-bench"


@dataclass
class Step:
    """One setup, teardown or status of one contender: its processes and total wall time."""

    samples: list[Sample]
    phases: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, **labelled: Sample) -> "Step":
        """A step of several processes; each one's wall time becomes a phase."""
        return cls(list(labelled.values()), {k: round(v.wall_ms, 2) for k, v in labelled.items()})

    @property
    def wall_ms(self) -> float:
        return sum(s.wall_ms for s in self.samples)

    @property
    def cpu_ms(self) -> float:
        return sum(s.cpu_ms for s in self.samples)

    @property
    def maxrss_kb(self) -> int | None:
        """The largest process of the step (in a `probe("rss")` pass only)."""
        known = [s.maxrss_kb for s in self.samples if s.maxrss_kb is not None]
        return max(known) if known else None

    @property
    def execs(self) -> int | None:
        """Programs the step executed, its own processes included (`probe("exec")` only)."""
        known = [s.execs for s in self.samples if s.execs is not None]
        return sum(known) if known else None


class Contender(Protocol):
    name: str

    def setup(self, pod: Pod) -> Step: ...

    def teardown(self, pod: Pod) -> Step: ...


class PluginContender:
    """vlanpipe, installed as DIR/myplugin/myplugin, called with the kubelet's exact argv."""

    name = "plugin"

    def __init__(self, path: str, log_file: str, target: Target) -> None:
        self.path = path
        self.log = LogTail(log_file)
        self.target = target

    def call(self, command: str, pod: Pod, pod_name: str | None = None) -> Step:
        sample = checked([self.path, command, NAMESPACE, pod_name or self.target.pod_name, pod.id])
        record = self.log.last()
        return Step([sample], dict(record.get("phases_ms", {})),
                    {"duration_ms": record.get("duration_ms")})

    def setup(self, pod: Pod) -> Step:
        return self.call("setup", pod)

    def teardown(self, pod: Pod) -> Step:
        return self.call("teardown", pod)

    def status(self, pod: Pod) -> Step:
        step = self.call("status", pod)
        answer = json.loads(step.samples[0].output)
        if answer.get("ip") != self.target.address.split("/")[0]:
            raise AssertionError(f"status answered {step.samples[0].output!r}")
        return step


class PipeworkContender:
    """Bare pipework with the plugin's arguments, plus the cleanup pipework lacks."""

    name = "pipework"

    def __init__(self, target: Target) -> None:
        self.target = target
        self.program = shutil.which("pipework") or "/usr/local/bin/pipework"

    def setup(self, pod: Pod) -> Step:
        t = self.target
        return Step.of(pipework=checked([self.program, t.bridge, "-i", INTERFACE, pod.id,
                                         t.address, f"@{t.vlan}"]))

    def teardown(self, pod: Pod) -> Step:
        port = f"v{INTERFACE}pl{pod.pid}"
        return Step.of(**{
            "ip link del": checked(["ip", "link", "del", port]),
            "ovs-vsctl del-port": checked(["ovs-vsctl", "--timeout=5", "del-port",
                                           self.target.bridge, port]),
        })


class OvsDockerContender:
    """Debian's ovs-docker: add-port with the address, set-vlan; del-port."""

    name = "ovs-docker"

    def __init__(self, target: Target) -> None:
        self.target = target

    def setup(self, pod: Pod) -> Step:
        t = self.target
        return Step.of(**{
            "add-port": checked([OVS_DOCKER, "add-port", t.bridge, INTERFACE, pod.id,
                                 f"--ipaddress={t.address}"]),
            "set-vlan": checked([OVS_DOCKER, "set-vlan", t.bridge, INTERFACE, pod.id, str(t.vlan)]),
        })

    def teardown(self, pod: Pod) -> Step:
        return Step.of(**{"del-port": checked([OVS_DOCKER, "del-port", self.target.bridge,
                                               INTERFACE, pod.id])})


class FloorContender:
    """The minimum work as a short bash script (bench/floor.sh)."""

    name = "floor"

    def __init__(self, target: Target) -> None:
        self.target = target

    def port(self, pod: Pod) -> str:
        return f"bfl{pod.pid}"

    def setup(self, pod: Pod) -> Step:
        t = self.target
        return Step.of(**{"floor.sh up": checked(["bash", FLOOR, "up", t.bridge, self.port(pod),
                                                  str(pod.pid), t.address, str(t.vlan)])})

    def teardown(self, pod: Pod) -> Step:
        return Step.of(**{"floor.sh down": checked(["bash", FLOOR, "down", self.target.bridge,
                                                    self.port(pod)])})


class LogTail:
    """The plugin's JSON log, read from where the last read stopped."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0

    def new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                handle.seek(self.offset)
                text = handle.read()
                self.offset = handle.tell()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def last(self) -> dict[str, Any]:
        records = self.new()
        return records[-1] if records else {}


# --- untimed checks ---------------------------------------------------------------


def verify_attached(target: Target, pod: Pod, who: str) -> None:
    """Exactly one port on the bridge, tagged with the VLAN; eth1 in the pod has the address."""
    ports = hostnet.ovs("list-ports", target.bridge).split()
    if len(ports) != 1:
        raise AssertionError(f"{who}: bridge {target.bridge} has ports {ports}, expected one")
    tag = hostnet.ovs("get", "Port", ports[0], "tag").strip()
    if tag != str(target.vlan):
        raise AssertionError(f"{who}: port {ports[0]} has tag {tag}, expected {target.vlan}")
    addresses = hostnet.in_netns(pod.pid, "ip", "-o", "-4", "addr", "show", "dev", INTERFACE).stdout
    if f"inet {target.address} " not in addresses:
        raise AssertionError(f"{who}: {INTERFACE} in the pod has {addresses.strip()!r}, "
                             f"expected {target.address}")


def verify_detached(target: Target, pod: Pod, who: str) -> None:
    """No port left on the bridge and no eth1 in the pod (read from /proc: no process)."""
    ports = hostnet.ovs("list-ports", target.bridge).split()
    if ports:
        raise AssertionError(f"{who}: teardown left ports {ports} on {target.bridge}")
    with open(f"/proc/{pod.pid}/net/dev", encoding="ascii") as handle:
        if any(line.split(":")[0].strip() == INTERFACE for line in handle):
            raise AssertionError(f"{who}: teardown left {INTERFACE} in the pod")
