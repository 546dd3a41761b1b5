"""The benchmark's quickest mode runs to the end in the suite, so it cannot rot.

It measures nothing here: speed is reported by `scripts/bench`, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_quick_benchmark_runs_and_writes_its_tables(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--no-ipam",
                           "--out", str(tmp_path)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = (tmp_path / "latest.md").read_text()
    assert "Targets" in summary and "left behind" not in proc.stderr
    # a smoke test of the harness: its few rounds judge no target (issue 25 item 17)
    assert "smoke test, not a verdict" in proc.stdout and "FAIL" not in proc.stdout
    for view in ("Against the card floors", "Against the peers at equal work",
                 "pipework with its one-second arping", "Code measured: commit"):
        assert view in summary
    assert (tmp_path / "latest.json").stat().st_size and (tmp_path / "latency.png").stat().st_size


def test_the_throughput_benchmark_runs_each_way(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.throughput", "--size", str(4 << 20),
                           "--runs", "1", "--rounds", "1", "--out", str(tmp_path)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (tmp_path / "throughput.md").read_text()
    for label in ("plugin (offload off", "userspace-tso-enable=true", "veth pair"):
        assert label in table


def test_the_guard_benchmark_runs_guarded_unguarded_and_through_restarts(tmp_path):
    """scripts/bench --guard --quick: both throughput variants (each checks that its bridge
    has per-port rules, or none), two ovs-vswitchd restarts with the watcher; no verdict."""
    proc = subprocess.run([sys.executable, "-m", "bench.guard", "--quick", "--out",
                           str(tmp_path)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (tmp_path / "quick" / "guard.md").read_text()
    assert "throughput guarded / unguarded" in table and "to traffic back" in table
    assert "PASS" not in table and "FAIL" not in table


def test_the_cluster_benchmark_runs_small_and_prints_its_targets(tmp_path):
    """`scripts/bench --cluster --quick`: every part at small sizes. Speed is not judged
    here, but what each part checks of the answers is: no claim failed while a free
    address existed, and gc --node freed its node's leases, old-format ones included."""
    proc = subprocess.run([sys.executable, "-m", "bench.cluster", "--quick", "--out",
                           str(tmp_path)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = (tmp_path / "cluster.md").read_text()
    for title in ("etcd allocator as the pool fills", "Operator commands over 200 leases"):
        assert title in summary
    lines = summary.splitlines()
    assert any(line.startswith("| at 99 %, no claim fails") and line.endswith("| PASS |")
               for line in lines), summary
    assert any(line.startswith("| every answer as checked") and line.endswith("| PASS |")
               for line in lines), summary
    assert "smoke test, not a verdict" in summary


def test_the_cluster_density_parts_run_small(tmp_path):
    """scripts/bench --cluster's parts 3 and 4 (issue 23) at a few pods, ports and records."""
    proc = subprocess.run([sys.executable, "-m", "bench.cluster_density", "--quick",
                           "--out", str(tmp_path)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "left behind" not in proc.stderr
    summary = (tmp_path / "cluster-density.md").read_text()
    assert "smoke test, not a verdict" in summary and "FAIL" not in summary
    for view in ("A full node in one burst", "A crowded bridge", "regular install",
                 "python -I -c pass", "started 0 processes, made 0 connections"):
        assert view in summary
    results = json.loads((tmp_path / "cluster-density.json").read_text())
    assert results["burst"]["distinct_addresses"] == results["burst"]["pods"]
    assert [size["ports"] for size in results["crowded"]] == [0, 20]
    assert "adding the bare ports, 100 per ovs-vsctl transaction" in summary


# In a child process: entering the sandbox needs a single-threaded process of its own.
BARE_PORTS = """
import json, time
from bench import cluster_burst
from bench.sandbox import Sandbox
from tests.support import hostnet
sandbox = Sandbox()
sandbox.enter()
try:
    bridge = hostnet.make_bridge("vpbenchbr")
    cluster_burst.add_bare_ports(bridge, 0, 4)
    time.sleep(3)  # link-local autoconfiguration: DAD within 1 s, then MLD and solicitations
    pairs = cluster_burst._names(4)
    seen = {"ports": hostnet.ovs("list-ports", bridge).split(),
            "up": [open(f"/sys/class/net/{a}/operstate").read().strip() for a, _ in pairs],
            "sent": [int(open(f"/sys/class/net/{b}/statistics/tx_packets").read())
                     for _, b in pairs]}
    cluster_burst.remove_bare_ports(bridge, 4)
    hostnet.delete_bridge(bridge)
    seen["left"] = sandbox.leftovers()
    print(json.dumps(seen))
finally:
    sandbox.close()
"""


def test_the_crowded_bridges_bare_ports_send_nothing_into_it():
    """The bare ports stand for idle pods: their peers must send nothing into the bridge.
    On the old bench each peer sent 6 frames in 3 s (IPv6 DAD, MLD, router solicitations),
    which NORMAL floods to every port: at 1,000 ports that stalled ovs-vswitchd for minutes
    (bench/cluster_burst.py's docstring). Each port is still up, with its carrier."""
    proc = subprocess.run([sys.executable, "-c", BARE_PORTS], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["ports"] == [f"bare000{i}" for i in range(4)]
    assert seen["up"] == ["up"] * 4
    assert seen["sent"] == [0] * 4
    assert seen["left"] == []
