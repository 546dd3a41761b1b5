"""The network config: decoded (code 6), validated (code 7), mapped onto the plugin config."""

import json

import pytest

from plugin.frontends.cni import netconf
from plugin.frontends.cni.errors import CniError, code_for
from plugin.errors import Failure

BASE = {"cniVersion": "1.0.0", "name": "vlan-net", "type": "vlanpipe"}


def parsed(**keys):
    return parsed_from(keys)


def parsed_from(keys):
    document = {**BASE, **keys}
    return netconf.parse(document, json.dumps(document).encode())


def code_of(call, *args):
    with pytest.raises(Failure) as err:
        call(*args)
    return code_for(err.value), err.value.line()


@pytest.mark.parametrize("stdin", [b"", b"{", b"[]", b"null", b"\xff"])
def test_undecodable_stdin_is_code_6(stdin):
    assert code_of(netconf.decode, stdin)[0] == 6


@pytest.mark.parametrize("document", [{}, {"cniVersion": 1}, {"cniVersion": ""}])
def test_missing_version_is_code_7(document):
    assert code_of(netconf.version_of, document)[0] == 7


def primary(config):
    return next(a for a in config.attachments if a.primary)


def test_a_minimal_config_uses_the_projects_own_allocators():
    conf = parsed()
    assert conf.ipam_type is None and conf.warnings == () and conf.bridge is None
    config = netconf.plugin_config(conf, "net1")
    assert config.bridge == "k8s_br" and primary(config).interface == "net1"
    assert primary(config).vlan.kind == "pod-name-prefix"


def test_vlan_tag_becomes_a_fixed_rule_and_rules_pass_through():
    assert primary(netconf.plugin_config(parsed(vlan=22), "net1")).vlan.tag_for("ns", "p") == 22
    rule = netconf.plugin_config(parsed(vlan={"rule": "namespace-map",
                                              "namespaces": {"team-a": 30}}), "net1")
    assert primary(rule).vlan.tag_for("team-a", "x") == 30


def test_plugin_object_is_validated_as_config_yaml_is(tmp_path):
    config = netconf.plugin_config(parsed(bridge="br1", vlanpipe={
        "state_dir": str(tmp_path), "log": {"file": str(tmp_path / "log")},
        "datapath_type": "system", "docker_url": "unix:///x.sock", "pipework": "/opt/pipework",
        "timeouts": {"ovs": 2}}), "net1")
    assert (config.bridge, config.state_dir, config.datapath_type, config.docker_url,
            config.pipework, config.ovs_timeout) == ("br1", str(tmp_path), "system",
                                                     "unix:///x.sock", "/opt/pipework", 2.0)
    code, line = code_of(netconf.plugin_config, parsed(vlanpipe={"colour": "red"}), "net1")
    assert code == 7 and "colour" in line


def test_mtu_is_the_default_of_every_network_without_its_own():
    config = netconf.plugin_config(parsed(mtu=1400, vlanpipe={"networks": [
        {"name": "a", "vlans": [22], "subnet": "10.1.0.0/24"},
        {"name": "b", "vlans": [23], "subnet": "10.2.0.0/24", "mtu": 9000}]}), "net1")
    assert [n.mtu for n in config.networks] == [1400, 9000]
    assert [n.mtu for n in netconf.plugin_config(parsed(mtu=1400), "n").networks] == [1400]


@pytest.mark.parametrize("keys,needle", [
    ({"name": "bad name"}, "'name'"), ({"name": None}, "'name'"), ({"type": ""}, "'type'"),
    ({"vlan": 0}, "'vlan'"), ({"vlan": "22"}, "'vlan'"), ({"vlan": True}, "'vlan'"),
    ({"mtu": 100}, "'mtu'"), ({"mtu": 1500.0}, "'mtu'"), ({"ipam": []}, "'ipam'"),
    ({"ipam": {"subnet": "10.0.0.0/24"}}, "ipam.type"),
    ({"ipam": {"type": "../bin/sh"}}, "ipam.type"), ({"dns": []}, "'dns'"),
    ({"args": {"cni": []}}, "'args'"), ({"prevResult": []}, "prevResult"),
    ({"cni.dev/valid-attachments": [{"containerID": 1}]}, "valid-attachments"),
    ({"vlanpipe": []}, "vlanpipe")])
def test_invalid_keys_are_code_7(keys, needle):
    code, line = code_of(parsed_from, keys)
    assert code == 7 and needle in line


@pytest.mark.parametrize("key", sorted(netconf.NOT_IN_PLUGIN_OBJECT))
def test_keys_cni_sets_elsewhere_are_refused_in_the_plugin_object(key):
    code, line = code_of(netconf.plugin_config, parsed(vlanpipe={key: "x"}), "net1")
    assert code == 7 and f"vlanpipe.{key}" in line


def test_bad_bridge_fails_through_the_shared_config_validation():
    code, line = code_of(netconf.plugin_config, parsed(bridge="no spaces allowed"), "net1")
    assert code == 7 and "bridge" in line


def test_reference_and_unknown_keys_are_warnings_never_errors():
    conf = parsed(bridge="br0", mtu=1400, isGateway=True, isDefaultGateway="yes",
                  forceAddress=True, ipMasq=True, hairpinMode=True, promiscMode=True)
    assert [w.split()[0] for w in conf.warnings] == [
        "forceAddress", "hairpinMode", "ipMasq", "isGateway", "unknown", "isDefaultGateway"]
    assert conf.default_gateway is False and conf.bridge == "br0" and conf.mtu == 1400
    assert parsed(isDefaultGateway=True).default_gateway is True


def test_delegated_ipam_gc_list_and_pod_requests():
    conf = parsed(ipam={"type": "host-local", "subnet": "10.0.0.0/24"},
                  args={"cni": {"vlan": 30}}, runtimeConfig={"mac": "0a:58:0a:00:00:09"},
                  **{"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "net1"}]})
    assert conf.ipam_type == "host-local"
    assert conf.request.vlan == 30 and conf.request.mac == "0a:58:0a:00:00:09"
    assert conf.valid_attachments == frozenset({("c1", "net1")})


def test_cni_error_is_a_plugin_error():
    assert isinstance(CniError(7, "x"), Failure)
