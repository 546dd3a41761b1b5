"""The cluster-wide allocator against a real etcd: races, faults, corrupt keys."""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
import socket
from dataclasses import replace

import pytest

from plugin.config.etcd import parse_etcd
from plugin.config.reader import Section
from plugin.errors import AllocationError, BackendError
from plugin.ipam.allocators import Allocators
from plugin.ipam.leaserecord import new_record
from plugin.identity import Identity
from plugin.ipam.model import Pin, Request
from plugin.ipam.pooled import PoolAllocator
from plugin.ipam.stores.etcd import EtcdStore
from plugin.ipam.stores.etcd_index import EtcdIndex, Indexed
from plugin.ipam.cluster import forget_node
from plugin.ipam.stores.etcd_client import EtcdConnection, b64
from tests.support.ipamdata import lookup, network, networks, owner
from tests.support import etcd_server
from tests.support.previous_release import PreviousEtcdStore

FORK = multiprocessing.get_context("fork")


def count_requests(allocator: PoolAllocator) -> dict[str, int]:
    """From now on, count the requests the allocator's store sends to etcd, by API path."""
    counts: dict[str, int] = {}
    connection = allocator.store.etcd
    call = connection.call

    def counted(path, payload):
        counts[path] = counts.get(path, 0) + 1
        return call(path, payload)

    connection.call = counted
    return counts


def etcd_network(subnet: str = "10.22.0.0/24", **fields):
    gateway = str(ipaddress.ip_network(subnet).network_address + 1)
    return network(vlans=[22], subnet=subnet, gateway=gateway, allocator="etcd", **fields)


def store(etcd_config, **fields) -> PoolAllocator:
    net = etcd_network(**fields)
    return PoolAllocator(net, EtcdStore(net, EtcdConnection(etcd_config), etcd_config.prefix))


def put(etcd_config, key: str, value: bytes) -> None:
    EtcdConnection(etcd_config).call("kv/put", {"key": b64(key), "value": b64(value)})


def held(source: PoolAllocator) -> list[str]:
    return [str(lease.address.ip) for _, lease in source.leases()]


def test_allocate_is_idempotent_and_release_is_harmless_twice(etcd_config):
    source = store(etcd_config)
    me = owner(1, node="node-a")
    lease = source.allocate(me)
    assert str(lease.address) == "10.22.0.2/24"
    assert source.allocate(me) == lease and lookup(source, me) == lease
    record = json.loads(EtcdConnection(etcd_config).get(
        f"{etcd_config.prefix}/ipam/net/addr/10.22.0.2").value)
    assert {k: record[k] for k in ("node", "namespace", "pod", "infra_id", "interface")} == {
        "node": "node-a", "namespace": "ns", "pod": "22-pod-1", "infra_id": me.infra_id,
        "interface": "eth1"}
    assert source.release(me) is True
    assert source.release(me) is False
    assert lookup(source, me) is None and source.leases() == []


def test_rotation_exhaustion_and_reuse(etcd_config):
    source = store(etcd_config, subnet="10.22.0.0/29")
    assert [str(source.allocate(owner(i)).address.ip) for i in range(3)] == [
        "10.22.0.2", "10.22.0.3", "10.22.0.4"]
    source.release(owner(2))  # the last one handed out: not handed out again at once
    assert [str(source.allocate(owner(i)).address.ip) for i in range(3, 6)] == [
        "10.22.0.5", "10.22.0.6", "10.22.0.4"]
    with pytest.raises(AllocationError, match="network net exhausted: 5 addresses in use"):
        source.allocate(owner(9))
    source.release(owner(0))
    assert str(source.allocate(owner(9)).address.ip) == "10.22.0.2"


def test_exhaustion_is_found_with_one_listing_in_a_large_pool(etcd_config):
    source = store(etcd_config, subnet="10.22.0.0/22", range={"start": "10.22.0.2",
                                                               "end": "10.22.0.41"})
    for i in range(40):
        source.allocate(owner(i))
    requests = count_requests(source)
    with pytest.raises(AllocationError, match="exhausted: 40 addresses in use"):
        source.allocate(owner(99))
    # One read of the owner, one claim that looks at the 39 other candidates and finds
    # none free, then the count: not a claim per address (issue 23).
    assert requests == {"kv/txn": 2, "kv/range": 1}


