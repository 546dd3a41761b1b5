"""The network config: decoded (code 6), validated (code 7), mapped onto the plugin config."""

import json
import subprocess
import sys

import pytest

from plugin.config import netconf, tenant
from plugin.frontends.cni import injected, tenantjson
from plugin.frontends.cni.errors import CniError, code_for
from plugin.config.schema import parse
from plugin.errors import Failure

BASE = {"cniVersion": "1.0.0", "name": "vlan-net", "type": "vlanpipe"}


def parsed(**keys):
    return parsed_from(keys)


def parsed_from(keys):
    document = {**BASE, **keys}
    return injected.parse(document)


def code_of(call, *args, **kwargs):
    with pytest.raises(Failure) as err:
        call(*args, **kwargs)
    return code_for(err.value), err.value.line()


@pytest.mark.parametrize("stdin", [b"", b"{", b"[]", b"null", b"\xff", b"not json", b'"text"'])
def test_undecodable_stdin_is_code_6(stdin):
    assert code_of(tenantjson.decode, stdin)[0] == 6


@pytest.mark.parametrize("document", [{}, {"cniVersion": 1}, {"cniVersion": ""}])
def test_missing_version_is_code_7(document):
    assert code_of(netconf.version_of, document)[0] == 7


def primary(config):
    return next(a for a in config.attachments if a.primary)


def node(**keys):
    """The node's config (root's), as the CNI front-end loads it."""
    return parse({"networks": [{"name": "pods", "vlans": "all", "subnet": "10.1.0.0/24"},
                               {"name": "storage", "vlans": [300], "subnet": "10.3.0.0/24"}],
                  **keys}, "node.yaml")


def test_a_minimal_config_uses_the_nodes_bridge_rule_and_networks():
    conf = parsed()
    assert conf.ipam_type is None and conf.warnings == () and conf.bridge is None
    config = tenant.bind(conf, node(), "net1")
    assert config.bridge == "k8s_br" and primary(config).interface == "net1"
    assert primary(config).vlan.kind == "pod-name-prefix"
    assert [n.name for n in config.networks] == ["pods", "storage"]


def test_vlan_tag_becomes_a_fixed_rule_and_rules_pass_through():
    assert primary(tenant.bind(parsed(vlan=22), node(), "net1")).vlan.tag_for("ns", "p") == 22
    rule = tenant.bind(parsed(vlan={"rule": "namespace-map", "namespaces": {"team-a": 30}}),
                        node(), "net1")
    assert primary(rule).vlan.tag_for("team-a", "x") == 30


def test_a_network_may_name_one_of_the_nodes_networks_for_every_vlan():
    config = tenant.bind(parsed(vlanpipe={"network": "storage"}), node(), "net1")
    # The others serve no VLAN but stay known, for DEL of what ADD claimed on them.
    assert [(n.name, n.vlans) for n in config.networks] == [("pods", ()), ("storage", None)]
    code, line = code_of(tenant.bind, parsed(vlanpipe={"network": "other"}), node(), "net1")
    assert code == 7 and "'vlanpipe.network' = 'other' is not a network of this node" in line


def test_a_dual_stack_network_named_by_a_network_config_gives_both_families():
    """Issue 19 item 8: named from a CNI config, a dual-stack network serves both families,
    as it does when reached by its VLAN."""
    dual = {"name": "dual", "vlans": [41], "subnets": ["10.41.0.0/24", "fd00:41::/64"]}
    root = parse({"networks": [dual]}, "node.yaml")
    config = tenant.bind(parsed(vlanpipe={"network": "dual"}), root, "net1")
    by_vlan = root.allocators().families_for(41)
    named = config.allocators().families_for(22)
    assert [n.version for n in named] == [n.version for n in by_vlan] == [4, 6]


@pytest.mark.parametrize("key,value", [
    ("log", {"file": "/tmp/victim"}), ("pipework", "/tmp/evil"), ("state_dir", "/tmp/x"),
    ("docker_url", "unix:///tmp/d.sock"), ("etcd", {"endpoints": ["http://10.0.0.1:2379"]}),
    ("networks", []), ("timeouts", {"ovs": 1}), ("datapath_type", "system"),
    ("node_name", "n"), ("cni", {}), ("bridge", "br"), ("interface", "x")])
