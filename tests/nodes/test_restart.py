"""A node's ovs-vswitchd restarted under an attached pod: teardown still removes everything.

It restarts the bed node's own ovs-vswitchd, never the host's: the host's daemons
are shared with whatever else runs on this machine (it was an e2e test that
restarted the host's, and took down every test running beside it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.nodes.conftest import Cluster
from tests.support import forge, hostnet, traffic
from tests.support.nodebed import pods


def restart_vswitchd(cluster: Cluster, name: str) -> None:
    node = cluster.bed.node(name)
    node.stop("ovs-vswitchd")
    node.spawn("ovs-vswitchd", ["ovs-vswitchd", "--pidfile", "--disable-system",
                                "-vconsole:off", f"--log-file={node.dir}/ovs-vswitchd.log"])


def test_teardown_after_ovs_vswitchd_restart(cluster: Cluster) -> None:
    cluster.init_all()
    pod = cluster.pod("a", "22-x")
    restart_vswitchd(cluster, "a")
    cluster.teardown("a", pod)
    node = cluster.bed.node("a")
    assert hostnet.wait_until(lambda: node.run(["test", "-d", f"/sys/class/net/{node.bridge}"]
                                               ).returncode == 0, timeout=30)
    assert [p for p in cluster["a"].ports() if p != node.uplink] == []


FORGED_MAC = "02:66:de:ad:be:ef"  # no pod's: a frame from it is a lie
LYING_SECONDS = 25.0


def test_no_forged_frame_crosses_a_restart_and_the_watcher_restores_traffic(
        cluster: Cluster) -> None:
    """Issue 20: node a's ovs-vswitchd restarts while a pod forges frames without pause and
    its neighbour on the same VLAN listens. The bridge fails closed, so nothing the guard
    would drop is delivered at any moment: not while the daemon is down, not while it
    comes back without rules, not while the watcher puts them back. The pods' own
    traffic returns once the watcher (its command run directly) has reconciled."""
    cluster.init_all()
    plugin = cluster["a"]
    liar, victim = cluster.pod("a", "22-liar"), cluster.pod("a", "22-victim")
    plugin.ok("reconcile")  # (setup installs the rules itself where the guard is merged)
    (liar_ip,), (victim_ip,) = (
        [a.split("/")[0] for a in hostnet.container_addresses(p.container.id, "eth1")]
        for p in (liar, victim))
    assert pods.ping(liar.pid, victim_ip, count=1, timeout=2).ok
    node = cluster.bed.node("a")
    node.spawn("watch", [plugin.path, "--config", plugin.config_path, "watch",
                         "--interval", "0.2"])
    listener = _inside(victim.pid, traffic.AGENT, "listen", "eth1", FORGED_MAC,
                       str(LYING_SECONDS))
    forger = _inside(liar.pid, forge.__file__, "eth1", forge.lie(FORGED_MAC),
                     str(LYING_SECONDS - 3))
    try:
        time.sleep(2)  # lying under the guard before the restart too
        restart_vswitchd(cluster, "a")
        restarted = time.monotonic()
        assert hostnet.wait_until(lambda: pods.ping(liar.pid, victim_ip, count=1,
                                                    timeout=1).ok, timeout=60), \
            "the pods' traffic did not come back within 60 s of the restart"
        back_s = time.monotonic() - restarted
        lied = _result(forger)
        heard = _result(listener)
    finally:
        for proc in (forger, listener):
            if proc.poll() is None:
                proc.kill()
        node.stop("watch")
    assert lied.get("sent", 0) > 1000, lied
    assert heard == {"frames": 0}, heard
    watched = [r for r in plugin.log_records() if r["command"] == "watch"]
    assert watched and watched[-1]["outcome"] == "ok" and any(
        "guard rules installed" in line for line in watched[-1]["changed"]), watched
    print(f"\ntraffic back {back_s:.2f} s after the restart (ping every second)")
    for pod in (liar, victim):
        cluster.teardown("a", pod)


def _inside(pid: int, script: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(["nsenter", "-t", str(pid), "-n", sys.executable, script, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready"), (line, proc.stderr.read() if proc.stderr else "")
    return proc


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=60)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": (err or out)[-2000:]}