def test_a_claim_in_a_pool_nine_tenths_full_costs_one_lost_claim_not_one_per_address(
        etcd_config):
    """Issue 23 measure 1: leases scattered over the pool, the rotation point before a taken
    address. The lost claim looks at the next candidates in its own round trip: the owner's
    read, that claim and the won one, and no listing of the pool's addresses."""
    source = store(etcd_config)
    free = {f"10.22.0.{n}" for n in range(20, 255, 10)}
    etcd, ops = EtcdConnection(etcd_config), []
    for index, address in enumerate(source.pool.rotation(None)):
        if str(address) not in free:
            record = new_record("net", source.pool.interface(address), owner(1000 + index, "x"))
            ops += source.store.lease_ops(record)
    ops.append({"request_put": {"key": b64(source.store.base + "last_reserved"),
                                "value": b64(b"10.22.0.100")}})
    for start in range(0, len(ops), 128):
        etcd.txn([], ops[start:start + 128])
    requests = count_requests(source)
    assert str(source.allocate(owner(1)).address.ip) in free
    assert requests == {"kv/txn": 3}


def _allocate_on_node(config, index, barrier, node, results):
    ipam = Allocators(networks({"name": "net", "vlans": [22], "subnet": "10.22.0.0/24",
                          "allocator": "etcd", "range": {"start": "10.22.0.10",
                                                         "end": "10.22.0.57"}}),
                config, f"/nonexistent/{node}", node)
    barrier.wait()
    (lease,) = ipam.allocate(owner(index if node == "node-a" else 100 + index), 22)
    results.put((node, index, str(lease.address.ip)))


def test_two_nodes_racing_for_one_pool_never_share_an_address(etcd_config):
    results = FORK.Queue()
    barrier = FORK.Barrier(48)
    workers = [FORK.Process(target=_allocate_on_node,
                            args=(etcd_config, i, barrier, node, results))
               for node in ("node-a", "node-b") for i in range(24)]
    for worker in workers:
        worker.start()
    got = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    addresses = [address for _, _, address in got]
    assert len(set(addresses)) == 48  # the range holds exactly 48: none twice, none lost
    ipam = Allocators(networks({"name": "net", "vlans": [22], "subnet": "10.22.0.0/24",
                          "allocator": "etcd"}), etcd_config, "/nonexistent", "node-a")
    nodes = [o.node for o, _ in ipam.leases()]
    assert nodes.count("node-a") == nodes.count("node-b") == 24
    with pytest.raises(AllocationError, match="exhausted: 48 addresses in use"):
        store(etcd_config, range={"start": "10.22.0.10", "end": "10.22.0.57"}).allocate(owner(999))


def _allocate_same_owner(config, index, barrier, results):
    barrier.wait()
    results.put(str(store(config).allocate(owner(7)).address.ip))


def test_concurrent_setups_of_one_owner_get_one_address(etcd_config):
    results = FORK.Queue()
    barrier = FORK.Barrier(8)
    workers = [FORK.Process(target=_allocate_same_owner, args=(etcd_config, i, barrier, results))
               for i in range(8)]
    for worker in workers:
        worker.start()
    got = {results.get(timeout=60) for _ in workers}
    for worker in workers:
        worker.join(60)
    assert len(got) == 1
    assert held(store(etcd_config)) == list(got)


def test_a_claim_after_another_call_for_the_same_owner_wrote_its_owner_key_is_raced(
        etcd_config):
    """Two setups of one pod aiming at different free addresses (the race above aims every
    caller at one address, so the address check alone decides it): the one that read the
    owner before the other's claim must lose, or the owner holds two addresses. The unit
    tier runs the same case over its fake etcd."""
    me = owner(1)
    first, second = store(etcd_config).store, store(etcd_config).store
    read_early = first.held(me)
    claim = second.held(me)
    assert second.claim(new_record("net", ipaddress.ip_interface("10.22.0.2/24"), me), claim,
                        rotate=True).outcome == "won"
    assert first.claim(new_record("net", ipaddress.ip_interface("10.22.0.3/24"), me),
                       read_early, rotate=True).outcome == "raced"
    assert held(store(etcd_config)) == ["10.22.0.2"]


