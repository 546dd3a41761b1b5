"""Bandwidth limits as they are read, resolved and refused: the CNI bandwidth plugin's keys
and units, per-direction defaults, the node's maximum, and bad input as one line with
nothing made. What enforces the limits (meters, QoS) runs against the real Open vSwitch
in tests/e2e/test_bandwidth.py."""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml

from pipework_wrapper.ofctl import MeterFeatures, Ofctl
from plugin.calllog import CallLog
from plugin.config import loader, schema
from plugin.errors import ConfigError
from plugin.config import netconf
from plugin.frontends.cni.errors import BACKEND, INVALID_CONFIG
from plugin.ops.gc import sweep
from plugin.policy.bandwidth import Bandwidth, parse
from tests.support.fakes import FakeHost
from tests.support.wired import cni_main, wire

M = 1_000_000
LIMITS = {"ingressRate": 20 * M, "ingressBurst": 2 * M, "egressRate": 10 * M,
          "egressBurst": M}


def test_the_four_keys_in_bits_per_second_and_bits():
    assert parse(LIMITS, "x") == Bandwidth(20 * M, 2 * M, 10 * M, M)
    assert parse(None, "x") == Bandwidth() and parse({}, "x") == Bandwidth()
    assert not Bandwidth().ingress and not Bandwidth().egress


@pytest.mark.parametrize("value, names", [
    ([1], "must be a mapping"),
    ({"ingressrate": 5}, "x.'ingressrate' is not a bandwidth key"),
    ({"ingressRate": -1, "ingressBurst": 1}, "x.ingressRate = -1 must be a whole number"),
    ({"ingressRate": "20M", "ingressBurst": 1}, "x.ingressRate = '20M'"),
    ({"ingressRate": 2.5e7, "ingressBurst": 1}, "x.ingressRate = 25000000.0"),
    ({"ingressRate": True, "ingressBurst": 1}, "x.ingressRate = True"),
    ({"egressRate": 10 * M}, "x.egressRate is set without egressBurst"),
    ({"egressBurst": 10 * M}, "x.egressBurst is set without egressRate"),
    ({"egressRate": 999, "egressBurst": 1}, "x.egressRate = 999 is below 1000"),
    ({"egressRate": 2 ** 64, "egressBurst": 1}, "x.egressRate = 18446744073709551616"),
    ({"egressRate": M, "egressBurst": 2 ** 35}, "x.egressBurst = 34359738368"),
])
def test_bad_limits_are_one_line_naming_the_key(value, names):
    with pytest.raises(ValueError) as caught:
        parse(value, "x")
    assert names in str(caught.value) and "\n" not in str(caught.value)


def test_a_pod_overrides_its_networks_limits_one_direction_at_a_time():
    network = Bandwidth(20 * M, M, 10 * M, M)
    assert Bandwidth(ingress_rate=5 * M, ingress_burst=M).over(network) == \
        Bandwidth(5 * M, M, 10 * M, M)
    assert Bandwidth().over(network) == network
    assert Bandwidth(egress_rate=M, egress_burst=M).over(Bandwidth()) == \
        Bandwidth(0, 0, M, M)


def test_the_maximum_names_each_value_above_it_and_zero_bounds_nothing():
    most = Bandwidth(ingress_rate=10 * M, egress_burst=M)
    assert Bandwidth(20 * M, 5 * M, 20 * M, 5 * M).exceeding(most) == \
        [("ingressRate", 20 * M, 10 * M), ("egressBurst", 5 * M, M)]
    assert Bandwidth(20 * M, 5 * M).exceeding(Bandwidth()) == []


def write(tmp_path, **keys) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), **keys}))
    return str(path)


def test_config_reads_network_defaults_and_the_nodes_maximum(tmp_path):
    config = loader.load(write(tmp_path, bandwidth_max=LIMITS, networks=[
        {"name": "pods", "vlans": "all", "subnets": ["10.1.0.0/24", "fd00:1::/64"],
         "bandwidth": {"egressRate": 5 * M, "egressBurst": M}}]))
    assert config.bandwidth_max == Bandwidth(20 * M, 2 * M, 10 * M, M)
    assert {n.bandwidth for n in config.networks} == {Bandwidth(egress_rate=5 * M,
                                                                egress_burst=M)}
    assert loader.load(write(tmp_path)).bandwidth_max == Bandwidth()


