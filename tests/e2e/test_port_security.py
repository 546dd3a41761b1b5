"""Port security with raw frames on real Open vSwitch: a pod can only speak as itself.

A sender in a pod's network namespace writes crafted frames on a raw socket
(tests/support/frames.py, the host's Python through `nsenter --net`), and a
listener in a neighbour pod on the same VLAN counts, per marker, what arrives.
Forged frames (another MAC, another IPv4 or IPv6 source, an ARP reply or a
neighbour advertisement claiming the neighbour's address, a router advertisement,
a DHCP offer) must arrive 0 times; the pod's own (its ARP probe, gratuitous ARP and
NA, datagrams from its addresses and link-local address, its allowed address
pairs) at least once; its TCP/UDP/ICMP pass `traffic.talk`. Both front-ends: the
kubelet's argv with Docker pods through pipework, and CNI with the netns plumber.
"""

from __future__ import annotations

import subprocess
import time
from typing import Callable

import pytest

from pipework_wrapper.ofctl import Flow
from pipework_wrapper.ovs import Ovs
from plugin import names
from plugin.core import flows
from plugin.core.guard import choose
from tests.support import containerd as C
from tests.support import frames as F
from tests.support import hostnet
from tests.support.cni_runtime import Runtime
from tests.support.frames import Pod, heard, pod_at
from tests.support.kubelet import make_plugin
from tests.support.pluginstate import our_ports
from tests.support.traffic import End, talk

NS = "default"
NET = {"name": "guarded", "vlans": "all", "subnets": ["10.95.0.0/24", "fd00:95::/64"]}
VIP, NOT_VIP = "10.95.0.200", "10.95.0.201"
STRANGER = "02:66:00:00:00:01"


def forgeries(a: Pod, b: Pod) -> dict[str, bytes]:
    """What `a` must not get through to `b`."""
    return {"forged-mac": F.udp_from(STRANGER, a.ip4),
            "forged-ip4": F.udp_from(a.mac, "10.95.0.250"),
            "forged-ip6": F.udp_from(a.mac, "fd00:95::bad"),
            "arp-claim": F.arp_from(a.mac, 2, b.ip4, b.ip4),
            "na-claim": F.advertisement(a.mac, a.ip6, b.ip6),
            "ra": F.router_advertisement(a.mac, a.link_local or a.ip6),
            "dhcp-offer": F.dhcp_offer(a.mac, a.ip4)}


def honest(a: Pod) -> dict[str, bytes]:
    """What `a` may send: as itself."""
    found = {"own-ip4": F.udp_from(a.mac, a.ip4), "own-ip6": F.udp_from(a.mac, a.ip6),
             "arp-probe": F.arp_from(a.mac, 1, "0.0.0.0", a.ip4),
             "garp": F.arp_from(a.mac, 1, a.ip4, a.ip4),
             "na-own": F.advertisement(a.mac, a.ip6, a.ip6)}
    if a.link_local:
        found["own-link-local"] = F.udp_from(a.mac, a.link_local)
    return found


def ends(pod: Pod) -> list[End]:
    return [End(pod.netns, pod.ip4, pod.ifname), End(pod.netns, pod.ip6, pod.ifname)]


def port_rules(bridge: str) -> list[Flow]:
    """The plugin's rules on `bridge` other than the bridge's own default ones."""
    return [r for r in hostnet.plugin_rules(bridge) if r.cookie != flows.BRIDGE]


