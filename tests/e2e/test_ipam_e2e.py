"""Address management end to end: the plugin as the kubelet calls it, real OVS, Docker, etcd."""

from __future__ import annotations

import json
import urllib.request
import base64
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import etcd_server, hostnet
from tests.support.kubelet import make_plugin, status_ip

from .test_exec_plugin import NS, base_config, leases, our_ports


@pytest.fixture
def etcd(tmp_path):
    server = etcd_server.start(str(tmp_path / "etcd-data"))
    yield server
    etcd_server.stop(server)


def etcd_config(bridge, server, node, **extra):
    return {"bridge": bridge, "status": {"report": "vlan"}, "node_name": node,
            "etcd": {"endpoints": [server.url], "timeout": 2, "prefix": "/e2e"},
            "networks": [{"name": "pods", "vlans": "all", "subnet": "10.98.0.0/24",
                          "allocator": "etcd"}], **extra}


def etcd_keys(server, prefix: str) -> list[str]:
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    body = json.dumps({"key": base64.b64encode(prefix.encode()).decode(),
                       "range_end": base64.b64encode(end.encode()).decode(),
                       "keys_only": True}).encode()
    request = urllib.request.Request(f"{server.url}/v3/kv/range", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        kvs = json.load(response).get("kvs", [])
    return [base64.b64decode(kv["key"]).decode() for kv in kvs]


def test_64_parallel_setups_get_64_reachable_addresses(tmp_path, bridge, make_container):
    plugin = make_plugin(str(tmp_path), base_config(bridge))
    pods = [(f"22-w{i}", make_container(f"w{i}")) for i in range(64)]
    with ThreadPoolExecutor(64) as pool:
        calls = list(pool.map(lambda p: plugin("setup", NS, p[0], p[1].id), pods))
    assert [c.output for c in calls if c.code] == []
    addresses = {p: hostnet.container_addresses(c.id, "eth1") for p, c in pods}
    flat = [a for found in addresses.values() for a in found]
    assert len(flat) == 64 and len(set(flat)) == 64, addresses
    assert len(leases(plugin)) == 64 and len(our_ports(bridge)) == 64
    targets = " ".join(a.split("/")[0] for a in flat[1:])
    first = pods[0][1].id
    assert hostnet.ping(first, flat[1])  # and it refuses any address off the test interfaces
    script = f"n=0; for ip in {targets}; do (ping -c1 -W2 $ip || ping -c1 -W3 $ip) >/dev/null && n=$((n+1)); done; echo $n"
    assert hostnet.in_container(first, "sh", "-c", script).stdout.strip() == "63"
    with ThreadPoolExecutor(64) as pool:
        calls = list(pool.map(lambda p: plugin("teardown", NS, p[0], p[1].id), pods))
    assert [c.output for c in calls if c.code] == []
    assert leases(plugin) == [] and our_ports(bridge) == {}


def test_exhaustion_release_and_rotation(scope, tmp_path, bridge, make_container):
    config = base_config(bridge)
    config["networks"] = [{"name": "tiny", "vlans": "all", "subnet": "10.97.0.0/24",
                           "range": {"start": "10.97.0.10", "end": "10.97.0.11"}}]
    plugin = make_plugin(str(tmp_path), config)
    a, b, c = make_container("a"), make_container("b"), make_container("c")
    plugin.ok("setup", NS, "22-a", a.id)
    plugin.ok("setup", NS, "22-b", b.id)
    before = scope.leaks()
    call = plugin("setup", NS, "22-c", c.id)
    assert call.code == 7 and len(call.lines) == 1, call.output
    assert "network tiny exhausted: 2 addresses in use" in call.output
    assert scope.leaks() == before and len(leases(plugin)) == 2
    freed = status_ip(plugin.ok("status", NS, "22-a", a.id).output)
    plugin.ok("teardown", NS, "22-a", a.id)
    plugin.ok("setup", NS, "22-c", c.id)
    assert status_ip(plugin.ok("status", NS, "22-c", c.id).output) == freed
    for pod, cont in (("22-b", b), ("22-c", c)):
        plugin.ok("teardown", NS, pod, cont.id)
    assert leases(plugin) == []


def test_two_nodes_share_one_etcd_network(tmp_path, bridge, make_container, etcd):
    nodes = [make_plugin(str(tmp_path / name), etcd_config(bridge, etcd, name))
             for name in ("node-a", "node-b")]
    pods = [(nodes[i % 2], f"22-n{i}", make_container(f"n{i}")) for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        calls = list(pool.map(lambda p: p[0]("setup", NS, p[1], p[2].id), pods))
    assert [c.output for c in calls if c.code] == []
    ips = [status_ip(node.ok("status", NS, pod, c.id).output) for node, pod, c in pods]
    assert len(set(ips)) == 12
    assert len([k for k in etcd_keys(etcd, "/e2e/ipam/pods/addr/")]) == 12
    for node, pod, c in pods:
        node.ok("teardown", NS, pod, c.id)
    assert etcd_keys(etcd, "/e2e/ipam/pods/addr/") == []


def test_pin_command_sets_reads_and_removes_pins_without_etcdctl(tmp_path, bridge, container,
                                                                 etcd):
    """Issue 25 item 15: `pin set|get|del`, checked against the node's networks; setup reads
    what `pin set` wrote."""
    plugin = make_plugin(str(tmp_path), etcd_config(bridge, etcd, "node-a",
                                                    vlan={"pinned": True}))
    for args, code, needle in [
            (("set", "default/web", "30", "10.99.0.7/24"), 4, "is not in network 'pods'"),
            (("set", "default/web", "30", "10.98.0.7/16"), 4, "another prefix length"),
            (("set", "default/web", "5000"), 4, "VLAN '5000'"),
            (("set", "web", "30"), 4, "is not NAMESPACE/POD"),
            (("set", "default/Web", "30"), 4, "pod name 'Web'"),
            (("get", "default/web"), 1, "default/web has no pin")]:
        call = plugin("pin", *args)
        assert call.code == code and needle in call.output and len(call.lines) == 1, call.output
    assert etcd_keys(etcd, "/e2e/pins/") == []
    assert json.loads(plugin.ok("pin", "set", "default/web", "30", "10.98.0.77/24").output) == {
        "vlan": 30, "address": "10.98.0.77/24"}
    assert json.loads(plugin.ok("pin", "get", "default/web").output) == {
        "vlan": 30, "address": "10.98.0.77/24"}
    plugin.ok("setup", NS, "web", container.id)
    assert next(iter(our_ports(bridge).values()))["tag"] == 30
    assert hostnet.container_addresses(container.id, "eth1") == ["10.98.0.77/24"]
    plugin.ok("teardown", NS, "web", container.id)
    assert plugin.ok("pin", "del", "default/web").output.strip() == "removed the pin of default/web"
    assert plugin.ok("pin", "del", "default/web").output.strip() == "default/web had no pin"
    assert etcd_keys(etcd, "/e2e/pins/") == []
