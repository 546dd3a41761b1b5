"""The core over fakes at the wrapper boundary: all-or-nothing attach, rollback at every
step, idempotence, leftovers of killed attempts. The same paths run against the real
daemons in tests/e2e; here each failure can be put at one exact step."""

from __future__ import annotations

from ipaddress import ip_interface

import pytest

from pipework_wrapper.errors import ToolFailed
from plugin import names
from plugin.calllog import CallLog
from plugin.config.schema import parse
from plugin.core import marks
from plugin.core.attach import Core
from plugin.core.plumbing import Sandbox
from plugin.core.plumbing.netns import NetnsPlumber
from plugin.core.plumbing.pipework import PipeworkPlumber
from plugin.core.ports import PodPorts
from plugin.core.policy import Want
from plugin.errors import AllocationError, BackendError, Failure
from plugin.identity import Identity
from plugin.ipam.mac import mac_for
from tests.support.fakes import FakeHost

ID = "a" * 64
PID = 4242
POD = Identity("default", "22-web", ID)
SANDBOX = Sandbox("pipework", f"/proc/{PID}/ns/net", ID, PID)
NETWORK = {"name": "pods", "vlans": "all", "subnet": "10.9.0.0/29", "mtu": 1400,
           "routes": [{"dst": "10.10.0.0/16", "gw": "10.9.0.1"}], "gateway": "10.9.0.1"}


@pytest.fixture
def host() -> FakeHost:
    fake = FakeHost()
    fake.bridges.update({"br0", "br1"})
    fake.containers[ID] = PID
    return fake


def core(tmp_path, host: FakeHost, **config) -> Core:
    settings = {"bridge": "br0", "state_dir": str(tmp_path / "state"), "node_name": "n1",
                "log": {"file": str(tmp_path / "log")}, "networks": [NETWORK], **config}
    parsed = parse(settings, "test")
    return Core(parsed, CallLog(parsed.log_file, "test"), ports=PodPorts(parsed, {
        "pipework": PipeworkPlumber(parsed, ip=host.ip, runner=host.pipework),
        "netns": NetnsPlumber(parsed, ip=host.ip)}, ovs=host.ovs, ip=host.ip,
        announcer=host.announce, prober=host.probe))


def want(interface: str = "eth1", bridge: str = "br0", vlan: int = 22) -> Want:
    return Want(interface, bridge, vlan)


def leases(c: Core) -> list[str]:
    return [str(lease.address) for _, lease in c.allocators.leases()]


def test_attach_plugs_the_port_with_tag_marks_and_address(tmp_path, host):
    c = core(tmp_path, host)
    (record,) = c.attach(POD, [want()], SANDBOX)
    port = host.ports[names.host_veth(ID, "eth1")]
    assert (port.bridge, port.tag) == ("br0", 22)
    assert marks.Marks.read(port.external_ids) == record.marks("n1")
    assert host.addresses[(SANDBOX.netns, "eth1")] == [record.address] == leases(c)
    assert c.records.load(ID) == [record]
    assert host.calls.count("ip:mtu") == 1 and host.calls.count("ip:batch") == 1  # routes
    assert host.announced == [(SANDBOX.netns, "eth1", [record.address])]  # once, at the end
    assert host.calls[-1] == "announce"


def test_one_identity_runs_from_the_pod_to_record_marks_and_lease_owner(tmp_path, host):
    """Issue 22: the pod a front-end names, with the interface, is the record's `who`; with
    the node, it is the port's marks and the lease's owner, the same value throughout."""
    c = core(tmp_path, host)
    (record,) = c.attach(POD, [want()], SANDBOX)
    on_node = POD.with_interface("eth1", "n1")
    assert record.who == POD.with_interface("eth1") == Identity("default", "22-web", ID, "eth1")
    assert marks.Marks.read(host.ports[record.port].external_ids).who == on_node
    assert [owner for owner, _ in c.allocators.leases()] == [on_node]


def test_the_intent_is_recorded_before_any_address_is_claimed(tmp_path, host):
    """A call killed right after its claim leaves a record naming the lease's network, so
    the teardown that follows releases it there (and only there)."""
    c = core(tmp_path, host)
    at_claim = []
    claim = c.allocators.allocate

    def recording_first(owner, vlan, requested=()):
        at_claim.append([(r.interface, r.network, r.addresses) for r in c.records.load(ID)])
        return claim(owner, vlan, requested)

    c.allocators.allocate = recording_first
    c.attach(POD, [want()], SANDBOX)
    assert at_claim == [[("eth1", "pods", ())]]


