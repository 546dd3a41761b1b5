"""The plugin under load: many pods already attached, and many setups at once.

Scale: one probe pod is set up and torn down repeatedly, by the plugin and by
pipework at equal work in turn, while 0, 100, 250 other pods (real containers,
attached through the plugin itself) sit on the bridge; every container exists
from the start, so only the number of *attached* pods changes between levels.
pipework's own growth is what the userspace switch makes any setup pay; the
plugin's growth beyond it is the plugin's. Burst: N pods set up at once, as a
kubelet starting a node's pods after a reboot would, by the plugin and then by
N card floors at once.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Sequence

from bench import machine, stats
from bench.contenders import (
    INTERFACE,
    NAMESPACE,
    CardFloorContender,
    Contender,
    PluginContender,
    Target,
    port,
)
from bench.host import BenchHost, Pod
from bench.proc import CallFailed, Sample, pmap, timed
from bench.rounds import OTHER, Runs, summarize, unlogged
from bench.setup_plugin import POOL_VLAN
from tests.support import hostnet

# The card floors' burst addresses: outside the plugin's pool, one per pod.
FLOOR_BURST_NET = ipaddress.ip_network("10.79.0.0/20")
MB_PER_POD = 40  # a busybox container with its shim, plus the plugin's share, with margin


@dataclass
class Plan:
    levels: list[int]  # pods attached at each measurement, ascending
    runs: int  # probe setups+teardowns per level
    burst: int  # pods set up at once (at level 0)
    fill_jobs: int  # concurrent setups while attaching the fill pods


def run(plan: Plan, host: BenchHost, plugin: PluginContender, pipeworks: Sequence[Contender],
        card_floor: CardFloorContender, probe: Pod, target: Target,
        watch: Callable[[str], ContextManager[None]],
        vswitchd_cpu: Callable[[], float]) -> dict[str, Any]:
    """Every container first, then level by level: attach more, measure the probe pod."""
    _fit_memory(plan)
    wanted = max(plan.levels[-1], plan.burst)
    _say(f"starting {wanted} fill containers")
    fill_pods = host.start_pods([f"p{i:03d}" for i in range(wanted)])
    levels, fills, attached, out = [], [], 0, {}
    for level in plan.levels:
        if level > attached:
            _say(f"attaching pods {attached}..{level - 1} through the plugin")
            fills.append(fill(plugin, fill_pods[attached:level], plan.fill_jobs))
            attached = level
        _say(f"scale: {attached} pods attached, {plan.runs} probe runs")
        check_attached(target.bridge, attached)
        cpu_before, wall_before = vswitchd_cpu(), time.perf_counter()
        with watch(f"scale level {attached}"):
            measured = measure_level([plugin, *pipeworks], probe, target, plan.runs)
        busy = (vswitchd_cpu() - cpu_before) / (time.perf_counter() - wall_before)
        check_attached(target.bridge, attached)
        levels.append({"pods_attached": attached, **summarize(measured),
                       "vswitchd_cpu_pct": round(100 * busy, 1)})
        if attached == 0 and plan.burst:
            _say(f"burst: {plan.burst} setups at once, by the plugin, then by card floors")
            with watch("burst"):
                out["burst"] = burst(plugin, card_floor, fill_pods[:plan.burst])
    out["scale"] = {"levels": levels, "fill": fills}
    return out


def _fit_memory(plan: Plan) -> None:
    """Fewer fill pods than asked when the machine cannot hold them (says so)."""
    room = max(0, (machine.mem_available_mb() - 1024) // MB_PER_POD)
    if max(plan.levels[-1], plan.burst) > room:
        _say(f"only {machine.mem_available_mb()} MB available: capping fill pods at {room}")
        plan.levels = [lv for lv in plan.levels if lv <= room] or [0]
        plan.burst = min(plan.burst, room)


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def fill(plugin: PluginContender, pods: Sequence[Pod], jobs: int) -> dict[str, Any]:
    """Attach `pods` (VLAN 23 pool) through the plugin, `jobs` at a time; fail on any error."""
    started = time.perf_counter()
    samples = pmap(lambda p: timed(_call(plugin.path, "setup", p, "fill")), pods, jobs)
    failed = [s for s in samples if not s.ok]
    if failed:
        raise CallFailed(failed[0])
    plugin.log.new()
    return {"pods": len(pods), "jobs": jobs, "wall_s": round(time.perf_counter() - started, 1)}


def check_attached(bridge: str, expected: int) -> None:
    """Exactly the fill pods are plugged: the level measured is the level claimed."""
    ports = hostnet.ovs("list-ports", bridge).split()
    if len(ports) != expected:
        raise AssertionError(f"{len(ports)} ports on {bridge}, expected {expected} fill pods")


def measure_level(contenders: Sequence[Contender], probe: Pod, target: Target,
                  runs: int) -> dict[str, Runs]:
    """Setup and teardown of the probe pod by each contender in turn, `runs` times, checked
    each time (both name the port as the plugin does)."""
    result = {c.name: Runs() for c in contenders}
    for _ in range(runs):
        for contender in contenders:
            result[contender.name].setup.append(contender.setup(probe))
            tag = hostnet.ovs("get", "Port", port(probe), "tag").strip()
            if tag != str(target.vlan):
                raise AssertionError(f"scale probe port {port(probe)} has tag {tag} after "
                                     f"{contender.name}")
            result[contender.name].teardown.append(contender.teardown(probe))
            if port(probe) in hostnet.host_links():
                raise AssertionError(f"{contender.name}: scale probe teardown left {port(probe)}")
    return result


def burst(plugin: PluginContender, card_floor: CardFloorContender,
          pods: Sequence[Pod], rounds: int = 1) -> dict[str, Any]:
    """N plugin setups at once, then N card floor setups at once (teardowns likewise).

    With `rounds` 2, again in the other order, card floors first: on a shared machine the
    load drifts during a burst of a minute, and whichever runs second met another machine
    (110 teardowns measured 0.80 to 1.49 x their card floors in four runs of one order).
    Walls and failures are summed per contender, per-call figures pooled."""
    passes: dict[str, list[dict[str, Any]]] = {"plugin": [], "card floor": []}
    addresses: list[str] = []
    for number in range(rounds):
        order = ["plugin", "card floor"] if number % 2 == 0 else ["card floor", "plugin"]
        for who in order:
            if who == "plugin":
                done, addresses = _plugin_pass(plugin, pods)
            else:
                done = _floor_pass(card_floor, pods)
            passes[who].append(done)
    return {"pods": len(pods), "rounds": rounds,
            "plugin": {**_pooled(passes["plugin"]),
                       "setup": {**_pooled_call(passes["plugin"], "setup"),
                                 "phases_ms": passes["plugin"][-1]["phases_ms"]}},
            "card floor": _pooled(passes["card floor"]),
            "distinct_addresses": len(set(addresses))}


def _plugin_pass(plugin: PluginContender, pods: Sequence[Pod]) -> tuple[dict[str, Any],
                                                                       list[str]]:
    plugin.log.new()
    setup, samples = _concurrent(lambda p: _call(plugin.path, "setup", p), pods, "plugin setup")
    addresses = _check_burst(plugin, [p for p, s in zip(pods, samples) if s.ok])
    phases = _logged_phases(plugin, "setup")
    teardown, _ = _concurrent(lambda p: _call(plugin.path, "teardown", p), pods,
                              "plugin teardown")
    teardown["phases_ms"] = _logged_phases(plugin, "teardown")
    return {"setup": setup, "teardown": teardown, "phases_ms": phases}, addresses


def _logged_phases(plugin: PluginContender, command: str) -> dict[str, float]:
    """Median phases of the `command` calls logged since the last look, and of the time no
    phase covers (`rounds.unlogged`)."""
    logged = [r for r in plugin.log.new() if r.get("command") == command]
    return stats.phase_medians(
        {**r.get("phases_ms", {}),
         OTHER: unlogged(r.get("phases_ms", {}), r.get("duration_ms", 0))} for r in logged)


def _floor_pass(card_floor: CardFloorContender, pods: Sequence[Pod]) -> dict[str, Any]:
    address = {p.id: f"{FLOOR_BURST_NET[1 + i]}/{FLOOR_BURST_NET.prefixlen}"
               for i, p in enumerate(pods)}
    setup, samples = _concurrent(lambda p: card_floor.setup_argv(p, address[p.id], POOL_VLAN),
                                 pods, "card floor setup")
    _check_floor_burst([p for p, s in zip(pods, samples) if s.ok], address)
    teardown, _ = _concurrent(card_floor.teardown_argv, pods, "card floor teardown")
    return {"setup": setup, "teardown": teardown}


def _pooled(passes: list[dict[str, Any]]) -> dict[str, Any]:
    return {call: _pooled_call(passes, call) for call in ("setup", "teardown")}


def _pooled_call(passes: list[dict[str, Any]], call: str) -> dict[str, Any]:
    """One call's passes as one: walls and failures summed, per-call samples pooled."""
    done = [one[call] for one in passes]
    return {"wall_s": round(sum(d["wall_s"] for d in done), 2),
            "walls_s": [d["wall_s"] for d in done],
            "failures": sum(d["failures"] for d in done),
            "errors": [e for d in done for e in d["errors"]][:5],
            "per_call_ms": stats.summary(v for d in done for v in d["samples_ms"]),
            "per_call_cpu_ms": stats.summary(v for d in done for v in d["samples_cpu_ms"]),
            **({"phases_ms": done[-1]["phases_ms"]} if "phases_ms" in done[-1] else {})}


