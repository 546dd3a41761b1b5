"""Cost of one allocate + release per allocator at 1, 100 and 1000 addresses in use.

Usage: python3 bench/ipam_bench.py [--runs N] [--workdir DIR] [--out bench/results/ipam.json]

The local store's cost is the file system's: creating its one new file per
allocation costs ~0.1 ms in a quiet directory tree of this machine's ext4 and
~0.8 ms under a crowded /tmp. --workdir (default /var/tmp) says where the state
and etcd's data go; keep it beside the real state dir's file system.

Every allocator goes through the `Allocators` facade, as the core calls it, with a
fresh owner per run (a real allocation, not the idempotent path). Runs are
interleaved allocator by allocator, in a rotating order, so drift of the
machine (cache, CPU frequency, other load) hits all of them alike. Medians.

Two placements of the addresses in use:
  rotated  - as rotation leaves them: the next candidate after the rotation
             point is free (the steady state).
  blocking - every address in use sits right after the rotation point, the worst
             case after the range wrapped around: local probes each one with a
             stat, etcd probes a few and then lists the taken keys once.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugin.config.etcd import parse_etcd  # noqa: E402
from plugin.config.networks import parse_networks  # noqa: E402
from plugin.config.reader import Section  # noqa: E402
from plugin.ipam.allocators import Allocators  # noqa: E402
from plugin.identity import Identity  # noqa: E402
from plugin.ipam.stores.etcd_client import EtcdConnection, b64  # noqa: E402
from tests.support import etcd_server  # noqa: E402

IN_USE = (1, 100, 1000)
KINDS = ("static", "local", "etcd")
SUBNET = "10.64.0.0/16"


def owner(index: int) -> Identity:
    return Identity("bench", f"22-pod-{index}", f"{index:064x}", "eth1")


class Bench:
    """One allocator with `in_use` leases held, measured one allocate + release at a time."""

    def __init__(self, kind: str, in_use: int, workdir: str, etcd_url: str) -> None:
        self.kind, self.next_owner = kind, 10_000_000
        net: dict[str, object] = {"name": f"{kind}{in_use}", "vlans": [22]}
        if kind == "static":  # in use = entries of the per-pod map
            net["pods"] = {f"bench/22-pod-{i}": f"10.64.{i // 250}.{i % 250 + 1}/16"
                           for i in range(in_use)}
        else:
            net.update(subnet=SUBNET, allocator=kind)
        self.prefix = f"/bench{os.getpid()}-{kind}{in_use}"
        etcd = parse_etcd(Section("bench", {"endpoints": [etcd_url], "prefix": self.prefix}))
        assert etcd is not None
        self.ipam = Allocators(parse_networks([Section("bench", net)]), etcd, workdir, "bench-node")
        self.network = self.ipam.networks[0]
        self.workdir, self.etcd = workdir, etcd
        if kind != "static":
            for i in range(in_use):
                self.ipam.allocate(owner(i), 22)

    def forget_rotation(self) -> None:
        """Put the rotation point before the addresses in use (the blocking case)."""
        if self.kind == "local":
            path = os.path.join(self.workdir, "ipam", self.network.name, "last_reserved")
            if os.path.exists(path):
                os.unlink(path)
        elif self.kind == "etcd":
            key = f"{self.prefix}/ipam/{self.network.name}/last_reserved"
            EtcdConnection(self.etcd).call("kv/deleterange", {"key": b64(key)})

    def once(self) -> float:
        if self.kind == "static":
            who = owner(0)  # the map's first pod
        else:
            self.next_owner += 1
            who = owner(self.next_owner)
        start = time.perf_counter()
        self.ipam.allocate(who, 22)
        self.ipam.release(who, self.network.name)
        return time.perf_counter() - start


def measure(runs: int, etcd_url: str, workdir: str, blocking: bool) -> dict[str, dict[int, float]]:
    """Medians per allocator and count in use; every run visits all cells, in a rotating order."""
    cells = [(kind, in_use) for in_use in IN_USE for kind in KINDS]
    benches = {(kind, in_use): Bench(kind, in_use, os.path.join(workdir, f"{blocking}-{in_use}"),
                                     etcd_url) for kind, in_use in cells}
    samples: dict[tuple[str, int], list[float]] = {cell: [] for cell in cells}
    for run in range(runs):
        shift = run % len(cells)
        for cell in cells[shift:] + cells[:shift]:
            if blocking:
                benches[cell].forget_rotation()
            samples[cell].append(benches[cell].once())
    medians: dict[str, dict[int, float]] = {kind: {} for kind in KINDS}
    for (kind, in_use), values in samples.items():
        medians[kind][in_use] = statistics.median(values)
    return medians


def table(title: str, medians: dict[str, dict[int, float]]) -> str:
    head = f"{title}\n{'allocator':<10}" + "".join(f"{f'{n} in use':>14}" for n in IN_USE) \
        + f"{'1000/1':>10}"
    rows = [head]
    for kind, by_count in medians.items():
        cells = "".join(f"{by_count[n] * 1e6:>11.0f} us" for n in IN_USE)
        rows.append(f"{kind:<10}{cells}{by_count[IN_USE[-1]] / by_count[IN_USE[0]]:>9.2f}x")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workdir", default="/var/tmp")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "ipam.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ipam-bench-", dir=args.workdir) as workdir:
        server = etcd_server.start(os.path.join(workdir, "etcd"))
        try:
            results = {name: measure(args.runs, server.url, workdir, blocking)
                       for name, blocking in (("rotated", False), ("blocking", True))}
        finally:
            etcd_server.stop(server)
    for name, medians in results.items():
        print(table(f"allocate + release, median of {args.runs} runs, {name}:", medians) + "\n")
    report: dict[str, object] = {
        "what": "median seconds of one allocate + release through Allocators",
        "runs": args.runs, "in_use": list(IN_USE), "subnet": SUBNET, "workdir": args.workdir,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
    }
    for name, medians in results.items():
        report[name] = {kind: {str(n): v for n, v in by.items()} for kind, by in medians.items()}
        report[f"{name}_ratio_1000_to_1"] = {kind: by[IN_USE[-1]] / by[IN_USE[0]]
                                             for kind, by in medians.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
