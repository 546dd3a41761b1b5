"""The etcd store's transactions over a fake etcd that keeps etcd's compare-and-set rules
(`tests/support/fake_etcd.py`): the real `EtcdStore` and `EtcdConnection` run unchanged,
only the request on the wire is answered in memory. tests/e2e/test_etcd_store.py runs the
same store against a real etcd, with the race below among its cases."""

from __future__ import annotations

import ipaddress

import pytest

from plugin.ipam.leaserecord import new_record
from plugin.ipam.model import Request
from plugin.ipam.pooled import PoolAllocator
from plugin.ipam.stores.etcd import EtcdStore
from tests.support.fake_etcd import FakeConnection, FakeEtcd
from tests.support.ipamdata import lookup, network, owner

NET = network(vlans=[22], subnet="10.22.0.0/24", gateway="10.22.0.1", allocator="etcd")


@pytest.fixture
def etcd() -> FakeEtcd:
    return FakeEtcd()


def store(etcd: FakeEtcd) -> EtcdStore:
    return EtcdStore(NET, FakeConnection(etcd), "/t", node="n1")


def record(who, address: str):
    return new_record(NET.name, ipaddress.ip_interface(f"{address}/24"), who)


def addresses(source: EtcdStore) -> list[tuple[str, str]]:
    """(address, owner key) of every lease record in the store."""
    records, damaged = source.scan()
    assert damaged == []
    return [(str(r.address.ip), r.owner.key) for r in records]


def test_allocate_is_idempotent_and_release_is_harmless_twice(etcd):
    source = PoolAllocator(NET, store(etcd))
    lease = source.allocate(owner(1))
    assert str(lease.address) == "10.22.0.2/24"
    assert source.allocate(owner(1)) == lease and lookup(source, owner(1)) == lease
    assert str(source.allocate(owner(2)).address) == "10.22.0.3/24"
    assert source.release(owner(1)) is True and source.release(owner(1)) is False
    assert addresses(source.store) == [("10.22.0.3", owner(2).key)]


def test_a_claim_after_another_call_for_the_same_owner_wrote_its_owner_key_is_raced(etcd):
    """Two setups of one pod aiming at different free addresses: the one that read the
    owner before the other's claim must lose, or the owner holds two addresses."""
    me = owner(1)
    first, second = store(etcd), store(etcd)
    read_early = first.held(me)
    assert second.claim(record(me, "10.22.0.2"), second.held(me), rotate=True).outcome == "won"
    assert first.claim(record(me, "10.22.0.3"), read_early, rotate=True).outcome == "raced"
    assert addresses(first) == [("10.22.0.2", me.key)]


def test_a_claim_of_an_address_another_owner_holds_is_taken(etcd):
    source = store(etcd)
    assert source.claim(record(owner(1), "10.22.0.2"), source.held(owner(1)),
                        True).outcome == "won"
    assert source.claim(record(owner(2), "10.22.0.2"), source.held(owner(2)),
                        True).outcome == "taken"
    assert addresses(source) == [("10.22.0.2", owner(1).key)]


def test_a_lost_claim_says_which_of_the_candidates_it_looked_at_are_free(etcd):
    """Issue 23 measure 1: the failure branch of the claim reads the probed addresses."""
    source = store(etcd)
    for n in (2, 4):
        source.claim(record(owner(n), f"10.22.0.{n}"), source.held(owner(n)), True)
    probe = [ipaddress.ip_address(f"10.22.0.{n}") for n in (3, 4, 5)]
    lost = source.claim(record(owner(9), "10.22.0.2"), source.held(owner(9)), True, probe)
    assert lost.outcome == "taken" and lost.free == {probe[0], probe[2]}
    assert source.claim(record(owner(9), "10.22.0.3"), source.held(owner(9)), True,
                        probe).free is None  # won: nothing looked at


def test_a_setup_racing_a_pinned_setup_of_the_same_pod_ends_with_one_lease(etcd):
    """The allocator's own loop: its claim of the next free address loses to the pinned
    setup that claimed another address for the same owner meanwhile, and it takes that."""
    me = owner(1)
    source, pinned = PoolAllocator(NET, store(etcd)), PoolAllocator(NET, store(etcd))

    def pinned_setup_first(path, payload):
        if path == "kv/txn" and payload["compare"] and not etcd.keys:  # its first claim
            etcd.before = lambda path, payload: None
            pinned.allocate(me, Request(ipaddress.ip_address("10.22.0.50"), pinned=True))

    etcd.before = pinned_setup_first
    assert str(source.allocate(me).address.ip) == "10.22.0.50"
    assert addresses(source.store) == [("10.22.0.50", me.key)]


def test_a_release_leaves_an_address_record_changed_behind_its_back(etcd):
    source = store(etcd)
    source.claim(record(owner(1), "10.22.0.2"), source.held(owner(1)), True)
    (key,) = [k for k in etcd.keys if k.endswith(b"/10.22.0.2")]
    etcd.keys[key].value = b"operator was here"
    etcd.keys[key].mod_revision = etcd.revision = etcd.revision + 1
    assert source.release(owner(1)) is False
    assert etcd.keys[key].value == b"operator was here" and source.held(owner(1)).record is None
