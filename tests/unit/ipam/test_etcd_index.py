"""The cluster-wide reads over the fake etcd (tests/support/fake_etcd.py): pages, one
node's leases through the index by node, and the output of `list --cluster` as it streams.
tests/e2e/test_etcd_store.py runs the index against a real etcd, races included."""

from __future__ import annotations

import base64
import bisect
import io
import json
import textwrap
import threading
from contextlib import redirect_stdout
from dataclasses import dataclass

import pytest

from plugin.frontends import operator, render
from plugin.ipam import leaserecord
from plugin.ipam.allocators import Allocators
from plugin.identity import Identity
from plugin.ipam.model import Damaged
from plugin.ipam.stores.etcd_config import EtcdConfig
from plugin.ipam.stores.etcd import EtcdStore
from plugin.ipam.stores.etcd_client import EtcdConnection, b64, put_op
from tests.support.fake_etcd import FakeConnection, FakeEtcd
from tests.support.ipamdata import networks, owner

NETS = networks({"name": "net", "vlans": [22], "subnet": "10.22.0.0/24", "allocator": "etcd"})


def on(etcd: FakeEtcd, node: str) -> Allocators:
    allocators = Allocators(NETS, EtcdConfig(("http://fake:2379",), "/t"), "/nonexistent", node)
    allocators._connection = FakeConnection(etcd)
    return allocators


def test_pages_read_every_key_in_order_a_page_at_a_time():
    etcd = FakeEtcd()
    connection = FakeConnection(etcd)
    keys = [f"/p/k{n:03d}" for n in range(25)]
    connection.txn([], [put_op(key, b"v") for key in reversed(keys)])
    connection.txn([], [put_op("/p0", b"beside"), put_op("/o", b"before")])
    etcd.requests.clear()
    assert [entry.key for entry in connection.pages("/p/", size=10)] == keys
    assert etcd.requests == ["kv/range"] * 3
    assert list(connection.pages("/none/", size=10)) == []


def test_pages_ask_narrower_windows_so_etcd_counts_near_a_page_not_all_the_rest():
    """etcd counts every key from a request's start to its range end: pages of one range
    over 100,000 keys cost it O(n^2) (3.3 s of its CPU at 1,000 a page). Windows keep
    the keys it counts per request near a page, whatever the listing's size."""
    etcd = FakeEtcd()
    connection = FakeConnection(etcd)
    keys = sorted(f"/p/10.{a}.{b}" for a in range(40) for b in range(0, 250, 5))
    for start in range(0, len(keys), 128):
        connection.txn([], [put_op(key, b"v") for key in keys[start:start + 128]])
    counted: list[int] = []
    raw = [key.encode() for key in keys]
    etcd.before = lambda path, payload: counted.append(bisect.bisect_left(
        raw, base64.b64decode(payload["range_end"])) - bisect.bisect_left(
        raw, base64.b64decode(payload["key"])))
    listed = [entry.key for entry in connection.pages("/p/", size=20)]
    assert listed == keys
    assert sum(counted) < 10 * len(keys)  # not len(keys) ** 2 / 2 / 20 = 50,000
    assert len(counted) < 3 * len(keys) / 20, (len(counted), sum(counted))


def test_the_next_two_windows_are_asked_while_the_caller_reads_a_page():
    """etcd serves requests side by side: with one asked ahead, a listing of 100,000
    leases waited on etcd for 0.5 s of its 2.3 s (issue 23)."""
    etcd = FakeEtcd()
    connection = FakeConnection(etcd)
    keys = sorted(f"/p/10.{a}.{b}" for a in range(10) for b in range(0, 250, 5))
    connection.txn([], [put_op(key, b"v") for key in keys[:100]])
    connection.txn([], [put_op(key, b"v") for key in keys[100:]])
    asked, answer = threading.Semaphore(0), threading.Event()

    def hold(path, payload):
        if payload["key"] != b64("/p/"):  # the first page comes at once, the others wait
            asked.release()
            assert answer.wait(10)

    etcd.before = hold
    pages = connection.pages("/p/", size=20)
    assert next(pages).key == keys[0]
    assert asked.acquire(timeout=10) and asked.acquire(timeout=10)  # two asked ahead
    assert not asked.acquire(timeout=0.2)  # and no third: three pages held at most
    answer.set()
    assert [keys[0]] + [entry.key for entry in pages] == keys


