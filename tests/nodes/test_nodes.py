"""The PLUGIN across two nodes (tests.support.nodebed): installed once with its own command,
each node with its own config.yaml, state dir and log, called INSIDE the node exactly as that
node's kubelet calls it (stdin /dev/null, stdout and stderr read together).

Every test runs `init` on both nodes itself (the kubelet does at start): it plugs each
node's uplink into its bridge as a trunk, so VLANs span the nodes through the switch. Each
test has its own etcd prefix and namespace; the ``cluster`` fixture tears down what is still
attached, removes containers and uplinks, and fails the test if a port, veth, netns link,
record or lease is left.

Run with ``-s`` to see the measurements (RTTs, how soon a moved pod answers). Times are
printed, never asserted: the host is shared and has two cores.
"""

from __future__ import annotations

import calendar
import json
import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipework_wrapper.announce import announce
from tests.nodes.conftest import Cluster, PodRef, records
from tests.support import hostnet, nodebed

MAC_77 = "0a:58:0a:42:00:4d"  # 10.66.0.77: the MAC follows from the address


# --- helpers -------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    """An OVSDB set column decoded: one element comes as the bare atom."""
    return value if isinstance(value, list) else [value]


def eth1(pod: PodRef) -> tuple[list[str], str | None]:
    """(addresses as a/len, MAC) of eth1 inside the pod; ([], None) when it has none."""
    proc = hostnet.in_netns(pod.pid, "ip", "-j", "addr", "show", "dev", "eth1", check=False)
    if proc.returncode != 0:
        return [], None
    link = json.loads(proc.stdout)[0]
    return ([f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
             if a.get("family") == "inet"], link.get("address"))


def ping(src: PodRef, address: str, **kwargs: Any) -> nodebed.PingResult:
    return nodebed.ping(src.pid, address.split("/")[0], **kwargs)


def rtt_ms(src: PodRef, address: str) -> float:
    """Median of 5 echo round trips, after one that resolves ARP and warms the flows."""
    assert ping(src, address).ok, f"{src.name} -> {address}: no reply"
    result = ping(src, address, count=5, interval=0.2)
    assert result.ok and len(result.rtt_ms) == 5, result.output
    return statistics.median(result.rtt_ms)


def switch_port_of(cluster: Cluster, mac: str, vlan: int) -> str | None:
    for entry in cluster.bed.switch.fdb(cluster.bed.switch.bridge):
        if entry["mac"] == mac and entry["vlan"] == vlan:
            return entry["port"]
    return None


def check(cluster: Cluster, node: str, name: str) -> dict[str, Any]:
    """One doctor check of `node`, by name (doctor --json; it exits 1 when a check fails)."""
    call = cluster[node]("doctor", "--json")
    found = {c["name"]: c for c in call.json()}
    failed = [n for n, c in found.items() if not c["ok"]]
    assert (call.code == 0) == (not failed), call.output
    return found[name]


def uplink_listed(cluster: Cluster, node: str) -> list[dict[str, Any]]:
    return [row for row in cluster[node].listed() if row["pod"] == "(uplink)"]


