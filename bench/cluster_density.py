"""`scripts/bench --cluster` parts 3 and 4 (issue 23): a full node and status at density.

    python -m bench.cluster_density [--quick] [--pods N] [--extra-ports N] ...

Part 3 (bench/cluster_burst.py): 110 pods set up at once and torn down at once against
110 card floors; the probe pod's calls with 1,000 bare ports on the bridge against
pipework's at equal work, with and without port security's OpenFlow calls; what one
ovs-vsctl pays as the bridge grows. Part 4
(bench/cluster_status.py): status with 250 pods' records on a regular install against
`python -I -c pass`. In the benchmark's private namespaces and Open vSwitch
(bench/sandbox.py), with the product's defaults; everything made is removed. Tables,
targets (PASS/FAIL; a quick run shows its ratios without a verdict) and
bench/results/cluster-density.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Sequence

from bench import cluster_burst, cluster_status, setup_plugin
from bench.__main__ import ADDRESS, VLAN, _interrupt, run_then_clean_up
from bench.contenders import (GUARDED, CardFloorContender, GuardedPipeworkContender,
                              PipeworkContender, PluginContender, Target)
from bench.contenders import quiet_folder
from bench.host import BenchHost, Quiet, sweep_stale
from bench.report import _fmt, _fmt1, _table, growths
from bench.sandbox import Sandbox
from bench.stats import ratio
from tests.support import hostnet
from tests.support.kubelet import interpreter

HERE = os.path.dirname(os.path.abspath(__file__))
FULL = {"pods": 110, "extra_ports": 1000, "runs": 20, "vsctl_calls": 20, "records": 250,
        "status_calls": 40}
QUICK = {"pods": 4, "extra_ports": 20, "runs": 2, "vsctl_calls": 3, "records": 10,
         "status_calls": 3}
BURST_RATIO, GROWTH_RATIO, STATUS_RATIO = 1.1, 1.1, 1.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sizes of parts 3 and 4 (FULL's values unless given; QUICK's with --quick)."""
    parser.add_argument("--pods", type=int, help=f"pods in the burst ({FULL['pods']})")
    parser.add_argument("--extra-ports", type=int,
                        help=f"bare veth ports on the crowded bridge ({FULL['extra_ports']})")
    parser.add_argument("--runs", type=int, help="probe setups+teardowns per contender and "
                        f"bridge size ({FULL['runs']})")
    parser.add_argument("--vsctl-calls", type=int, help="no-op ovs-vsctl calls timed per size")
    parser.add_argument("--records", type=int, help=f"pods' records for status ({FULL['records']})")
    parser.add_argument("--status-calls", type=int, help="status calls (and bare interpreters)")
    parser.add_argument("--status-before", metavar="REV",
                        help="also measure status of this git revision, installed the same way")


