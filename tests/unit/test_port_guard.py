"""Port security at setup and teardown, over the fakes: the port's OpenFlow number is fixed
in its OVSDB transaction, its rules exist before the pod's end does, the record says
whether it is guarded and with what, teardown and rollback take the rules, and the
config decides who may relax the guard. What the rules let through is shown with raw
frames on real OVS in tests/e2e/test_port_security.py."""

from __future__ import annotations

import os

import pytest
import yaml

from pipework_wrapper.ofctl import Flow
from pipework_wrapper.ovs import Port
from plugin import names
from plugin.config.schema import parse
from plugin.core import flows
from plugin.core.guard import choose
from plugin.errors import ConfigError, LockTimeout
from plugin.locks import locked
from tests.support.fake_ofctl import rule
from tests.support.fakes import FakeHost
from tests.support.wired import cni_main, wire
from tests.unit.test_core import ID, NETWORK, POD, SANDBOX, core, host, want  # noqa: F401 (host)

PORT = names.host_veth(ID, "eth1")


def rules_of(host: FakeHost, bridge: str, port: str) -> list[str]:
    """The port's rules on `bridge`, each as its match and actions."""
    return [f"{r.match},actions={r.actions}" for r in host.ofctl.rules.get(bridge, [])
            if r.cookie == flows.cookie(port)]


def bridge_rules() -> set[Flow]:
    return {rule(line) for line in flows.bridge_rules()}


def test_the_port_asks_for_a_free_number_and_its_rules_exist_before_the_pods_end(tmp_path,
                                                                                 host):
    host.ports["other"] = Port("other", "br0", 5, {})
    host.ofports["other"] = choose(PORT, set())  # the number the port's name hashes to
    (record,) = core(tmp_path, host).attach(POD, [want()], SANDBOX)
    number = host.ofports[PORT]
    assert number != host.ofports["other"] and 1 <= number <= 65279
    assert host.calls.index("ovs:plug") < host.calls.index("ofctl:bundle") \
        < host.calls.index("pipework:veth")
    rules = rules_of(host, "br0", PORT)
    assert rules and all(f"in_port={number}" in r for r in rules)
    assert bridge_rules() <= set(host.ofctl.rules["br0"])  # FORWARD's NORMAL too
    assert any(f"nw_src={record.ip}" in r for r in rules)
    assert record.port_security == "on" and record.link_locals == ()


def test_the_link_local_addresses_read_from_the_pod_are_recorded_and_admitted(tmp_path, host):
    host.link_locals[(SANDBOX.netns, "eth1")] = ["fe80::8:7"]
    c = core(tmp_path, host)
    (record,) = c.attach(POD, [want()], SANDBOX)
    assert record.link_locals == ("fe80::8:7",) and c.records.load(ID) == [record]
    assert any("ipv6_src=fe80::8:7" in r for r in rules_of(host, "br0", PORT))
    assert host.calls.count("ofctl:bundle") == 2


def test_a_pod_without_link_local_addresses_costs_one_bundle(tmp_path, host):
    core(tmp_path, host).attach(POD, [want()], SANDBOX)
    assert host.calls.count("ofctl:bundle") == 1


@pytest.mark.parametrize("config", [{"port_security": False},
                                    {"networks": [{**NETWORK, "port_security": False}]}],
                         ids=["node", "network"])
def test_the_guard_turned_off_leaves_no_port_rules_but_the_bridges(tmp_path, host, config):
    (record,) = core(tmp_path, host, **config).attach(POD, [want()], SANDBOX)
    assert record.port_security == "off"
    assert rules_of(host, "br0", PORT) == []
    assert set(host.ofctl.rules["br0"]) == bridge_rules()


def test_a_networks_allowed_address_pairs_are_recorded_and_admitted(tmp_path, host):
    pairs = [{"ip": "10.99.0.7"}, {"ip": "fd00:99::7/128", "mac": "02:00:5E:00:01:07"}]
    c = core(tmp_path, host, networks=[{**NETWORK, "allowed_address_pairs": pairs}])
    (record,) = c.attach(POD, [want()], SANDBOX)
    assert record.pairs == (("10.99.0.7", ""), ("fd00:99::7", "02:00:5e:00:01:07"))
    rules = rules_of(host, "br0", PORT)
    assert any(f"dl_src={record.mac},nw_src=10.99.0.7" in r for r in rules)
    assert any("dl_src=02:00:5e:00:01:07,ipv6_src=fd00:99::7" in r for r in rules)


def test_teardown_takes_the_ports_rules_and_leaves_the_bridges(tmp_path, host):
    c = core(tmp_path, host)
    c.attach(POD, [want(), want("eth2", "br1", 300)], SANDBOX)
    c.detach(POD)
    assert host.leftovers() == []
    assert set(host.ofctl.rules["br0"]) == bridge_rules()


