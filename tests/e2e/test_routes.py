"""A network's gateway and the pod's default route, end to end: real Docker pods (whose eth0
default route, Docker's via docker0, is the pod's cluster network), real pipework and Open
vSwitch, the exec and the CNI front-end.

A gateway alone never moves the pod's default route: only `default_route: true` beside it
does, for that family only, and teardown leaves every route as it was before setup."""

from __future__ import annotations

import pytest

from tests.support import hostnet, pluginstate
from tests.support.cni_runtime import Runtime, pod_args
from tests.support.kubelet import make_plugin
from tests.support.pluginstate import our_ports

NS = "default"
V4 = {"subnet": "10.91.0.0/24", "gateway": "10.91.0.1"}
V6 = {"subnet": "fd00:91::/64", "gateway": "fd00:91::1"}
NETWORKS = {
    "ipv4": {"name": "gw", "vlans": "all", **V4},
    "ipv6": {"name": "gw", "vlans": "all", **V6},
    "dual": {"name": "gw", "vlans": "all", "subnets": [V4, V6]},
}


def routes(container) -> dict[int, list[str]]:
    """Every route of both families in the pod's main table."""
    return {family: hostnet.in_netns(container.pid, "ip", f"-{family}", "route", "show",
                                     "table", "main").stdout.splitlines()
            for family in (4, 6)}


def egress(container, family: int) -> str:
    """The route the pod takes to an address far away (`ip route get`)."""
    target = "192.0.2.77" if family == 4 else "2001:db8::77"
    return hostnet.in_netns(container.pid, "ip", f"-{family}", "route", "get", target,
                            check=False).stdout


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_a_gateway_leaves_the_pods_default_route_alone(tmp_path, bridge, container, kind):
    plugin = make_plugin(str(tmp_path), {"bridge": bridge, "networks": [NETWORKS[kind]]})
    before = routes(container)
    assert any(r.startswith("default via") and "dev eth0" in r for r in before[4]), before
    plugin.ok("setup", NS, "22-a", container.id)
    during = routes(container)
    assert [r for r in during[4] if "eth1" not in r] == before[4], during
    assert [r for r in during[6] if "eth1" not in r] == before[6], during
    assert not [r for family in (4, 6) for r in during[family]
                if "eth1" in r and "via" in r], during  # on-link routes of eth1 only
    assert "dev eth0" in egress(container, 4)
    plugin.ok("teardown", NS, "22-a", container.id)
    assert routes(container) == before
    assert our_ports(bridge) == {} and pluginstate.leases(plugin.state_dir) == []


@pytest.mark.parametrize("kind, family", [("ipv4", 4), ("ipv6", 6), ("dual", 4), ("dual", 6)])
def test_default_route_true_takes_one_familys_traffic_and_gives_it_back(
        tmp_path, bridge, container, kind, family):
    network = dict(NETWORKS[kind])
    if kind == "dual":
        network["subnets"] = [{**item, "default_route": True} if item is (V4, V6)[family // 6]
                              else item for item in network["subnets"]]
    else:
        network["default_route"] = True
    plugin = make_plugin(str(tmp_path), {"bridge": bridge, "networks": [network]})
    before = routes(container)
    other = 6 if family == 4 else 4
    plugin.ok("setup", NS, "22-a", container.id)
    during = routes(container)
    gateway = (V4, V6)[family // 6]["gateway"]
    assert f"via {gateway} dev eth1" in egress(container, family), during
    assert [r for r in during[other] if "eth1" not in r] == before[other], during
    assert not [r for r in during[other] if "eth1" in r and "via" in r], during
    assert [r for r in during[family] if "eth1" not in r] == before[family], during
    plugin.ok("teardown", NS, "22-a", container.id)
    assert routes(container) == before
    assert our_ports(bridge) == {} and pluginstate.leases(plugin.state_dir) == []


@pytest.mark.parametrize("default_route", [False, True])
def test_the_cni_result_lists_the_routes_the_pod_got(tmp_path, bridge, container,
                                                     default_route):
    network = {**NETWORKS["ipv4"], "name": "pods"}
    if default_route:
        network["default_route"] = True
    runtime = Runtime(str(tmp_path), node={"networks": [network]})
    conf = runtime.netconf("1.0.0", bridge, vlan=22, vlanpipe={"network": "pods"})
    before = routes(container)
    body = runtime.ok("ADD", conf, container, args=pod_args(NS, "web", container.id)).body
    assert [ip.get("gateway") for ip in body["ips"]] == ["10.91.0.1"]  # the subnet's, always
    listed = {(r["dst"], r.get("gw")) for r in body["routes"]}
    inside = {r.split()[0] for r in routes(container)[4] if "dev net1" in r and "via" in r}
    assert {dst for dst, _ in listed} == inside
    if default_route:
        assert listed == {("0.0.0.0/1", "10.91.0.1"), ("128.0.0.0/1", "10.91.0.1")}
        assert "dev net1" in egress(container, 4)
    else:
        assert listed == set() and "dev eth0" in egress(container, 4)
    runtime.ok("DEL", conf, container)
    assert routes(container) == before and our_ports(bridge) == {}
