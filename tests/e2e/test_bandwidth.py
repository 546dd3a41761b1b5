"""Bandwidth limits hold, in the right direction, on the userspace datapath: real Open
vSwitch, Docker, pipework, and real traffic between pods' namespaces.

Limits near 20 Mbit/s, UDP offered at five times the limit: the rate received must stay
within 10 % above the limit and reach at least half of it; a TCP stream must reach half.
Ingress is traffic towards the pod, egress traffic from it: a pod limited one way only
must not be limited the other way (kube-ovn had the two reversed), which a symmetric
limit could not show.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from pipework_wrapper.ofctl import Flow, Ofctl
from plugin import names
from plugin.core import flows
from plugin.core.bandwidth import METER_BASE
from plugin.frontends.cni.errors import INVALID_CONFIG
from tests.support import hostnet, pluginstate
from tests.support.cni_runtime import Runtime
from tests.support.kubelet import make_plugin
from tests.support.rates import BURST, FIGURES, LIMIT, OFFERED, held, unlimited
from tests.support.traffic import End, tcp_rate, udp_rate

from .test_faults import stand_in

VLAN = 31


def limits(ingress: int = 0, egress: int = 0) -> dict[str, int]:
    found = {}
    if ingress:
        found.update(ingressRate=ingress, ingressBurst=BURST)
    if egress:
        found.update(egressRate=egress, egressBurst=BURST)
    return found


def end(container: hostnet.Container, ifname: str) -> End:
    (address,) = hostnet.container_addresses(container.id, ifname)
    return End.of_pid(container.pid, address, ifname)


def qos_of(port: str) -> dict[str, str]:
    """The port's QoS type and its queue's max-rate and burst ({} without a QoS)."""
    out = hostnet.ovs("--format=json", "--columns=qos", "list", "Port", port)
    qos = hostnet.ovsdb_value(json.loads(out)["data"][0][0])
    if not qos:
        return {}
    row = json.loads(hostnet.ovs("--format=json", "--columns=type,queues", "list", "QoS", qos))
    kind, queues = (hostnet.ovsdb_value(v) for v in row["data"][0])
    queue = json.loads(hostnet.ovs("--format=json", "--columns=other_config", "list", "Queue",
                                   queues[0]))
    return {"type": kind, **hostnet.ovsdb_value(queue["data"][0][0])}


def meter_rules(bridge: str) -> list[str]:
    out = subprocess.run(["ovs-ofctl", "--timeout=5", "-O", "OpenFlow13", "dump-flows", bridge],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return [line for line in out.splitlines() if "meter:" in line]


@pytest.fixture
def runtime(tmp_path) -> Runtime:
    return Runtime(str(tmp_path), node={"bandwidth_max": limits(2 * LIMIT, 2 * LIMIT)})


def test_cni_limits_hold_each_in_its_own_direction(runtime, bridge, make_container):
    """Pod `inbound` is limited towards it only, `outbound` from it only, `free` not at all:
    each limited direction holds (UDP at 5x, TCP), each other direction does not."""
    pods = {name: make_container(name) for name in ("inbound", "outbound", "free")}
    asked = {"inbound": limits(ingress=LIMIT), "outbound": limits(egress=LIMIT), "free": {}}
    for name, container in pods.items():
        conf = runtime.netconf("1.0.0", bridge, vlan=VLAN,
                               runtimeConfig={"bandwidth": asked[name]} if asked[name] else {})
        runtime.ok("ADD", conf, container)
    inbound, outbound, free = (end(c, "net1") for c in pods.values())
    port_in, port_out = (names.host_veth(pods[n].id, "net1") for n in ("inbound", "outbound"))
    assert qos_of(port_in) == {"type": "linux-htb", "max-rate": str(LIMIT), "burst": str(BURST)}
    assert qos_of(port_out) == {}
    assert len([m for m in hostnet.meters(bridge) if m > METER_BASE]) == 1
    assert len(meter_rules(bridge)) == 1
    held("UDP towards a pod (ingress)", lambda: udp_rate(free, inbound, OFFERED))
    held("UDP from a pod (egress)", lambda: udp_rate(outbound, free, OFFERED))
    unlimited("UDP from a pod limited towards it", lambda: udp_rate(inbound, free, OFFERED))
    unlimited("UDP towards a pod limited from it", lambda: udp_rate(free, outbound, OFFERED))
    held("TCP towards a pod (ingress)", lambda: tcp_rate(free, inbound))
    held("TCP from a pod (egress)", lambda: tcp_rate(outbound, free))
    for name, container in pods.items():
        runtime.ok("DEL", runtime.netconf("1.0.0", bridge, vlan=VLAN), container)
    assert hostnet.meters(bridge) == [] and meter_rules(bridge) == []
    assert hostnet.qos_rows("QoS", [c.id for c in pods.values()]) == []
    print("\nmeasured:", {k: f"{v / 1e6:.2f} Mbit/s" for k, v in FIGURES.items()})


def test_exec_network_default_holds_both_ways_and_teardown_removes_it(tmp_path, bridge,
                                                                       make_container):
    """A network's default in config.yaml limits every pod of it, both ways (exec
    front-end); teardown removes the meter, its rule and the QoS with the port."""
    network = {"name": "limited", "vlans": "all", "subnet": "10.96.0.0/24",
               "bandwidth": limits(LIMIT, LIMIT)}
    plugin = make_plugin(str(tmp_path), {"bridge": bridge, "networks": [network]})
    a, b = make_container("a"), make_container("b")
    plugin.ok("setup", "default", "31-a", a.id)
    plugin.ok("setup", "default", "31-b", b.id)
    a_end, b_end = end(a, "eth1"), end(b, "eth1")
    # Both pods are limited both ways: what b receives from a is held by a's egress meter
    # and b's ingress QoS alike.
    held("UDP between two limited pods (exec)", lambda: udp_rate(a_end, b_end, OFFERED))
    assert len([m for m in hostnet.meters(bridge) if m > METER_BASE]) == 2
    plugin.ok("teardown", "default", "31-a", a.id)
    plugin.ok("teardown", "default", "31-b", b.id)
    assert hostnet.meters(bridge) == [] and meter_rules(bridge) == []
    assert hostnet.qos_rows("QoS", [a.id, b.id]) == []


def test_a_limit_over_the_node_maximum_is_refused_and_nothing_is_made(runtime, bridge,
                                                                       container):
    conf = runtime.netconf("1.0.0", bridge, vlan=VLAN,
                           runtimeConfig={"bandwidth": limits(ingress=3 * LIMIT)})
    body = runtime.fails(INVALID_CONFIG, "ADD", conf, container)
    assert "bandwidth_max.ingressRate" in body["msg"] and "\n" not in body["msg"], body
    assert pluginstate.our_ports(bridge) == {} and hostnet.meters(bridge) == []
    assert hostnet.qos_rows("QoS", [container.id]) == []


def test_gc_removes_the_limits_of_a_port_lost_without_teardown(tmp_path, bridge, container):
    """A port deleted behind the plugin's back (a crash between the steps of a teardown)
    leaves its QoS rows and its meter: gc finds them by their marks and ids."""
    network = {"name": "limited", "vlans": "all", "subnet": "10.96.0.0/24",
               "bandwidth": limits(LIMIT, LIMIT)}
    plugin = make_plugin(str(tmp_path), {"bridge": bridge, "networks": [network]})
    plugin.ok("setup", "default", "31-a", container.id)
    hostnet.ovs("del-port", names.host_veth(container.id, "eth1"))
    assert hostnet.qos_rows("QoS", [container.id]) and hostnet.meters(bridge)
    swept = {a["what"].split()[0] for a in json.loads(plugin.ok("gc", "--json").output)}
    assert {"QoS", "Queue", "meter"} <= swept, swept
    assert hostnet.qos_rows("QoS", [container.id]) == []
    assert hostnet.qos_rows("Queue", [container.id]) == []
    assert hostnet.meters(bridge) == []
    plugin.ok("teardown", "default", "31-a", container.id)


def test_a_limited_port_keeps_its_guard_until_it_is_deleted(tmp_path, bridge, container):
    """Teardown removes the egress meter first, while the port still holds its OpenFlow
    number; the meter's rule shares the attachment's cookie with the port's GUARD rules,
    and those must stay until the port is gone, or the pod sends unguarded meanwhile. A
    stand-in ovs-vsctl first on the plugin's PATH dumps the port's table-0 rules at the
    moment the port is deleted, then runs the real one."""
    network = {"name": "limited", "vlans": "all", "subnet": "10.96.0.0/24",
               "bandwidth": limits(egress=LIMIT)}
    plugin = make_plugin(str(tmp_path), {"bridge": bridge, "networks": [network]})
    plugin.ok("setup", "default", "31-a", container.id)
    cookie = flows.cookie(names.host_veth(container.id, "eth1"))
    guarded = guard_rules(bridge, cookie)
    assert guarded, "setup left the port without GUARD rules"
    seen, shims = tmp_path / "at-del-port", tmp_path / "shims"
    stand_in(shims, "ovs-vsctl", f"case \" $* \" in *' del-port '*) ovs-ofctl --timeout=5 "
             f"dump-flows {bridge} 'table=0,cookie={cookie:#x}/-1' > {seen};; esac")
    plugin.ok("teardown", "default", "31-a", container.id,
              env={"PATH": f"{shims}:{os.environ['PATH']}"})
    assert seen.exists(), "the stand-in never saw the port deleted"
    at_deletion = [line for line in seen.read_text().splitlines() if "actions=" in line]
    assert len(at_deletion) == len(guarded), seen.read_text()
    assert guard_rules(bridge, cookie) == [] and hostnet.meters(bridge) == []


def guard_rules(bridge: str, cookie: int) -> list[Flow]:
    return [f for f in Ofctl(5).dump(bridge, cookie) if f.table == flows.GUARD]


def test_check_compares_limits_and_an_add_with_other_limits_puts_them_in_force(runtime, bridge,
                                                                               container):
    """CHECK names limits that differ from the ones in force; ADD again with other limits
    (or none) replaces them, the old meter and its rule included."""
    limited = runtime.netconf("1.0.0", bridge, vlan=VLAN,
                              runtimeConfig={"bandwidth": limits(egress=LIMIT)})
    added = json.loads(runtime.ok("ADD", limited, container).stdout)
    runtime.ok("CHECK", {**limited, "prevResult": added}, container)
    plain = runtime.netconf("1.0.0", bridge, vlan=VLAN)
    error = runtime.fails(1003, "CHECK", {**plain, "prevResult": added}, container)
    assert "bandwidth limits ingress none, egress 20 Mbit/s" in error["msg"], error
    assert "wanted ingress none, egress none" in error["msg"], error
    added = json.loads(runtime.ok("ADD", plain, container).stdout)
    assert [m for m in hostnet.meters(bridge) if m > METER_BASE] == [] and \
        meter_rules(bridge) == []
    runtime.ok("CHECK", {**plain, "prevResult": added}, container)
    inbound = runtime.netconf("1.0.0", bridge, vlan=VLAN,
                              runtimeConfig={"bandwidth": limits(ingress=LIMIT)})
    runtime.ok("ADD", inbound, container)
    assert qos_of(names.host_veth(container.id, "net1"))["max-rate"] == str(LIMIT)
    runtime.ok("DEL", inbound, container)
    assert hostnet.qos_rows("QoS", [container.id]) == [] and hostnet.meters(bridge) == []