def test_corrupt_and_foreign_keys_are_reported_and_never_reused(etcd_config, caplog):
    base = f"{etcd_config.prefix}/ipam/net/addr/"
    put(etcd_config, base + "10.22.0.2", b"\xffnot json")
    put(etcd_config, base + "10.22.0.3", b'{"kind": "other"}')
    put(etcd_config, base + "bogus", b"x")
    source = store(etcd_config, subnet="10.22.0.0/29")
    got = str(source.allocate(owner(1)).address.ip)
    assert got in ("10.22.0.4", "10.22.0.5", "10.22.0.6")
    assert held(source) == [got]
    reasons = {d.where.rsplit("/", 1)[1]: d.reason for d in source.damaged()}
    assert reasons["10.22.0.2"].startswith("not JSON")
    assert reasons["10.22.0.3"] == "not a vlanpipe.lease/v1 record"
    assert "does not appear to be an IPv4 or IPv6 address" in reasons["bogus"]
    assert "10.22.0.2: not JSON" in caplog.text


def test_a_record_changed_behind_our_back_is_not_deleted(etcd_config):
    source = store(etcd_config)
    source.allocate(owner(1))
    key = f"{etcd_config.prefix}/ipam/net/addr/10.22.0.2"
    put(etcd_config, key, b"operator was here")
    assert source.release(owner(1)) is False
    assert EtcdConnection(etcd_config).get(key).value == b"operator was here"
    assert lookup(source, owner(1)) is None


def test_etcd_restarted_between_allocate_and_release(private_etcd):
    config = parse_etcd(Section("t.yaml", {"endpoints": [private_etcd.url]}, "etcd"))
    source = store(config)
    lease = source.allocate(owner(1))
    etcd_server.restart(private_etcd)
    assert lookup(store(config), owner(1)) == lease  # a new process after the restart
    assert source.allocate(owner(1)) == lease  # the old process's connection reconnects
    assert source.release(owner(1)) is True
    assert source.leases() == []


def test_etcd_down_is_a_backend_error_at_once(private_etcd):
    config = parse_etcd(Section("t.yaml", {"endpoints": [private_etcd.url]}, "etcd"))
    source = store(config)
    etcd_server.stop(private_etcd)
    requests = count_requests(source)
    with pytest.raises(BackendError, match=r"etcd unreachable: http://127.0.0.1:\d+: "
                                           r"\[Errno 111\] Connection refused"):
        source.allocate(owner(1))
    assert requests == {"kv/txn": 1}  # the first request fails the call: no retry loop


def test_etcd_that_never_answers_costs_the_timeout_per_endpoint():
    silent = [socket.socket(), socket.socket()]
    for sock in silent:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)  # accepts connections into the backlog, never reads or answers
    endpoints = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in silent]
    config = parse_etcd(Section("t.yaml", {"endpoints": endpoints, "timeout": 0.5}, "etcd"))
    try:
        with pytest.raises(BackendError, match="no answer within 0.5s; .*no answer within 0.5s"):
            store(config).allocate(owner(1))
        for sock in silent:  # each endpoint was asked once, and given up on
            sock.setblocking(False)
            sock.accept()[0].close()
            with pytest.raises(BlockingIOError):
                sock.accept()
    finally:
        for sock in silent:
            sock.close()


def test_a_dead_first_endpoint_fails_over_to_the_next(etcd_config):
    dead = f"http://127.0.0.1:{etcd_server.free_port()}"
    config = replace(etcd_config, endpoints=(dead, *etcd_config.endpoints))
    assert str(store(config).allocate(owner(1)).address.ip) == "10.22.0.2"


def test_pinned_address_is_handed_out_exactly(etcd_config):
    source = store(etcd_config, range={"start": "10.22.0.100"})
    pinned = Request(ipaddress.ip_address("10.22.0.50"), pinned=True)
    assert str(source.allocate(owner(1), pinned).address) == "10.22.0.50/24"
    assert str(source.allocate(owner(1), pinned).address) == "10.22.0.50/24"
    with pytest.raises(AllocationError, match="10.22.0.50 of network net is held by pod "
                                              "ns/22-pod-1 on node"):
        source.allocate(owner(2), pinned)
    with pytest.raises(AllocationError, match="it is excluded"):
        store(etcd_config, exclude=["10.22.0.60"]).allocate(
            owner(2), Request(ipaddress.ip_address("10.22.0.60"), pinned=True))
    moved = source.allocate(owner(1), Request(ipaddress.ip_address("10.22.0.51"), pinned=True))
    assert str(moved.address.ip) == "10.22.0.51" and held(source) == ["10.22.0.51"]


