"""The conflict probe in setup, over the fakes (another host's answer is put on the fake
wire, `FakeHost.wire`): setup fails naming the other MAC, rolls back everything, and keeps
the lease conflicted where the store can keep it; gc keeps it, doctor lists it, and only
`lease clear` frees it. The real wire: tests/e2e/test_conflict_probe.py."""

from __future__ import annotations

import ipaddress

import pytest

from plugin.calllog import CallLog
from plugin.errors import AddressConflict, InputError
from plugin.ipam.pooled import PoolAllocator
from plugin.ipam.stores.etcd import EtcdStore
from plugin.ipam.stores.files import FileStore
from plugin.ops import conflicts
from plugin.ops.actions import KEPT
from tests.support.fake_etcd import FakeConnection, FakeEtcd
from tests.support.ipamdata import network, owner
from tests.unit.test_cni_delegate import delegate, fake  # noqa: F401 (a fixture)
from tests.unit.test_core import ID, POD, SANDBOX, core, host, leases, want  # noqa: F401 (host)

OTHER = "02:aa:bb:cc:dd:ee"


def test_an_answer_fails_setup_naming_the_mac_and_keeps_the_lease_conflicted(tmp_path, host):
    c = core(tmp_path, host)
    host.wire[("br0", 22, "10.9.0.2")] = OTHER  # the pool's first address, on VLAN 22
    with pytest.raises(AddressConflict) as failed:
        c.attach(POD, [want()], SANDBOX)
    line = failed.value.line()
    assert line.startswith(f"address 10.9.0.2/29 is already used by MAC {OTHER} on bridge br0 "
                           "VLAN 22; find that host")
    assert "`vlanpipe lease clear 10.9.0.2`" in line and "\n" not in line
    assert host.leftovers() == [] and c.records.load(ID) == [] and leases(c) == []
    (kept,) = c.allocators.conflicted()
    assert (kept.address, kept.mac, kept.found_by.pod) == ("10.9.0.2/29", OTHER, "22-web")
    assert host.announced == []  # never announced over the other host
    # The retry gets another address; the conflicted one is never handed out again.
    (record,) = c.attach(POD, [want()], SANDBOX)
    assert record.address == "10.9.0.3/29" and leases(c) == ["10.9.0.3/29"]
    c.detach(POD)
    assert [k.address for k in c.allocators.conflicted()] == ["10.9.0.2/29"]


def test_the_probe_runs_after_the_datapath_takes_the_port_and_before_the_announcement(
        tmp_path, host):
    c = core(tmp_path, host, conflict_probe={"wait_ms": 50})
    (record,) = c.attach(POD, [want()], SANDBOX)
    assert host.calls.index("ip:offload") < host.calls.index("probe") \
        < host.calls.index("announce")
    assert host.probed == [(SANDBOX.netns, "eth1", [record.address], 0.05)]


def test_the_same_address_on_another_vlan_is_no_conflict(tmp_path, host):
    host.wire[("br0", 23, "10.9.0.2")] = OTHER
    host.wire[("br1", 22, "10.9.0.2")] = OTHER
    (record,) = core(tmp_path, host).attach(POD, [want()], SANDBOX)
    assert record.address == "10.9.0.2/29"


def test_probe_off_sends_nothing(tmp_path, host):
    host.wire[("br0", 22, "10.9.0.2")] = OTHER
    core(tmp_path, host, conflict_probe={"enabled": False}).attach(POD, [want()], SANDBOX)
    assert "probe" not in host.calls


def test_a_static_address_cannot_be_kept_and_the_error_says_it_was_released(tmp_path, host):
    static = {"name": "ref", "vlans": "all", "allocator": "static", "address": "10.9.0.9/24"}
    c = core(tmp_path, host, networks=[static])
    host.wire[("br0", 22, "10.9.0.9")] = OTHER
    with pytest.raises(AddressConflict, match="10.9.0.9 was released to its network, which "
                       "cannot keep it out of use"):
        c.attach(POD, [want()], SANDBOX)
    assert host.leftovers() == [] and c.records.load(ID) == []


def test_only_the_answered_family_of_a_dual_stack_lease_is_kept(tmp_path, host):
    dual = {"name": "dual", "vlans": "all", "subnets": ["10.9.0.0/29", "fd00:9::/64"]}
    c = core(tmp_path, host, networks=[dual])
    host.wire[("br0", 22, "fd00:9::1")] = OTHER
    with pytest.raises(AddressConflict, match=f"address fd00:9::1/64 is already used by MAC "
                       f"{OTHER}"):
        c.attach(POD, [want()], SANDBOX)
    assert [k.address for k in c.allocators.conflicted()] == ["fd00:9::1/64"]
    assert leases(c) == [] and host.leftovers() == []


def test_gc_keeps_a_conflicted_lease_and_says_how_to_free_it(tmp_path, host, monkeypatch):
    from tests.support.wired import wire

    wire(monkeypatch, host)
    c = core(tmp_path, host)
    host.wire[("br0", 22, "10.9.0.2")] = OTHER
    with pytest.raises(AddressConflict):
        c.attach(POD, [want()], SANDBOX)
    from plugin.ops.gc import sweep

    actions = [a for a in sweep(c.config, CallLog(c.config.log_file, "test"))
               if a.what.startswith("lease")]
    assert [(a.outcome, a.what) for a in actions] == [(KEPT, "lease 10.9.0.2/29 on pods")]
    assert "vlanpipe lease clear 10.9.0.2" in actions[0].why
    assert [k.address for k in c.allocators.conflicted()] == ["10.9.0.2/29"]


