"""`scripts/bench --throughput`: pod-to-pod TCP throughput on one node, three ways.

- plugin:   two pods attached by the plugin (CNI front-end, netns plumber) to a
            userspace-datapath bridge with Open vSwitch's defaults: what a node gets.
- tso:      the same pods with transmit checksum offload left on
            (`pod_tx_checksum: on`) over an Open vSwitch started with
            other_config:userspace-tso-enable=true, the other remedy, which needs
            ovs-vswitchd configured before it starts (a restart on a live node).
- veth:     a veth pair between the two namespaces, no Open vSwitch: the host's ceiling.

Each run is one bulk transfer of a fixed size (the sender writes zeros, the
receiver counts bytes to EOF), timed at the receiver; the figure is the median
over every run. CPU is what the transfer itself used, per GB moved: both ends'
processes (user and system time, which includes the veths' softirq work done in
their system calls) and the sandbox's ovs-vswitchd; other load on the machine
is not counted. The variants run interleaved round by round, so compare them
within one invocation. Each variant runs in a process of its own inside a
private network and mount namespace with its own Open vSwitch (bench/sandbox.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from typing import Any, Sequence

import yaml

from bench.sandbox import Sandbox
from tests.support import hostnet
from tests.support.traffic import _Agent, End

VARIANTS = ("plugin", "tso", "veth")
SUBNET, A, B = "10.88.0.0/24", "10.88.0.1", "10.88.0.2"


def cpu_s(sandbox: Sandbox) -> float:
    """CPU seconds of this process's finished children and of the sandbox's ovs-vswitchd."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime + sandbox.vswitchd_cpu_s()


def transfer(sandbox: Sandbox, sender: End, receiver: End, size: int) -> dict[str, float]:
    sink = _Agent(receiver, "sink", receiver.address).ready()
    before = cpu_s(sandbox)
    _Agent(sender, "bulk", receiver.address, str(sink.port), str(size)).result()
    got = sink.result()
    used = cpu_s(sandbox) - before
    if got.get("bytes") != size:
        raise RuntimeError(f"transfer moved {got} of {size} bytes")
    return {"mbps": size * 8 / got["seconds"] / 1e6, "cpu_s_per_gb": used / (size / 1e9)}


def _cni(command: str, config: str, netns: str, sandbox: str) -> dict[str, Any]:
    conf = {"cniVersion": "1.0.0", "name": "bench", "type": "vlanpipe", "bridge": "br0",
            "vlan": 22}
    env = {**os.environ, "CNI_COMMAND": command, "CNI_CONTAINERID": sandbox,
           "CNI_NETNS": netns, "CNI_IFNAME": "eth1", "CNI_PATH": "/opt/cni/bin",
           "VLANPIPE_CONFIG": config}
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "vlanpipe-cni")],
                          input=json.dumps(conf), capture_output=True, text=True, env=env,
                          timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"CNI {command}: {done.stdout} {done.stderr}")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def variant(name: str, size: int, runs: int) -> list[dict[str, float]]:
    """Inside a fresh sandbox (this process enters it): attach two pods, measure, remove."""
    sandbox = Sandbox({"userspace-tso-enable": "true"} if name == "tso" else None)
    sandbox.enter()
    work = tempfile.mkdtemp(prefix="vlanpipe-bench-tput-")
    try:
        for pod in ("p1", "p2"):
            hostnet.run(["ip", "netns", "add", pod])
        ends = [End(f"/var/run/netns/{p}", ip) for p, ip in (("p1", A), ("p2", B))]
        if name == "veth":
            hostnet.run(["ip", "link", "add", "eth1", "netns", "p1", "type", "veth", "peer",
                         "eth1", "netns", "p2"])
            for end in ends:
                hostnet.run(end.argv("ip", "addr", "add", f"{end.address}/24", "dev", "eth1"))
                hostnet.run(end.argv("ip", "link", "set", "eth1", "up"))
        else:
            hostnet.run(["ovs-vsctl", "--timeout=5", "add-br", "br0", "--", "set", "Bridge",
                         "br0", "datapath_type=netdev"])
            config = os.path.join(work, "config.yaml")
            with open(config, "w", encoding="utf-8") as handle:
                yaml.safe_dump({"state_dir": os.path.join(work, "state"), "bridge": "br0",
                                "log": {"file": os.path.join(work, "log")}, "node_name": "b",
                                "pod_tx_checksum": "on" if name == "tso" else "auto",
                                "networks": [{"name": "pods", "vlans": "all",
                                              "subnet": SUBNET}],
                                "cni": {"bridges": ["br0"]}}, handle)
            got = [_cni("ADD", config, end.netns, f"{i:064x}") for i, end in enumerate(ends)]
            ends = [End(e.netns, g["ips"][0]["address"].split("/")[0]) for e, g in zip(ends, got)]
        transfer(sandbox, ends[0], ends[1], min(size, 8 << 20))  # warm-up: neighbours, flows
        return [transfer(sandbox, ends[0], ends[1], size) for _ in range(runs)]
    finally:
        sandbox.close()


def measure(size: int, runs: int, rounds: int) -> dict[str, Any]:
    """Every variant, round by round, each in a process (and sandbox) of its own."""
    samples: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for name in VARIANTS:
            done = subprocess.run([sys.executable, "-m", "bench.throughput", "--variant", name,
                                   "--size", str(size), "--runs", str(runs)],
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"throughput {name}: {done.stderr[-2000:]}")
            samples[name] += json.loads(done.stdout.strip().splitlines()[-1])
    return {"size_bytes": size, "runs": runs * rounds, "variants": {
        name: {"mbps": statistics.median(s["mbps"] for s in got),
               "cpu_s_per_gb": statistics.median(s["cpu_s_per_gb"] for s in got),
               "samples": got} for name, got in samples.items()}}


def render(result: dict[str, Any]) -> str:
    rows = result["variants"]
    plugin = rows["plugin"]["mbps"]
    lines = [f"Pod-to-pod TCP, one node, {result['size_bytes'] >> 20} MiB per run, median of "
             f"{result['runs']} runs", "",
             "| attachment | Mb/s | vs plugin | CPU s per GB |", "|---|---:|---:|---:|"]
    labels = {"plugin": "plugin (offload off in the pod, OVS defaults)",
              "tso": "offload on, OVS userspace-tso-enable=true",
              "veth": "veth pair, no OVS (ceiling)"}
    for name in VARIANTS:
        row = rows[name]
        lines.append(f"| {labels[name]} | {row['mbps']:.0f} | {row['mbps'] / plugin:.2f}x | "
                     f"{row['cpu_s_per_gb']:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench --throughput")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=256 << 20, help="bytes per transfer")
    parser.add_argument("--runs", type=int, default=3, help="transfers per variant per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the variants")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(variant(args.variant, args.size, args.runs)))
        return 0
    result = measure(args.size, args.runs, args.rounds)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "throughput.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    table = render(result)
    with open(os.path.join(args.out, "throughput.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