def first_replies(sources: dict[str, PodRef], address: str, since: float
                  ) -> dict[str, tuple[nodebed.PingResult, float]]:
    """One `ping -c 1 -W 2` from each source at once; (result, seconds from `since` until
    that ping process had its answer) per source."""
    out: dict[str, tuple[nodebed.PingResult, float]] = {}

    def one(label: str, pod: PodRef) -> None:
        result = ping(pod, address, count=1, timeout=2)
        out[label] = (result, time.monotonic() - since)

    threads = [threading.Thread(target=one, args=item) for item in sources.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


# --- 1. the uplink ----------------------------------------------------------------------------


def test_init_plugs_the_uplink_as_a_marked_trunk(cluster: Cluster) -> None:
    for name, plugin in cluster.plugins.items():
        assert plugin.node.uplink not in plugin.ports()
        assert plugin.ok("init").output == ""
        port = plugin.ports()["uplink0"]
        assert as_list(port["trunks"]) == [22, 23], port
        assert port["vlan_mode"] == "trunk" and port["tag"] == [], port
        assert port["external_ids"] == {"owner": "vlanpipe", "vlanpipe-role": "uplink",
                                        "vlanpipe-node": name}, port

        # init twice changes nothing: the same row, the same columns
        plugin.ok("init")
        assert plugin.ports() == {"uplink0": port}

        uplink = check(cluster, name, "uplink uplink0")
        assert uplink["ok"] and "22,23" in uplink["detail"], uplink
        rows = uplink_listed(cluster, name)
        assert len(rows) == 1 and rows[0]["port"] == "uplink0", rows
        assert rows[0]["bridge"] == "k8s_br" and "22,23" in rows[0]["state"], rows


def test_init_follows_a_new_vlan_list_in_place(cluster: Cluster) -> None:
    """A new VLAN list: doctor sees the drift, init corrects the trunks in place. Every VLAN
    is a trunk with no list (from a list, the list is cleared), and back."""
    cluster.init_all()
    a = cluster["a"]
    a.configure(uplink={"interface": "uplink0", "vlans": [22, 23, 30]})
    drift = check(cluster, "a", "uplink uplink0")
    assert not drift["ok"] and "30" in drift["detail"], drift
    assert drift["fix"] == "run init: it corrects this", drift  # issue 25 item 8
    uuid = a.ports()["uplink0"]["_uuid"]
    a.ok("init")
    port = a.ports()["uplink0"]
    assert as_list(port["trunks"]) == [22, 23, 30] and port["_uuid"] == uuid, port
    assert port["external_ids"] == {"owner": "vlanpipe", "vlanpipe-role": "uplink",
                                    "vlanpipe-node": "a"}
    assert check(cluster, "a", "uplink uplink0")["ok"]
    assert "22,23,30" in uplink_listed(cluster, "a")[0]["state"]
    assert as_list(cluster["b"].ports()["uplink0"]["trunks"]) == [22, 23]  # b's own config

    a.configure(uplink={"interface": "uplink0", "vlans": "all"})
    a.ok("init")
    port = a.ports()["uplink0"]
    assert as_list(port["trunks"]) == [] and port["vlan_mode"] == "trunk", port
    assert check(cluster, "a", "uplink uplink0")["ok"]
    assert "every VLAN" in uplink_listed(cluster, "a")[0]["state"]
    a.configure(uplink={"interface": "uplink0", "vlans": [22, 23]})
    a.ok("init")
    assert as_list(a.ports()["uplink0"]["trunks"]) == [22, 23]


def test_init_moves_the_uplink_to_another_interface_unless_it_carries_an_address(
        cluster: Cluster) -> None:
    """Another interface as the uplink: init plugs it and unplugs the former one (two trunks
    into one network could loop); doctor names a former one left on the bridge. Carrying
    the host's own address, it is refused: as a bridge port it would cut the host off that
    network. Nothing changes then; doctor names the address too."""
    cluster.init_all()
    a = cluster["a"]
    a.node.run(["ip", "link", "add", "uplink1", "type", "veth", "peer", "name", "uplink1p"],
               check=True)
    try:
        a.node.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "uplink1"], check=True)
        a.configure(uplink={"interface": "uplink1", "vlans": [22, 23]})
        addressed = a("init")
        assert addressed.code != 0 and len(addressed.lines) == 1, addressed
        assert "192.0.2.1/24" in addressed.output and "move the address off uplink1" in \
            addressed.output, addressed
        assert list(a.ports()) == ["uplink0"]
        flagged = check(cluster, "a", "uplink uplink1")
        assert not flagged["ok"] and "192.0.2.1/24" in flagged["detail"], flagged
        # issue 25 item 8: not "run init", which refuses it; what init needs instead
        assert flagged["fix"].startswith("init refuses it: move the address off uplink1")
        assert "run init" not in flagged["fix"], flagged
        a.node.run(["ip", "addr", "del", "192.0.2.1/24", "dev", "uplink1"], check=True)
        stale = check(cluster, "a", "uplink uplink1")
        assert not stale["ok"] and "former uplink uplink0" in stale["detail"], stale
        a.ok("init")
        assert list(a.ports()) == ["uplink1"] and check(cluster, "a", "uplink uplink1")["ok"]
    finally:
        a.node.ovs("--if-exists", "del-port", "k8s_br", "uplink1")
        a.node.run(["ip", "link", "del", "uplink1"])