def test_attach_twice_changes_nothing_and_runs_no_pipework(tmp_path, host):
    c = core(tmp_path, host)
    first = c.attach(POD, [want()], SANDBOX)
    assert c.attach(POD, [want()], SANDBOX) == first
    assert len(host.pipework.runs) == 1


@pytest.mark.parametrize("step", ["pipework:veth", "pipework:port", "pipework:address",
                                  "ovs:plug", "ip:mtu", "ip:batch", "ip:addresses",
                                  "ip:offload", "announce"])
def test_a_failure_at_any_step_leaves_nothing(tmp_path, host, step):
    c = core(tmp_path, host)
    host.fail_at(step)
    with pytest.raises(ToolFailed, match=step):
        c.attach(POD, [want()], SANDBOX)
    assert host.leftovers() == [] and leases(c) == [] and c.records.load(ID) == []


def test_the_second_interface_failing_takes_the_first_back(tmp_path, host):
    c = core(tmp_path, host)
    host.fail_at("pipework:address", nth=2)
    with pytest.raises(ToolFailed):
        c.attach(POD, [want("eth1"), want("eth2", "br1", 300)], SANDBOX)
    assert host.leftovers() == [] and leases(c) == [] and c.records.load(ID) == []


def test_a_dual_stack_claim_whose_ipv6_family_is_refused_keeps_no_ipv4_lease(tmp_path, host):
    dual = {"name": "dual", "vlans": "all", "subnets": ["10.9.0.0/29", "fd00:9::/64"]}
    c = core(tmp_path, host, networks=[dual])
    other = Identity("default", "22-other", "b" * 64)
    host.containers["b" * 64] = 4243
    c.attach(other, [Want("eth1", "br0", 22, addresses=(ip_interface("fd00:9::5/64"),))],
             Sandbox("pipework", "/proc/4243/ns/net", "b" * 64, 4243))
    before = leases(c)
    with pytest.raises(AllocationError, match="fd00:9::5 .*is held by"):
        c.attach(POD, [Want("eth1", "br0", 22, addresses=(ip_interface("fd00:9::5/64"),))],
                 SANDBOX)
    assert leases(c) == before and c.records.load(ID) == []
    assert names.host_veth(ID, "eth1") not in host.ports


def test_no_address_left_creates_nothing(tmp_path, host):
    c = core(tmp_path, host)
    others = [Identity("default", f"22-o{i}", f"{i:064x}") for i in range(5)]
    for i, other in enumerate(others):
        host.containers[other.infra_id] = 100 + i
        c.attach(other, [want()], Sandbox("pipework", f"/proc/{100 + i}/ns/net", other.infra_id,
                                             100 + i))
    before = host.leftovers()
    with pytest.raises(AllocationError, match="exhausted"):
        c.attach(POD, [want()], SANDBOX)
    assert host.leftovers() == before and c.records.load(ID) == []


def test_an_etcd_outage_at_setup_creates_nothing(tmp_path, host):
    """The allocator's etcd does not answer (nothing listens at its endpoint): the claim
    fails with a BackendError naming etcd before any port or veth is made. The intent
    record stays, naming no address: a claim can be applied with its reply lost, and the
    record is what teardown or gc release it by. (A real etcd going down:
    tests/e2e/test_etcd_store.py; a BackendError's exit code 6 through the kubelet's entry:
    tests/e2e/test_exec_plugin.py::test_open_vswitch_down_is_an_error_in_bounded_time.)"""
    c = core(tmp_path, host, networks=[{**NETWORK, "allocator": "etcd"}],
             etcd={"endpoints": ["http://127.0.0.1:9"], "timeout": 1})
    with pytest.raises(BackendError, match="etcd unreachable"):
        c.attach(POD, [want()], SANDBOX)
    assert host.leftovers() == []
    assert [(r.interface, r.addresses) for r in c.records.load(ID)] == [("eth1", ())]


def test_a_missing_bridge_is_said_before_anything_is_made(tmp_path, host):
    c = core(tmp_path, host)
    with pytest.raises(BackendError, match="bridge nobr does not exist"):
        c.attach(POD, [want(bridge="nobr")], SANDBOX)
    assert host.calls == [] and leases(c) == []


def test_the_port_is_made_before_pipework_so_no_call_waits_for_its_add_port(tmp_path, host):
    core(tmp_path, host).attach(POD, [want()], SANDBOX)
    assert host.calls.index("ovs:plug") < host.calls.index("pipework:veth")
    assert host.calls.count("ovs:plug") == 1


