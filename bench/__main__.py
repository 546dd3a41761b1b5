"""`python -m bench [--quick]`: the whole benchmark in one invocation.

Contenders head to head with the card floors, the plugin's own profile,
scale, burst, memory; then the tables, the targets, bench/results/latest.json,
latest.md and latency.png. Whatever happens (end, exception, Ctrl-C, SIGTERM), the
containers, the bridge and the temp folder it made are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Sequence

from bench import machine, probe, report, rounds, scale, setup_plugin
from bench.contenders import (
    BUSYBOX,
    OVS_DOCKER,
    CardFloorContender,
    FloorContender,
    GuardedPipeworkContender,
    OvsDockerContender,
    PipeworkContender,
    PluginContender,
    Target,
    quiet_folder,
)
from bench.host import BenchHost, Quiet, sweep_stale
from bench.sandbox import Sandbox
from tests.support import hostnet
from tests.support.kubelet import interpreter

HERE = os.path.dirname(os.path.abspath(__file__))
VLAN, ADDRESS = 22, "10.77.0.5/24"
IPAM_BENCH = os.path.join(HERE, "ipam_bench.py")
FULL = {"rounds": 40, "status_calls": 3, "levels": "0,100,250", "scale_runs": 15, "burst": 32,
        "fill_jobs": 8, "probe_runs": 3}
QUICK = {"rounds": 2, "status_calls": 2, "levels": "0,6", "scale_runs": 2, "burst": 4,
         "fill_jobs": 4, "probe_runs": 1}


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="few runs, small scale: a smoke test of the harness (~1 min)")
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds (default {FULL['rounds']})")
    parser.add_argument("--status-calls", type=int, help="plugin status calls per round")
    parser.add_argument("--levels",
                        help=f"pods attached for the scale runs (default {FULL['levels']})")
    parser.add_argument("--scale-runs", type=int, help="setups+teardowns of the probe per level")
    parser.add_argument("--burst", type=int, help=f"pods set up at once (default {FULL['burst']})")
    parser.add_argument("--fill-jobs", type=int, help="concurrent setups while attaching fill pods")
    parser.add_argument("--probe-runs", type=int,
                        help="calls per contender under /usr/bin/time and under strace")
    parser.add_argument("--out", help="results folder (default bench/results; for --quick "
                        "bench/results/quick, so a smoke run never replaces the full run's "
                        "summary the README quotes)")
    parser.add_argument("--wait-quiet", type=float, default=0,
                        help="seconds to wait for running pytest processes to end first: they "
                        "share the CPU (default 0: do not wait, report them)")
    parser.add_argument("--no-ipam", dest="ipam", action="store_false",
                        help=f"skip {IPAM_BENCH} (run at the end when it exists)")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None:
        args.out = os.path.join(HERE, "results", "quick") if args.quick else os.path.join(
            HERE, "results")
    args.levels = sorted({int(x) for x in str(args.levels).split(",") if x.strip()})
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    missing = hostnet.preflight() + [f"{p} is missing" for p in (OVS_DOCKER, BUSYBOX)
                                     if not os.access(p, os.X_OK)]
    if missing:
        print("bench: host not ready (run scripts/host-setup):\n  " + "\n  ".join(missing),
              file=sys.stderr)
        return 2
    # Both explicitly: a shell starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    quiet = Quiet()
    if not quiet.wait(args.wait_quiet):
        _say("pytest is still running; try again later, or lower --wait-quiet")
        return 3
    sandbox = Sandbox()
    try:
        sandbox.enter()  # first, while this process has a single thread
    except (OSError, RuntimeError, hostnet.CommandError) as exc:
        sandbox.close()
        _say(f"cannot set up the private namespaces and Open vSwitch: {exc}")
        return 2
    stale = sweep_stale()
    if stale:
        _say(f"removed {stale} containers and folders left by a killed benchmark run")
    host = BenchHost()
    started = time.time()
    code, results = run_then_clean_up(
        args, host, sandbox, quiet, lambda results: _run(args, host, sandbox, results, quiet))
    if code:
        return code
    results["duration_s"] = round(time.time() - started)
    results["targets"] = report.targets(results)
    _write(args.out, results)
    if args.ipam and os.path.exists(IPAM_BENCH):
        return _ipam(args)
    return 0


def run_then_clean_up(args: argparse.Namespace, host: BenchHost, sandbox: Sandbox,
                      quiet: Quiet, work: Callable[[dict[str, Any]], None]
                      ) -> tuple[int, dict[str, Any]]:
    """`work(results)` after the run's header (when, its arguments, the machine, the code),
    and the cleanup that follows however it ends: a half run must not leave the host
    dirty. The exit code: 0, 1 (the error printed) or 130 (interrupted)."""
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M %Z"),
                               "args": {k: v for k, v in vars(args).items() if k != "out"},
                               "machine": machine.describe(),
                               "code": machine.code_state(os.path.dirname(HERE))}
    code = 0
    try:
        work(results)
    except KeyboardInterrupt:
        print("bench: interrupted; cleaning up", file=sys.stderr)
        code = 130
    except Exception:  # report, then clean up
        traceback.print_exc()
        code = 1
    finally:
        results["cleanup"] = _cleanup(host, sandbox)
        results["disturbed_by"] = quiet.disturbed
    return code, results


def _run(args: argparse.Namespace, host: BenchHost, sandbox: Sandbox, results: dict[str, Any],
         quiet: Quiet) -> None:
    target = Target(host.make_bridge(), VLAN, ADDRESS)
    plugin_install = setup_plugin.install(host.root, target)
    plugin = PluginContender(plugin_install.path, plugin_install.log_file, target)
    probed_install = setup_plugin.install(host.root, target, probe=True)
    probed = PluginContender(probed_install.path, probed_install.log_file, target,
                             report.PROBED)
    pod = host.start_pod("contender")
    arping_is_true = quiet_folder(host.root)
    pipework = PipeworkContender(target, arping_is_true)
    card_floor = CardFloorContender(interpreter(plugin.path), target, arping_is_true)
    with_arping = PipeworkContender(target, None)
    contenders = [plugin, probed, pipework, with_arping, OvsDockerContender(target),
                  FloorContender(target), card_floor]
    _say(f"contenders: {args.rounds} interleaved rounds on bridge {target.bridge}, "
         f"VLAN {VLAN}, {ADDRESS}")
    runs = rounds.run(contenders, pod, target, args.rounds, args.status_calls, quiet.watch)
    results["contenders"] = rounds.summarize(runs)
    _say("profiling the plugin's calls (audit hook, -X importtime)")
    results.update(probe.profile_plugin(plugin.path, plugin.target.pod_name, pod.id, host.root))
    plugin.log.new()
    _say("peak RSS (/usr/bin/time) and programs executed (strace) of every call")
    # Not pipework with arping: the programs of pipework at equal work, and a second longer.
    results.update(rounds.probe_pass([c for c in contenders if c is not with_arping], pod,
                                     target, args.probe_runs))
    plan = scale.Plan(args.levels, args.scale_runs, args.burst, args.fill_jobs)
    guarded = GuardedPipeworkContender(target, arping_is_true)  # equal work since port security
    results.update(scale.run(plan, host, plugin, [pipework, guarded], card_floor, pod, target,
                             quiet.watch, sandbox.vswitchd_cpu_s))


def _cleanup(host: BenchHost, sandbox: Sandbox) -> dict[str, Any]:
    """Remove everything; a second Ctrl-C (or SIGTERM) must not cut the cleanup short."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _say("cleaning up")
        problems = host.cleanup()
        hostnet.wait_until(lambda: not sandbox.leftovers(), timeout=15, interval=0.5)
        leftovers = sandbox.leftovers()
        sandbox.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for line in problems + leftovers:
        print(f"bench: left behind: {line}", file=sys.stderr)
    return {"problems": problems, "sandbox_leftovers": leftovers}