@pytest.mark.parametrize("keys, names", [
    ({"networks": [{"name": "pods", "subnet": "10.1.0.0/24",
                    "bandwidth": {"ingressRate": M}}]},
     "networks[0].bandwidth.ingressRate is set without ingressBurst"),
    ({"bandwidth_max": {"ingress": 5}}, "bandwidth_max.'ingress' is not a bandwidth key"),
    ({"bandwidth_max": {"ingressRate": 5 * M, "ingressBurst": M},
      "networks": [{"name": "pods", "subnet": "10.1.0.0/24",
                    "bandwidth": {"ingressRate": 6 * M, "ingressBurst": M}}]},
     "network pods's bandwidth.ingressRate = 6000000 is above bandwidth_max.ingressRate"),
])
def test_bad_bandwidth_in_the_node_config_names_the_key(tmp_path, keys, names):
    with pytest.raises(ConfigError) as caught:
        loader.load(write(tmp_path, **keys))
    assert names in caught.value.line() and "config " in caught.value.line()


@pytest.fixture
def host(monkeypatch) -> FakeHost:
    fake = FakeHost()
    fake.bridges.add("br0")
    fake.namespaces["/var/run/netns/cni-1"] = (4, 4026532001)
    wire(monkeypatch, fake)
    return fake


class Cni:
    """The CNI front-end as a runtime calls it for container cri-1's net1, over the fakes."""

    def __init__(self, monkeypatch, capsys, node: str) -> None:
        self.monkeypatch, self.capsys, self.node = monkeypatch, capsys, node

    def conf(self, **keys) -> dict:
        return {"cniVersion": "1.0.0", "name": "limited", "type": "vlanpipe", "bridge": "br0",
                "vlan": 22, **keys}

    def __call__(self, **keys) -> tuple[int, dict]:
        return cni_main(self.monkeypatch, self.capsys, self.node, "ADD", self.conf(**keys),
                        "cri-1", "net1", "/var/run/netns/cni-1")

    def delete(self) -> tuple[int, dict]:
        return cni_main(self.monkeypatch, self.capsys, self.node, "DEL", self.conf(), "cri-1",
                        "net1", "/var/run/netns/cni-1")


@pytest.fixture
def cni(monkeypatch, capsys, tmp_path) -> Cni:
    node = write(tmp_path, bridge="br0", node_name="n1", log={"file": str(tmp_path / "log")},
                 docker_url="unix:///nonexistent.sock", timeouts={"ovs": 0.5},
                 networks=[{"name": "pods", "vlans": "all", "subnet": "10.9.0.0/24"}],
                 cni={"bridges": ["br0"], "vlans": "all"},
                 bandwidth_max={"ingressRate": 30 * M, "ingressBurst": 5 * M,
                                "egressRate": 30 * M, "egressBurst": 5 * M})
    return Cni(monkeypatch, capsys, node)


@pytest.mark.parametrize("keys, names", [
    ({"runtimeConfig": {"bandwidth": {"ingressRate": 40 * M, "ingressBurst": M}}},
     "bandwidth ingressRate = 40000000 is above this node's maximum, "
     "bandwidth_max.ingressRate = 30000000"),
    ({"bandwidth": {"egressRate": 40 * M, "egressBurst": M}},
     "bandwidth egressRate = 40000000 is above"),
    ({"runtimeConfig": {"bandwidth": {"egressRate": "fast"}}},
     "runtimeConfig.bandwidth.egressRate = 'fast' must be a whole number of bits per second"),
    ({"bandwidth": {"egressRate": M}}, "bandwidth.egressRate is set without egressBurst"),
])
def test_cni_refuses_bad_or_excessive_limits_and_makes_nothing(host, cni, keys, names):
    status, out = cni(**keys)
    assert status != 0 and out["code"] == INVALID_CONFIG, out
    assert names in out["msg"], out
    assert host.leftovers() == [] and "ovs:plug" not in host.calls