def test_tls_with_client_certificates(tmp_path):
    tls = etcd_server.make_tls(str(tmp_path))
    server = etcd_server.start(str(tmp_path / "etcd-data"), tls=tls)
    try:
        config = parse_etcd(Section("t.yaml", {"endpoints": [server.url], "ca_cert": tls.ca_cert,
                                               "cert": tls.cert, "key": tls.key}, "etcd"))
        assert str(store(config).allocate(owner(1)).address.ip) == "10.22.0.2"
        without_cert = replace(config, cert=None, key=None)
        with pytest.raises(BackendError, match="etcd"):
            store(without_cert).allocate(owner(2))
        untrusted = replace(config, ca_cert=None)
        with pytest.raises(BackendError, match="CERTIFICATE_VERIFY_FAILED"):
            store(untrusted).allocate(owner(2))
    finally:
        etcd_server.stop(server)


def test_ipv6_networks_allocate_like_ipv4(etcd_config):
    source = store(etcd_config, subnet="fd00:22::/120")
    assert str(source.allocate(owner(1)).address) == "fd00:22::2/120"
    assert held(source) == ["fd00:22::2"] and source.release(owner(1))


LOCAL22 = {"name": "v22", "vlans": [22, "24-25"], "subnet": "10.22.0.0/24", "gateway": "10.22.0.1"}
STATIC23 = {"name": "v23", "vlans": [23], "address": "10.23.0.5/24"}
ETCD30 = {"name": "v30", "vlans": [30], "subnet": "10.30.0.0/24", "allocator": "etcd"}


def test_gc_in_etcd_judges_only_this_nodes_leases(tmp_path, etcd_config):
    node_a = Allocators(networks(ETCD30), etcd_config, str(tmp_path / "a"), "node-a")
    node_b = Allocators(networks(ETCD30), etcd_config, str(tmp_path / "b"), "node-b")
    node_a.allocate(owner(1), 30)
    node_b.allocate(owner(2), 30)
    assert [o.node for o, _ in node_a.leases()] == ["node-a", "node-b"]
    dead = node_a.collectable(lambda infra_id: False)
    assert [o.node for o, _ in dead] == ["node-a"]
    for o, lease in dead:
        node_a.release(o, lease.network)
    assert [o.node for o, _ in node_b.leases()] == ["node-b"]


def put_pin(etcd_config, namespace: str, pod: str, body: bytes) -> None:
    key = f"{etcd_config.prefix}/pins/{namespace}/{pod}"
    EtcdConnection(etcd_config).call("kv/put", {"key": b64(key), "value": b64(body)})


def test_a_pin_moves_the_pod_to_its_vlan_and_address(tmp_path, etcd_config):
    ipam = Allocators(networks(LOCAL22, ETCD30), etcd_config, str(tmp_path), "n1")
    me = owner(1)
    put_pin(etcd_config, me.namespace, me.pod, json.dumps({"vlan": 30,
                                                           "address": "10.30.0.77/24"}).encode())
    pin = ipam.pinned(me.namespace, me.pod)
    assert pin == Pin(30, ipaddress.ip_interface("10.30.0.77/24"))
    assert pin is not None and pin.address is not None
    asked = (Request(pin.address.ip, pinned=True),)
    (lease,) = ipam.allocate(me, pin.vlan, asked)  # the name says 22; the pin says 30
    assert (lease.network, str(lease.address)) == ("v30", "10.30.0.77/24")
    assert ipam.allocate(me, pin.vlan, asked) == [lease]  # again: the same lease
    assert ipam.release(me, "v30") is True


