"""The ways to give a pod its VLAN port, each as setup/teardown (and status) calls.

The plugin; its peers (pipework at equal work and pipework with its one-second
arping, ovs-docker, floor.sh); and the card floor, the least a call can cost
under the design card. Same container, bridge, VLAN and address for all of
them; each call is one or more fresh processes timed by `bench.proc.timed`. A
contender's setup or teardown is the sum of its processes (ovs-docker needs
`add-port` and then `set-vlan`; bare pipework needs two commands to be undone).
`verify_*` runs after each call, untimed, so that every contender is proven to
have done the same work before its number counts.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.host import Pod
from bench.proc import Sample, checked
from pipework_wrapper import pipework
from plugin import names
from plugin.ipam.mac import mac_for
from tests.support import hostnet

NAMESPACE = "default"
INTERFACE = "eth1"
HERE = os.path.dirname(os.path.abspath(__file__))
FLOOR = os.path.join(HERE, "floor.sh")
CARD_FLOOR = os.path.join(HERE, "card_floor.py")
OVS_DOCKER = "/usr/bin/ovs-docker"
BUSYBOX = "/bin/busybox"  # busybox-static, from scripts/host-setup
ETH_P_ARP = 0x0806
PIPEWORK_TIMEOUT = 60.0  # the plugin's default (timeouts.pipework)


def port(pod: Pod) -> str:
    """The host end of the veth: the plugin's name for it, which it also gives pipework."""
    return names.host_veth(pod.id, INTERFACE)


def pipework_argv(bridge: str, pod: Pod, address: str, vlan: int) -> list[str]:
    """pipework and the arguments the plugin gives it: its host-side name, its MAC."""
    program = shutil.which("pipework") or "/usr/local/bin/pipework"
    return [program, *pipework.argv(bridge, pod.id, INTERFACE, port(pod), address, vlan,
                                    mac=mac_for(address))]


def quiet_folder(root: str) -> str:
    """The plugin's own folder for the front of pipework's PATH (`arping` is `true`, and
    `ovs-vsctl` waits for a busy ovsdb-server), made by the plugin's own code."""
    return pipework.quiet_path(os.path.join(root, "quiet-arping"), PIPEWORK_TIMEOUT)


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
    phases_cpu: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, **labelled: Sample) -> "Step":
        """A step of several processes; each one is a phase, with its wall and CPU time."""
        return cls(list(labelled.values()), {k: round(v.wall_ms, 2) for k, v in labelled.items()},
                   phases_cpu={k: round(v.cpu_ms, 2) for k, v in labelled.items()})

    def phases_samples(self) -> dict[str, Sample]:
        """The step's processes by phase (a step made by `of`), to extend it."""
        return dict(zip(self.phases, self.samples))

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
    """Also has `status(pod) -> Step` when it answers the kubelet's status call."""

    name: str

    def setup(self, pod: Pod) -> Step: ...

    def teardown(self, pod: Pod) -> Step: ...