def _call(path: str, command: str, pod: Pod, kind: str = "burst") -> list[str]:
    """The kubelet's argv for a fill or burst pod: its pod name puts it on the pool VLAN."""
    return [path, command, NAMESPACE, f"{POOL_VLAN}-{kind}-{pod.name}", pod.id]


def _concurrent(argv_of: Callable[[Pod], list[str]], pods: Sequence[Pod],
                label: str) -> tuple[dict[str, Any], list[Sample]]:
    """All calls released at once by a barrier; wall time from release to the last exit."""
    released: list[float] = []
    gate = threading.Barrier(len(pods), action=lambda: released.append(time.perf_counter()))

    def one(pod: Pod) -> Sample:
        argv = argv_of(pod)
        gate.wait(timeout=60)  # never hang: a missing thread breaks the barrier
        return timed(argv)

    samples = pmap(one, pods, len(pods))
    wall = time.perf_counter() - released[0]
    failures = [s.output.strip()[-300:] for s in samples if not s.ok]  # a traceback ends with why
    print(f"  burst {label} x{len(pods)}: {wall:.2f} s, {len(failures)} failures",
          file=sys.stderr, flush=True)
    return {"wall_s": round(wall, 2), "failures": len(failures), "errors": failures[:5],
            "samples_ms": [s.wall_ms for s in samples],
            "samples_cpu_ms": [s.cpu_ms for s in samples]}, samples