def test_a_device_named_like_the_bridge_that_ovsdb_lacks_fails_plainly(tmp_path, host):
    host.links.add("lonely")  # say, a Linux bridge: pipework would plug the pod into it
    c = core(tmp_path, host)
    with pytest.raises(BackendError, match="bridge lonely does not exist"):
        c.attach(POD, [want(bridge="lonely")], SANDBOX)
    assert "pipework:veth" not in host.calls
    host.links.discard("lonely")
    assert host.leftovers() == [] and leases(c) == [] and c.records.load(ID) == []


@pytest.mark.parametrize("sandbox", ["pipework", "netns"])
def test_a_port_the_datapath_never_takes_fails_in_bounded_time_unannounced(tmp_path, host,
                                                                           sandbox):
    c = core(tmp_path, host, timeouts={"ovs": 0.1})
    host.datapath_stuck = True
    with pytest.raises(BackendError, match="did not take port .* into its datapath"):
        c.attach(POD, [want()], SANDBOX if sandbox == "pipework" else NETNS)
    assert host.announced == []
    assert host.leftovers() == [] and leases(c) == [] and c.records.load(ID) == []


def test_a_stuck_undo_step_does_not_stop_the_others(tmp_path, host):
    c = core(tmp_path, host)
    host.fail_at("pipework:address")
    host.fail_at("ovs:delete")  # the rollback's port deletion fails; the rest still runs
    with pytest.raises(ToolFailed):
        c.attach(POD, [want()], SANDBOX)
    assert host.leftovers() == [f"port {names.host_veth(ID, 'eth1')}"]
    assert leases(c) == []
    # The record stays: it names the port that is left, for teardown or gc.
    assert [r.port for r in c.records.load(ID)] == [names.host_veth(ID, "eth1")]
    assert "injected failure at ovs:delete" in str(c.log.fields["rollback_errors"])
    c.detach(POD)
    assert host.leftovers() == [] and c.records.load(ID) == []


def test_rollback_frees_the_address_only_once_port_and_veth_are_gone(tmp_path, host):
    """Undo runs newest first: while the pod's interface still has the address (its veth
    and port exist), no other pod may be handed that address."""
    c = core(tmp_path, host)
    port = names.host_veth(ID, "eth1")
    at_release = []
    release = c.allocators.release

    def recording(owner, network):
        at_release.append((port in host.ports, port in host.links))
        return release(owner, network)

    c.allocators.release = recording
    host.fail_at("announce")
    with pytest.raises(ToolFailed):
        c.attach(POD, [want()], SANDBOX)
    assert at_release == [(False, False)]
    assert host.leftovers() == [] and leases(c) == []


def test_a_retry_moves_a_port_a_failed_attempt_left_on_another_bridge(tmp_path, host):
    """The attempt's rollback could not delete its port (no veth left) and its record stays;
    the network's bridge changes before the runtime retries the same container."""
    c = core(tmp_path, host)
    host.fail_at("pipework:veth")
    host.fail_at("ovs:delete")
    with pytest.raises(ToolFailed):
        c.attach(POD, [want(bridge="br1")], SANDBOX)
    port = names.host_veth(ID, "eth1")
    assert host.ports[port].bridge == "br1" and port not in host.links
    (record,) = c.attach(POD, [want(bridge="br0")], SANDBOX)
    assert (host.ports[port].bridge, host.ports[port].tag, record.bridge) == ("br0", 22, "br0")
    assert c.detach(POD) == [port] and host.leftovers() == [] and leases(c) == []


def test_detach_is_idempotent_and_needs_no_record(tmp_path, host):
    c = core(tmp_path, host)
    c.attach(POD, [want()], SANDBOX)
    c.records.delete(ID)  # as if the record were lost: the marks still name the port
    assert c.detach(POD) == [names.host_veth(ID, "eth1")]
    assert host.leftovers() == [] and leases(c) == []
    assert c.detach(POD) == []


def test_detach_finds_ports_of_interfaces_no_longer_configured(tmp_path, host):
    old = core(tmp_path, host, attachments=[{"interface": "eth1", "primary": True},
                                            {"interface": "eth2", "bridge": "br1"}])
    old.attach(POD, [want("eth1"), want("eth2", "br1")], SANDBOX)
    old.records.delete(ID)
    new = core(tmp_path, host)  # eth2 is no longer in the config
    assert sorted(new.detach(POD)) == sorted(names.host_veth(ID, i) for i in ("eth1", "eth2"))
    assert host.leftovers() == [] and leases(new) == []


def test_a_leftover_of_a_killed_attempt_is_cleared_before_pipework(tmp_path, host):
    c = core(tmp_path, host)
    c.attach(POD, [want()], SANDBOX)
    port = names.host_veth(ID, "eth1")
    host.ports[port] = host.ports[port].__class__(port, "br0", 99, {})  # stale tag, no marks
    (record,) = c.attach(POD, [want()], SANDBOX)
    assert host.ports[port].tag == 22 and len(host.pipework.runs) == 2
    assert marks.Marks.read(host.ports[port].external_ids) == record.marks("n1")