def test_init_brings_a_down_uplink_up(cluster: Cluster) -> None:
    cluster.init_all()
    a = cluster["a"]
    a.node.run(["ip", "link", "set", "uplink0", "down"], check=True)
    down = check(cluster, "a", "uplink uplink0")
    assert not down["ok"] and "uplink uplink0 is down" in down["detail"], down
    a.ok("init")
    assert check(cluster, "a", "uplink uplink0")["ok"]


def test_init_names_an_uplink_that_does_not_exist(cluster: Cluster) -> None:
    """init fails with one line naming it; doctor says so."""
    cluster.init_all()
    a = cluster["a"]
    a.configure(uplink={"interface": "nosuch0", "vlans": [22, 23]})
    failed = a("init")
    assert failed.code != 0 and len(failed.lines) == 1 and "nosuch0" in failed.output, failed
    assert a.last_log("init")["outcome"] == "error"
    missing = check(cluster, "a", "uplink nosuch0")
    assert not missing["ok"] and "nosuch0" in missing["detail"], missing
    assert "does not exist" in missing["detail"], missing
    print(f"\nnodes: init with a missing uplink: {failed.output.strip()!r}")


def test_init_leaves_an_uplink_port_it_did_not_make_untouched(cluster: Cluster) -> None:
    """A port of the uplink's name made by hand: init refuses, with one line, and changes
    nothing; doctor flags it."""
    cluster.init_all()
    b = cluster["b"]
    b.node.ovs("del-port", "k8s_br", "uplink0")
    b.node.ovs("add-port", "k8s_br", "uplink0")
    by_hand = b.ports()["uplink0"]
    refused = b("init")
    assert refused.code != 0 and len(refused.lines) == 1, refused
    assert "uplink0" in refused.output and "not vlanpipe's" in refused.output, refused
    assert b.ports() == {"uplink0": by_hand}
    assert by_hand["external_ids"] == {} and by_hand["trunks"] == [] and by_hand["tag"] == []
    assert not check(cluster, "b", "uplink uplink0")["ok"]
    print(f"\nnodes: init with a hand-made uplink port: {refused.output.strip()!r}")


# --- 2. VLANs across nodes -------------------------------------------------------------------