class Front:
    """Two ways to make a pod on `bridge`: the kubelet's argv (Docker, pipework) or CNI
    (a CRI-order namespace, the netns plumber). `add(hint)` returns the pod's
    namespace path and interface; `remove_all()` tears every pod down."""

    def __init__(self, kind: str, tmp_path, bridge: str, node: dict, scope,
                 make_container: Callable, namespaces: Callable) -> None:
        self.kind, self.bridge, self.scope = kind, bridge, scope
        self.make_container, self.namespaces = make_container, namespaces
        self.done: list[Callable[[], None]] = []
        config = {"bridge": bridge, "networks": [NET], **node}
        if kind == "kubelet":
            self.plugin = make_plugin(str(tmp_path), config)
        else:
            self.runtime = Runtime(str(tmp_path))
            self.conf = self.runtime.netconf("1.0.0", bridge, vlan=22)
            self.runtime.configure(**{**config, "cni": {**node.get("cni", {}),
                                                        "bridges": [bridge]}})

    @property
    def ifname(self) -> str:
        return "eth1" if self.kind == "kubelet" else "net1"

    def sandbox(self, hint: str, **conf) -> tuple[str, str, Callable[[], None]]:
        """A pod's namespace before setup, its port's name, and the setup that attaches it
        (CNI: with `conf` over the network config)."""
        if self.kind == "kubelet":
            container = self.make_container(hint)
            pod = f"22-{hint}"
            self.done.append(lambda: self.plugin.ok("teardown", NS, pod, container.id))
            return (f"/proc/{container.pid}/ns/net", names.host_veth(container.id, "eth1"),
                    lambda: self.plugin.ok("setup", NS, pod, container.id) and None)
        ns, sandbox = self.namespaces(), C.random_container_id()
        self.scope.containers[sandbox] = 0
        env = {"CNI_CONTAINERID": sandbox, "CNI_NETNS": ns.path}
        network = {**self.conf, **conf}
        self.done.append(lambda: self.runtime.ok("DEL", network, env=env) and None)
        return (ns.path, names.host_veth(sandbox, "net1"),
                lambda: self.runtime.ok("ADD", network, env=env) and None)

    def add(self, hint: str, **conf) -> Pod:
        netns, port, setup = self.sandbox(hint, **conf)
        setup()
        return pod_at(netns, self.ifname, port)

    def remove_all(self) -> None:
        for undo in reversed(self.done):
            undo()
        self.done.clear()


@pytest.fixture
def front(request, tmp_path, bridge, scope, make_container, namespaces):
    made: list[Front] = []

    def make(kind: str, **node) -> Front:
        found = Front(kind, tmp_path / kind, bridge, node, scope, make_container, namespaces)
        made.append(found)
        return found

    yield make
    for found in made:
        found.remove_all()


FRONTS = ["kubelet", "cni"]


@pytest.mark.parametrize("kind", FRONTS)
def test_a_pod_speaks_only_as_itself(front, bridge, kind):
    pods = front(kind)
    a, b = pods.add("a"), pods.add("b")
    assert a.link_local and a.ip6, a  # dual stack: the link-local address is admitted too
    counts = heard(a, b, {**forgeries(a, b), **honest(a)})
    assert {k: counts[k] for k in forgeries(a, b)} == {k: 0 for k in forgeries(a, b)}, counts
    assert all(counts[k] > 0 for k in honest(a)), counts
    for a_end, b_end in zip(ends(a), ends(b)):
        talk(a_end, b_end)
    pods.remove_all()
    assert our_ports(bridge) == {} and port_rules(bridge) == []


@pytest.mark.parametrize("kind", FRONTS)
def test_the_guard_switched_off_by_the_node_lets_forged_frames_through(front, bridge, kind):
    """The control of the test above: the same forged frames, counted by the same
    listener, do arrive when the node turns the guard off."""
    pods = front(kind, port_security=False)
    a, b = pods.add("a"), pods.add("b")
    assert port_rules(bridge) == []
    counts = heard(a, b, forgeries(a, b))
    assert all(counts[k] > 0 for k in ("forged-mac", "forged-ip4", "arp-claim", "na-claim")), \
        counts
    pods.remove_all()


