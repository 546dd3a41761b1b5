"""A trunk across nodes (issue 21's trunks, over the two-node bed): node a's pods carry a
VLAN tagged (config.yaml's `trunk`), and through the node's uplink, the switch and node b's
uplink, a listed VLAN's tagged frames reach node b's pod of that VLAN, and that pod's
frames reach the trunk pod tagged; an unlisted VLAN, carried by both uplinks, reaches
nothing. Raw frames as in tests/e2e/test_trunk.py (tests/support/vlanframes.py)."""

from __future__ import annotations

import json

from tests.nodes.conftest import UPLINK_VLANS, Cluster, PodRef
from tests.support import hostnet, vlanframes

EXTRA = 24  # carried by both uplinks in this test, listed in no trunk


def _netns(pod: PodRef) -> str:
    return f"/proc/{pod.pid}/ns/net"


def _mac(pod: PodRef) -> str:
    shown = hostnet.run(["nsenter", f"--net={_netns(pod)}", "ip", "-j", "link", "show", "eth1"])
    return json.loads(shown.stdout)[0]["address"]


def _ip(pod: PodRef) -> str:
    (address,) = hostnet.container_addresses(pod.container.id, "eth1")
    return address.split("/")[0]


def test_a_trunk_carries_its_listed_vlan_to_the_other_node_and_no_other(
        cluster: Cluster) -> None:
    vlans = [*UPLINK_VLANS, EXTRA]
    for name, plugin in cluster.plugins.items():
        node = cluster.bed.node(name)
        plugin.configure(uplink={"interface": node.uplink, "vlans": vlans},
                         **({"trunk": [{"id": 23}]} if name == "a" else {}))
    cluster.init_all()
    t = cluster.pod("a", "22-t")  # native VLAN 22, VLAN 23 tagged
    u, v, x = (cluster.pod("b", name) for name in ("23-u", "22-v", f"{EXTRA}-x"))
    listeners = {pod.name: vlanframes.Listener(_netns(pod), "eth1") for pod in (t, u, v, x)}
    t_mac = _mac(t)
    vlanframes.send(_netns(t), "eth1", t_mac, 23, "t-23")
    vlanframes.send(_netns(t), "eth1", t_mac, EXTRA, f"t-{EXTRA}")
    vlanframes.send(_netns(t), "eth1", t_mac, 0, "t-native", _ip(t))
    vlanframes.send(_netns(u), "eth1", _mac(u), 0, "from-u", _ip(u))
    vlanframes.send(_netns(v), "eth1", _mac(v), 0, "from-v", _ip(v))
    heard = {name: listener.heard() for name, listener in listeners.items()}

    assert heard["23-u"].get("t-23", {}).get("frames") == 3, heard["23-u"]
    assert heard["22-v"].get("t-native", {}).get("frames") == 3, heard["22-v"]
    assert {m for m in heard["23-u"] if m.startswith("t-")} == {"t-23"}
    assert {m for m in heard["22-v"] if m.startswith("t-")} == {"t-native"}
    assert not any(m.startswith("t-") for m in heard[f"{EXTRA}-x"]), heard[f"{EXTRA}-x"]
    # Towards the trunk pod, across the uplinks: VLAN 23 tagged, its native VLAN untagged.
    assert heard["22-t"]["from-u"]["frames"] == 3 and heard["22-t"]["from-u"]["tags"] == [23]
    assert heard["22-t"]["from-v"]["frames"] == 3 and heard["22-t"]["from-v"]["tags"] == [0]
    for node, pod in (("a", t), ("b", u), ("b", v), ("b", x)):
        cluster.teardown(node, pod)
