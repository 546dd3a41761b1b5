"""A node's ovs-vswitchd restarted under an attached pod: teardown still removes everything.

It restarts the bed node's own ovs-vswitchd, never the host's: the host's daemons
are shared with whatever else runs on this machine (it was an e2e test that
restarted the host's, and took down every test running beside it)."""

from __future__ import annotations

from tests.nodes.conftest import Cluster
from tests.support import hostnet


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
