"""Trunks to pods on real Open vSwitch: raw tagged frames from a trunk pod reach the pods of
the VLANs its trunk lists, and nothing else; untagged frames reach its native VLAN, or
nowhere when it has none; frames towards it arrive with their tag (in PACKET_AUXDATA).

Pods are attached through the CNI front-end (tests/support/cni_runtime.py), once as Docker
containers (the pipework plumber) and once as namespaces made in the CRI order (the netns
plumber, as containerd and CRI-O pods get); the frames are written and read by
tests/support/vlanframes.py inside their namespaces. Everything a test makes (containers,
namespaces, ports, leases, rules) is removed and checked (scope).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from pipework_wrapper import iproute
from pipework_wrapper.ofctl import Ofctl
from plugin.core import flows
from plugin.core.marks import KEYS
from plugin.policy import trunk
from tests.support import containerd as C
from tests.support import hostnet, pluginstate, vlanframes
from tests.support.cni_runtime import Runtime, pod_args

VERSION = "1.0.0"
NATIVE_TRUNK = [{"id": 100}, {"minID": 200, "maxID": 202}]


@dataclass(frozen=True)
class Pod:
    netns: str
    where: dict  # the runtime's keywords that name its sandbox: a container, or an env
    conf: dict
    result: dict

    @property
    def mac(self) -> str:
        return self.result["interfaces"][1]["mac"]

    @property
    def port(self) -> str:
        return self.result["interfaces"][0]["name"]

    @property
    def ip(self) -> str:
        return self.result["ips"][0]["address"].split("/")[0]

    def send(self, vlan: int, marker: str, src_ip: str = "") -> None:
        vlanframes.send(self.netns, "net1", self.mac, vlan, marker, src_ip)

    def listen(self) -> vlanframes.Listener:
        return vlanframes.Listener(self.netns, "net1")


@pytest.fixture
def runtime(tmp_path) -> Runtime:
    return Runtime(str(tmp_path))


@pytest.fixture(params=["docker", "netns"])
def pods(request, runtime, bridge, scope, make_container, namespaces):
    """Factory: `pods(name, vlan=..., trunk=...)` makes a sandbox (a Docker container, or a
    namespace in the CRI order) and ADDs it; every pod is DELeted at teardown, and no port
    or lease may be left."""
    made: list[Pod] = []

    def factory(name: str, **keys: Any) -> Pod:
        if request.param == "docker":
            container = make_container(name)
            netns, where = f"/proc/{container.pid}/ns/net", {"container": container}
            args = pod_args("default", name, container.id)
        else:
            ns, sandbox = namespaces(), C.random_container_id()
            scope.containers[sandbox] = 0
            netns = ns.path
            where = {"env": {"CNI_CONTAINERID": sandbox, "CNI_NETNS": ns.path}}
            args = pod_args("default", name, sandbox)
        conf = runtime.netconf(VERSION, bridge, **keys)
        reply = runtime.ok("ADD", conf, args=args, **where)
        made.append(Pod(netns, where, conf, json.loads(reply.stdout)))
        marks = pluginstate.our_ports(bridge)[made[-1].port]["external_ids"]
        assert marks[KEYS["plumber"]] == ("pipework" if request.param == "docker" else "netns")
        return made[-1]

    yield factory
    for pod in made:
        runtime.ok("DEL", pod.conf, **pod.where)
    assert pluginstate.our_ports(bridge) == {}
    assert pluginstate.leases(runtime.state_dir) == []


def port_vlans(name: str) -> tuple[str, Any, list[int]]:
    (row,) = [p for p in hostnet.ovs_list("Port", ["name", "vlan_mode", "tag", "trunks"])
              if p["name"] == name]
    trunks = row["trunks"] if isinstance(row["trunks"], list) else [row["trunks"]]
    return row["vlan_mode"], row["tag"], sorted(trunks)


def frames(heard: dict, marker: str) -> int:
    return heard.get(marker, {}).get("frames", 0)


def test_listed_vlans_arrive_tagged_both_ways_and_untagged_frames_in_the_native_vlan(
        runtime, pods):
    t = pods("t", vlan=10, trunk=NATIVE_TRUNK)
    access = {vlan: pods(f"p{vlan}", vlan=vlan) for vlan in (10, 100, 201, 300)}
    assert port_vlans(t.port) == ("native-untagged", 10, [100, 200, 201, 202])
    assert port_vlans(access[100].port) == ([], 100, [])

    listeners = {vlan: pod.listen() for vlan, pod in [*access.items(), (0, t)]}
    # Tagged VLANs listed without addresses admit any frame from the pod's MAC; untagged
    # (its native VLAN) and access pods' frames pass the guard only from their addresses.
    for vlan in (100, 201, 300):
        t.send(vlan, f"t-{vlan}")
    t.send(0, "t-0", src_ip=t.ip)
    access[100].send(0, "from-100", src_ip=access[100].ip)
    access[10].send(0, "from-10", src_ip=access[10].ip)
    heard = {vlan: listener.heard() for vlan, listener in listeners.items()}

    assert frames(heard[100], "t-100") == 3 and heard[100]["t-100"]["tags"] == [0]
    assert frames(heard[201], "t-201") == 3
    assert frames(heard[10], "t-0") == 3  # untagged: the native VLAN
    expected = {10: {"t-0"}, 100: {"t-100"}, 201: {"t-201"}, 300: set()}  # 300: unlisted
    for vlan, markers in expected.items():
        assert {m for m in heard[vlan] if m.startswith("t-")} == markers, heard[vlan]
    # Towards the trunk pod: VLAN 100 arrives tagged (the tag beside the frame, not in it),
    # its native VLAN untagged.
    assert heard[0]["from-100"] == {"frames": 3, "tags": [100], "inline": False}
    assert heard[0]["from-10"] == {"frames": 3, "tags": [0], "inline": False}

    with_prev = {**t.conf, "prevResult": t.result}
    assert runtime.ok("CHECK", with_prev, **t.where).stdout == ""
    changed = {**with_prev, "trunk": [{"id": 100}]}
    error = runtime.fails(1003, "CHECK", changed, **t.where)
    assert "trunks VLANs [100, 200, 201, 202], wanted [100] (the trunk changed)" in \
        error["msg"], error


def test_without_a_native_vlan_untagged_frames_arrive_nowhere(runtime, pods):
    """The pod's VLAN listed in its trunk: no native VLAN. Its address comes from that VLAN's
    network, on its interface as for any pod."""
    u = pods("u", vlan=100, trunk=[{"id": 100}, {"id": 200}])
    access = {vlan: pods(f"p{vlan}", vlan=vlan) for vlan in (100, 200)}
    assert port_vlans(u.port) == ("trunk", [], [100, 200])
    assert iproute.container_addresses(u.netns, "net1") == [u.result["ips"][0]["address"]]

    listeners = {vlan: pod.listen() for vlan, pod in [*access.items(), (0, u)]}
    # From its own address, as the guard admits on the pod's VLAN (tagged, with no native
    # VLAN); untagged, even from that address, it goes nowhere.
    for vlan in (0, 100):
        u.send(vlan, f"u-{vlan}", src_ip=u.ip)
    u.send(200, "u-200")
    access[200].send(0, "from-200", src_ip=access[200].ip)
    heard = {vlan: listener.heard() for vlan, listener in listeners.items()}

    assert frames(heard[100], "u-0") == frames(heard[200], "u-0") == 0
    assert frames(heard[100], "u-100") == 3 and frames(heard[100], "u-200") == 0
    assert frames(heard[200], "u-200") == 3 and frames(heard[200], "u-100") == 0
    assert heard[0]["from-200"]["tags"] == [200]


def test_the_guard_holds_each_vlan_to_what_its_trunk_entry_lists(runtime, bridge, pods):
    """Port security's rules for a trunk pod, on real OVS: an address listed for VLAN 100
    passes there and not on VLAN 202; VLAN 201 is held to the pod's MAC alone; the pod's
    own address passes untagged, not tagged."""
    entries = [{"id": 100, "addresses": ["10.98.0.5/24"]}, {"id": 201},
               {"id": 202, "addresses": ["10.98.2.5/24"]}]
    t = pods("t", vlan=10, trunk=entries)
    access = {vlan: pods(f"p{vlan}", vlan=vlan) for vlan in (10, 100, 201, 202)}
    ofport = int(hostnet.ovs("get", "Interface", t.port, "ofport").strip())
    guard = flows.Guard(t.port, ofport, t.mac, (t.result["ips"][0]["address"],),
                        trunk=trunk.parse(entries), vlan=10)
    ofctl = Ofctl(5.0)
    ofctl.bundle(bridge, [*flows.bridge_rules(), *flows.replace(guard)])
    try:
        listeners = {vlan: pod.listen() for vlan, pod in access.items()}
        sends = {"own-untagged": (0, t.ip), "own-100": (100, t.ip),
                 "a100-100": (100, "10.98.0.5"), "a202-100": (100, "10.98.2.5"),
                 "a202-202": (202, "10.98.2.5"), "any-201": (201, "192.0.2.7"),
                 "eth-201": (201, ""), "eth-100": (100, "")}
        for marker, (vlan, source) in sends.items():
            t.send(vlan, marker, source)
        heard = {vlan: listener.heard() for vlan, listener in listeners.items()}
    finally:
        ofctl.delete(bridge, [f"delete cookie={flows.cookie(t.port):#x}/-1"])
    assert set(heard[10]) == {"own-untagged"}
    assert set(heard[100]) == {"a100-100"}  # not its own address tagged, not VLAN 202's
    assert set(heard[201]) == {"any-201", "eth-201"}  # MAC-only: any address, any type
    assert set(heard[202]) == {"a202-202"}
    assert ofctl.dump(bridge, flows.cookie(t.port)) == []


def test_the_exec_front_end_takes_the_trunk_from_config_yaml(tmp_path, bridge, make_container):
    """config.yaml's trunk on the kubelet's plugin: each pod's VLAN from its name is native,
    unless the trunk lists it; setup again plugs a port anew when the trunk was edited."""
    from plugin import names
    from tests.support.kubelet import make_plugin

    config = {"bridge": bridge, "networks": [{"name": "pods", "vlans": "all",
                                              "subnet": "10.99.0.0/24"}],
              "trunk": [{"id": 100}]}
    plugin = make_plugin(str(tmp_path), config)
    pods = {"10-t": make_container("t"), "100-u": make_container("u")}
    try:
        for pod, c in pods.items():
            plugin.ok("setup", "default", pod, c.id)
        port = {pod: names.host_veth(c.id, "eth1") for pod, c in pods.items()}
        assert port_vlans(port["10-t"]) == ("native-untagged", 10, [100])
        assert port_vlans(port["100-u"]) == ("trunk", [], [100])  # its VLAN listed: no native

        t = pods["10-t"]
        netns = f"/proc/{t.pid}/ns/net"
        mac = json.loads(hostnet.run(["nsenter", f"--net={netns}", "ip", "-j", "link", "show",
                                      "eth1"]).stdout)[0]["address"]
        listener = vlanframes.Listener(f"/proc/{pods['100-u'].pid}/ns/net", "eth1")
        vlanframes.send(netns, "eth1", mac, 100, "t-100")
        assert listener.heard()["t-100"]["tags"] == [100]  # trunk to trunk: still tagged

        plugin.configure({**config, "trunk": [{"id": 100}, {"id": 200}]})
        plugin.ok("setup", "default", "10-t", t.id)
        assert port_vlans(port["10-t"]) == ("native-untagged", 10, [100, 200])
    finally:
        for pod, c in pods.items():
            plugin.ok("teardown", "default", pod, c.id)
    assert pluginstate.our_ports(bridge) == {}
    assert pluginstate.leases(plugin.state_dir) == []
