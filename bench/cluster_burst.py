"""`scripts/bench --cluster`, part 3: a full node in one burst, and calls on a crowded bridge.

Burst: N pods (the kubelet's default maximum, 110) set up at once through the exec
plugin with the kubelet's argv, then torn down at once, against N card floors run the
same way (`scale.burst`: one barrier releases them all; every port and address checked),
in two rounds of opposite order (plugin first, then card floors first; walls summed).

Crowded bridge: the probe pod's setup and teardown by the plugin and by pipework at
equal work in turn (`scale.measure_level`), first on an empty bridge, then with K bare
veth ports added to it (not containers: a thousand containers do not fit these
machines; to Open vSwitch a port is a port). The plugin's growth is judged against
pipework's. Beside it, one `ovs-vsctl` that changes nothing (`--if-exists del-port` of
an absent port) at each size: what every ovs-vsctl invocation pays to read the bridge.
Every veth and port made here is removed here (and dies with the sandbox's netns).

The bare ports' peers have IPv6 off, as a Docker pod's interface has. With it on, 1,000
peers in one namespace stalled ovs-vswitchd for minutes (measured: 1,000 ports took
102 s, one main-loop pass 46 s, and 54 s of its CPU went on the last hundred): each peer's
link-local autoconfiguration (DAD, MLD reports, router solicitations) entered the bridge,
NORMAL flooded every frame to every port (1.12 million copies for the last hundred, one
sendmmsg each in ovs-vswitchd's main thread, which polls non-PMD ports), and the kernel
handed each copy to a peer whose IPv6 route lookup walked the fe80::/64 and ff00::/8
routes of every interface in the namespace (perf: 64 % in `__find_rr_leaf`): packets x
ports x routes, cubic in the ports. A node has none of it: a pod's end sits in the pod's
own namespace, and Docker turns IPv6 off there. With the peers quiet, a hundred more
ports take 0.2 s at 1,000 and nothing enters the bridge.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Sequence

from bench import scale, stats
from bench.contenders import CardFloorContender, Contender, PluginContender, Target
from bench.host import BenchHost, Pod
from bench.proc import checked
from bench.rounds import summarize
from tests.support import hostnet

BARE = "bare"  # + 4 digits: the bare ports' names (their peers: "barp" + 4 digits)
OVS_BULK_TIMEOUT = "--timeout=590"  # one transaction adding or removing many bare ports
CHUNK = 100  # bare ports added per transaction: the no-op ovs-vsctl is timed after each
IPV6_CONF = "/proc/sys/net/ipv6/conf"  # this namespace's (/proc/sys/net follows the netns)


@dataclass
class Plan:
    pods: int  # set up at once, then torn down at once
    extra_ports: int  # bare veth ports on the bridge for the second size
    runs: int  # probe setups+teardowns per contender and size
    vsctl_calls: int  # no-op ovs-vsctl invocations timed per size


def run(plan: Plan, host: BenchHost, plugin: PluginContender, pipeworks: Sequence[Contender],
        card_floor: CardFloorContender, probe: Pod, target: Target,
        watch: Callable[[str], ContextManager[None]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if plan.pods:
        _say(f"burst: starting {plan.pods} containers")
        pods = host.start_pods([f"n{i:03d}" for i in range(plan.pods)])
        with watch("cluster burst"):
            out["burst"] = scale.burst(plugin, card_floor, pods, rounds=2)
        for kind in ("plugin", "card floor"):
            for call in ("setup", "teardown"):
                for error in out["burst"][kind][call]["errors"]:
                    _say(f"burst {kind} {call} failed: {error}")
        out["burst"]["ports_left"] = sweep_ports(target.bridge)
    out.update(crowded(plan, plugin, pipeworks, probe, target, watch))
    return out


def crowded(plan: Plan, plugin: PluginContender, pipeworks: Sequence[Contender], probe: Pod,
            target: Target, watch: Callable[[str], ContextManager[None]]) -> dict[str, Any]:
    """The probe's calls on the empty bridge and with `plan.extra_ports` bare ports, added
    CHUNK at a time, each chunk's wall time and the no-op ovs-vsctl after it recorded (the
    bridge's growth curve); the bare ports removed whatever happens."""
    sizes, vsctl_growth, added = [], [], 0
    started = time.perf_counter()
    try:
        for extra in sorted({0, plan.extra_ports}):
            while added < extra:
                count = min(CHUNK, extra - added)
                added += count  # first: the finally removes a chunk cut short too
                chunk_started = time.perf_counter()
                add_bare_ports(target.bridge, added - count, count)
                vsctl_growth.append({"ports": added, "ms": _noop_vsctl(target.bridge, 3),
                                     "add_s": round(time.perf_counter() - chunk_started, 2)})
            scale.check_attached(target.bridge, extra)
            _say(f"crowded bridge: {extra} ports, {plan.runs} probe runs")
            with watch(f"crowded bridge {extra}"):
                measured = scale.measure_level([plugin, *pipeworks], probe, target,
                                               plan.runs)
                noop = _noop_vsctl(target.bridge, plan.vsctl_calls)
            sizes.append({"ports": extra, **summarize(measured), "ovs_vsctl_noop_ms": noop})
    finally:
        if added:
            remove_bare_ports(target.bridge, added)
    scale.check_attached(target.bridge, 0)
    return {"crowded": sizes, "vsctl_growth": vsctl_growth,
            "crowded_s": round(time.perf_counter() - started)}


