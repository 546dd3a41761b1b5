"""Bandwidth limits hold across nodes: a pod on node a limited both ways by its network's
default (config.yaml), a pod on node b without limits, traffic between them through the
uplinks and the switch. UDP offered at five times the limit must arrive at no more than
1.1 times it and at least half of it, each way; TCP at least half of it (`held`: the
loose bound is measured up to three times on this shared machine, the strict one never
gives way). Node a's meter
and QoS rows are gone after teardown (the cluster's leak checks)."""

from __future__ import annotations

from tests.support.rates import BURST, FIGURES, LIMIT, OFFERED, held
from tests.nodes.conftest import Cluster, PodRef
from tests.support import hostnet
from tests.support.traffic import End, tcp_rate, udp_rate

NETWORK = {"name": "pods", "vlans": "all", "subnet": "10.69.0.0/24", "allocator": "etcd"}


def end(pod: PodRef) -> End:
    (address,) = hostnet.container_addresses(pod.container.id, "eth1")
    return End.of_pid(pod.pid, address)


def test_limits_hold_across_nodes_both_ways(cluster: Cluster) -> None:
    cluster["a"].configure(networks=[{**NETWORK, "bandwidth": {
        "ingressRate": LIMIT, "ingressBurst": BURST, "egressRate": LIMIT,
        "egressBurst": BURST}}])
    cluster["b"].configure(networks=[NETWORK])
    cluster.init_all()
    a, b = cluster.pod("a", "22-a"), cluster.pod("b", "22-b")
    a_end, b_end = end(a), end(b)
    held("two nodes: UDP from the limited pod (egress)",
         lambda: udp_rate(a_end, b_end, OFFERED))
    held("two nodes: UDP towards the limited pod (ingress)",
         lambda: udp_rate(b_end, a_end, OFFERED))
    held("two nodes: TCP from the limited pod (egress)", lambda: tcp_rate(a_end, b_end))
    held("two nodes: TCP towards the limited pod (ingress)", lambda: tcp_rate(b_end, a_end))
    print("\nmeasured:", {k: f"{v / 1e6:.2f} Mbit/s" for k, v in FIGURES.items()})
    cluster.teardown("a", a)
    cluster.teardown("b", b)

