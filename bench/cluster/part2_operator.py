"""Part 2: operator commands over a cluster's leases (issue 23, measure 2).

1,000 nodes x 100 leases in a /15, written as the claims would have written them, at
addresses drawn at random; every node last seen a day ago. Then, through the installed
exec plugin as an operator runs it, `list --cluster`, `gc --node NAME --dry-run` and
`gc --node NAME` (a node holding its share), each under /usr/bin/time: wall time and peak
RSS. Each answer is checked (every lease listed; the node's leases, and only those, freed),
with leases of the release before the index by node present (owner keys without the
node): found by a full read before `init`'s one-off index, through the index after it.
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
from plugin.ipam.stores.etcd_index import EtcdIndex
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
    etcd = EtcdConnection(bed.config(PREFIX))
    network = etcdbed.etcd_network("pods", SUBNET)
    store, pool = EtcdStore(network, etcd, PREFIX), Pool.of(network)
    nodes = [f"node-{i:04d}" for i in range(args.op_nodes)]
    total, per = args.op_nodes * args.op_leases, args.op_leases
    # Two nodes gone for good: `old` wrote half its leases before the index by node (as
    # do nine more nodes); `new` wrote all of them with this release.
    old, new = nodes[len(nodes) // 2], nodes[len(nodes) // 3]
    started = time.monotonic()
    txns = etcdbed.fill(etcd, store, pool, etcdbed.scattered(pool, total, rng), nodes, rng,
                        frozenset([old, *nodes[-9:]]))
    etcdbed.stamp_nodes(etcd, PREFIX, nodes, etcdbed.day_ago())
    fill_s = time.monotonic() - started
    plugin = make_plugin(workdir, {"networks": [{"name": "pods", "vlans": "all",
                                                 "subnet": SUBNET, "allocator": "etcd"}],
                                   "etcd": {"endpoints": [bed.server.url], "prefix": PREFIX}})
    output = os.path.join(workdir, "out.txt")
    run = Runner(plugin.path, output, bed.server.process.pid)
    listed = run("list --cluster", f"{total} listed", ["list", "--cluster"])
    run(f"gc --node {old} --dry-run, no index mark yet", f"{per} would be freed",
        ["gc", "--node", old, "--dry-run"], noted=True)
    started = time.monotonic()
    indexed = EtcdIndex(store).index()
    run.rows.append(["init's one-off index of old leases (in process)",
                     round(time.monotonic() - started, 2), "-", "-", "-",
                     f"{indexed.moved} moved, marked {indexed.marked}"
                     + (f", waiting for {len(indexed.waiting)} nodes" if indexed.waiting
                        else "")])
    run(f"gc --node {old} --dry-run", f"{per} would be freed", ["gc", "--node", old, "--dry-run"])
    gc = run(f"gc --node {new}", f"{per} freed", ["gc", "--node", new])
    run(f"gc --node {old}", f"{per} freed", ["gc", "--node", old])
    left = _count(etcd, f"{PREFIX}/ipam/pods/owner/{new}/") + _count(
        etcd, f"{PREFIX}/ipam/pods/owner/{old}/")
    intact = _count(etcd) == total - 2 * per
    table = Table(f"Operator commands over {total:,} leases ({args.op_nodes:,} nodes x "
                  f"{per}, {SUBNET}), through the exec plugin",
                  ["command", "wall s", "peak RSS MB", "plugin CPU s", "etcd CPU s",
                   "checked"], run.rows)
    table.targets = [
        Target(f"gc --node <= {TARGETS['gc'][0]:g} s and <= {TARGETS['gc'][1]} MB",
               f"{gc[0]:.2f} s, {gc[1]} MB",
               gc[0] <= TARGETS["gc"][0] and gc[1] <= TARGETS["gc"][1]),
        Target(f"list --cluster <= {TARGETS['list'][0]:g} s and <= {TARGETS['list'][1]} MB",
               f"{listed[0]:.2f} s, {listed[1]} MB",
               listed[0] <= TARGETS["list"][0] and listed[1] <= TARGETS["list"][1]),
        Target("every answer as checked, old-format leases included; the two nodes' "
               "leases freed and only those", f"{run.wrong} wrong, {left} left, others "
               f"{'intact' if intact else 'touched'}", not run.wrong and not left and intact),
    ]
    table.notes = [f"Written in {fill_s:.0f} s through {txns} transactions of <= "
                   f"{etcdbed.MAX_OPS} operations; half the leases of {old} and of 9 more "
                   "nodes in the format of the release before the index by node. Wall time, "
                   "peak RSS and CPU (user + system) of the plugin by /usr/bin/time, etcd's "
                   "CPU from /proc; load average "
                   f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end (the "
                   "machine is shared: wall time grows with the load, CPU much less)."]
    return table


class Runner:
    """Runs the installed plugin under /usr/bin/time and checks the count of its answer."""

    def __init__(self, path: str, output: str, etcd_pid: int) -> None:
        self.path, self.output, self.etcd_pid = path, output, etcd_pid
        self.rows: list[list[Any]] = []
        self.wrong = 0

    def __call__(self, label: str, expected: str, argv: list[str],
                 noted: bool = False) -> tuple[float, int, float]:
        """`noted`: the call must say on stderr that it read every lease (no index mark)."""
        etcd_before = _cpu(self.etcd_pid)
        wall, rss, cpu, stderr = _timed(self.path, argv, self.output)
        got = _lines(self.output)
        want = int(expected.split()[0])
        said = "note: network pods: no node index yet" in stderr
        check = expected + (", said it read all" if said else "")
        if got != want or said != noted:
            self.wrong += 1
            check = f"WRONG: {got}, not {expected}; note on stderr: {said}, not {noted}"
        self.rows.append([label, wall, rss, cpu, round(_cpu(self.etcd_pid) - etcd_before, 2),
                          check])
        return wall, rss, cpu


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(path: str, argv: list[str], output: str) -> tuple[float, int, float, str]:
    """(wall seconds, peak RSS in MB, CPU seconds, stderr) of one call of the installed
    plugin."""
    report = output + ".time"
    with open(output, "w", encoding="utf-8") as out:
        proc = subprocess.run(["/usr/bin/time", "-f", "%e %M %U %S", "-o", report, path, *argv],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE,
                              text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-500:]}")
    with open(report, encoding="utf-8") as handle:
        wall, rss, user, system = handle.read().split()[-4:]
    return (float(wall), round(int(rss) / 1024), round(float(user) + float(system), 2),
            proc.stderr)


def _lines(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip() and not line.startswith(" "))


def _count(etcd: EtcdConnection, prefix: str = f"{PREFIX}/ipam/pods/addr/") -> int:
    answer: dict[str, Any] = etcd.call("kv/range", {"key": b64(prefix), "count_only": True,
                                                   "range_end": prefix_end(prefix)})
    return int(answer.get("count", 0))
