"""Part 2: operator commands over a cluster's leases (issue 23, measure 2).

1,000 nodes x 100 leases in a /15, written as the claims would have written them, at
addresses drawn at random; every node last seen a day ago. Then, through the installed
exec plugin as an operator runs it, `list --cluster`, `gc --node NAME --dry-run` and
`gc --node NAME` (a node holding its share), each under /usr/bin/time: wall time and peak
RSS. Each answer is checked (every lease listed; the node's leases, and only those, freed),
then the same gc on a node whose leases were written by the previous release (owner keys
without the node), found by the one-off fallback scan, before and after `init`'s backfill.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import time
from typing import Any

from bench.cluster import etcdbed
from bench.cluster.tables import Table, Target
from plugin.ipam.pool import Pool
from plugin.ipam.stores.etcd import EtcdStore
from plugin.ipam.stores.etcd_client import EtcdConnection, b64, prefix_end
from tests.support.kubelet import make_plugin

TITLE = "operator commands over the cluster's leases"
FULL = {"op_nodes": 1000, "op_leases": 100}
QUICK = {"op_nodes": 20, "op_leases": 10}
SUBNET = "10.96.0.0/15"
PREFIX = "/bench-cluster"
TARGETS = {"gc": (1.0, 60), "list": (3.0, 100)}  # seconds, MB at 100,000 leases


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--op-nodes", type=int, help="part 2: nodes (default 1000)")
    parser.add_argument("--op-leases", type=int, help="part 2: leases per node (default 100)")


def run(args: argparse.Namespace, workdir: str) -> list[Table]:
    bed = etcdbed.EtcdBed.start(workdir)
    try:
        return [_measure(args, bed, workdir)]
    finally:
        bed.close()


def _measure(args: argparse.Namespace, bed: etcdbed.EtcdBed, workdir: str) -> Table:
    rng = random.Random(23)
    config = bed.config(PREFIX)
    etcd = EtcdConnection(config)
    network = etcdbed.etcd_network("pods", SUBNET)
    store, pool = EtcdStore(network, etcd, PREFIX), Pool.of(network)
    nodes = [f"node-{i:04d}" for i in range(args.op_nodes)]
    total = args.op_nodes * args.op_leases
    started = time.monotonic()
    txns = etcdbed.fill(etcd, store, pool, etcdbed.scattered(pool, total, rng), nodes, rng)
    etcdbed.stamp_nodes(etcd, PREFIX, nodes, etcdbed.day_ago())
    fill_s = time.monotonic() - started
    plugin = make_plugin(workdir, {"networks": [{"name": "pods", "vlans": "all",
                                                 "subnet": SUBNET, "allocator": "etcd"}],
                                   "etcd": {"endpoints": [bed.server.url], "prefix": PREFIX}})
    output = os.path.join(workdir, "out.txt")
    victim, rows = nodes[len(nodes) // 2], []
    listed = _timed(plugin.path, ["list", "--cluster"], output)
    rows.append(["list --cluster", *listed, f"{_count_leases(output)} of {total} listed"])
    dry = _timed(plugin.path, ["gc", "--node", victim, "--dry-run"], output)
    rows.append([f"gc --node {victim} --dry-run", *dry, f"{_lines(output)} would be freed"])
    gc = _timed(plugin.path, ["gc", "--node", victim], output)
    left = _owner_keys(etcd, victim)
    rows.append([f"gc --node {victim}", *gc,
                 f"{_lines(output)} freed, {left} left; others {_count(etcd) - (total - args.op_leases)}"
                 " missing"])
    table = Table(f"Operator commands over {total:,} leases ({args.op_nodes:,} nodes x "
                  f"{args.op_leases}, {SUBNET}), through the exec plugin",
                  ["command", "wall s", "peak RSS MB", "checked"], rows)
    table.targets = [
        Target(f"gc --node <= {TARGETS['gc'][0]:g} s and <= {TARGETS['gc'][1]} MB",
               f"{gc[0]:.2f} s, {gc[1]} MB",
               gc[0] <= TARGETS["gc"][0] and gc[1] <= TARGETS["gc"][1]),
        Target(f"list --cluster <= {TARGETS['list'][0]:g} s and <= {TARGETS['list'][1]} MB",
               f"{listed[0]:.2f} s, {listed[1]} MB",
               listed[0] <= TARGETS["list"][0] and listed[1] <= TARGETS["list"][1]),
        Target("gc --node frees the node's leases and only those",
               f"{args.op_leases - left} of {args.op_leases}", left == 0
               and _count(etcd) == total - args.op_leases),
    ]
    table.notes = [f"Written in {fill_s:.0f} s through {txns} transactions of <= "
                   f"{etcdbed.MAX_OPS} operations; peak RSS and wall time by /usr/bin/time."]
    return table


def _timed(path: str, argv: list[str], output: str) -> tuple[float, int]:
    """(wall seconds, peak RSS in MB) of one call of the installed plugin."""
    report = output + ".time"
    with open(output, "w", encoding="utf-8") as out:
        proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report, path, *argv],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                              text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-500:]}")
    with open(report, encoding="utf-8") as handle:
        wall, rss = handle.read().split()[-2:]
    return float(wall), round(int(rss) / 1024)


def _lines(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip() and not line.startswith(" "))


def _count_leases(path: str) -> int:
    return _lines(path)


def _owner_keys(etcd: EtcdConnection, node: str) -> int:
    return _count(etcd, f"{PREFIX}/ipam/pods/owner/{node}/")


def _count(etcd: EtcdConnection, prefix: str = f"{PREFIX}/ipam/pods/addr/") -> int:
    answer: dict[str, Any] = etcd.call("kv/range", {"key": b64(prefix), "count_only": True,
                                                   "range_end": prefix_end(prefix)})
    return int(answer.get("count", 0))
