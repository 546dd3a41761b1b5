"""Contenders head to head: A B C D, A B C D, ... on one pod.

Interleaving run by run means a burst of machine noise (dockerd's own
housekeeping, a neighbour's compile) lands on every contender alike rather
than on whichever one happened to run during it. A warm-up round fills the
page cache and Python's bytecode cache and is not recorded.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Sequence

from bench import stats
from bench.contenders import Contender, Step, Target, verify_attached, verify_detached
from bench.host import Pod
from bench.proc import probe, probe_available

OTHER = "other (logged, no phase)"  # a plugin call's `unlogged` time, as a phase


@dataclass
class Runs:
    """Every recorded step of one contender."""

    setup: list[Step] = field(default_factory=list)
    teardown: list[Step] = field(default_factory=list)
    status: list[Step] = field(default_factory=list)


def run(contenders: Sequence[Contender], pod: Pod, target: Target, rounds: int,
        status_calls: int, watch: Callable[[str], ContextManager[None]],
        warmup: int = 1) -> dict[str, Runs]:
    runs = {c.name: Runs() for c in contenders}
    for index in range(warmup + rounds):
        recorded = index >= warmup
        for contender in contenders:
            with watch("contender rounds"):
                one = _one(contender, pod, target, status_calls)
            if recorded:
                runs[contender.name].setup.append(one.setup[0])
                runs[contender.name].teardown.append(one.teardown[0])
                runs[contender.name].status.extend(one.status)
        if recorded:
            print(f"  round {index + 1 - warmup}/{rounds}, setup/teardown: " + ", ".join(
                f"{name} {r.setup[-1].wall_ms:.0f}/{r.teardown[-1].wall_ms:.0f} ms"
                for name, r in runs.items()), file=sys.stderr, flush=True)
    return runs


def _one(contender: Contender, pod: Pod, target: Target, status_calls: int) -> Runs:
    setup = contender.setup(pod)
    verify_attached(target, pod, contender.name)
    status_call = getattr(contender, "status", None)
    status = [status_call(pod) for _ in range(status_calls)] if status_call else []
    teardown = contender.teardown(pod)
    verify_detached(target, pod, contender.name)
    return Runs([setup], [teardown], status)


def probe_pass(contenders: Sequence[Contender], pod: Pod, target: Target,
               runs: int) -> dict[str, Any]:
    """Peak RSS (MB, largest of `runs`) and programs executed (median) of every call.

    Apart from the timed rounds: GNU time and strace add their own cost to each call.
    """
    peaks: dict[str, dict[str, float]] = {}
    execs: dict[str, dict[str, list[int]]] = {}
    for kind in ("rss", "exec"):
        if not probe_available(kind):
            continue
        with probe(kind):
            for _ in range(runs):
                for contender in contenders:
                    one = _one(contender, pod, target, 1)
                    for call in ("setup", "teardown", "status"):
                        for step in getattr(one, call):
                            if step.maxrss_kb is not None:
                                mine = peaks.setdefault(contender.name, {})
                                mine[call] = max(mine.get(call, 0.0),
                                                 round(step.maxrss_kb / 1024, 1))
                            if step.execs is not None:
                                execs.setdefault(contender.name, {}).setdefault(
                                    call, []).append(step.execs)
    programs = {who: {call: stats.median(values) for call, values in calls.items()}
                for who, calls in execs.items()}
    return {"memory_mb": peaks, "programs_executed": programs}


def summarize(runs: dict[str, Runs]) -> dict[str, Any]:
    """Per contender: wall-time summaries, CPU, phase medians (wall, and CPU where each
    phase is a process of its own)."""
    out: dict[str, Any] = {}
    for name, r in runs.items():
        entry: dict[str, Any] = {}
        for kind in ("setup", "teardown", "status"):
            steps: list[Step] = getattr(r, kind)
            if not steps:
                continue
            entry[kind] = {
                "wall_ms": stats.summary(s.wall_ms for s in steps),
                "cpu_ms": stats.median(s.cpu_ms for s in steps),
                "phases_ms": stats.phase_medians(_phases(s) for s in steps),
                "phases_cpu_ms": stats.phase_medians(s.phases_cpu for s in steps),
                "samples_ms": [round(s.wall_ms, 2) for s in steps],
            }
        out[name] = entry
    return out


def unlogged(phases: dict[str, float], duration_ms: float) -> float:
    """What a plugin call spent from main() to its log line (`duration_ms`) outside every
    logged phase but `startup` (which runs before main): its own work, lock waits included."""
    return round(max(0.0, duration_ms - sum(v for k, v in phases.items() if k != "startup")), 2)


def _phases(step: Step) -> dict[str, float]:
    """The logged phases, plus what the log cannot see for a plugin call.

    `startup` runs until main(); `duration_ms` counts from main() (the config
    load is its `config` phase). The rest of the wall time is process launch
    and interpreter exit: shown as its own phase.
    """
    phases = dict(step.phases)
    duration = step.extra.get("duration_ms")
    if duration is not None and "startup" in phases:
        phases[OTHER] = unlogged(phases, duration)
        phases["launch + exit (not logged)"] = round(
            max(0.0, step.wall_ms - phases["startup"] - duration), 2)
    return phases