def test_same_vlan_spans_nodes_and_vlans_stay_apart(cluster: Cluster) -> None:
    cluster.init_all()
    a1 = cluster.pod("a", "22-a")
    b1 = cluster.pod("b", "22-b")
    a2 = cluster.pod("a", "22-a2")
    ip = {}
    for node, pod in (("a", a1), ("b", b1), ("a", a2)):
        ip[pod.name] = cluster.status_ip(node, pod)
        addresses, mac = eth1(pod)
        assert addresses == [f"{ip[pod.name]}/24"], (pod.name, addresses)
        octets = [int(o) for o in ip[pod.name].split(".")]
        assert mac == "0a:58:" + ":".join(f"{o:02x}" for o in octets), mac
    assert len(set(ip.values())) == 3

    assert ping(a1, ip["22-b"]).ok, "a -> b on VLAN 22: no reply"
    assert ping(b1, ip["22-a"]).ok, "b -> a on VLAN 22: no reply"
    same_node, cross_node = rtt_ms(a1, ip["22-a2"]), rtt_ms(a1, ip["22-b"])
    print(f"\nnodes: plugin pods, VLAN 22 ping RTT (median of 5): same node {same_node:.3f} ms,"
          f" across nodes {cross_node:.3f} ms")
    # The echo really crossed the switch: it learned each pod on its node's port.
    assert switch_port_of(cluster, eth1(a1)[1], 22) == cluster.bed.switch.ports["a"]
    assert switch_port_of(cluster, eth1(b1)[1], 22) == cluster.bed.switch.ports["b"]

    x = cluster.pod("a", "22-x")
    y = cluster.pod("b", "23-y")
    z = cluster.pod("a", "23-z")  # control: VLAN 23 itself crosses the switch
    y_ip, x_ip = cluster.status_ip("b", y), cluster.status_ip("a", x)
    assert ping(z, y_ip).ok, "control failed: a -> b on VLAN 23 gives no reply"
    assert not ping(x, y_ip).ok, "VLAN 22 on a reached VLAN 23 on b"
    assert not ping(y, x_ip).ok, "VLAN 23 on b reached VLAN 22 on a"
    tags = {p["external_ids"]["vlanpipe-pod"]: p["tag"]
            for n in "ab" for p in cluster[n].ports().values() if p["name"] != "uplink0"}
    assert tags == {"22-a": 22, "22-b": 22, "22-a2": 22, "22-x": 22, "23-y": 23, "23-z": 23}


# --- 3. unique addresses under parallel setups on both nodes ---------------------------------


def test_ipv6_only_pods_across_nodes_get_distinct_macs_that_doctor_checks(
        cluster: Cluster) -> None:
    """An IPv6-only pod's MAC is a hash of its address: one etcd keeps the addresses unique
    on the VLAN across nodes, and the MACs follow; each node's doctor checks its own."""
    for plugin in cluster.plugins.values():
        plugin.configure(networks=[{"name": "pods6", "vlans": "all", "subnet": "fd00:77::/64",
                                    "allocator": "etcd"}])
    cluster.init_all()
    pods = {"a": cluster.pod("a", "22-x6"), "b": cluster.pod("b", "22-y6")}
    found = {}
    for node, pod in pods.items():
        link = json.loads(hostnet.in_netns(pod.pid, "ip", "-j", "addr", "show", "dev",
                                           "eth1").stdout)[0]
        (address,) = [a["local"] for a in link["addr_info"]
                      if a["family"] == "inet6" and a["scope"] == "global"]
        found[node] = (address, link["address"])
    assert all(a.startswith("fd00:77::") for a, _ in found.values()), found
    assert found["a"][1] != found["b"][1], found
    for node in pods:
        macs = check(cluster, node, "macs")
        assert macs["ok"] and macs["detail"].startswith("1 interface(s)"), macs
    assert ping(pods["a"], found["b"][0]).ok and ping(pods["b"], found["a"][0]).ok
    for node, pod in pods.items():
        cluster.teardown(node, pod)
    assert not [key for key in cluster.keys("ipam/") if "/addr/" in key]


