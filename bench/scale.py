"""The plugin under load: many pods already attached, and many setups at once.

Scale: one probe pod is set up and torn down repeatedly while 0, 100, 250
other pods (real containers, attached through the plugin itself) sit on the
bridge; every container exists from the start, so only the number of
*attached* pods changes between levels. Burst: N pods set up concurrently,
as a kubelet starting a node's pods after a reboot would, against the same N
set up one after another.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Sequence

from bench import machine, stats
from bench.contenders import INTERFACE, NAMESPACE, PluginContender, Target
from bench.host import BenchHost, Pod
from bench.proc import CallFailed, Sample, pmap, timed
from bench.rounds import Runs, summarize
from bench.setup_plugin import POOL_VLAN
from plugin import names
from tests.support import hostnet

MB_PER_POD = 40  # a busybox container with its shim, plus the plugin's share, with margin


@dataclass
class Plan:
    levels: list[int]  # pods attached at each measurement, ascending
    runs: int  # probe setups+teardowns per level
    burst: int  # pods set up at once (at level 0)
    fill_jobs: int  # concurrent setups while attaching the fill pods


def run(plan: Plan, host: BenchHost, plugin: PluginContender, probe: Pod, target: Target,
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
            measured = measure_level(plugin, probe, target, plan.runs)
        busy = (vswitchd_cpu() - cpu_before) / (time.perf_counter() - wall_before)
        check_attached(target.bridge, attached)
        levels.append({**level_summary(attached, measured),
                       "vswitchd_cpu_pct": round(100 * busy, 1)})
        if attached == 0 and plan.burst:
            _say(f"burst: {plan.burst} setups at once, then one after another")
            with watch("burst"):
                out["burst"] = burst(plugin, fill_pods[:plan.burst])
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
    samples = pmap(lambda p: _call(plugin.path, "setup", p, "fill"), pods, jobs)
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


def measure_level(plugin: PluginContender, probe: Pod, target: Target, runs: int) -> Runs:
    """Setup and teardown of the probe pod, `runs` times, checked each time."""
    result = Runs()
    port = names.host_veth(probe.id, INTERFACE)
    for _ in range(runs):
        result.setup.append(plugin.setup(probe))
        tag = hostnet.ovs("get", "Port", port, "tag").strip()
        if tag != str(target.vlan):
            raise AssertionError(f"scale probe port {port} has tag {tag}")
        result.teardown.append(plugin.teardown(probe))
        if port in hostnet.host_links():
            raise AssertionError(f"scale probe teardown left {port}")
    return result


def level_summary(pods_attached: int, runs: Runs) -> dict[str, Any]:
    entry = summarize({"plugin": runs})["plugin"]
    return {"pods_attached": pods_attached, **entry}


def burst(plugin: PluginContender, pods: Sequence[Pod]) -> dict[str, Any]:
    """N setups at once vs the same N one after another (teardowns likewise)."""
    plugin.log.new()
    together, samples = _concurrent(plugin.path, "setup", pods)
    addresses = _check_burst(plugin, [p for p, s in zip(pods, samples) if s.ok])
    phases = stats.phase_medians(r.get("phases_ms", {}) for r in plugin.log.new()
                                 if r.get("command") == "setup")
    apart, _ = _concurrent(plugin.path, "teardown", pods)
    seq_setup = _sequential(plugin.path, "setup", pods)
    seq_teardown = _sequential(plugin.path, "teardown", pods)
    plugin.log.new()
    return {
        "pods": len(pods),
        "setup": {**together, "sequential_wall_s": seq_setup["wall_s"],
                  "sequential_failures": seq_setup["failures"],
                  "sequential_errors": seq_setup["errors"],
                  "ratio_to_sequential": stats.ratio(together["wall_s"], seq_setup["wall_s"]),
                  "phases_ms": phases},
        "teardown": {**apart, "sequential_wall_s": seq_teardown["wall_s"],
                     "sequential_failures": seq_teardown["failures"],
                     "sequential_errors": seq_teardown["errors"],
                     "ratio_to_sequential": stats.ratio(apart["wall_s"], seq_teardown["wall_s"])},
        "distinct_addresses": len(set(addresses)),
    }


def _call(path: str, command: str, pod: Pod, kind: str) -> Sample:
    return timed([path, command, NAMESPACE, f"{POOL_VLAN}-{kind}-{pod.name}", pod.id])


def _concurrent(path: str, command: str,
                pods: Sequence[Pod]) -> tuple[dict[str, Any], list[Sample]]:
    """All calls released at once by a barrier; wall time from release to the last exit."""
    released: list[float] = []
    gate = threading.Barrier(len(pods), action=lambda: released.append(time.perf_counter()))

    def one(pod: Pod) -> Sample:
        gate.wait(timeout=60)  # never hang: a missing thread breaks the barrier
        return _call(path, command, pod, "burst")

    samples = pmap(one, pods, len(pods))
    wall = time.perf_counter() - released[0]
    failures = [s.output.strip()[:300] for s in samples if not s.ok]
    print(f"  burst {command} x{len(pods)}: {wall:.2f} s, {len(failures)} failures",
          file=sys.stderr, flush=True)
    return {"wall_s": round(wall, 2), "failures": len(failures), "errors": failures[:5],
            "per_call_ms": stats.summary(s.wall_ms for s in samples),
            "per_call_cpu_ms": stats.summary(s.cpu_ms for s in samples)}, samples


def _sequential(path: str, command: str, pods: Sequence[Pod]) -> dict[str, Any]:
    started = time.perf_counter()
    samples = [_call(path, command, pod, "burst") for pod in pods]
    wall = time.perf_counter() - started
    print(f"  sequential {command} x{len(pods)}: {wall:.2f} s", file=sys.stderr, flush=True)
    failures = [s.output.strip()[:300] for s in samples if not s.ok]
    return {"wall_s": round(wall, 2), "failures": len(failures), "errors": failures[:5],
            "per_call_cpu_ms": stats.summary(s.cpu_ms for s in samples)}


def _check_burst(plugin: PluginContender, pods: Sequence[Pod]) -> list[str]:
    """Every pod set up has its own port on VLAN 23 and its own address (from `status`)."""
    rows = json.loads(hostnet.ovs("--format=json", "--columns=name,tag", "find", "Port",
                                  "external_ids:owner=vlanpipe"))["data"]
    tags = {name: tag for name, tag in rows}
    addresses = []
    for pod in pods:
        port = names.host_veth(pod.id, INTERFACE)
        if tags.get(port) != POOL_VLAN:
            raise AssertionError(f"burst pod {pod.name}: port {port} has tag {tags.get(port)}")
        answer = _call(plugin.path, "status", pod, "burst")
        addresses.append(json.loads(answer.output)["ip"])
    return addresses