def test_an_allowed_address_pair_is_admitted_and_no_other_address(front, bridge):
    """A tenant's VIP, inside the node's cni.address_pair_cidrs (CNI, netns plumber)."""
    pods = front("cni", cni={"address_pair_cidrs": ["10.95.0.192/28"]})
    a = pods.add("a", allowed_address_pairs=[{"ip": VIP}])
    b = pods.add("b", allowed_address_pairs=[])
    counts = heard(a, b, {"vip": F.udp_from(a.mac, VIP), "vip-garp": F.arp_from(a.mac, 1, VIP,
                                                                                 VIP),
                          "not-vip": F.udp_from(a.mac, NOT_VIP)})
    assert counts["vip"] > 0 and counts["vip-garp"] > 0 and counts["not-vip"] == 0, counts
    pods.remove_all()
    assert port_rules(bridge) == []


@pytest.mark.parametrize("kind", FRONTS)
def test_no_window_a_pod_sending_forged_frames_as_its_interface_appears(front, bridge, kind):
    """A sender already running in the pod's namespace before setup sends forged frames in
    a loop from the moment its interface exists (and an honest ARP probe, which must get
    through once the port forwards): none of the forged ones is delivered, at any time."""
    pods = front(kind)
    b = pods.add("b")
    netns, _, setup = pods.sandbox("a")
    spam = {"self-forged-ip4": F.udp_from(STRANGER, "10.95.0.250"),
            "forged-mac": F.udp_from(STRANGER, b.ip4),
            "self-arp-claim": F.arp_from(STRANGER, 2, b.ip4, b.ip4),
            "self-arp-probe": F.arp_from(STRANGER, 1, "0.0.0.0", "10.95.0.77")}
    listening = F.listen(b.netns, b.ifname, list(spam), seconds=12)
    sender = F.spam(netns, pods.ifname, spam, seconds=10)
    setup()
    returned = time.time()
    sent = sender.result()
    counts = listening.result()["counts"]
    assert sent["stopped_at"] > returned + 1, (sent, returned)  # it went on after setup
    assert all(n > 100 for n in sent["sent"].values()), sent
    assert counts["self-arp-probe"] > 0, (counts, sent)  # the port did forward its frames
    assert counts["self-forged-ip4"] == counts["forged-mac"] == counts["self-arp-claim"] == 0, \
        (counts, sent)
    pods.remove_all()


def test_a_new_port_on_a_reused_number_is_not_governed_by_old_rules(front, bridge):
    """A teardown killed after the port went leaves its rules; a new port that gets the same
    OpenFlow number must not be governed by them: here they would admit the dead pod's
    identity (its MAC and address) from whatever port has the number."""
    pods = front("kubelet")
    dead, b = pods.add("dead"), pods.add("b")
    stale = [r for r in port_rules(bridge) if r.cookie == flows.cookie(dead.port)]
    assert stale
    netns, new_port, setup = pods.sandbox("a")
    # The number the new port will ask for: the dead pod's rules are put on it.
    number = choose(new_port, Ovs(5).ofports())
    subprocess.run(["ovs-ofctl", "--bundle", "add-flows", bridge, "-"], check=True, timeout=30,
                   text=True, input="".join(
                       f"add table={r.table},priority={r.priority},cookie={r.cookie:#x},"
                       f"{_in_port(r.match, number)},actions={r.actions}\n" for r in stale))
    setup()
    a = pod_at(netns, pods.ifname, new_port)
    ours = {r.cookie for r in port_rules(bridge) if f"in_port={number}" in r.match}
    assert ours == {flows.cookie(new_port)}, ours
    counts = heard(a, b, {"as-the-dead": F.udp_from(dead.mac, dead.ip4),
                          "own": F.udp_from(a.mac, a.ip4)})
    assert counts == {"as-the-dead": 0, "own": counts["own"]} and counts["own"] > 0, counts
    hostnet.run(["ovs-ofctl", "del-flows", bridge, f"cookie={flows.cookie(dead.port):#x}/-1"])
    pods.remove_all()
    assert port_rules(bridge) == []


def _in_port(match: str, number: int) -> str:
    return ",".join(f"in_port={number}" if part.startswith("in_port=") else part
                    for part in match.split(","))