def test_addresses_unique_across_nodes_under_parallel_setups(cluster: Cluster) -> None:
    cluster.init_all()
    per_node = 12
    plan = [(node, f"{22 + i % 2}-par{i:02d}{node}") for i in range(per_node) for node in "ab"]
    with ThreadPoolExecutor(6) as pool:
        made = list(pool.map(lambda np: cluster.container(f"{np[0]}-{np[1]}"), plan))
    pods = [(node, PodRef(cluster.namespace, name, c)) for (node, name), c in zip(plan, made)]

    started = time.monotonic()
    with ThreadPoolExecutor(len(pods)) as pool:  # all at once, both nodes
        list(pool.map(lambda np: cluster.setup(*np), pods))
    setup_s = time.monotonic() - started

    leases = cluster.leases()
    assert len(leases) == 2 * per_node, sorted(leases)
    by_pod = {record["pod"]: (address, record) for address, record in leases.items()}
    assert len(by_pod) == 2 * per_node
    inside = set()
    for node, pod in pods:
        address, record = by_pod[pod.name]
        assert (record["node"], record["infra_id"], record["namespace"]) == \
            (node, pod.container.id, cluster.namespace), record
        addresses, _ = eth1(pod)
        assert addresses == [f"{address}/24"], (pod.name, addresses, address)
        inside.add(address)
        logged = cluster[node].last_log("setup", pod.name)
        assert logged["outcome"] == "ok" and logged["address"] == f"{address}/24", logged
    assert len(inside) == 2 * per_node
    for node in "ab":
        assert len([p for p in cluster[node].ports() if p != "uplink0"]) == per_node

    started = time.monotonic()
    with ThreadPoolExecutor(len(pods)) as pool:
        list(pool.map(lambda np: cluster.teardown(*np), pods))
    teardown_s = time.monotonic() - started
    assert cluster.leases() == {}
    assert all(eth1(pod) == ([], None) for _, pod in pods)
    print(f"\nnodes: {len(pods)} setups at once on two nodes: {setup_s:.1f} s, "
          f"{len(inside)} distinct addresses; {len(pods)} teardowns at once: {teardown_s:.1f} s")


# --- 4. a pod moves to another node -----------------------------------------------------------


def _pinned_pod_seen_from_both(cluster: Cluster, name: str, address: str
                               ) -> tuple[PodRef, PodRef, PodRef]:
    """Pin `name` to `address` on VLAN 22, set it up on node b, and have X (node a) and
    Y (node b) talk to it so their ARP caches and every bridge know where it is."""
    cluster.pin(name, 22, address)
    p = cluster.pod("b", name)
    assert eth1(p)[0] == [address]
    x, y = cluster.pod("a", "22-x"), cluster.pod("b", "22-y")
    for peer in (x, y):
        assert ping(peer, address).ok, f"{peer.name} -> {name} before the move: no reply"
    assert switch_port_of(cluster, eth1(p)[1], 22) == cluster.bed.switch.ports["b"]
    return p, x, y


def _move_to_a(cluster: Cluster, p: PodRef) -> PodRef:
    """The kubelet on b tears the pod down and kills its infra container; the one on a
    starts a new infra container for it. Returns the new pod (not set up yet)."""
    cluster.teardown("b", p)
    cluster.bed.remove_container(p.container)
    return PodRef(p.namespace, p.name, cluster.container(f"a-{p.name}-moved"))


def test_moved_pod_keeps_address_and_mac_and_answers_at_once(cluster: Cluster) -> None:
    cluster.init_all()
    p, x, y = _pinned_pod_seen_from_both(cluster, "22-p", "10.66.0.77/24")
    assert eth1(p) == (["10.66.0.77/24"], MAC_77)
    old_port = cluster["b"].last_log("setup", "22-p")["port"]
    assert old_port in cluster["b"].ports()
    old_pid = p.pid

    moved = _move_to_a(cluster, p)
    cluster.setup("a", moved)
    returned = time.monotonic()
    replies = first_replies({"X (node a)": x, "Y (node b)": y}, "10.66.0.77", returned)
    for label, (result, _) in replies.items():
        assert result.ok, f"first echo from {label} after the move got no reply:\n{result.output}"

    assert eth1(moved) == (["10.66.0.77/24"], MAC_77)
    logged = cluster["a"].last_log("setup", "22-p")
    assert logged["outcome"] == "ok" and "announce" in logged["phases_ms"], logged
    assert switch_port_of(cluster, MAC_77, 22) == cluster.bed.switch.ports["a"]

    # Node b keeps nothing of P: no port, no veth, no netns link, no record, no lease.
    b = cluster["b"]
    assert old_port not in b.ports() and old_port not in b.node.links()
    assert not any(pt["external_ids"].get("vlanpipe-pod") == "22-p" for pt in b.ports().values())
    assert str(old_pid) not in set(b.node.run(["ls", "-A", nodebed.NETNS_RUN]).stdout.split())
    assert [row["pod"] for row in b.listed() if row["pod"] != "(uplink)"] == ["22-y"]
    assert len(records(b.state_dir)) == 1  # Y's alone
    leases = cluster.leases()
    assert [r["node"] for r in leases.values() if r["pod"] == "22-p"] == ["a"]
    assert (leases["10.66.0.77"]["node"], leases["10.66.0.77"]["infra_id"]) == \
        ("a", moved.container.id), leases["10.66.0.77"]
    shown = ", ".join(f"from {label} {seconds * 1000:.0f} ms (RTT {result.rtt_ms[0]:.3f} ms)"
                      for label, (result, seconds) in replies.items())
    print(f"\nnodes: pod moved b -> a by the plugin (setup {logged['duration_ms']:.0f} ms, "
          f"announce {logged['phases_ms']['announce']:.1f} ms); first echo after setup "
          f"returned answered: {shown}")


