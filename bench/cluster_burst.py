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
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

from bench import scale, stats
from bench.contenders import CardFloorContender, Contender, PluginContender, Target
from bench.host import BenchHost, Pod
from bench.proc import checked
from bench.rounds import summarize
from tests.support import hostnet

BARE = "bare"  # + 4 digits: the bare ports' names (their peers: "barp" + 4 digits)
OVS_BULK_TIMEOUT = "--timeout=590"  # one transaction adding or removing many bare ports
CHUNK = 100  # bare ports added per transaction


@dataclass
class Plan:
    pods: int  # set up at once, then torn down at once
    extra_ports: int  # bare veth ports on the bridge for the second size
    runs: int  # probe setups+teardowns per contender and size
    vsctl_calls: int  # no-op ovs-vsctl invocations timed per size


def run(plan: Plan, host: BenchHost, plugin: PluginContender, pipework: Contender,
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
    out.update(crowded(plan, plugin, pipework, probe, target, watch))
    return out


def crowded(plan: Plan, plugin: PluginContender, pipework: Contender, probe: Pod,
            target: Target, watch: Callable[[str], ContextManager[None]]) -> dict[str, Any]:
    """The probe's calls on the empty bridge and with `plan.extra_ports` bare ports, added
    CHUNK at a time (ovs-vswitchd took minutes over a thousand in one transaction), the
    no-op ovs-vsctl timed after each chunk; the bare ports removed whatever happens."""
    sizes, vsctl_growth, added = [], [], 0
    started = time.perf_counter()
    try:
        for extra in sorted({0, plan.extra_ports}):
            while added < extra:
                count = min(CHUNK, extra - added)
                added += count  # first: the finally removes a chunk cut short too
                add_bare_ports(target.bridge, added - count, count)
                vsctl_growth.append({"ports": added, "ms": _noop_vsctl(target.bridge, 3)})
            scale.check_attached(target.bridge, extra)
            _say(f"crowded bridge: {extra} ports, {plan.runs} probe runs")
            with watch(f"crowded bridge {extra}"):
                measured = scale.measure_level([plugin, pipework], probe, target, plan.runs)
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
    waiting for ovs-vswitchd to take them). Nothing of them is timed as part of a call."""
    _say(f"crowded bridge: bare ports {first}..{first + count - 1} on {bridge}")
    pairs = _names(count, first)
    batch = "".join(f"link add {a} type veth peer name {b}\nlink set {a} up\nlink set {b} up\n"
                    for a, b in pairs)
    _batch(batch)
    argv = ["ovs-vsctl", OVS_BULK_TIMEOUT]
    for name, _ in pairs:
        argv += ["--", "add-port", bridge, name]
    hostnet.run(argv, timeout=600)


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