def test_detach_of_only_one_interface_keeps_the_other(tmp_path, host):
    c = core(tmp_path, host)
    c.attach(POD, [want("eth1"), want("eth2", "br1", 300)], SANDBOX)
    assert c.detach(POD, {"eth2"}) == [names.host_veth(ID, "eth2")]
    assert [r.interface for r in c.records.load(ID)] == ["eth1"]
    assert list(host.ports) == [names.host_veth(ID, "eth1")] and len(leases(c)) == 1


def test_detach_of_one_interface_without_records_takes_exactly_its_port(tmp_path, host):
    """With the records lost, only the ports' marks say which port is whose interface."""
    c = core(tmp_path, host)
    c.attach(POD, [want("eth1"), want("eth2", "br1", 300)], SANDBOX)
    c.records.delete(ID)
    assert c.detach(POD, {"eth2"}) == [names.host_veth(ID, "eth2")]
    assert list(host.ports) == [names.host_veth(ID, "eth1")]
    assert [owner.interface for owner, _ in c.allocators.leases()] == ["eth1"]


def test_failures_are_failures_not_crashes(tmp_path, host):
    """Every failure the fakes inject is a wrapper Failure: the front-ends' tables map it."""
    c = core(tmp_path, host)
    host.fail_at("ovs:plug")
    with pytest.raises(Failure):
        c.attach(POD, [want()], SANDBOX)


NETNS = Sandbox("netns", "/var/run/netns/cni-1234", netns_id="4:4026532999")
CRI = Identity("", "", "k8s-sandbox-1")  # a CRI runtime's id: no Docker, no pod name


def test_the_netns_plumber_builds_the_same_port_and_records_the_namespace(tmp_path, host):
    c = core(tmp_path, host)
    (record,) = c.attach(CRI, [want("eth0")], NETNS)
    port = host.ports[names.host_veth(CRI.infra_id, "eth0")]
    assert (port.bridge, port.tag) == ("br0", 22)
    found = marks.Marks.read(port.external_ids)
    assert found == record.marks("n1") and (found.plumber, found.netns, found.netns_id) == (
        "netns", NETNS.netns, NETNS.netns_id)
    assert host.addresses[(NETNS.netns, "eth0")] == [record.address]
    assert host.pipework.runs == [] and host.announced == [(NETNS.netns, "eth0",
                                                           [record.address])]
    assert c.attach(CRI, [want("eth0")], NETNS) == [record]  # idempotent
    assert c.detach(CRI) == [port.name] and host.leftovers() == [] and leases(c) == []


@pytest.mark.parametrize("step", ["ip:veth", "ip:batch", "ovs:plug", "ip:addresses",
                                  "announce"])
def test_the_netns_plumber_leaves_nothing_when_a_step_fails(tmp_path, host, step):
    c = core(tmp_path, host)
    host.fail_at(step)
    with pytest.raises(ToolFailed, match=step):
        c.attach(CRI, [want("eth0")], NETNS)
    assert host.leftovers() == [] and leases(c) == [] and c.records.load(CRI.infra_id) == []


DUAL = {"name": "pods", "vlans": "all", "subnets": [
    {"subnet": "10.9.0.0/29", "gateway": "10.9.0.1"}, "fd00:9::/64"]}
V6 = {"name": "pods6", "vlans": "all", "subnet": "fd00:6::/64", "gateway": "fd00:6::1"}


def test_a_dual_stack_pod_gets_ipv4_from_pipework_and_ipv6_from_the_plugin(tmp_path, host):
    c = core(tmp_path, host, networks=[DUAL])
    (record,) = c.attach(POD, [want()], SANDBOX)
    assert record.addresses == ("10.9.0.2/29", "fd00:9::1/64")  # no IPv6 gateway
    assert record.mac == "0a:58:0a:09:00:02"  # from the IPv4 address
    (run,) = host.pipework.runs
    assert run[-2:] == ["10.9.0.2/29", "0a:58:0a:09:00:02@22"] and "-a" not in run  # never @GW
    assert host.addresses[(SANDBOX.netns, "eth1")] == ["10.9.0.2/29", "fd00:9::1/64"]
    assert "ip:ipv6" in host.calls and host.ipv6_defaults == {}  # the interface, not defaults
    assert host.announced == [(SANDBOX.netns, "eth1", ["10.9.0.2/29", "fd00:9::1/64"])]
    assert c.detach(POD) and leases(c) == [] and host.leftovers() == []


