"""Part 1: the etcd allocator as the pool fills (issue 23, measure 1).

One network of a /18 (16,382 usable addresses) per fill level, filled to 0, 50, 90 and
99 % with leases of 100 simulated nodes at addresses drawn at random, the rotation point
put at random (a fill packed behind the rotation point would make every target trivial).
Then two "nodes", two processes with their own connection, claim and release at once
through the plugin's allocator (PoolAllocator over EtcdStore, compare-and-set claims):
latency of each claim, etcd round trips per claim, failures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import time
import traceback
from dataclasses import dataclass
from typing import Any

from bench.cluster import etcdbed
from bench.cluster.tables import Table, Target
from plugin.identity import Identity
from plugin.ipam.pool import Pool
from plugin.ipam.pooled import PoolAllocator
from plugin.ipam.stores.etcd import EtcdStore
from plugin.ipam.stores.etcd_client import EtcdConnection

TITLE = "etcd allocator as the pool fills"
FULL = {"fill_levels": "0,50,90,99", "fill_claims": 200, "fill_prefix": 18}
QUICK = {"fill_levels": "0,50,90,99", "fill_claims": 10, "fill_prefix": 23}
PREFIX = "/bench-fill"
NODES = 100  # the simulated nodes the fill belongs to
TIMEOUT = 5.0  # the etcd section's default timeout
FORK = multiprocessing.get_context("fork")


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fill-levels", help="part 1: fill levels in %% (default 0,50,90,99)")
    parser.add_argument("--fill-claims", type=int,
                        help="part 1: claims + releases per node and level (default 200)")
    parser.add_argument("--fill-prefix", type=int, help="part 1: the network's prefix length "
                        "(default 18: 16,382 addresses)")


@dataclass(frozen=True)
class Claim:
    seconds: float
    round_trips: int
    release_seconds: float
    error: str = ""


class Counting(EtcdConnection):
    """The plugin's connection, counting the requests it sends (one request, one round trip)."""

    requests = 0

    def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        return super().call(path, payload)


def run(args: argparse.Namespace, workdir: str) -> list[Table]:
    bed = etcdbed.EtcdBed.start(workdir)
    try:
        return [_measure(args, bed)]
    finally:
        bed.close()


def _measure(args: argparse.Namespace, bed: etcdbed.EtcdBed) -> Table:
    rng = random.Random(23)
    config = bed.config(PREFIX, TIMEOUT)
    etcd = EtcdConnection(config)
    subnet = f"10.128.0.0/{args.fill_prefix}"
    levels = [int(x) for x in str(args.fill_levels).split(",")]
    nodes = [f"fill-node-{i:03d}" for i in range(NODES)]
    table = Table(f"etcd allocator as the pool fills ({subnet}, two nodes claiming and "
                  f"releasing at once, {args.fill_claims} claims each per level)",
                  ["fill", "leases", "claim median ms", "claim p99 ms", "claim max ms",
                   "round trips per claim (median, max)", "release median ms", "failures"])
    figures: dict[int, dict[str, float]] = {}
    networks, counts = [], []
    for level in levels:  # one network per level, all filled first
        network = etcdbed.etcd_network(f"fill{level}", subnet)
        pool = Pool.of(network)
        counts.append(pool.size * level // 100)
        etcdbed.fill(etcd, EtcdStore(network, etcd, PREFIX), pool,
                     etcdbed.scattered(pool, counts[-1], rng), nodes, rng)
        networks.append(network)
    by_level = _race(config, networks, args.fill_claims)
    for level, count, claims in zip(levels, counts, by_level):
        done = [c for c in claims if not c.error]
        failures = [c.error for c in claims if c.error]
        times = sorted(c.seconds * 1000 for c in done) or [float("nan")]
        trips = sorted(c.round_trips for c in done) or [0]
        figures[level] = {"median": statistics.median(times), "p99": _p99(times),
                          "max": times[-1], "failures": len(failures)}
        table.rows.append([f"{level} %", count, figures[level]["median"], figures[level]["p99"],
                           times[-1], f"{statistics.median(trips):g}, {trips[-1]}",
                           statistics.median(c.release_seconds * 1000 for c in done)
                           if done else "-", len(failures)])
        table.notes += [f"{level} %: {error}" for error in sorted(set(failures))[:3]]
    table.targets = _targets(figures)
    table.notes.append(f"Pool of {pool.size:,} addresses (per level); claims interleaved "
                       f"level by level; fills written by {NODES} simulated "
                       f"nodes through transactions of <= {etcdbed.MAX_OPS} operations; the "
                       f"etcd timeout is {TIMEOUT:g} s; load average "
                       f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end (a "
                       "shared machine).")
    return table


def _targets(figures: dict[int, dict[str, float]]) -> list[Target]:
    targets = []
    empty, ninety, full = figures.get(0), figures.get(90), figures.get(99)
    if empty and ninety:
        ratio, tail = ninety["median"] / empty["median"], ninety["p99"] / empty["p99"]
        targets += [Target("at 90 %, median <= 2x the empty pool's", f"{ratio:.2f}x",
                           ratio <= 2),
                    Target("at 90 %, p99 <= 5x the empty pool's", f"{tail:.2f}x", tail <= 5)]
    if full:
        targets += [Target("at 99 %, no claim fails (a free address exists)",
                           f"{full['failures']:.0f} failed", full["failures"] == 0),
                    Target(f"at 99 %, no claim takes longer than the etcd timeout "
                           f"({TIMEOUT:g} s)", f"slowest {full['max']:.0f} ms",
                           full["max"] < TIMEOUT * 1000)]
    return targets


def _race(config: Any, networks: list[Any], claims: int) -> list[list[Claim]]:
    """Both nodes' claims per level, started together by a barrier, each node in its own
    process: claim i at every level in turn (the order rotating), so a change of the
    machine's load (a shared machine) falls on every level alike."""
    barrier, queue = FORK.Barrier(2), FORK.Queue()
    workers = [FORK.Process(target=_node, args=(config, networks, f"claimer-{n}", claims,
                                                barrier, queue)) for n in "ab"]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return [[claim for result in results for claim in result[level]]
            for level in range(len(networks))]


def _node(config: Any, networks: list[Any], node: str, claims: int, barrier: Any,
          queue: Any) -> None:
    etcd = Counting(config)
    allocators = [PoolAllocator(network, EtcdStore(network, etcd, PREFIX, node))
                  for network in networks]
    done: list[list[Claim]] = [[] for _ in networks]
    barrier.wait(timeout=60)
    for index in range(claims):
        owner = Identity("bench", f"22-claim-{index}", f"{node}-{index:058x}", "eth1", node)
        for turn in range(len(networks)):
            level = (index + turn) % len(networks)
            done[level].append(_claim(etcd, allocators[level], owner))
    queue.put(done)


def _claim(etcd: Counting, allocator: PoolAllocator, owner: Identity) -> Claim:
    """One claim and its release: their times, and the claim's round trips."""
    before, started = etcd.requests, time.perf_counter()
    try:
        allocator.allocate(owner)
    except Exception as exc:  # a failed claim is a figure of the table, not the end
        return Claim(time.perf_counter() - started, etcd.requests - before, 0.0,
                     "".join(traceback.format_exception_only(type(exc), exc)).strip())
    claimed, trips = time.perf_counter(), etcd.requests - before
    allocator.release(owner)
    return Claim(claimed - started, trips, time.perf_counter() - claimed)


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