def test_a_node_level_key_in_the_plugin_object_is_refused_with_code_7(key, value):
    """A namespace user writes the network config (Multus): it must not steer root."""
    code, line = code_of(parsed, vlanpipe={key: value})
    assert code == 7 and f"'vlanpipe.{key}'" in line and "node-level setting" in line


def test_an_unknown_key_in_the_plugin_object_is_code_7_and_shown_escaped():
    code, line = code_of(parsed, vlanpipe={"$(id>/tmp/x)\n" + "x" * 200: 1})
    assert code == 7 and "is not a setting" in line and "\\n" in line and len(line) < 400


@pytest.mark.parametrize("keys,needle", [
    ({"bridge": "other_br"}, "'bridge' = 'other_br' is not a bridge this node lets"),
    ({"vlan": 99}, "'vlan' = 99 is not a VLAN this node lets"),
    ({"ipam": {"type": "dhcp"}}, "'ipam.type' = 'dhcp' is not an IPAM plugin this node lets"),
    ({"mtu": 1279}, "'mtu' = 1279 is not an MTU this node lets networks use (cni.mtu: 1280-9000)"),
    ({"mtu": 9001}, "'mtu' = 9001 is not an MTU this node lets networks use"),
])
def test_choices_outside_the_nodes_allow_lists_are_code_7(keys, needle):
    policy = {"cni": {"bridges": ["k8s_br", "br1"], "vlans": ["20-30"], "ipam": ["host-local"]}}
    assert tenant.bind(parsed(bridge="br1", vlan=22), node(**policy), "net1").bridge == "br1"
    for mtu in (1280, 9000):  # the default cni.mtu range, both ends included
        tenant.bind(parsed(mtu=mtu), node(**policy), "net1")
    code, line = code_of(tenant.bind, parsed(**keys), node(**policy), "net1")
    assert code == 7 and needle in line


def test_without_a_cni_section_only_the_nodes_bridge_is_allowed():
    assert tenant.bind(parsed(bridge="k8s_br"), node(), "net1").bridge == "k8s_br"
    code, line = code_of(tenant.bind, parsed(bridge="br1"), node(), "net1")
    assert code == 7 and "'bridge' = 'br1' is not a bridge this node lets" in line
    assert tenant.bind(parsed(bridge="br1"), node(bridge="br1"), "net1").bridge == "br1"


@pytest.mark.parametrize("ipam,needle", [
    ({"dataDir": "/etc"}, "ipam.dataDir"), ({"dataDir": "relative"}, "ipam.dataDir"),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "x": "/var/run/evil"}]]}, "ipam.ranges[0][0].x"),
    ({"daemonSocketPath": "sock"}, "ipam.daemonSocketPath"),
    ({"server": "http://10.0.0.1:80"}, "ipam.server"), ({"s": "unix:/run/x"}, "ipam.s"),
    # host-local is Go: it reads JSON keys without regard to case (Unicode folding too).
    ({"DataDir": "etc"}, "ipam.DataDir"), ({"DATADIR": "etc"}, "ipam.DATADIR"),
    ({"ResolvConf": "etc/shadow"}, "ipam.ResolvConf"), ({"resolvconf": "x"}, "ipam.resolvconf"),
    ({"re\u017folvConf": "etc/shadow"}, "ipam.re\\u017folvConf"),  # long s folds to s
    ({"DaemonSocketPath": "run/x"}, "ipam.DaemonSocketPath"),
    ({"ranges": [[{"subnet": "10.0.0.0/24", "DataDir": "etc"}]]}, "ipam.ranges[0][0].DataDir"),
    ({"logFile": "log"}, "ipam.logFile"), ({"kubeconfig": "kc"}, "ipam.kubeconfig")])
def test_ipam_settings_that_name_a_path_or_endpoint_are_code_7(ipam, needle):
    code, line = code_of(parsed, ipam={"type": "host-local", "subnet": "10.0.0.0/24", **ipam})
    assert code == 7 and needle in line and "only the node config may choose" in line