def test_a_pin_without_address_picks_the_vlan_only(tmp_path, etcd_config):
    ipam = Allocators(networks(LOCAL22, STATIC23), etcd_config, str(tmp_path), "n1")
    put_pin(etcd_config, "ns", "22-pod-1", b'{"vlan": 23}')
    assert ipam.pinned("ns", "22-pod-1") == Pin(23)
    assert ipam.pinned("ns", "22-pod-2") is None


@pytest.mark.parametrize(("body", "why"), [
    (b"{", "not JSON"),
    (b'{"vlan": 4095}', "vlan 4095 must be a VLAN id between 1 and 4094"),
    (b'{"vlan": "22"}', "vlan '22' is not an integer"),
    (b'{"vlan": 22, "addr": "x"}', "nothing else"),
    (b'{"vlan": 22, "address": "nonsense"}', "does not appear to be an IPv4 or IPv6"),
])
def test_an_unreadable_pin_is_an_error_not_a_guess(tmp_path, etcd_config, body, why):
    ipam = Allocators(networks(LOCAL22), etcd_config, str(tmp_path), "n1")
    put_pin(etcd_config, "ns", "22-pod-1", body)
    with pytest.raises(AllocationError, match="pin .*/pins/ns/22-pod-1 in etcd is unreadable") \
            as caught:
        ipam.pinned("ns", "22-pod-1")
    assert why in str(caught.value) and "vlanpipe pin del ns/22-pod-1" in str(caught.value)
    assert ipam.leases() == []


def test_an_etcd_outage_touches_only_the_etcd_networks_leases(tmp_path, etcd_config):
    dead = replace(etcd_config, endpoints=(f"http://127.0.0.1:{etcd_server.free_port()}",))
    ipam = Allocators(networks(LOCAL22, ETCD30), dead, str(tmp_path), "n1")
    ipam.allocate(owner(1), 22)
    ipam.allocate(owner(2), 22)
    assert ipam.release(owner(1), "v22") is True  # a local network's lease: etcd is not asked
    problems = ipam.release_anywhere(owner(2))  # no record: every network, best effort
    assert len(problems) == 1 and problems[0].startswith("network v30: etcd unreachable")
    with pytest.raises(BackendError, match="etcd unreachable"):
        ipam.release(owner(3), "v30")
    assert Allocators(networks(LOCAL22), None, str(tmp_path), "n1").leases() == []


def on_node(etcd_config, node: str, previous: bool = False, **fields) -> PoolAllocator:
    """The network's allocator as a node sees it: this release's store, or the previous
    release's (owner keys without the node), both on the same etcd."""
    net = etcd_network(**fields)
    kind = PreviousEtcdStore if previous else EtcdStore
    return PoolAllocator(net, kind(net, EtcdConnection(etcd_config), etcd_config.prefix, node))


def test_one_container_id_on_two_nodes_gets_two_addresses(etcd_config):
    """Issue 19 item 6: `ctr run --cni` ids (`<namespace>-<name>`) repeat across nodes. Each
    node's owner is its own: two addresses, and each release frees only its own."""
    a, b = on_node(etcd_config, "node-a"), on_node(etcd_config, "node-b")
    on_a, on_b = (Identity(infra_id="default-web", interface="eth0", node=n)
                  for n in ("node-a", "node-b"))
    lease_a, lease_b = a.allocate(on_a), b.allocate(on_b)
    assert lease_a.address != lease_b.address
    assert a.release(on_a) is True
    assert lookup(b, on_b) == lease_b and held(b) == [str(lease_b.address.ip)]
    assert b.release(on_b) is True and held(b) == []


def test_a_previous_release_node_beside_this_one_never_shares_an_address(etcd_config):
    """Issue 19 item 6: during an upgrade, node A still runs the previous release (owner keys
    without the node) and node B this one, with the same container ids on both. Neither
    takes the other's address, and neither's release frees the other's lease."""
    old, new = on_node(etcd_config, "node-a", previous=True), on_node(etcd_config, "node-b")
    ids = ["default-web", "default-db"]
    on_a = {i: Identity(infra_id=i, interface="eth0", node="node-a") for i in ids}
    on_b = {i: Identity(infra_id=i, interface="eth0", node="node-b") for i in ids}
    first_a = old.allocate(on_a["default-web"])       # old first, then new
    first_b = new.allocate(on_b["default-web"])
    second_b = new.allocate(on_b["default-db"])        # new first, then old
    second_a = old.allocate(on_a["default-db"])
    addresses = [str(lease.address.ip) for lease in (first_a, first_b, second_b, second_a)]
    assert len(set(addresses)) == 4
    assert old.release(on_a["default-web"]) is True     # the old node frees only its own
    assert new.release(on_b["default-db"]) is True      # and so does the new one
    assert sorted(held(new)) == sorted([addresses[1], addresses[3]])
    assert lookup(new, on_b["default-web"]) == first_b
    assert lookup(old, on_a["default-db"]) == second_a