@pytest.mark.parametrize("upstream", [False, True])
def test_an_ipv6_only_pod_gets_ipv6_defaults_for_the_pipework_call_only(tmp_path, host,
                                                                        upstream):
    host.pipework.upstream = upstream
    c = core(tmp_path, host, networks=[V6])
    (record,) = c.attach(POD, [want()], SANDBOX)
    assert record.addresses == ("fd00:6::2/64",) and record.mac == mac_for("fd00:6::2")
    (run,) = host.pipework.runs
    assert run[-2:] == ["fd00:6::2/64", f"{record.mac}@22"]  # never @GW
    assert (run[5:7] == ["-a", "6"]) == upstream  # only upstream's pipework takes -a
    assert host.ipv6_defaults == {SANDBOX.netns: ("1", "1")}  # put back as they were
    c.detach(POD)


def test_ipv6_defaults_are_put_back_when_pipework_fails(tmp_path, host):
    c = core(tmp_path, host, networks=[V6])
    host.fail_at("pipework:address")
    with pytest.raises(ToolFailed):
        c.attach(POD, [want()], SANDBOX)
    assert host.ipv6_defaults == {SANDBOX.netns: ("1", "1")}
    assert host.leftovers() == [] and leases(c) == []


def test_the_netns_plumber_gives_both_families_in_one_batch(tmp_path, host):
    c = core(tmp_path, host, networks=[DUAL])
    (record,) = c.attach(CRI, [want("eth0")], NETNS)
    assert host.addresses[(NETNS.netns, "eth0")] == list(record.addresses)
    assert host.calls.count("ip:batch") == 1 and "ip:ipv6" in host.calls
    c.detach(CRI)
    assert host.leftovers() == [] and leases(c) == []


def test_a_failed_second_setup_keeps_the_live_interface_and_its_lease(tmp_path, host):
    """Issue 19 item 10: a setup that adds eth2 to an attached pod and fails at eth2 undoes
    only eth2. eth1 stays plugged, recorded and leased, so no other pod gets its address."""
    c = core(tmp_path, host)
    (first,) = c.attach(POD, [want("eth1")], SANDBOX)
    host.fail_at("pipework:address", nth=2)  # the second pipework run: eth2's
    with pytest.raises(ToolFailed):
        c.attach(POD, [want("eth1"), want("eth2", "br1", 300)], SANDBOX)
    assert leases(c) == [first.address] and c.records.load(ID) == [first]
    assert list(host.ports) == [first.port] and host.addresses[(SANDBOX.netns, "eth1")] == [
        first.address]
    other = Identity("default", "22-other", "b" * 64)
    host.containers["b" * 64] = 4243
    (second,) = c.attach(other, [want("eth1")],
                         Sandbox("pipework", "/proc/4243/ns/net", "b" * 64, 4243))
    assert second.address != first.address


def test_a_failed_re_plug_of_a_recorded_interface_keeps_its_lease(tmp_path, host):
    """Issue 19 item 10: a second setup that re-plugs eth1 (its port was lost) and fails
    leaves eth1's lease held: its record still names that address, and teardown frees it."""
    c = core(tmp_path, host)
    (first,) = c.attach(POD, [want("eth1")], SANDBOX)
    host.ovs.delete_ports([first.port])
    host.fail_at("pipework:address", nth=2)
    with pytest.raises(ToolFailed):
        c.attach(POD, [want("eth1")], SANDBOX)
    assert leases(c) == [first.address] and c.records.load(ID) == [first]
    c.detach(POD)
    assert leases(c) == [] and host.leftovers() == []


class Refusing:
    """Addresses that must not be asked to release anything."""

    allocator, ipam = "vlanpipe", ""

    def release(self, owner, network):
        raise AssertionError(f"released {owner.interface} on {network} through the call's own")

    release_anywhere = release


def test_detach_releases_through_the_source_the_record_names(tmp_path, host):
    """Issue 19 item 7: the core releases a recorded lease where the record says it was
    claimed (the front-end's `recorded`), not through this call's allocators; a record that
    does not say (an earlier release's) goes through this call's."""
    c = core(tmp_path, host)
    (record,) = c.attach(POD, [want()], SANDBOX)
    assert (record.allocator, record.ipam) == ("vlanpipe", "")
    asked = []

    def recorded(found):
        asked.append(found)
        return c.allocators

    later = Core(c.config, c.log, allocators=Refusing(), ports=c.ports, recorded=recorded)
    later.detach(POD)
    assert asked == [record] and leases(c) == [] and host.leftovers() == []