def test_doctor_lists_it_and_lease_clear_frees_it_once(tmp_path, host):
    c = core(tmp_path, host)
    assert conflicts.check(c.config) == "no address kept out of use"
    host.wire[("br0", 22, "10.9.0.2")] = OTHER
    with pytest.raises(AddressConflict):
        c.attach(POD, [want()], SANDBOX)
    with pytest.raises(Exception, match=f"1 address.es. kept out of use.*10.9.0.2/29 on pods: "
                       f"MAC {OTHER} answered for it when default/22-web eth1 was set up on "
                       "node n1"):
        conflicts.check(c.config)
    assert conflicts.clear(c.config, "10.9.0.2") == ("cleared 10.9.0.2 on pods: it can be "
                                                     "handed out again")
    assert c.allocators.conflicted() == []
    with pytest.raises(InputError, match="no network .* holds a record of 10.9.0.2"):
        conflicts.clear(c.config, "10.9.0.2")


def test_lease_clear_refuses_a_live_lease_and_a_non_address(tmp_path, host):
    c = core(tmp_path, host)
    c.attach(POD, [want()], SANDBOX)
    with pytest.raises(InputError, match="10.9.0.2 on pods is the lease of default/22-web eth1 "
                       "on node n1, not a conflicted one: left alone"):
        conflicts.clear(c.config, "10.9.0.2")
    assert leases(c) == ["10.9.0.2/29"]
    with pytest.raises(InputError, match="'10.9.0.2/29' is not an IP address"):
        conflicts.clear(c.config, "10.9.0.2/29")


NET = network(vlans=[22], subnet="10.22.0.0/24", gateway="10.22.0.1")


@pytest.mark.parametrize("kind", ["files", "etcd"])
def test_each_store_turns_only_the_owners_lease_into_a_conflicted_record(tmp_path, kind):
    store = (FileStore(NET, str(tmp_path)) if kind == "files"
             else EtcdStore(NET, FakeConnection(FakeEtcd()), "/t", node="n1"))
    source = PoolAllocator(NET, store)
    mine = source.allocate(owner(1, node="n1")).address.ip
    theirs = source.allocate(owner(2, node="n1")).address.ip
    assert not source.mark_conflicted(owner(1, node="n1"), theirs, OTHER)  # not its lease
    assert source.mark_conflicted(owner(1, node="n1"), mine, OTHER)
    assert [str(lease.address.ip) for _, lease in source.leases()] == [str(theirs)]
    assert source.release(owner(1, node="n1")) is False  # the owner holds nothing now
    (kept,) = source.conflicted()
    assert (kept.address, kept.mac, kept.found_by.infra_id) == (f"{mine}/24", OTHER,
                                                                owner(1).infra_id)
    # Never handed out again, to the same owner or any other, while it is kept.
    again = {str(source.allocate(owner(i, node="n1")).address.ip) for i in range(3, 8)}
    assert str(mine) not in again
    assert source.clear(theirs).conflict == ""  # a live lease: found, not cleared
    assert source.clear(mine).conflict == OTHER and source.conflicted() == []
    assert source.clear(ipaddress.ip_address("10.22.0.200")) is None


def test_a_delegated_lease_cannot_be_marked_so_it_is_released_through_the_delegate(
        tmp_path, host, fake):
    """The IPAM plugin has no verb for "keep it out of use": the rollback's DEL frees it,
    and the error says so instead of claiming it is kept."""
    from plugin.config.schema import parse
    from plugin.core.attach import Core
    from plugin.core.plumbing.pipework import PipeworkPlumber
    from plugin.core.ports import PodPorts
    from plugin.frontends.cni.delegate import DelegatedAddresses

    make, calls = fake
    make()
    parsed = parse({"bridge": "br0", "state_dir": str(tmp_path / "state"), "node_name": "n1",
                    "log": {"file": str(tmp_path / "log")}}, "test")
    c = Core(parsed, CallLog(parsed.log_file, "test"),
             allocators=DelegatedAddresses(delegate(tmp_path)),
             ports=PodPorts(parsed, {"pipework": PipeworkPlumber(parsed, ip=host.ip,
                                                                 runner=host.pipework)},
                            ovs=host.ovs, ip=host.ip, announcer=host.announce,
                            prober=host.probe, ofctl=host.ofctl))
    host.wire[("br0", 22, "10.5.0.2")] = OTHER
    with pytest.raises(AddressConflict, match="10.5.0.2 was released to the IPAM plugin, "
                       "which cannot keep it out of use"):
        c.attach(POD, [want()], SANDBOX)
    assert [(call["env"]["CNI_COMMAND"], call["env"].get("CNI_CONTAINERID"))
            for call in calls() if call["env"]["CNI_COMMAND"] != "VERSION"] == [
        ("ADD", "c1"), ("DEL", ID)]
    assert host.leftovers() == [] and c.records.load(ID) == []