def test_teardown_of_a_port_whose_bridge_is_gone_succeeds(tmp_path, host):
    c = core(tmp_path, host)
    c.attach(POD, [want("eth2", "br1", 300)], SANDBOX)
    host.bridges.discard("br1")  # the bridge was deleted with its port and rules
    host.ports.clear()
    c.detach(POD)
    assert c.records.load(ID) == []


def test_a_new_port_on_a_reused_number_is_not_governed_by_rules_left_there(tmp_path, host):
    """A teardown killed after its port went left the port's rules; a new port given the
    same number must not inherit them."""
    number = choose(PORT, set())
    stale = (f"add table=0,cookie={flows.cookie('vpdeadbeef-1'):#x},in_port={number},"
             "priority=30,ip,dl_src=02:00:00:00:00:09,actions=resubmit(,1)")
    host.bridges.add("br0")
    host.ofctl.bundle("br0", [stale])
    core(tmp_path, host).attach(POD, [want()], SANDBOX)
    assert host.ofports[PORT] == number and rule(stale) not in host.ofctl.rules["br0"]


def test_concurrent_setups_on_a_bridge_take_turns_for_the_number(tmp_path, host):
    """The read of the numbers and the port's transaction hold the bridge's lock: with it
    held elsewhere, setup waits (here: times out, naming it) and makes nothing."""
    c = core(tmp_path, host, timeouts={"lock": 0.3})
    directory = tmp_path / "state" / "bridge-locks"
    os.makedirs(directory, mode=0o700)
    with locked(str(directory / "br0.lock"), 1):
        with pytest.raises(LockTimeout, match="br0.lock"):
            c.attach(POD, [want()], SANDBOX)
    assert host.leftovers() == [] and "pipework:veth" not in host.calls


def test_the_number_search_skips_every_taken_number():
    start = choose("p", set())
    assert choose("p", {start}) == (start % 65279) + 1
    assert choose("p", set(range(1, 65279))) == 65279


@pytest.mark.parametrize("item,needle", [
    ({"ip": "10.0.0.0/24"}, "networks[0].allowed_address_pairs[0]"),
    ({"ip": "nonsense"}, "not an IP address"),
    ({"ip": "10.0.0.9", "mac": "01:00:5e:00:00:01"}, "not a unicast MAC"),
    ({"ip": "10.0.0.9", "vip": True}, "must be a mapping"),
])
def test_bad_pairs_in_the_node_config_are_refused(item, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse({"networks": [{**NETWORK, "allowed_address_pairs": [item]}]}, "test")


# The CNI front-end: a tenant's network config relaxes the guard only where the node lets it.

@pytest.fixture
def cni(tmp_path, monkeypatch, capsys):
    fake = FakeHost()
    fake.bridges.add("br0")
    fake.namespaces["/var/run/netns/cni-1"] = (4, 4026532000)
    wire(monkeypatch, fake)

    def call(node_cni: dict, **keys) -> tuple[int, object, FakeHost]:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump({
            "bridge": "br0", "state_dir": str(tmp_path / "state"), "node_name": "n1",
            "log": {"file": str(tmp_path / "log")}, "docker_url": "unix:///nonexistent.sock",
            "networks": [{"name": "pods", "vlans": "all", "subnet": "10.9.0.0/24"}],
            "cni": {"bridges": ["br0"], **node_cni}}))
        conf = {"cniVersion": "1.1.0", "name": "n", "type": "vlanpipe", "vlan": 22, **keys}
        status, out = cni_main(monkeypatch, capsys, str(path), "ADD", conf, "cri-1", "net1",
                               "/var/run/netns/cni-1")
        return status, out, fake
    return call


def test_a_network_config_may_not_turn_the_guard_off_unless_the_node_allows(cni):
    status, out, host = cni({}, port_security=False)
    assert status == 1 and out["code"] == 7, out
    assert "'port_security'" in out["msg"] and "cni.port_security_choice" in out["msg"]
    assert host.calls == [] and host.ports == {}
    status, out, host = cni({"port_security_choice": True}, port_security=False)
    assert status == 0, out
    assert rules_of(host, "br0", names.host_veth("cri-1", "net1")) == []


def test_a_network_configs_pairs_must_lie_in_the_nodes_cidrs(cni):
    pair = {"ip": "10.77.0.5"}
    status, out, host = cni({}, allowed_address_pairs=[pair])
    assert status == 1 and out["code"] == 7 and "allowed_address_pairs[0].ip" in out["msg"]
    assert "cni.address_pair_cidrs: none" in out["msg"] and host.ports == {}
    status, out, host = cni({"address_pair_cidrs": ["10.77.0.0/28"]},
                            allowed_address_pairs=[pair])
    assert status == 0, out
    assert any("nw_src=10.77.0.5" in r
               for r in rules_of(host, "br0", names.host_veth("cri-1", "net1")))
