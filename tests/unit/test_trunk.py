"""Trunks to pods: the one parser (ovs-cni's syntax), both config sources that use it, the
node's allow-list, the record, and the port the core plugs and judges (over fakes).

What the port carries on the wire is shown on real OVS (tests/e2e/test_trunk.py); the
guard's rules for tagged VLANs are in tests/unit/test_flows.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

from plugin import names
from plugin.config.schema import parse as parse_config
from plugin.config.netconf import NetConf
from plugin.config.tenant import bind
from plugin.identity import Identity
from plugin.core.records import Attachment, RecordStore
from plugin.errors import ConfigError
from plugin.policy import trunk
from plugin.policy.trunk import TrunkEntry, TrunkError
from tests.unit.test_bad_input import CNI_ENV, NETCONF, cni, nothing_created
from tests.unit.test_core import ID, POD, SANDBOX, core, host  # noqa: F401 (a fixture)
from tests.unit.test_core import want as access_want

OVS_CNI = [{"id": 100}, {"minID": 200, "maxID": 210}]


def test_ovs_cni_syntax_gives_ids_and_ranges():
    parsed = trunk.parse([*OVS_CNI, {"id": 300, "addresses": ["10.1.0.5/24", "fd00::5/64"]}])
    assert parsed == (TrunkEntry(100, 100), TrunkEntry(200, 210),
                      TrunkEntry(300, 300, ("10.1.0.5/24", "fd00::5/64")))
    assert trunk.vlans(parsed) == [100, *range(200, 211), 300]
    assert trunk.native(parsed, 22) and not trunk.native(parsed, 205) and trunk.native((), 22)


@pytest.mark.parametrize("value,key,why", [
    ({"id": 100}, "trunk", "must be a list"),
    ([], "trunk", "lists no VLAN (Open vSwitch would carry every VLAN)"),
    ([{"id": 0}], "trunk[0].id", "between 1 and 4094"),
    ([{"id": 4095}], "trunk[0].id", "between 1 and 4094"),
    ([{"id": "100"}], "trunk[0].id", "as a number"),
    ([{"id": True}], "trunk[0].id", "between 1 and 4094"),
    ([{"id": 100.0}], "trunk[0].id", "as a number"),
    ([{"minID": 210, "maxID": 200}], "trunk[0].maxID", "is below minID 210"),
    ([{"minID": 200}], "trunk[0]", 'both "minID" and "maxID"'),
    ([{"maxID": 0, "minID": 1}], "trunk[0].maxID", "between 1 and 4094"),
    ([{"id": 100, "minID": 1, "maxID": 2}], "trunk[0]", "gives both id and minID/maxID"),
    ([{}], "trunk[0]", 'needs "id"'),
    ([100], "trunk[0]", 'must be {"id": VLAN}'),
    ([{"id": 100, "vlan": 3}], "trunk[0].vlan", "is not a trunk key"),
    ([{"minID": 200, "maxID": 210}, {"id": 205}], "trunk[1]", "lists VLAN 205 again (also in "
                                                              "trunk[0])"),
    ([{"minID": 1, "maxID": 3, "addresses": ["10.0.0.1/24"]}], "trunk[0].addresses",
     "applies to an id entry only"),
    ([{"id": 5, "addresses": "10.0.0.1/24"}], "trunk[0].addresses", "must be a list"),
    ([{"id": 5, "addresses": ["10.0.0.300/24"]}], "trunk[0].addresses[0]", "an IP address"),
    ([{"id": 5, "addresses": [7]}], "trunk[0].addresses[0]", "an IP address"),
])
def test_bad_trunks_name_the_key_and_the_fix(value, key, why):
    with pytest.raises(TrunkError) as raised:
        trunk.parse(value)
    assert raised.value.key == key and why in raised.value.why, str(raised.value)


def test_config_yaml_gives_each_attachment_its_own_trunk():
    config = parse_config({"attachments": [
        {"interface": "eth1", "primary": True},
        {"interface": "eth2", "trunk": [{"id": 100, "addresses": ["10.1.0.5/24"]}]}]}, "t")
    assert [a.trunk for a in config.attachments] == [(), (TrunkEntry(100, 100,
                                                                     ("10.1.0.5/24",)),)]
    assert parse_config({"trunk": OVS_CNI}, "t").attachments[0].trunk == trunk.parse(OVS_CNI)
    assert parse_config({}, "t").attachments[0].trunk == ()


@pytest.mark.parametrize("settings,needle", [
    ({"attachments": [{"interface": "eth1", "primary": True,
                       "trunk": [{"minID": 9, "maxID": 3}]}]},
     "key 'attachments[0].trunk[0].maxID' = 3 is below minID 9"),
    ({"trunk": []}, "key 'trunk' = [] lists no VLAN"),
    ({"trunk": OVS_CNI, "attachments": [{"interface": "eth1", "primary": True}]},
     "key 'trunk'"),
])
def test_bad_trunks_in_config_yaml_are_config_errors(settings, needle):
    with pytest.raises(ConfigError) as raised:
        parse_config(settings, "t")
    assert needle in raised.value.message, raised.value.message


def choice(**keys) -> NetConf:
    """A network config named n, as the config layer's parser leaves it."""
    return NetConf("1.0.0", "n", "vlanpipe", {}, **keys)