def test_an_egress_limit_on_a_datapath_without_meters_is_a_setup_error(host, cni,
                                                                       monkeypatch):
    """Never a silent no-op: the bridge is asked before anything is made."""
    monkeypatch.setattr(Ofctl, "meter_features",
                        lambda self, bridge: MeterFeatures(0, frozenset(), frozenset()))
    status, out = cni(runtimeConfig={"bandwidth": {"egressRate": 10 * M, "egressBurst": M}})
    assert status != 0 and out["code"] == BACKEND, out
    assert "bridge br0 cannot enforce egressRate" in out["msg"], out
    assert host.leftovers() == [] and "ovs:plug" not in host.calls


def readme_block(language: str, marker: str) -> str:
    readme = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
    with open(readme, encoding="utf-8") as handle:
        found = re.findall(rf"^```{language}\n(.*?)^```", handle.read(), flags=re.S | re.M)
    (block,) = [b for b in found if marker in b]
    return block


def test_the_readmes_bandwidth_examples_read_as_documented():
    config = schema.parse(yaml.safe_load(readme_block("yaml", "bandwidth_max:")), "README")
    assert config.bandwidth_max.ingress_rate == 1000 * M
    assert {n.bandwidth for n in config.networks} == {Bandwidth(20 * M, 5 * M, 20 * M, 5 * M)}
    entry = json.loads(readme_block("json", '"capabilities": {"bandwidth": true}'))
    # libcni gives a conflist entry its list's name and version
    conf = netconf.parse({"cniVersion": "1.0.0", "name": "vlan22", **entry})
    assert conf.bandwidth == Bandwidth(egress_rate=50 * M, egress_burst=5 * M)
    assert not conf.warnings


INGRESS = {"runtimeConfig": {"bandwidth": {"ingressRate": 20 * M, "ingressBurst": M}}}


def test_an_ingress_limit_is_a_qos_made_with_the_port_and_destroyed_after_it(host, cni):
    status, out = cni(**INGRESS)
    assert status == 0, out
    (port,) = host.ports
    ((made_with, qos),) = host.qos.values()
    assert made_with == port and (qos.max_rate, qos.burst) == (20 * M, M)
    assert qos.external_ids == host.ports[port].external_ids  # marked like the port
    status, out = cni.delete()
    assert status == 0, out
    assert host.leftovers() == []
    assert host.calls.index("ovs:delete") < host.calls.index("ovs:destroy-qos")


def test_an_ingress_limit_that_never_takes_hold_fails_setup_and_leaves_nothing(host, cni):
    """A QoS in OVSDB without its qdisc on the device would be a limit only on paper."""
    host.qos_stuck = True
    status, out = cni(**INGRESS)
    assert status != 0 and out["code"] == BACKEND, out
    assert "did not put the ingress limit (linux-htb QoS) on port" in out["msg"], out
    assert host.leftovers() == []


def test_gc_destroys_the_qos_of_a_port_deleted_behind_the_plugins_back(host, cni):
    assert cni(**INGRESS)[0] == 0
    (port,) = host.ports
    (uuid,) = host.qos
    host.ovs.delete_ports([port])  # a crash between teardown's steps, or an operator
    config = loader.load(cni.node)
    swept = {a.what for a in sweep(config, CallLog(config.log_file, "gc"))}
    assert {f"QoS {uuid}", f"Queue queue-{uuid}"} <= swept
    assert host.qos == {}


def test_a_port_made_again_takes_the_place_of_its_qos_too(host, cni):
    """ADD again after the host veth vanished: the port is made anew, and the QoS rows of
    the one it replaces (which OVSDB keeps) are destroyed."""
    assert cni(**INGRESS)[0] == 0
    (port,) = host.ports
    (first,) = host.qos
    host.ip.delete_link(port)
    status, out = cni(**INGRESS)
    assert status == 0, out
    assert list(host.qos) != [first] and len(host.qos) == 1
    assert cni.delete()[0] == 0 and host.leftovers() == []


def test_an_add_again_with_another_limit_puts_it_in_force(host, cni):
    """Limits are part of what an attachment is: ADD again with others plugs it again."""
    assert cni(**INGRESS)[0] == 0
    slower = {"runtimeConfig": {"bandwidth": {"ingressRate": 10 * M, "ingressBurst": M}}}
    status, out = cni(**slower)
    assert status == 0, out
    ((_, qos),) = host.qos.values()
    assert (qos.max_rate, qos.burst) == (10 * M, M)
    assert cni.delete()[0] == 0 and host.leftovers() == []
