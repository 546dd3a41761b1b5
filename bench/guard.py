"""`scripts/bench --guard`: what port security costs, and how fast it comes back.

- throughput: pod-to-pod TCP between two pods the plugin attached (CNI front-end,
  netns plumber), guarded (their rules and the bridge in fail_mode=secure, as
  reconcile leaves them) against unguarded (the same bridge back in standalone
  mode, which flushes every rule and forwards with NORMAL), interleaved round by
  round; target guarded >= 0.9 x unguarded.
- restart: the time from starting a new ovs-vswitchd (the old one stopped) until
  the pods' traffic is back, with `vlanpipe watch` running; target <= 2 s. Traffic
  is probed with one ping every 20 ms (each waits 100 ms for its answer).

Everything runs in a private network and mount namespace with its own Open vSwitch
(bench/sandbox.py), one process per variant, so it can run beside the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

import yaml

from bench.sandbox import Sandbox
from bench.throughput import _cni, transfer
from tests.support import hostnet
from tests.support.traffic import End

VARIANTS = ("guarded", "unguarded")
SUBNET, A, B = "10.89.0.0/24", "10.89.0.1", "10.89.0.2"
THROUGHPUT_TARGET, RESTART_TARGET_S = 0.9, 2.0
CLI = os.path.join(os.path.dirname(sys.executable), "vlanpipe-cni")


def _operator(config: str, *argv: str) -> str:
    done = subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "VLANPIPE_CONFIG": config})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stdout} {done.stderr}")
    return done.stdout


def _pods(work: str) -> tuple[str, list[End]]:
    """Two pods on VLAN 22 of bridge br0, attached by the plugin; its config's path."""
    hostnet.run(["ovs-vsctl", "--timeout=5", "add-br", "br0", "--", "set", "Bridge", "br0",
                 "datapath_type=netdev"])
    config = os.path.join(work, "config.yaml")
    with open(config, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"state_dir": os.path.join(work, "state"), "bridge": "br0",
                        "log": {"file": os.path.join(work, "log")}, "node_name": "b",
                        "networks": [{"name": "pods", "vlans": "all", "subnet": SUBNET}],
                        "cni": {"bridges": ["br0"]}}, handle)
    ends = []
    for i, (pod, ip) in enumerate((("p1", A), ("p2", B))):
        hostnet.run(["ip", "netns", "add", pod])
        got = _cni("ADD", config, f"/var/run/netns/{pod}", f"{i:064x}")
        ends.append(End(f"/var/run/netns/{pod}", got["ips"][0]["address"].split("/")[0]))
    _operator(config, "reconcile")  # guarded, whether or not setup installed the rules
    return config, ends


def throughput(name: str, size: int, runs: int) -> list[dict[str, float]]:
    sandbox = Sandbox()
    sandbox.enter()
    try:
        _, ends = _pods(tempfile.mkdtemp(prefix="vlanpipe-bench-guard-"))
        if name == "unguarded":
            hostnet.run(["ovs-vsctl", "--timeout=5", "del-fail-mode", "br0"])
        rules = hostnet.run(["ovs-ofctl", "dump-flows", "br0"]).stdout.count("in_port=")
        if (rules > 0) != (name == "guarded"):
            raise RuntimeError(f"{name}: {rules} per-port rules on br0")
        transfer(sandbox, ends[0], ends[1], min(size, 8 << 20))  # warm-up
        return [transfer(sandbox, ends[0], ends[1], size) for _ in range(runs)]
    finally:
        sandbox.close()


def _answers(end: End, target: str) -> bool:
    return hostnet.run(end.argv("ping", "-n", "-c", "1", "-W", "0.1", target), check=False,
                       timeout=10).returncode == 0


def restart(rounds: int) -> list[float]:
    """Seconds from a new ovs-vswitchd's start to the first answered ping, per round."""
    sandbox = Sandbox()
    sandbox.enter()
    watcher = None
    try:
        config, (a, b) = _pods(tempfile.mkdtemp(prefix="vlanpipe-bench-guard-"))
        watcher = subprocess.Popen([CLI, "watch", "--interval", "0.2"],
                                   env={**os.environ, "VLANPIPE_CONFIG": config},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found = []
        for _ in range(rounds):
            if not hostnet.wait_until(lambda: _answers(a, b.address), timeout=30):
                raise RuntimeError("the pods do not answer before the restart")
            started = sandbox.restart_vswitchd()
            while not _answers(a, b.address):
                if time.monotonic() - started > 60:
                    raise RuntimeError("traffic not back within 60 s of the restart")
                time.sleep(0.02)
            found.append(time.monotonic() - started)
        return found
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(timeout=10)
        sandbox.close()


def _child(*argv: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "bench.guard", *argv], capture_output=True,
                          text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"bench.guard {' '.join(argv)}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(size: int, runs: int, rounds: int, restarts: int) -> dict[str, Any]:
    samples: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for name in VARIANTS:
            samples[name] += _child("--variant", name, "--size", str(size), "--runs", str(runs))
    mbps = {name: statistics.median(s["mbps"] for s in got) for name, got in samples.items()}
    back = _child("--variant", "restart", "--runs", str(restarts))
    return {"size_bytes": size, "runs": runs * rounds, "mbps": mbps, "samples": samples,
            "ratio": mbps["guarded"] / mbps["unguarded"], "restart_s": back,
            "restart_median_s": statistics.median(back), "restart_max_s": max(back)}


def render(result: dict[str, Any], judged: bool) -> str:
    def verdict(ok: bool) -> str:
        return ("PASS" if ok else "FAIL") if judged else "(not judged: quick run)"

    mbps = result["mbps"]
    return "\n".join([
        f"Port security: TCP {result['size_bytes'] >> 20} MiB per run, median of "
        f"{result['runs']} runs per variant; restarts: {len(result['restart_s'])}", "",
        "| | measured | target | |", "|---|---:|---:|---|",
        f"| throughput guarded / unguarded | {mbps['guarded']:.0f} / {mbps['unguarded']:.0f} "
        f"Mb/s = {result['ratio']:.2f} | >= {THROUGHPUT_TARGET} | "
        f"{verdict(result['ratio'] >= THROUGHPUT_TARGET)} |",
        f"| ovs-vswitchd start to traffic back, with the watcher | median "
        f"{result['restart_median_s']:.2f} s, max {result['restart_max_s']:.2f} s | <= "
        f"{RESTART_TARGET_S:g} s | {verdict(result['restart_max_s'] <= RESTART_TARGET_S)} |"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench --guard")
    parser.add_argument("--variant", choices=(*VARIANTS, "restart"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=256 << 20, help="bytes per transfer")
    parser.add_argument("--runs", type=int, default=3, help="transfers per variant per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the variants")
    parser.add_argument("--restarts", type=int, default=5, help="ovs-vswitchd restarts")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 8 MiB, 1 round, "
                        "2 restarts, targets not judged")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    if args.variant == "restart":
        print(json.dumps(restart(args.runs)))
        return 0
    if args.variant:
        print(json.dumps(throughput(args.variant, args.size, args.runs)))
        return 0
    if args.quick:
        args.size, args.runs, args.rounds, args.restarts = 8 << 20, 1, 1, 2
    result = measure(args.size, args.runs, args.rounds, args.restarts)
    table = render(result, judged=not args.quick)
    out = os.path.join(args.out, "quick") if args.quick else args.out
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "guard.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    with open(os.path.join(out, "guard.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
