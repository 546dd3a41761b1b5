"""Port security across nodes: a pod on node A cannot claim the address of a pod on node B.

Each node's Open vSwitch guards its own pods' ports (tests/e2e/test_port_security.py
shows the rules on one node); here the claim would have to cross node A's bridge, its
uplink trunk, the switch and node B's bridge to reach the pod it would rob, and is
dropped at the first: a forged ARP reply and datagrams from B's address sent from A
reach B 0 times, while A's own datagrams reach B.
"""

from __future__ import annotations

from tests.nodes.conftest import Cluster
from tests.support import frames as F
from tests.support.frames import heard, pod_at


def test_a_pod_on_node_a_cannot_claim_the_address_of_a_pod_on_node_b(cluster: Cluster) -> None:
    cluster.init_all()
    a, b = cluster.pod("a", "22-a"), cluster.pod("b", "22-b")
    mine, theirs = (pod_at(f"/proc/{p.pid}/ns/net", "eth1") for p in (a, b))
    counts = heard(mine, theirs, {
        "arp-claim": F.arp_from(mine.mac, 2, theirs.ip4, theirs.ip4),
        "as-b": F.udp_from(mine.mac, theirs.ip4),
        "as-b-with-its-mac": F.udp_from(theirs.mac, theirs.ip4),
        "own": F.udp_from(mine.mac, mine.ip4)})
    assert counts["own"] > 0, counts  # the path from A to B carries A's own frames
    assert counts["arp-claim"] == counts["as-b"] == counts["as-b-with-its-mac"] == 0, counts
    for node, pod in (("a", a), ("b", b)):
        cluster.teardown(node, pod)
