"""The disk store: exclusive records, the lock, rotation, crashes, corrupt files."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import multiprocessing
import os
import signal
import stat
import time

import pytest

from plugin.ipam.model import Request
from plugin.errors import AllocationError, BackendError
from plugin.ipam.pooled import PoolAllocator
from plugin.ipam.stores.files import FileStore
from plugin.locks import locked
from tests.support.ipamdata import lookup, network, owner

FORK = multiprocessing.get_context("fork")


def source(state_dir, subnet: str = "10.0.0.0/24", **fields) -> PoolAllocator:
    """An allocator on a disk store whose gateway is the subnet's first address (so pods
    start at .2)."""
    gateway = str(ipaddress.ip_network(subnet).network_address + 1)
    net = network(vlans=[22], subnet=subnet, gateway=gateway, **fields)
    return PoolAllocator(net, FileStore(net, str(state_dir)))


def addresses(store: PoolAllocator) -> list[str]:
    return [str(lease.address.ip) for _, lease in store.leases()]


def test_allocate_is_idempotent_and_release_is_harmless_twice(tmp_path):
    store = source(tmp_path)
    first = store.allocate(owner(1))
    assert str(first.address) == "10.0.0.2/24" and first.gateway is None  # no default_route
    assert store.allocate(owner(1)) == first
    assert lookup(store, owner(1)) == first
    assert store.allocate(owner(1, interface="eth2")).address != first.address
    assert store.release(owner(1)) is True
    assert store.release(owner(1)) is False
    assert lookup(store, owner(1)) is None


def test_release_and_lookup_create_nothing(tmp_path):
    store = source(tmp_path)
    assert store.release(owner(1)) is False
    assert lookup(store, owner(1)) is None
    assert store.leases() == [] and os.listdir(tmp_path) == []


def test_a_freed_address_is_not_handed_out_again_at_once(tmp_path):
    store = source(tmp_path, subnet="10.0.0.0/29")
    assert str(store.allocate(owner(1)).address.ip) == "10.0.0.2"
    store.release(owner(1))
    got = [str(store.allocate(owner(i)).address.ip) for i in range(2, 7)]
    assert got == ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.2"]


def test_exhaustion_names_the_network_and_the_count(tmp_path):
    store = source(tmp_path, subnet="10.0.0.0/29")
    for i in range(5):
        store.allocate(owner(i))
    with pytest.raises(AllocationError, match="network net exhausted: 5 addresses in use"):
        store.allocate(owner(9))
    store.release(owner(3))
    assert str(store.allocate(owner(9)).address.ip) == "10.0.0.5"


def test_layout_and_permissions(tmp_path):
    store = source(tmp_path)
    lease = store.allocate(owner(1))
    root = tmp_path / "ipam" / "net"
    for path in (tmp_path / "ipam", root, root / "addr", root / "owner"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    record = root / "addr" / "10.0.0.2"
    index = root / "owner" / hashlib.sha256(owner(1).key.encode()).hexdigest()
    for path in (record, index, root / "lock", root / "last_reserved"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.path.samefile(index, record)  # the owner index is a hard link to the record
    assert (root / "last_reserved").read_text() == "10.0.0.2"
    assert '"infra_id": "%064x"' % 1 in record.read_text()
    assert sorted(os.listdir(root)) == ["addr", "last_reserved", "lock", "owner"]
    assert lookup(PoolAllocator(store.network, FileStore(store.network, str(tmp_path))), owner(1)) == lease  # after a restart


def test_corrupt_and_foreign_files_are_reported_and_never_reused(tmp_path, caplog):
    store = source(tmp_path, subnet="10.0.0.0/29")
    store.allocate(owner(1))  # creates the directories; takes .2
    addr = tmp_path / "ipam" / "net" / "addr"
    (addr / "10.0.0.3").write_bytes(b"\x00garbage")
    (addr / "10.0.0.4").write_text('{"kind": "something-else"}')
    (addr / "not-an-address").write_text("x")
    (addr / "10.9.9.9").write_text("x")
    (tmp_path / "ipam" / "net" / "stray").write_text("x")
    caplog.set_level(logging.WARNING)
    assert addresses(store) == ["10.0.0.2"]
    reasons = {os.path.basename(d.where): d.reason for d in store.damaged()}
    assert reasons["10.0.0.3"].startswith("not JSON")
    assert reasons["10.0.0.4"] == "not a vlanpipe.lease/v1 record"
    assert "does not appear to be an IPv4 or IPv6 address" in reasons["not-an-address"]
    assert reasons["10.9.9.9"] == "address outside subnet 10.0.0.0/29"
    assert reasons["stray"] == "foreign file in the state directory"
    assert "10.0.0.3: not JSON" in caplog.text
    assert str(store.allocate(owner(2)).address.ip) == "10.0.0.5"
    assert str(store.allocate(owner(3)).address.ip) == "10.0.0.6"
    with pytest.raises(AllocationError, match="exhausted: 5 addresses in use"):
        store.allocate(owner(4))


def test_a_record_naming_another_network_or_address_is_foreign(tmp_path):
    store = source(tmp_path)
    store.allocate(owner(1))
    addr = tmp_path / "ipam" / "net" / "addr"
    good = (addr / "10.0.0.2").read_text()
    (addr / "10.0.0.7").write_text(good)
    (addr / "10.0.0.8").write_text(good.replace('"net"', '"other"'))
    reasons = sorted(d.reason for d in store.damaged())
    assert reasons == ["holds address 10.0.0.2, not 10.0.0.7", "names network 'other', not 'net'"]


def index_of(tmp_path, who):
    return tmp_path / "ipam" / "net" / "owner" / hashlib.sha256(who.key.encode()).hexdigest()


def test_an_index_that_is_not_the_address_record_is_ignored(tmp_path):
    store = source(tmp_path)
    store.allocate(owner(1))
    record = tmp_path / "ipam" / "net" / "addr" / "10.0.0.2"
    index_of(tmp_path, owner(2)).write_bytes(record.read_bytes())  # a copy, not the record
    assert lookup(store, owner(2)) is None
    os.link(record, index_of(tmp_path, owner(3)))  # the record itself, but of owner 1
    assert lookup(store, owner(3)) is None
    index_of(tmp_path, owner(4)).write_text("garbage")
    assert lookup(store, owner(4)) is None
    for other in (2, 3, 4):
        assert store.release(owner(other)) is False
    assert addresses(store) == ["10.0.0.2"]
    assert str(store.allocate(owner(2)).address.ip) == "10.0.0.3"


def test_a_crash_between_index_and_record_leaves_nothing_held(tmp_path, monkeypatch):
    store = source(tmp_path)

    def die(*args):
        raise SystemExit("killed")

    monkeypatch.setattr("plugin.ipam.stores.files.link_exclusive", die)  # after the index link
    with pytest.raises(SystemExit):
        store.allocate(owner(1))
    monkeypatch.undo()
    assert index_of(tmp_path, owner(1)).exists()
    assert addresses(store) == [] and store.damaged() == []
    assert lookup(store, owner(1)) is None
    assert str(store.allocate(owner(1)).address.ip) == "10.0.0.2"
    assert addresses(store) == ["10.0.0.2"]


def test_pinned_address_is_handed_out_exactly(tmp_path):
    store = source(tmp_path, range={"start": "10.0.0.100"})
    pinned = Request(ipaddress.ip_address("10.0.0.50"), pinned=True)
    assert str(store.allocate(owner(1), pinned).address) == "10.0.0.50/24"
    assert str(store.allocate(owner(1), pinned).address) == "10.0.0.50/24"
    with pytest.raises(AllocationError, match="pinned address 10.0.0.50 .* is held by pod ns/22-pod-1"):
        store.allocate(owner(2), pinned)
    with pytest.raises(AllocationError, match="cannot be used on network net: it is the gateway"):
        store.allocate(owner(2), Request(ipaddress.ip_address("10.0.0.1"), pinned=True))


def test_a_new_pin_moves_the_owner_and_frees_its_old_address(tmp_path):
    store = source(tmp_path)
    store.allocate(owner(1))
    assert str(store.allocate(owner(1), Request(ipaddress.ip_address("10.0.0.99"), pinned=True)).address.ip) == "10.0.0.99"
    assert addresses(store) == ["10.0.0.99"]


def _allocate_in_child(state_dir, index, barrier, results):
    store = source(state_dir)
    barrier.wait()
    results.put((index, str(store.allocate(owner(index)).address.ip)))


def _release_in_child(state_dir, index, barrier):
    store = source(state_dir)
    barrier.wait()
    store.release(owner(index))


def _run_together(target, *args, count=64):
    """`count` processes that start `target(*args, index, barrier, ...)` at the same moment."""
    barrier = FORK.Barrier(count)
    workers = [FORK.Process(target=target, args=(args[0], i, barrier, *args[1:]))
               for i in range(count)]
    for worker in workers:
        worker.start()
    return workers


def _joined(workers):
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0


def test_64_processes_at_once_get_64_distinct_addresses(tmp_path):
    results = FORK.Queue()
    workers = _run_together(_allocate_in_child, str(tmp_path), results)
    got = dict(results.get(timeout=60) for _ in workers)
    _joined(workers)
    assert len(set(got.values())) == 64
    store = source(tmp_path)
    assert sorted(addresses(store)) == sorted(got.values())
    assert all(str(lookup(store, owner(i)).address.ip) == got[i] for i in range(64))
    _joined(_run_together(_release_in_child, str(tmp_path)))
    assert store.leases() == [] and store.damaged() == []


def _hold_lock(path, ready):
    with locked(path, 5):
        ready.set()
        time.sleep(60)


def test_a_lock_holder_killed_with_sigkill_releases_the_lock(tmp_path):
    store = source(tmp_path)
    store.allocate(owner(1))
    ready = FORK.Event()
    holder = FORK.Process(target=_hold_lock, args=(str(tmp_path / "ipam/net/lock"), ready))
    holder.start()
    assert ready.wait(10)
    store.store.lock_timeout = 0.3  # the deadline ends the wait: the call raises, never hangs
    with pytest.raises(BackendError, match="lock .*/ipam/net/lock still held by another process"):
        store.allocate(owner(2))
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    store.store.lock_timeout = 5
    assert str(store.allocate(owner(2)).address.ip) == "10.0.0.3"


def _allocate_and_die(state_dir):
    source(state_dir).allocate(owner(1))
    os.kill(os.getpid(), signal.SIGKILL)  # dies before any attachment or release


def test_killed_after_allocation_the_next_setup_gets_the_same_record(tmp_path):
    child = FORK.Process(target=_allocate_and_die, args=(str(tmp_path),))
    child.start()
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    store = source(tmp_path)
    assert str(store.allocate(owner(1)).address.ip) == "10.0.0.2"
    assert addresses(store) == ["10.0.0.2"]


def test_ipv6_networks_allocate_like_ipv4(tmp_path):
    store = source(tmp_path, subnet="fd00:22::/120", default_route=True)
    leases = [store.allocate(owner(i)) for i in range(3)]
    assert [str(lease.address) for lease in leases] == ["fd00:22::2/120", "fd00:22::3/120",
                                                        "fd00:22::4/120"]
    assert str(leases[0].gateway) == "fd00:22::1"
    assert store.release(owner(1)) and addresses(store) == ["fd00:22::2", "fd00:22::4"]