def test_moved_pod_without_its_announcement_is_unreachable(cluster: Cluster) -> None:
    """The contrast, without touching the plugin: node a's bridge drops the moved pod's ARP
    frames (an OpenFlow rule matching its MAC), so no switch learns the move: its
    gratuitous ARP, and the conflict probe before it, which is a broadcast from the same
    MAC and would teach the switches just as well. The rule's counter also shows the plugin
    did send them from the pod's port."""
    cluster.init_all()
    address = "10.66.0.78"
    q, x, y = _pinned_pod_seen_from_both(cluster, "22-q", f"{address}/24")
    mac = eth1(q)[1]
    moved = _move_to_a(cluster, q)
    a = cluster["a"].node
    cookie = "0x7e57"
    a.run(["ovs-ofctl", "add-flow", a.bridge,
           f"cookie={cookie},priority=100,arp,dl_src={mac},actions=drop"], check=True)
    try:
        cluster.setup("a", moved)
        returned = time.monotonic()
        replies = first_replies({"X (node a)": x, "Y (node b)": y}, address, returned)
        stats = a.run(["ovs-ofctl", "dump-flows", a.bridge, f"cookie={cookie}/-1"],
                      check=True).stdout
    finally:
        a.run(["ovs-ofctl", "del-flows", a.bridge, f"cookie={cookie}/-1"], check=True)
    dropped = sum(int(n) for n in re.findall(r"n_packets=(\d+)", stats))
    assert dropped >= 2, ("the plugin's probe and announcement never reached node a's "
                          f"bridge:\n{stats}")
    assert not replies["X (node a)"][0].ok, "moved pod answered X with its announcement dropped"

    # One announcement (the plugin's own code, sent from here) and it answers.
    announce(f"/proc/{moved.pid}/ns/net", "eth1", [address])
    assert ping(x, address).ok and ping(y, address).ok
    print("\nnodes: pod moved b -> a with its gratuitous ARP dropped "
          f"({dropped} frame dropped): first echo after setup "
          + ", ".join(f"from {label}: {'answered' if r.ok else 'no reply'} "
                      f"({s * 1000:.0f} ms)" for label, (r, s) in replies.items()))


# --- 5. the leases of a node gone for good ----------------------------------------------------