def _tags() -> dict[str, Any]:
    """Every port's tag, in one ovs-vsctl."""
    rows = json.loads(hostnet.ovs("--format=json", "--columns=name,tag", "list", "Port"))["data"]
    return {name: tag for name, tag in rows}


def _check_burst(plugin: PluginContender, pods: Sequence[Pod]) -> list[str]:
    """Every pod set up has its own port on VLAN 23 and its own address (from `status`)."""
    tags = _tags()
    addresses = []
    for pod in pods:
        if tags.get(port(pod)) != POOL_VLAN:
            raise AssertionError(f"burst pod {pod.name}: port {port(pod)} has tag "
                                 f"{tags.get(port(pod))}")
        answer = timed(_call(plugin.path, "status", pod))
        addresses.append(json.loads(answer.output)["ip"])
    return addresses


def _check_floor_burst(pods: Sequence[Pod], address: dict[str, str]) -> None:
    """The card floors did the same work: each pod's port on VLAN 23, its address in the pod."""
    tags = _tags()
    for pod in pods:
        if tags.get(port(pod)) != POOL_VLAN:
            raise AssertionError(f"card floor burst pod {pod.name}: port {port(pod)} has tag "
                                 f"{tags.get(port(pod))}")
        found = hostnet.in_netns(pod.pid, "ip", "-o", "-4", "addr", "show", "dev",
                                 INTERFACE).stdout
        if f"inet {address[pod.id]} " not in found:
            raise AssertionError(f"card floor burst pod {pod.name}: {INTERFACE} has "
                                 f"{found.strip()!r}, expected {address[pod.id]}")