def test_a_tenants_trunk_stays_within_the_nodes_vlans():
    node = parse_config({"cni": {"vlans": [22, "100-110"]}}, "t")
    bound = bind(choice(vlan=22, trunk=trunk.parse([{"minID": 100, "maxID": 110}])),
                 node, "net1")
    assert trunk.vlans(bound.attachments[0].trunk) == list(range(100, 111))
    with pytest.raises(ConfigError) as raised:
        bind(choice(vlan=22, trunk=trunk.parse([{"minID": 100, "maxID": 111}])),
             node, "net1")
    assert "'trunk' = 111 is not a VLAN this node lets networks use (cni.vlans)" in \
        raised.value.message


@pytest.mark.parametrize("conf,node_keys,needle", [
    ({"trunk": []}, {}, "network config key 'trunk' = [] lists no VLAN"),
    ({"trunk": [{"id": 4095}]}, {}, "key 'trunk[0].id' = 4095"),
    ({"trunk": [{"minID": 20, "maxID": 10}]}, {}, "key 'trunk[0].maxID' = 10 is below minID"),
    ({"trunk": [{"id": 300}]}, {"cni": {"vlans": [22, 100]}}, "key 'trunk' = 300 is not a VLAN"),
])
def test_cni_refuses_a_bad_trunk_with_code_7_and_creates_nothing(tmp_path, node, conf,
                                                                 node_keys, needle):
    node.write_text(yaml.safe_dump({**yaml.safe_load(node.read_text()), **node_keys}))
    status, error = cni(tmp_path, node, CNI_ENV, json.dumps({**NETCONF, **conf}).encode())
    assert status == 1 and error["code"] == 7 and needle in error["msg"], error
    assert "\n" not in error["msg"]
    nothing_created(tmp_path)


def test_records_keep_the_trunk_and_older_records_load_without_one(tmp_path):
    store = RecordStore(str(tmp_path))
    record = Attachment(Identity("ns", "22-a", ID, "eth1"), "br0", "vpa-1", 22, "pods",
                        trunk=trunk.parse([{"id": 100, "addresses": ["10.1.0.5/24"]},
                                           {"minID": 200, "maxID": 202}]))
    store.save(ID, [record])
    assert store.load(ID) == [record]
    body = json.loads(open(store.path(ID)).read())
    del body["attachments"][0]["trunk"]
    with open(store.path(ID), "w") as handle:
        json.dump(body, handle)
    assert store.load(ID)[0].trunk == ()


def trunk_want(vlan: int = 22, entries=OVS_CNI):
    from dataclasses import replace

    return replace(access_want(vlan=vlan), trunk=trunk.parse(entries))