def _noop_vsctl(bridge: str, calls: int) -> dict[str, float]:
    """One ovs-vsctl that changes nothing, `calls` times: what reading the bridge costs."""
    return stats.summary(checked(["ovs-vsctl", "--timeout=30", "--if-exists", "del-port",
                                  bridge, "absent0"]).wall_ms for _ in range(calls))


def sweep_ports(bridge: str) -> list[str]:
    """Ports a failed teardown left on the bridge, removed (with their veths), and named:
    the failure is reported, and the next part starts from an empty bridge."""
    left = hostnet.ovs("list-ports", bridge).split()
    for name in left:
        hostnet.ovs("--if-exists", "del-port", bridge, name)
        hostnet.run(["ip", "link", "del", name], check=False)
    return left


def _names(count: int, first: int = 0) -> list[tuple[str, str]]:
    return [(f"{BARE}{i:04d}", f"barp{i:04d}") for i in range(first, first + count)]


def add_bare_ports(bridge: str, first: int, count: int) -> None:
    """`count` veth pairs, both ends up, each host end a port of `bridge` (one transaction,
    waiting for ovs-vswitchd to take them), each peer's IPv6 off before it comes up (the
    module's docstring: why). Nothing of them is timed as part of a call."""
    _say(f"crowded bridge: bare ports {first}..{first + count - 1} on {bridge}")
    pairs = _names(count, first)
    _batch("".join(f"link add {a} type veth peer name {b}\n" for a, b in pairs))
    for _, peer in pairs:
        _ipv6_off(peer)
    _batch("".join(f"link set {a} up\nlink set {b} up\n" for a, b in pairs))
    argv = ["ovs-vsctl", OVS_BULK_TIMEOUT]
    for name, _ in pairs:
        argv += ["--", "add-port", bridge, name]
    hostnet.run(argv, timeout=600)


def _ipv6_off(link: str) -> None:
    """No IPv6 on `link` (nothing to do on a kernel without IPv6)."""
    path = os.path.join(IPV6_CONF, link, "disable_ipv6")
    if os.path.exists(path):
        with open(path, "w", encoding="ascii") as handle:
            handle.write("1")


def remove_bare_ports(bridge: str, count: int) -> None:
    """Every bare port off the bridge (one transaction; ovs-vswitchd catches up later,
    alike for everything measured after), then every veth pair."""
    argv = ["ovs-vsctl", OVS_BULK_TIMEOUT, "--no-wait"]
    for name, _ in _names(count):
        argv += ["--", "--if-exists", "del-port", bridge, name]
    hostnet.run(argv, timeout=600)
    _batch("".join(f"link del {name}\n" for name, _ in _names(count)), force=True)


def _batch(commands: str, force: bool = False) -> None:
    """`ip -batch -`: thousands of link changes in one process, bounded; `force`: go on
    past a link that is not there (a chunk cut short), failing at the end."""
    subprocess.run(["ip", *(["-force"] if force else []), "-batch", "-"], input=commands,
                   capture_output=True, text=True, timeout=120, check=not force)


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
