"""Input validation and VLAN rules: pure logic, table-driven."""

import re

import pytest

from plugin import names
from plugin.errors import InputError
from plugin.policy.vlan import VlanRule

ID = "a" * 64


@pytest.mark.parametrize("pod,tag", [("22-my-nginx", 22), ("22-my-nginx-5f7d9", 22),
                                     ("1-a", 1), ("4094-x", 4094), ("007-x", 7)])
def test_prefix_rule_takes_digits_before_first_dash(pod, tag):
    assert VlanRule().tag_for("default", pod) == tag


@pytest.mark.parametrize("pod,needle", [
    ("nginx-abc", "no VLAN prefix"), ("22", "no VLAN prefix"), ("0-x", "VLAN 0"),
    ("4095-x", "VLAN 4095"), ("99999-x", "VLAN 99999"), ("-22-x", "no VLAN prefix"),
    ("２２-x", "no VLAN prefix"),
])
def test_prefix_rule_rejects(pod, needle):
    with pytest.raises(InputError, match=needle):
        VlanRule().tag_for("default", pod)


def test_regex_rule_uses_named_group():
    rule = VlanRule("regex", pattern=re.compile(r"-vlan(?P<vlan>\d+)$"))
    assert rule.tag_for("ns", "web-vlan30") == 30
    with pytest.raises(InputError, match="does not match"):
        rule.tag_for("ns", "web")
    with pytest.raises(InputError, match="VLAN 5000"):
        rule.tag_for("ns", "web-vlan5000")


def test_namespace_map_and_fixed_rules():
    assert VlanRule("namespace-map", namespaces={"team-a": 40}).tag_for("team-a", "x") == 40
    with pytest.raises(InputError, match="has no VLAN"):
        VlanRule("namespace-map", namespaces={}).tag_for("team-b", "x")
    assert VlanRule("fixed", tag=7).tag_for("any", "any") == 7


@pytest.mark.parametrize("value", ["", "UPPER", "has space", "semi;colon", "$(reboot)",
                                   "quote'd", 'dq"', "ünï", "a" * 64, "-lead", "trail-",
                                   "Default", "a b", "x;y", "$(id)"])
def test_namespace_rejects_bad_names(value):
    with pytest.raises(InputError, match="namespace"):
        names.namespace(value)


@pytest.mark.parametrize("value", ["", "has space", "a;b", "$(id)", "`id`", "ünï", "a" * 254,
                                   "x..y", "Caps", "22 spaced", "22-'quoted'", "22-a;reboot",
                                   "22-$(id)", "22-ünï"])
def test_pod_rejects_bad_names(value):
    with pytest.raises(InputError, match="pod name"):
        names.pod(value)


def test_pod_accepts_kubernetes_names():
    assert names.pod("22-my-nginx.v1") == "22-my-nginx.v1"


@pytest.mark.parametrize("value", ["", "a" * 63, "a" * 65, "A" * 64, "g" * 64, "0x" + "a" * 62,
                                   "a" * 63 + ";", "not-hex"])
def test_infra_id_must_be_64_hex(value):
    with pytest.raises(InputError, match="64-hex"):
        names.infra_id(value)


def test_host_veth_is_short_stable_and_distinct():
    a = names.host_veth(ID, "eth1")
    assert a == names.host_veth(ID, "eth1")
    assert len(a) <= 15 and a.startswith("vp")
    assert a != names.host_veth(ID, "eth2")
    assert a != names.host_veth("b" * 64, "eth1")


def test_a_pin_gives_the_primary_interface_its_vlan_and_address_only():
    import ipaddress

    from plugin.config.schema import parse
    from plugin.core.policy import plan
    from plugin.identity import Identity
    from plugin.ipam.model import Pin

    config = parse({"vlan": {"pinned": True}, "etcd": {"endpoints": ["http://127.0.0.1:2379"]},
                    "attachments": [{"interface": "eth1", "primary": True},
                                    {"interface": "eth2", "vlan": {"rule": "fixed",
                                                                   "tag": 300}}]}, "test")
    pod = Identity("ns", "22-web", ID)
    pin = Pin(30, ipaddress.ip_interface("10.30.0.7/24"))
    asked = []
    wants = plan(config, pod, lambda ns, name: asked.append((ns, name)) or pin)
    assert [(w.interface, w.vlan, w.addresses, w.pinned) for w in wants] == [
        ("eth1", 30, (pin.address,), True), ("eth2", 300, (), False)]
    assert asked == [("ns", "22-web")]  # read once per setup
    assert [w.vlan for w in plan(config, pod, lambda ns, name: None)] == [22, 300]