def fill_defaults(args: argparse.Namespace) -> None:
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench --cluster",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a harness smoke test")
    parser.add_argument("--out", help="results folder (default bench/results, or "
                        "bench/results/quick for --quick)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    fill_defaults(args)
    if args.out is None:
        args.out = os.path.join(HERE, "results", *(["quick"] if args.quick else []))
    return args


def prepare(args: argparse.Namespace, host: BenchHost) -> list[cluster_status.Install]:
    """Before the sandbox is entered (pip may need the network there is none of inside)."""
    _say("status at density: installing the plugin into a temporary venv (not editable)")
    return cluster_status.prepare(
        cluster_status.Plan(args.records, args.status_calls, args.status_before),
        host.root, os.path.dirname(HERE))


def measure(args: argparse.Namespace, host: BenchHost, quiet: Quiet,
            installs: list[cluster_status.Install]) -> dict[str, Any]:
    """Parts 3 and 4 inside an entered sandbox, on a bridge and plugin of their own."""
    target = Target(host.make_bridge(), VLAN, ADDRESS)
    installed = setup_plugin.install(host.root, target)
    plugin = PluginContender(installed.path, installed.log_file, target)
    quiet_dir = quiet_folder(host.root)
    card_floor = CardFloorContender(interpreter(plugin.path), target, quiet_dir)
    probe = host.start_pod("probe")
    plan = cluster_burst.Plan(args.pods, args.extra_ports, args.runs, args.vsctl_calls)
    pipeworks = [PipeworkContender(target, quiet_dir), GuardedPipeworkContender(target, quiet_dir)]
    results = cluster_burst.run(plan, host, plugin, pipeworks, card_floor, probe, target,
                                quiet.watch)
    _say(f"status at density: {args.records} records, regular install, {args.status_calls} calls")
    with quiet.watch("status at density"):
        results["status"] = cluster_status.run(
            cluster_status.Plan(args.records, args.status_calls, args.status_before),
            installs, host.root, setup_plugin.config(target))
    return results


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    burst = results.get("burst")
    if burst:
        for kind in ("setup", "teardown"):
            mine, floor = burst["plugin"][kind], burst["card floor"][kind]
            value = ratio(mine["wall_s"], floor["wall_s"])
            fails = mine["failures"] + floor["failures"]
            rows.append({"target": f"{burst['pods']} {kind}s at once: wall <= {BURST_RATIO} x "
                                   f"{burst['pods']} card floors at once, 0 failures",
                         "ok": value is not None and value <= BURST_RATIO and fails == 0,
                         "detail": f"{mine['wall_s']} vs {floor['wall_s']} s: ratio "
                                   f"{_fmt(value)}; failures {mine['failures']} plugin, "
                                   f"{floor['failures']} card floor; "
                                   f"{burst['distinct_addresses']} distinct addresses"})
    sizes = results.get("crowded", [])
    if len(sizes) == 2:
        for kind in ("setup", "teardown"):
            mine, equal, bare = growths(sizes[0], sizes[1], ("plugin", GUARDED, "pipework"),
                                        kind)
            ok = mine <= GROWTH_RATIO * max(equal, 0.0)
            rows.append({"target": f"{kind} growth with {sizes[1]['ports']} ports on the "
                                   f"bridge <= {GROWTH_RATIO} x pipework's at equal work "
                                   "(with port security's OpenFlow calls)",
                         "ok": ok, "detail": f"plugin {mine:+.1f} ms, pipework+guard "
                                             f"{equal:+.1f} ms: ratio {_fmt(ratio(mine, equal))}"
                                             f"; pipework alone {bare:+.1f} ms: ratio "
                                             f"{_fmt(ratio(mine, bare))}"})
    one = results.get("status", {}).get("installs", {}).get("now")  # --status-before: shown
    if one:
        value = ratio(one["status"]["wall_ms"]["median"], one["bare"]["wall_ms"]["median"])
        rows.append({"target": f"status wall <= {STATUS_RATIO} x `python -I -c pass`"
                               ", regular install", "ok": value is not None and value <= STATUS_RATIO,
                     "detail": f"{one['status']['wall_ms']['median']} vs "
                               f"{one['bare']['wall_ms']['median']} ms: ratio {_fmt(value)}"})
    return rows


def _walls(call: dict[str, Any]) -> str:
    return f"{call['wall_s']} ({' + '.join(str(w) for w in call['walls_s'])})"


def render(results: dict[str, Any], quick: bool) -> str:
    out: list[str] = []
    burst = results.get("burst")
    if burst:
        out += [f"A full node in one burst: {burst['pods']} pods at once through the exec "
                f"plugin, against {burst['pods']} card floors run the same way; "
                f"{burst['rounds']} rounds, the second card floors first (wall: the rounds' "
                "sum, and each round's)"]
        out += _table(["", "plugin wall s", "card floors wall s", "ratio",
                       "failures plugin / floor", "per call median ms plugin / floor"],
                      [[kind, _walls(burst["plugin"][kind]), _walls(burst["card floor"][kind]),
                        _fmt(ratio(burst["plugin"][kind]["wall_s"],
                                   burst["card floor"][kind]["wall_s"])),
                        f"{burst['plugin'][kind]['failures']} / "
                        f"{burst['card floor'][kind]['failures']}",
                        f"{burst['plugin'][kind]['per_call_ms']['median']:.0f} / "
                        f"{burst['card floor'][kind]['per_call_ms']['median']:.0f}"]
                       for kind in ("setup", "teardown")])
        out += [f"({burst['distinct_addresses']} distinct addresses handed out)"]
        out += [f"plugin {kind} phases in the burst's last round (median ms, from its log): "
                + ", ".join(f"{k} {v:.0f}" for k, v in burst["plugin"][kind]["phases_ms"].items())
                for kind in ("setup", "teardown") if burst["plugin"][kind].get("phases_ms")]
        out += [""]
    sizes = results.get("crowded", [])
    if sizes:
        out += ["A crowded bridge: the probe pod's calls with bare veth ports on the bridge, "
                "by the plugin, by pipework at equal work and by pipework at equal work plus "
                "port security's OpenFlow calls (pipework+guard), in turn (median ms "
                "[p25-p75]); one no-op ovs-vsctl (`--if-exists del-port` of an absent port)"]
        who_all = ("plugin", "pipework", GUARDED)
        out += _table(["ports on the bridge",
                       *(f"{who} {kind}" for who in who_all for kind in ("setup", "teardown")),
                       "ovs-vsctl no-op"],
                      [[str(s["ports"]), *(_cell(s[who][kind]["wall_ms"])
                                           for who in who_all
                                           for kind in ("setup", "teardown")),
                        _cell(s["ovs_vsctl_noop_ms"])] for s in sizes])
        growth = results.get("vsctl_growth", [])
        if growth:
            out.append("ovs-vsctl no-op as the bridge grows (median of 3, ms): " + ", ".join(
                f"{g['ports']} ports {g['ms']['median']:.0f}" for g in growth))
            out.append(f"adding the bare ports, {cluster_burst.CHUNK} per ovs-vsctl "
                       "transaction (s per chunk): " + ", ".join(
                           f"to {g['ports']} {g['add_s']:.2f}" for g in growth))
        out.append(f"(crowded-bridge part took {results.get('crowded_s')} s, adding and "
                   "removing the bare ports included)")
        out.append("")
    status = results.get("status")
    if status:
        out += [f"status with {status['records']} pods' records, regular install, "
                f"{status['calls']} interleaved calls each (median wall ms [p25-p75] / CPU ms)"]
        rows = []
        for label, one in status["installs"].items():
            for kind, name in (("status", "status (the kubelet's launcher)"),
                               ("console script", "`vlanpipe status` (pip's console script)"),
                               ("bare", "python -I -c pass")):
                rows.append([label, name, f"{_cell(one[kind]['wall_ms'])} / "
                                          f"{_fmt1(one[kind]['cpu_ms'])}",
                             _fmt(ratio(one[kind]["wall_ms"]["median"],
                                        one["bare"]["wall_ms"]["median"]))])
        out += _table(["code", "call", "wall / CPU", "wall ratio to bare"], rows)
        for label, one in status["installs"].items():
            audit = one["audit"]
            out.append(f"- {label}: status opened {len(audit['open'])} files besides its "
                       f"modules ({', '.join(os.path.basename(p) for p in audit['open'])}), "
                       f"started {len(audit['spawn'])} processes, made "
                       f"{len(audit['connect'])} connections")
        out.append("")
    rows = targets(results)
    if quick:
        out += ["Targets (not judged: a quick run is a smoke test, not a verdict)",
                *_table(["target", "measured"], [[t["target"], t["detail"]] for t in rows])]
    else:
        out += ["Targets (issue 23, parts 3 and 4; ratios within this run)",
                *_table(["target", "measured", "result"],
                        [[t["target"], t["detail"], "PASS" if t["ok"] else "FAIL"]
                         for t in rows])]
    return "\n".join(out)


def _cell(summary: dict[str, float]) -> str:
    return f"{summary['median']:.1f} [{summary['p25']:.0f}-{summary['p75']:.0f}]"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    missing = hostnet.preflight()
    if missing:
        _say("host not ready (run scripts/host-setup): " + "; ".join(missing))
        return 2
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    sandbox, quiet, host, started = Sandbox(), Quiet(), BenchHost(), time.time()
    try:
        installs = prepare(args, host)
        sandbox.enter()  # while this process has a single thread (prepare starts none)
    except (OSError, RuntimeError, subprocess.SubprocessError, hostnet.CommandError) as exc:
        sandbox.close()
        host.cleanup()
        _say(f"cannot install the plugin or set up the private namespaces: {exc}")
        return 2
    if sweep_stale():
        _say("removed what a killed benchmark run left")
    code, results = run_then_clean_up(
        args, host, sandbox, quiet,
        lambda results: results.update(measure(args, host, quiet, installs)))
    if code:
        return code
    results["duration_s"] = round(time.time() - started)
    write(args.out, results, args.quick)
    return 0


def write(out: str, results: dict[str, Any], quick: bool) -> None:
    os.makedirs(out, exist_ok=True)
    m, code = results["machine"], results["code"]
    head = (f"Measured {results['started']} on {m['cores']} cores ({m['cpu']}), "
            f"{m['memory_gb']} GB, {m['os']}, kernel {m['kernel']}, Python {m['python']}, "
            f"Docker {m['docker']}, {m['openvswitch']} (userspace datapath, private instance), "
            f"pipework {m['pipework']}; commit {code['commit']} ({code['uncommitted_files']} "
            f"uncommitted files); run took {results['duration_s']} s.")
    notes = "".join(f"\nNote: a test run shared the CPU during {line}"
                    for line in results["disturbed_by"])
    table = render(results, quick)
    print(table)
    with open(os.path.join(out, "cluster-density.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    with open(os.path.join(out, "cluster-density.md"), "w", encoding="utf-8") as handle:
        handle.write(f"{head}{notes}\n\n{table}\n")
    print(f"\nwrote {out}/cluster-density.json, cluster-density.md")


def _say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