def _write(out: str, results: dict[str, Any]) -> None:
    from bench import chart  # matplotlib only once there is something to draw

    os.makedirs(out, exist_ok=True)
    table = report.render(results)
    print(table)
    with open(os.path.join(out, "latest.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    m = results["machine"]
    with open(os.path.join(out, "latest.md"), "w", encoding="utf-8") as handle:
        handle.write(f"Measured {results['started']} on {m['cores']} cores ({m['cpu']}), "
                     f"{m['memory_gb']} GB, {m['os']}, kernel {m['kernel']}, Python "
                     f"{m['python']}, Docker {m['docker']} (cgroup {m['cgroup']}), "
                     f"{m['openvswitch']} (userspace datapath, a private instance in the "
                     f"benchmark's own network namespace), pipework {m['pipework']}; "
                     f"run took {results['duration_s']} s.\n\n{table}\n")
    chart.draw(results, os.path.join(out, "latency.png"))
    print(f"\nwrote {out}/latest.json, latest.md, latency.png")


def _ipam(args: argparse.Namespace) -> int:
    """The allocators' own benchmark (another module's), run as its own process."""
    argv = [sys.executable, IPAM_BENCH, "--out", os.path.join(args.out, "ipam.json")]
    if args.quick:
        argv += ["--runs", "10"]
    _say(f"running {os.path.relpath(IPAM_BENCH)}")
    try:
        code = subprocess.run(argv, stdin=subprocess.DEVNULL, timeout=1800).returncode
    except KeyboardInterrupt:
        return 130
    if code:
        _say(f"{os.path.relpath(IPAM_BENCH)} exited {code}")
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