def test_a_lease_of_the_previous_release_is_read_and_released_after_the_upgrade(etcd_config):
    """Issue 19 item 6: a node upgraded with pods attached finds its old-format leases (a
    repeated setup gets the same address), releases them at teardown, and another node
    never takes them for its own container of the same id."""
    before = on_node(etcd_config, "node-a", previous=True)
    me = Identity(infra_id="default-web", interface="eth0", node="node-a")
    lease = before.allocate(me)
    legacy = f"{etcd_config.prefix}/ipam/net/owner/default-web/eth0"
    assert EtcdConnection(etcd_config).get(legacy) is not None  # written the old way
    after, other = on_node(etcd_config, "node-a"), on_node(etcd_config, "node-b")
    them = Identity(infra_id="default-web", interface="eth0", node="node-b")
    assert after.allocate(me) == lease
    assert other.allocate(them) != lease and other.release(them) is True
    assert held(after) == [str(lease.address.ip)]         # node B's release left it alone
    assert after.release(me) is True and held(after) == []
    assert EtcdConnection(etcd_config).get(legacy) is None
    assert after.release(me) is False


def test_a_claim_for_an_owner_of_the_previous_release_replaces_its_key(etcd_config):
    """Issue 19 item 6: the next claim of an old-format lease's owner (a pin moving its
    address) writes today's key and deletes the old one in the same transaction."""
    me = Identity(infra_id="default-web", interface="eth0", node="node-a")
    lease = on_node(etcd_config, "node-a", previous=True).allocate(me)
    after = on_node(etcd_config, "node-a")
    moved = after.allocate(me, Request(ipaddress.ip_address("10.22.0.77"), pinned=True))
    assert str(moved.address.ip) == "10.22.0.77" != str(lease.address.ip)
    etcd, base = EtcdConnection(etcd_config), f"{etcd_config.prefix}/ipam/net/owner/"
    assert etcd.get(base + "default-web/eth0") is None
    assert etcd.get(base + "node-a/default-web/eth0").value == b"10.22.0.77/24"
    assert held(after) == ["10.22.0.77"]
    assert after.release(me) is True and held(after) == []


def test_a_conflicted_lease_is_kept_out_of_use_on_every_node_until_cleared(etcd_config):
    """Issue 21: setup on node a heard another host answer for its address; the lease
    becomes a conflicted record in one transaction (owner key gone, address key kept), so
    neither node hands the address out again, and releasing the owner frees nothing."""
    node_a, node_b = store(etcd_config, subnet="10.23.0.0/29"), store(etcd_config,
                                                                     subnet="10.23.0.0/29")
    me = owner(1, node="node-a")
    address = node_a.allocate(me).address.ip
    assert node_a.mark_conflicted(me, address, "02:aa:bb:cc:dd:ee")
    assert node_a.release(me) is False and held(node_a) == []
    (kept,) = node_b.conflicted()
    assert (kept.address, kept.mac, kept.found_by.node) == (f"{address}/29",
                                                            "02:aa:bb:cc:dd:ee", "node-a")
    others = {str(node_b.allocate(owner(i, node="node-b")).address.ip) for i in range(2, 6)}
    assert str(address) not in others and len(others) == 4  # the pool's other four (.2-.6)
    with pytest.raises(AllocationError, match="exhausted"):
        node_a.allocate(owner(9, node="node-a"))
    assert node_b.clear(address).conflict == "02:aa:bb:cc:dd:ee"
    assert node_a.conflicted() == []
    assert str(node_a.allocate(owner(9, node="node-a")).address.ip) == str(address)


# --- the index by node (issue 23 measure 2) ------------------------------------------------