class PluginContender:
    """vlanpipe, installed as DIR/myplugin/myplugin, called with the kubelet's exact argv."""

    def __init__(self, path: str, log_file: str, target: Target, name: str = "plugin") -> None:
        self.name = name  # "plugin+probe": the install with the conflict probe on
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
    """pipework with the plugin's argv (`pipework_argv`), plus the cleanup pipework lacks.

    At equal work (`quiet_dir` given) its `arping` resolves to `true`, as the plugin
    arranges, and the pod is announced by a process of its own: busybox's arping, which
    (unlike iputils', whose `-w` takes whole seconds and 0 means never) exits as soon as
    its one unsolicited packet is out. Each announcement is checked to have reached the
    host side of the veth, untimed. Without `quiet_dir`: pipework as shipped, whose
    `arping -c 1 -A` waits a second after its packet.
    """

    def __init__(self, target: Target, quiet_dir: str | None) -> None:
        self.target = target
        self.name = "pipework" if quiet_dir else "pipework+arping"
        self.env = None if quiet_dir is None else {
            **os.environ, "PATH": f"{quiet_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}

    def setup(self, pod: Pod) -> Step:
        t = self.target
        argv = pipework_argv(t.bridge, pod, t.address, t.vlan)
        if self.env is None:
            return Step.of(pipework=checked(argv))
        made = checked(argv, env=self.env)
        address = t.address.split("/")[0]
        with ArpWatch(port(pod)) as watch:
            sent = checked(["nsenter", "-t", str(pod.pid), "-n", BUSYBOX, "arping", "-q", "-U",
                            "-c", "1", "-I", INTERFACE, address])
            watch.expect(address)
        return Step.of(pipework=made, announce=sent)

    def teardown(self, pod: Pod) -> Step:
        return Step.of(**{
            "ip link del": checked(["ip", "link", "del", port(pod)]),
            "ovs-vsctl del-port": checked(["ovs-vsctl", "--timeout=5", "del-port",
                                           self.target.bridge, port(pod)]),
        })


GUARDED = "pipework+guard"  # GuardedPipeworkContender's name in every table


class GuardedPipeworkContender(PipeworkContender):
    """pipework at equal work (`PipeworkContender` with `quiet_dir`), plus the external calls
    port security (on by default) adds to the plugin's: its rules put by one `ovs-ofctl
    --bundle add-flows` after the port is made, deleted by cookie after the port is gone
    (`plugin/core/flows.py`'s rules, as the card floor puts them). The port's OpenFlow
    number is read untimed: the plugin chooses its own and reads none. At 1,000 ports an
    OpenFlow call right after a port change waits for ovs-vswitchd to take it in (~0.3 s
    here), a cost of the feature, not of its code: the crowded bridge shows growth against
    both pipeworks."""

    def __init__(self, target: Target, quiet_dir: str) -> None:
        super().__init__(target, quiet_dir)
        self.name = GUARDED
        self.rules = os.path.join(quiet_dir, "guard-rules.txt")

    def setup(self, pod: Pod) -> Step:
        from plugin.core import flows

        done = super().setup(pod)
        ofport = int(hostnet.ovs("get", "Interface", port(pod), "ofport"))
        address = self.target.address.split("/")[0]
        guard = flows.Guard(port(pod), ofport, mac_for(address), (address,))
        with open(self.rules, "w", encoding="ascii") as handle:
            handle.write("\n".join(flows.replace(guard)) + "\n")
        ofctl = checked(["ovs-ofctl", "--bundle", "add-flows", self.target.bridge, self.rules])
        return Step.of(**done.phases_samples(), **{"ovs-ofctl": ofctl})

    def teardown(self, pod: Pod) -> Step:
        from plugin.core import flows

        done = super().teardown(pod)
        ofctl = checked(["ovs-ofctl", "del-flows", self.target.bridge,
                         f"cookie={flows.cookie(port(pod)):#x}/-1"])
        return Step.of(**done.phases_samples(), **{"ovs-ofctl": ofctl})


class CardFloorContender:
    """The card floor (bench/card_floor.py) and a bare interpreter for status, both run by
    the installed plugin's own interpreter with `-I`, as its launcher runs it."""

    name = "card floor"

    def __init__(self, interpreter: str, target: Target, quiet_dir: str) -> None:
        self.python = [interpreter, "-I"]
        self.target = target
        self.quiet_dir = quiet_dir

    def setup_argv(self, pod: Pod, address: str, vlan: int) -> list[str]:
        """Also for the burst, where each pod has its own address."""
        return [*self.python, CARD_FLOOR, "setup", self.quiet_dir, pod.id, INTERFACE,
                address, self.target.bridge, port(pod), str(vlan),
                *pipework_argv(self.target.bridge, pod, address, vlan)]

    def teardown_argv(self, pod: Pod) -> list[str]:
        return [*self.python, CARD_FLOOR, "teardown", self.target.bridge, port(pod)]

    def setup(self, pod: Pod) -> Step:
        t = self.target
        return Step.of(**{"card_floor.py setup": checked(self.setup_argv(pod, t.address, t.vlan))})

    def teardown(self, pod: Pod) -> Step:
        return Step.of(**{"card_floor.py teardown": checked(self.teardown_argv(pod))})

    def status(self, pod: Pod) -> Step:
        return Step.of(**{"python -I -c pass": checked([*self.python, "-c", "pass"])})


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


class ArpWatch:
    """ARP frames reaching the host end of a pod's veth, from before an announcement is sent:
    proof that it really left the pod (there is no tcpdump on these machines)."""

    def __init__(self, port_name: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        self.sock.bind((port_name, 0))
        self.port = port_name

    def __enter__(self) -> "ArpWatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def expect(self, address: str, timeout: float = 2.0) -> None:
        """An ARP frame whose sender and target are both `address` (a gratuitous one)."""
        packed = socket.inet_aton(address)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                frame = self.sock.recv(128)
            except TimeoutError:
                break
            if frame[28:32] == packed and frame[38:42] == packed:
                return
        raise AssertionError(f"no gratuitous ARP for {address} reached {self.port}")


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