def test_gc_frees_the_leases_of_a_dead_node(cluster: Cluster) -> None:
    cluster.init_all()
    keep = cluster.pod("a", "22-keep")
    lost = [cluster.pod("b", name) for name in ("22-lost1", "23-lost2", "22-lost3")]
    leases = cluster.leases()
    by_pod = {r["pod"]: address for address, r in leases.items()}
    b_addresses = {by_pod[p.name] for p in lost}
    assert len(leases) == 4 and len(b_addresses) == 3
    stamp = cluster.keys("nodes/")["nodes/b"]  # b's setups stamped its sign of life
    assert time.time() - json.loads(stamp)["seen"] < 120, stamp
    # Node b dies here: nothing more is run on it until the cleanup.
    a = cluster["a"]

    listed = a.ok("list", "--cluster", "--json").json()
    assert {(r["address"].split("/")[0], r["node"], r["pod"]) for r in listed} == \
        {(address, r["node"], r["pod"]) for address, r in leases.items()}
    for row in listed:
        seen = calendar.timegm(time.strptime(row["node_seen"], "%Y-%m-%dT%H:%M:%SZ"))
        assert time.time() - seen < 120, row  # "when that node was last seen": just now
    table = a.ok("list", "--cluster").lines
    heads = [line for line in table if not line.startswith(" ")]
    assert len(heads) == 4 and all("node " in line for line in table if line not in heads)

    refused = a("gc", "--node", "b")
    assert refused.code != 0 and len(refused.lines) == 1, refused
    assert "node b" in refused.output and "--force" in refused.output, refused
    assert cluster.leases() == leases

    dry = a.ok("gc", "--node", "b", "--force", "--dry-run", "--json").json()
    assert [d["outcome"] for d in dry] == ["would remove"] * 3 and cluster.leases() == leases
    # The refusal is about time: once b has been silent for more than ten minutes (its
    # stamp set back an hour here), the same command needs no --force.
    cluster.etcd.put(f"{cluster.prefix}/nodes/b", json.dumps({"seen": round(time.time()) - 3600}))
    quiet = a.ok("gc", "--node", "b", "--dry-run", "--json").json()
    assert len(quiet) == 3 and cluster.leases() == leases, quiet
    cluster.etcd.put(f"{cluster.prefix}/nodes/b", stamp)  # seen just now again: --force needed
    assert a("gc", "--node", "b").code != 0

    forced = a.ok("gc", "--node", "b", "--force", "--json").json()
    assert [f["outcome"] for f in forced] == ["removed"] * 3, forced
    printed = {word for f in forced for word in f["what"].split()}
    assert {f"{address}/24" for address in b_addresses} <= printed, forced
    assert all(f["why"].startswith("node b is gone") for f in forced), forced
    left = cluster.leases()
    assert list(left) == [by_pod["22-keep"]] and left[by_pod["22-keep"]]["node"] == "a"
    after = a.ok("list", "--cluster", "--json").json()
    assert [(r["pod"], r["node"]) for r in after] == [("22-keep", "a")]
    # gc on a touched only etcd: b's ports are still there for b to tear down.
    assert len([p for p in cluster["b"].ports() if p != "uplink0"]) == 3
    assert a.ok("gc", "--node", "b", "--force").output.strip() == "node b holds no lease in etcd"
    print(f"\nnodes: gc --node b refused: {refused.output.strip()!r}\n"
          f"nodes: gc --node b --force:\n  " + "\n  ".join(f["what"] for f in forced))

    # Node b comes back (or is wiped): its kubelet tears its pods down; the leases are gone
    # already, which teardown takes in its stride.
    for pod in lost:
        cluster.teardown("b", pod)
        logged = cluster["b"].last_log("teardown", pod.name)
        assert logged["outcome"] == "ok", logged
        if logged.get("warnings"):
            print(f"nodes: teardown on b after gc --node b, log warnings: {logged['warnings']}")
    # a's sign of life: status (every pod sync) never writes it; a teardown's release does.
    hour_ago = json.dumps({"seen": round(time.time()) - 3600})
    cluster.etcd.put(f"{cluster.prefix}/nodes/a", hour_ago)
    assert cluster.status_ip("a", keep) == by_pod["22-keep"]
    assert cluster.keys("nodes/")["nodes/a"].decode() == hour_ago
    cluster.teardown("a", keep)
    assert time.time() - json.loads(cluster.keys("nodes/")["nodes/a"])["seen"] < 120
    assert cluster.leases() == {}