def test_the_listing_reads_every_record_as_the_full_check_does():
    """`list --cluster` takes a record whose key spells its address as read (C calls
    only); any other it reads as `records` does, so both list and report alike."""
    four = networks({"name": "net", "vlans": [22], "subnet": "10.22.0.0/24",
                     "allocator": "etcd"})[0]
    six = networks({"name": "net", "vlans": [22], "subnet": "fd00::/64",
                    "allocator": "etcd"})[0]
    good = {"kind": leaserecord.KIND, "network": "net", "created": "t", "namespace": "ns",
            "pod": "p", "infra_id": "i" * 64, "interface": "eth1", "node": "n"}
    cases = [
        (four, [("10.22.0.5", {"address": "10.22.0.5/24"}),  # as read
               ("10.22.0.6", {"address": "10.22.0.6/16"}),  # another prefix: parsed
               ("10.22.0.07", {"address": "10.22.0.7/24"}),  # a leading zero
               ("10.22.0.08", {"address": "10.22.0.08/24"}),
               ("10.23.0.9", {"address": "10.23.0.9/24"}),  # outside the subnet
               ("10.22.0.10", {"address": "10.22.0.11/24"}),
               ("10.22.0.12", {"address": "10.22.0.12/24", "node": 7}),
               ("10.22.0.13", {"address": "10.22.0.13/24", "conflict": 1}),
               ("10.22.0.14", {"address": "10.22.0.14/24", "conflict": "02:00:00:00:00:01"}),
               ("10.22.0.15", {"address": "10.22.0.15/24", "network": "other"}),
               ("10.22.0.16", None), ("bogus", {"address": "10.22.0.17/24"})]),
        (six, [("fd00::5", {"address": "fd00::5/64"}),  # as read
               ("fd00::10.22.0.6", {"address": "fd00::a16:6/64"}),  # an IPv4 tail
               ("FD00:0::7", {"address": "fd00::7/64"}),  # another spelling
               ("fd01::8", {"address": "fd01::8/64"}),  # outside
               ("fd00::9", {"address": "fd00::9/64", "pod": None})]),
    ]
    for network, entries in cases:
        etcd = FakeEtcd()
        store = EtcdStore(network, FakeConnection(etcd), "/t")
        connection = FakeConnection(etcd)
        for name, fields in entries:
            body = b"\xffnot json" if fields is None else json.dumps({**good, **fields}).encode()
            connection.txn([], [put_op(f"{store.base}addr/{name}", body)])
        listed = list(store.listing())
        full = [item if isinstance(item, Damaged) else (item.owner, str(item.address))
                for item in store.records()]
        assert listed == full
        assert len([item for item in full if not isinstance(item, Damaged)]) == 3
        name, fields = entries[0]
        assert leaserecord.listed(json.dumps({**good, **fields}).encode(), "net",
                                  network.subnet, name) == (  # read as it is
            Identity("ns", "p", "i" * 64, "eth1", "n"), fields["address"])


def test_an_error_on_the_page_read_ahead_reaches_the_caller():
    etcd = FakeEtcd()
    connection = FakeConnection(etcd)
    connection.txn([], [put_op(f"/p/{n}", b"v") for n in range(4)])

    def fail_second(path, payload):
        if payload.get("key") != b64("/p/"):
            raise RuntimeError("etcd went away")

    etcd.before = fail_second
    pages = connection.pages("/p/", size=2)
    assert [next(pages).key for _ in range(2)] == ["/p/0", "/p/1"]
    with pytest.raises(RuntimeError, match="went away"):
        next(pages)


def test_a_nodes_leases_without_the_index_mark_are_read_in_every_record_and_said_so():
    etcd = FakeEtcd()
    a, b = on(etcd, "node-a"), on(etcd, "node-b")
    mine = [a.allocate(owner(n, "node-a"), 22)[0] for n in range(3)]
    b.allocate(owner(9, "node-b"), 22)
    found, notes = b.node_leases("node-a")
    assert sorted(str(lease.address) for _, lease in found) == sorted(
        str(lease.address) for lease in mine)
    assert len(notes) == 1 and "read all 4 leases" in notes[0] and "'init'" in notes[0]
    assert b.index_leases() == []  # nothing to move: marked, and nothing to say
    found, notes = b.node_leases("node-a")
    assert len(found) == 3 and notes == []


def test_the_index_waits_for_a_node_whose_stamp_is_of_an_earlier_release():
    etcd = FakeEtcd()
    a = on(etcd, "node-a")
    a.allocate(owner(1, "node-a"), 22)
    FakeConnection(etcd).txn([], [put_op("/t/nodes/node-old", b'{"seen": 1}')])
    (said,) = a.index_leases()
    assert "waiting for 1 nodes of an earlier release (first node-old)" in said
    assert a.forget_node("node-old", a.node_revision("node-old") - 1) is False
    assert a.forget_node("node-old", a.node_revision("node-old")) is True
    assert a.index_leases() == []
    assert a.node_leases("node-a")[1] == []  # marked


@dataclass(frozen=True)
class Row:
    name: str
    count: int


@pytest.mark.parametrize("rows", [[], [Row("a", 1)], [Row("a", 1), Row("b\n", 2)]])
def test_the_streamed_json_is_the_document_json_dumps_writes(rows):
    out = io.StringIO()
    with redirect_stdout(out):
        operator._json_stream(iter(rows))
    assert out.getvalue() == json.dumps([vars(r) for r in rows], indent=1) + "\n"


@pytest.mark.parametrize("text, first", [
    ("10.22.0.5/24 default/web eth1", ""), ("network net, node a", "    "),
    ("x" * 80, ""), ("x" * 79, " "), ("two  spaces kept", ""), (" lead", ""),
    ("tab\there", ""), ("", ""), ("word " * 30, ""), ("trail ", "")])
def test_a_text_that_fits_is_what_textwrap_makes_of_it(text, first):
    assert render.wrap(text, first) == (textwrap.wrap(
        text, render.WIDTH, initial_indent=first, subsequent_indent=render.INDENT,
        break_on_hyphens=False) or [first.rstrip()])


def test_cluster_lines_come_one_lease_at_a_time():
    @dataclass
    class Lease:
        address: str = "10.22.0.5/24"
        namespace: str = "ns"
        pod: str = "web"
        interface: str = "eth1"
        network: str = "net"
        node: str = "a"
        node_seen: str = "never"
        infra_id: str = "f" * 64

    lines = render.cluster(iter([Lease(), Lease(address="10.22.0.6/24")]))
    assert next(lines) == ("10.22.0.5/24 ns/web eth1\n"
                           "    network net, node a, seen never, infra ffffffffffff")
    assert next(lines).startswith("10.22.0.6/24")
    assert list(render.cluster(iter([]))) == ["no lease in etcd"]


def test_owner_is_hashable_for_gc_nodes_one_release_per_dual_stack_owner():
    assert len({(Identity(infra_id="i", interface="eth1", node="n"), "net"),
                (Identity(infra_id="i", interface="eth1", node="n"), "net")}) == 1


def test_connection_is_the_one_the_allocators_use():
    assert issubclass(FakeConnection, EtcdConnection)
