"""Pods talk across nodes: the traffic matrix of tests/e2e/test_traffic.py over the two-node
bed, whose Open vSwitch instances all run with their defaults. Kubelet pods (pipework) on
each node for IPv4, IPv6 and dual stack, and CRI-order namespaces attached by direct CNI
calls inside each node (the netns plumber): TCP and UDP with checked bytes both ways, full-
MTU packets, and a pod of another VLAN on the other node hears nothing."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from tests.nodes.conftest import Cluster, PodRef
from tests.support.traffic import End, talk, unheard

NETWORKS = {
    "ipv4": [{"name": "pods", "vlans": "all", "subnet": "10.67.0.0/24", "allocator": "etcd"}],
    "ipv6": [{"name": "pods6", "vlans": "all", "subnet": "fd00:67::/64", "allocator": "etcd"}],
    "dual": [{"name": "dual", "vlans": "all", "subnets": ["10.68.0.0/24", "fd00:68::/64"],
              "allocator": "etcd"}],
}


def ends(pod: PodRef) -> list[End]:
    from tests.support import hostnet

    return [End.of_pid(pod.pid, a) for a in hostnet.container_addresses(pod.container.id,
                                                                          "eth1")]


@pytest.mark.parametrize("family", sorted(NETWORKS))
def test_kubelet_pods_talk_across_nodes(cluster: Cluster, family: str) -> None:
    for plugin in cluster.plugins.values():
        plugin.configure(networks=NETWORKS[family])
    cluster.init_all()
    a, b, c = cluster.pod("a", "22-a"), cluster.pod("b", "22-b"), cluster.pod("b", "23-c")
    (a_ends, b_ends, c_ends) = (ends(p) for p in (a, b, c))
    assert len(a_ends) == (2 if family == "dual" else 1)
    for a_end, b_end in zip(a_ends, b_ends):
        talk(a_end, b_end)
    for a_end, c_end in zip(a_ends, c_ends):
        assert unheard(a_end, c_end) == 0
    for node, pod in (("a", a), ("b", b), ("b", c)):
        cluster.teardown(node, pod)


def _cni(cluster: Cluster, node: str, command: str, sandbox: str, netns: str,
         vlan: int) -> dict[str, Any]:
    """One CNI call inside `node`, as its runtime makes it (env and stdin; no pod name)."""
    plugin = cluster[node]
    conf = {"cniVersion": "1.0.0", "name": "vlan-net", "type": "vlanpipe",
            "bridge": plugin.node.bridge, "vlan": vlan}
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": sandbox, "CNI_NETNS": netns,
           "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin", "VLANPIPE_CONFIG":
           plugin.config_path, "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
           "/sbin:/bin"}
    done = plugin.node.run([plugin.path], env=env, input=json.dumps(conf), timeout=120)
    assert done.returncode == 0, f"{node} {command}: {done.stdout} {done.stderr}"
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_namespace_pods_talk_across_nodes(cluster: Cluster) -> None:
    """The CRI order in each node: a named namespace in the node, ADD with its path, no
    process inside; the traffic reaches it through the node's view of /var/run/netns."""
    for plugin in cluster.plugins.values():
        plugin.configure(networks=NETWORKS["dual"])
    cluster.init_all()
    made = []
    try:
        for node, vlan in (("a", 22), ("b", 22), ("b", 23)):
            name = f"cri-{secrets.token_hex(4)}"
            cluster[node].node.run(["ip", "netns", "add", name], check=True)
            path, sandbox = f"/var/run/netns/{name}", secrets.token_hex(32)
            made.append((node, name, path, sandbox, vlan))
            body = _cni(cluster, node, "ADD", sandbox, path, vlan)
            made[-1] = (*made[-1], [End(path, ip["address"].split("/")[0], "eth0",
                                        tuple(cluster[node].node.nsenter([])))
                                    for ip in body["ips"]])
        (*_, a_ends), (*_, b_ends), (*_, c_ends) = made
        assert len(a_ends) == 2
        for a_end, b_end in zip(a_ends, b_ends):
            talk(a_end, b_end)
        for a_end, c_end in zip(a_ends, c_ends):
            assert unheard(a_end, c_end) == 0
    finally:
        for node, name, path, sandbox, vlan, *_ in made:
            _cni(cluster, node, "DEL", sandbox, path, vlan)
            cluster[node].node.run(["ip", "netns", "delete", name], check=True)