def index_of(source: PoolAllocator) -> EtcdIndex:
    return EtcdIndex(source.store)


def ranges_over(requests: list[dict], prefix: str) -> int:
    """How many requests read a range of keys under `prefix` (a listing, not one key)."""
    return sum(1 for payload in requests for body in _ranges(payload)
               if "range_end" in body and b64(prefix) == body["key"])


def _ranges(payload: dict) -> list[dict]:
    ops = payload.get("success", []) + payload.get("failure", []) if "compare" in payload \
        else [{"request_range": payload}]
    return [op["request_range"] for op in ops if "request_range" in op]


def record_requests(source: PoolAllocator) -> list[dict]:
    sent: list[dict] = []
    connection = source.store.etcd
    call = connection.call

    def recorded(path, payload):
        sent.append(payload)
        return call(path, payload)

    connection.call = recorded
    return sent


def test_one_nodes_leases_are_read_through_the_index_not_every_record(etcd_config):
    """gc --node used to read every lease of every node to find one node's (4.0 s and
    215 MB at 100,000 leases). With the network marked indexed, the node's owner keys
    and its records are read, and no listing of the address records."""
    nodes = {n: on_node(etcd_config, n) for n in ("node-a", "node-b", "node-c")}
    mine = {n: [source.allocate(owner(i, n)) for i in range(5)] for n, source in nodes.items()}
    reader = on_node(etcd_config, "node-x")
    assert index_of(reader).index() == Indexed(marked=True)
    sent = record_requests(reader)
    found = index_of(reader).of_node("node-b")
    assert found.scanned is None
    assert sorted(str(r.address) for r in found.records) == sorted(
        str(lease.address) for lease in mine["node-b"])
    assert {r.owner.node for r in found.records} == {"node-b"}
    assert ranges_over(sent, f"{etcd_config.prefix}/ipam/net/addr/") == 0


def test_old_format_leases_are_found_by_a_full_read_then_indexed_by_init(etcd_config):
    """Leases of the release before the index by node (owner key without the node) are not
    under owner/<node>/: until the network is marked, one node's leases are looked for in
    every record too, and the reader is told; `index()` (init) moves their keys under the
    node, keeps both keys of a lease at one revision (release still frees both), marks
    the network, and from then the index alone finds them."""
    before = on_node(etcd_config, "node-a", previous=True)
    old = [before.allocate(owner(i, "node-a")) for i in range(3)]
    now_a, now_b = on_node(etcd_config, "node-a"), on_node(etcd_config, "node-b")
    new = [now_a.allocate(owner(i, "node-a")) for i in range(3, 5)]
    now_b.allocate(owner(9, "node-b"))
    want = sorted(str(lease.address) for lease in old + new)
    unmarked = index_of(now_b).of_node("node-a")
    assert sorted(str(r.address) for r in unmarked.records) == want
    assert unmarked.scanned == 6
    done = index_of(now_b).index()
    assert done == Indexed(moved=3, marked=True)
    etcd, base = EtcdConnection(etcd_config), f"{etcd_config.prefix}/ipam/net/owner/"
    assert etcd.get(base + f"{owner(0).key}") is None
    assert etcd.get(base + f"node-a/{owner(0).key}") is not None
    marked = index_of(now_b).of_node("node-a")
    assert marked.scanned is None
    assert sorted(str(r.address) for r in marked.records) == want
    assert index_of(now_b).index() == Indexed(marked=True)  # one read once marked
    assert now_a.release(owner(0, "node-a")) is True  # both keys, at one revision
    assert str(old[0].address.ip) not in held(now_a)
    assert etcd.get(base + f"node-a/{owner(0).key}") is None


def test_an_old_key_that_names_another_owners_record_is_left_alone_and_blocks_nothing(
        etcd_config):
    source = on_node(etcd_config, "node-a")
    lease = source.allocate(owner(1, "node-a"))
    stale = f"{etcd_config.prefix}/ipam/net/owner/{owner(2).key}"
    put(etcd_config, stale, str(lease.address).encode())  # points at owner 1's record
    assert index_of(source).index() == Indexed(skipped=1, marked=True)
    assert EtcdConnection(etcd_config).get(stale) is not None
    assert [str(r.address) for r in index_of(source).of_node("node-a").records] == [
        str(lease.address)]