@pytest.mark.parametrize("stdin,needle", [
    (b'{"ipam": {"type": "host-local", "dataDir": "/etc"}, '
     b'"ipam": {"type": "host-local", "subnet": "10.0.0.0/24"}}', "'ipam' twice"),
    (b'{"ipam": {"type": "host-local", "subnet": "10.0.0.0/24"}, '
     b'"IPAM": {"type": "host-local", "dataDir": "etc"}}', "'ipam' and 'IPAM'"),
    (b'{"ipam": {"type": "host-local", "dataDir": "/a", "datadir": "/b"}}', "'dataDir' and"),
    (b'{"runtimeConfig": {"ips": []}, "RuntimeConfig": {"ips": ["10.0.0.9/24"]}}',
     "'runtimeConfig' and 'RuntimeConfig'")])
def test_keys_equal_without_regard_to_case_are_code_7(stdin, needle):
    """A Go plugin reads the last of two such keys, or merges two objects: one of them would
    carry a value the check never saw."""
    code, line = code_of(tenantjson.decode, stdin)
    assert code == 7 and needle in line and "without regard to case" in line


@pytest.mark.parametrize("key", ["IPAM", "RuntimeConfig", "Args", "PrevResult", "MTU", "Vlan"])
def test_a_known_key_in_another_case_is_code_7(key):
    """vlanpipe reads `ipam` exactly; a Go plugin would read `IPAM` as it."""
    code, line = code_of(parsed_from, {key: {}})
    assert code == 7 and f"'{key}'" in line and "another case" in line


@pytest.mark.parametrize("keys,needle", [
    ({"name": "bad name"}, "'name'"), ({"name": None}, "'name'"), ({"type": ""}, "'type'"),
    ({"vlan": 0}, "'vlan'"), ({"vlan": "22"}, "'vlan'"), ({"vlan": True}, "'vlan'"),
    ({"mtu": 100}, "'mtu'"), ({"mtu": 1500.0}, "'mtu'"), ({"ipam": []}, "'ipam'"),
    ({"ipam": {"subnet": "10.0.0.0/24"}}, "ipam.type"),
    ({"ipam": {"type": "../bin/sh"}}, "ipam.type"), ({"dns": []}, "'dns'"),
    ({"args": {"cni": []}}, "'args'"), ({"prevResult": []}, "prevResult"),
    ({"prevResult": {"interfaces": None, "ips": {}}}, "prevResult.ips"),
    ({"prevResult": {"interfaces": [1]}}, "prevResult.interfaces"),
    ({"prevResult": {"dns": []}}, "prevResult.dns"),
    ({"cni.dev/valid-attachments": [{"containerID": 1}]}, "valid-attachments"),
    ({"vlanpipe": []}, "vlanpipe"), ({"vlan": 5000}, "'vlan'"), ({"mtu": 10}, "'mtu'"),
    ({"vlanpipe": {"state_dirr": "/x"}}, "state_dirr"),
    ({"prevResult": {"interfaces": None, "ips": 5}}, "prevResult.ips")])
def test_invalid_keys_are_code_7(keys, needle):
    code, line = code_of(parsed_from, keys)
    assert code == 7 and needle in line


def test_reference_and_unknown_keys_are_warnings_never_errors():
    conf = parsed(bridge="br0", mtu=1400, isGateway=True, isDefaultGateway="yes",
                  forceAddress=True, ipMasq=True, hairpinMode=True, promiscMode=True,
                  **{"$(id>/tmp/x)\n" + "y" * 500: 1})
    assert [w.split()[0] for w in conf.warnings] == [
        "unknown", "forceAddress", "hairpinMode", "ipMasq", "isGateway", "unknown",
        "isDefaultGateway"]
    odd = next(w for w in conf.warnings if "id>" in w)
    assert odd.startswith("unknown key '$(id>/tmp/x)\\n") and len(odd) < 100
    assert conf.default_gateway is False and conf.bridge == "br0" and conf.mtu == 1400
    assert parsed(isDefaultGateway=True).default_gateway is True