def test_a_trunk_with_the_pods_vlan_unlisted_makes_it_the_native_vlan(tmp_path, host):
    c = core(tmp_path, host)
    (record,) = c.attach(POD, [trunk_want()], SANDBOX)
    port = host.ports[names.host_veth(ID, "eth1")]
    assert (port.tag, port.trunks) == (22, (100, *range(200, 211)))
    assert record.trunk == trunk.parse(OVS_CNI) and c.records.load(ID) == [record]
    assert c.ports.differences(ID, [(record, trunk_want())]) == []


def test_a_trunk_listing_the_pods_vlan_has_no_native_vlan(tmp_path, host):
    c = core(tmp_path, host)
    (record,) = c.attach(POD, [trunk_want(vlan=100)], SANDBOX)
    port = host.ports[names.host_veth(ID, "eth1")]
    assert (port.tag, port.trunks) == (None, (100, *range(200, 211)))
    assert record.address  # its address on VLAN 100, from VLAN 100's network
    assert c.ports.differences(ID, [(record, trunk_want(vlan=100))]) == []


def test_check_and_setup_again_see_a_changed_trunk(tmp_path, host):
    c = core(tmp_path, host)
    (record,) = c.attach(POD, [trunk_want()], SANDBOX)
    other = trunk_want(entries=[{"id": 100}])
    (problem,) = c.ports.differences(ID, [(record, other)])
    assert "trunks VLANs" in problem and "(the trunk changed)" in problem
    assert c.ports.differences(ID, [(record, access_want())]) != []
    port = names.host_veth(ID, "eth1")
    from dataclasses import replace

    host.ports[port] = replace(host.ports[port], trunks=(100,))  # changed behind its back
    assert any("trunks VLANs [100]" in p for p in c.ports.differences(ID, [(record,
                                                                             trunk_want())]))
    (again,) = c.attach(POD, [other], SANDBOX)  # setup again plugs it as now wanted
    assert host.ports[port].trunks == (100,) and again.trunk == other.trunk
    assert c.ports.differences(ID, [(again, other)]) == []


def test_an_access_port_is_judged_as_before(tmp_path, host):
    c = core(tmp_path, host)
    (record,) = c.attach(POD, [access_want()], SANDBOX)
    assert host.ports[names.host_veth(ID, "eth1")].trunks == ()
    assert c.ports.differences(ID, [(record, access_want())]) == []


def test_the_readmes_trunk_examples_parse_as_written():
    import re
    from pathlib import Path

    from plugin.config import netconf

    text = (Path(__file__).parents[2] / "README.md").read_text()
    section = text.split("## Trunks to pods", 1)[1].split("\n## ", 1)[0]
    conf_text, config_text = re.findall(r"^```(?:json|yaml)\n(.*?)^```", section, re.S | re.M)
    conf = netconf.parse(json.loads(conf_text))
    config = parse_config(yaml.safe_load(config_text), "README")
    assert conf.trunk == config.attachments[1].trunk == (
        TrunkEntry(100, 100, ("10.100.0.5/24",)), TrunkEntry(101, 101), TrunkEntry(200, 210))


@pytest.mark.parametrize("text,needle", [
    ("trunk: [{id: 5000}]\n", "key 'trunk[0].id' = 5000 must be a VLAN id between 1 and 4094"),
    ("trunk: []\n", "key 'trunk' = [] lists no VLAN"),
])
def test_exec_setup_refuses_a_bad_trunk_with_one_line_and_creates_nothing(tmp_path, node, text,
                                                                          needle):
    import subprocess

    from tests.unit.test_bad_input import EXEC, POD

    node.write_text(node.read_text() + text)
    proc = subprocess.run([*EXEC, "--config", str(node), "setup", *POD],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 3 and proc.stdout.count("\n") == 1, proc.stdout
    assert needle in proc.stdout and "internal error" not in proc.stdout, proc.stdout
    nothing_created(tmp_path)