def test_no_pass_and_no_mark_while_a_node_of_an_earlier_release_may_write_old_keys(
        etcd_config):
    """A node of the release before the index writes owner keys without the node for as
    long as it runs: the network is not marked while its stamp is of that release, so a
    node's leases are still looked for in every record; once it runs this release (or
    `gc --node` freed it and forgot its stamp), init's pass indexes and marks."""
    old = on_node(etcd_config, "node-old", previous=True)
    first = old.allocate(owner(1, "node-old"))
    reader = on_node(etcd_config, "node-x")
    assert index_of(reader).index() == Indexed(waiting=("node-old",))
    later = old.allocate(owner(2, "node-old"))  # still writing old keys
    found = index_of(reader).of_node("node-old")
    assert found.scanned == 2 and len(found.records) == 2
    etcd = EtcdConnection(etcd_config)
    stamp = etcd.get(f"{etcd_config.prefix}/nodes/node-old")
    assert forget_node(etcd, etcd_config.prefix, "node-old", stamp.mod_revision - 1) is False
    assert forget_node(etcd, etcd_config.prefix, "node-old", stamp.mod_revision) is True
    assert index_of(reader).index() == Indexed(moved=2, marked=True)
    assert sorted(str(r.address) for r in index_of(reader).of_node("node-old").records) == \
        sorted(str(lease.address) for lease in (first, later))


def own(node: str, index: int) -> Identity:
    """An owner whose container id is its node's alone."""
    return owner(index + (1000 if node == "node-b" else 0), node)


def _churn(config, node: str, barrier, results) -> None:
    """Claims and releases of one node (this release) while another process indexes;
    the node's own earlier leases released too: what it holds at the end."""
    source = on_node(config, node)
    barrier.wait()
    for i in range(0, 20, 2):  # half the leases it claimed before its upgrade
        assert source.release(own(node, 100 + i)) is True
    kept = [own(node, 100 + i).key for i in range(1, 20, 2)]
    for i in range(30):
        who = own(node, i)
        source.allocate(who)
        if i % 3:
            assert source.release(who) is True
        else:
            kept.append(who.key)
    results.put((node, kept))


def _index_pass(config, barrier, results) -> None:
    index = EtcdIndex(on_node(config, "node-x").store)
    barrier.wait()
    results.put(("index", index.index()))


def test_indexing_beside_claims_and_releases_loses_no_lease_and_frees_each_once(etcd_config):
    """The index pass moves the old keys of upgraded nodes while they claim and release
    (their old leases included): every claim, release and move compares and sets, so each
    lease ends with one owner key at its record's revision, none is lost, and the index
    alone then finds exactly what each node holds."""
    for node in ("node-a", "node-b"):  # container ids of their own: the previous release
        before = on_node(etcd_config, node, previous=True)  # mixed up repeated ones
        for i in range(20):
            before.allocate(own(node, 100 + i))
        on_node(etcd_config, node).allocate(own(node, 99))  # upgraded: stamped as such
    results, barrier = FORK.Queue(), FORK.Barrier(3)
    workers = [FORK.Process(target=_churn, args=(etcd_config, node, barrier, results))
               for node in ("node-a", "node-b")]
    workers.append(FORK.Process(target=_index_pass, args=(etcd_config, barrier, results)))
    for worker in workers:
        worker.start()
    got = dict(results.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert got["index"].waiting == () and got["index"].moved > 0
    reader = on_node(etcd_config, "node-x")
    for _ in range(3):  # a move that lost to a release or claim is tried by the next pass
        if index_of(reader).index().marked:
            break
    records, damaged = reader.store.scan()
    assert damaged == []
    for node in ("node-a", "node-b"):
        want = sorted(got[node] + [own(node, 99).key])
        assert sorted(r.owner.key for r in records if r.owner.node == node) == want
        found = index_of(reader).of_node(node)
        assert found.scanned is None and sorted(r.owner.key for r in found.records) == want
    for record in records:  # one owner key each, releasable: both keys go
        assert reader.release(record.owner) is True
    assert held(reader) == []
    assert EtcdConnection(etcd_config).scan(f"{etcd_config.prefix}/ipam/net/owner/") == []