def test_delegated_ipam_gc_list_and_pod_requests():
    conf = parsed(ipam={"type": "host-local", "subnet": "10.0.0.0/24"},
                  args={"cni": {"vlan": 30}}, runtimeConfig={"mac": "0a:58:0a:00:00:09"},
                  **{"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "net1"}]})
    assert conf.ipam_type == "host-local"
    assert conf.request.vlan == 30 and conf.request.mac == "0a:58:0a:00:00:09"
    assert conf.valid_attachments == frozenset({("c1", "net1")})


def nest(levels):
    """`levels` lists, one inside the other: nest(1) is []."""
    value = []
    for _ in range(levels - 1):
        value = [value]
    return value


# Each tenant structure with `extra` more levels than the limit allows (extra=0: at it).
STRUCTURES = {
    "ipam": lambda extra: {"ipam": {"type": "host-local", "subnet": "10.0.0.0/24",
                                    "x": nest(LIMIT - 2 + extra)}},
    "args": lambda extra: {"args": {"cni": {"x": nest(LIMIT - 3 + extra)}}},
    "runtimeConfig": lambda extra: {"runtimeConfig": {"x": nest(LIMIT - 2 + extra)}},
    "prevResult": lambda extra: {"prevResult": {"x": nest(LIMIT - 2 + extra)}},
}
LIMIT = tenantjson.MAX_DEPTH


@pytest.mark.parametrize("key", STRUCTURES)
def test_nesting_at_the_limit_is_read_and_one_past_it_is_code_7(key):
    at_limit = json.dumps({**BASE, **STRUCTURES[key](0)}).encode()
    assert injected.parse(tenantjson.decode(at_limit)).name == "vlan-net"
    past = json.dumps({**BASE, **STRUCTURES[key](1)}).encode()
    code, line = code_of(tenantjson.decode, past)
    assert code == 7 and f"nests deeper than {LIMIT} levels (in '{key}')" in line, line
    assert len(line) < 300


def test_stdin_at_the_size_limit_is_read_and_one_byte_more_is_code_7():
    body = json.dumps(BASE).encode()
    at_limit = body[:-1] + b" " * (tenantjson.MAX_BYTES - len(body)) + b"}"
    assert len(at_limit) == tenantjson.MAX_BYTES
    assert tenantjson.decode(at_limit)["name"] == "vlan-net"
    code, line = code_of(tenantjson.decode, at_limit + b" ")
    assert code == 7 and f"larger than {tenantjson.MAX_BYTES} bytes" in line


def test_cni_error_is_a_plugin_error():
    assert isinstance(CniError(7, "x"), Failure)


def test_a_network_config_is_judged_by_the_config_layer_without_the_cni_front_end():
    """Issue 22: every config source is judged in plugin/config; the CNI front-end only reads
    stdin and adds what the runtime injected. A refusal there is the config's own error,
    which the front-end's one table turns into code 7."""
    code = (
        "import sys\n"
        "from plugin.config import netconf, tenant\n"
        "from plugin.config.schema import parse\n"
        "from plugin.errors import ConfigError\n"
        "conf = netconf.parse({'cniVersion': '1.0.0', 'name': 'n', 'type': 'vlanpipe', "
        "'vlan': 22, 'ipam': {'type': 'host-local'}})\n"
        "node = parse({'cni': {'ipam': ['host-local']}}, 'node.yaml')\n"
        "assert tenant.bind(conf, node, 'net1').bridge == 'k8s_br'\n"
        "try:\n"
        "    netconf.parse({'cniVersion': '1.0.0', 'name': 'n', 'type': 'vlanpipe', "
        "'vlanpipe': {'state_dir': '/tmp'}})\n"
        "except ConfigError as exc:\n"
        "    print(exc.message)\n"
        "print(sorted(m for m in sys.modules if m.startswith('plugin.frontends')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    refusal, loaded = done.stdout.splitlines()
    assert "'vlanpipe.state_dir' = '/tmp' is a node-level setting" in refusal
    assert loaded == "[]"
