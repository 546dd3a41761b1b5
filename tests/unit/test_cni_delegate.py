"""IPAM delegation against a fake plugin: environment and stdin passed on, the version
negotiated, results and errors read back. (The real host-local is driven in tests/e2e.)"""

import ipaddress
import json
import sys

import pytest

from plugin.frontends.cni import env as cni_env
from plugin.config import netconf
from plugin.frontends.cni.delegate import Delegate, DelegatedAddresses, parse_result
from plugin.identity import Identity
from plugin.ipam.model import Route
from plugin.frontends.cni.errors import CniError

FAKE = """#!{python}
import json, os, sys
stdin = sys.stdin.read()
with open({log!r}, "a") as log:
    log.write(json.dumps({{"env": {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}},
                          "stdin": json.loads(stdin) if stdin else None}}) + "\\n")
command = os.environ["CNI_COMMAND"]
if command == "VERSION":
    print(json.dumps({{"cniVersion": "1.0.0", "supportedVersions": {versions!r}}}))
elif command == "ADD":
    print({add!r})
    sys.exit({status})
"""
ADDED = {"cniVersion": "1.0.0", "ips": [{"address": "10.5.0.2/24", "gateway": "10.5.0.1"}],
         "routes": [{"dst": "10.6.0.0/16"}], "dns": {"nameservers": ["10.5.0.53"]}}


@pytest.fixture
def fake(tmp_path):
    """Install a fake IPAM plugin `fake-ipam` in tmp_path; returns (make, calls)."""
    log = tmp_path / "calls.jsonl"

    def make(versions=("0.3.1", "0.4.0", "1.0.0"), add=json.dumps(ADDED), status=0):
        path = tmp_path / "fake-ipam"
        path.write_text(FAKE.format(python=sys.executable, log=str(log), versions=list(versions),
                                    add=add, status=status))
        path.chmod(0o755)

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return make, calls


def delegate(tmp_path, version="1.1.0", path=None, extra=None, **environ):
    document = {"cniVersion": version, "name": "n", "type": "vlanpipe",
                "ipam": {"type": "fake-ipam"}, **(extra or {})}
    conf = netconf.parse(document)
    variables = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/proc/1/ns/net",
                 "CNI_IFNAME": "net1", "CNI_PATH": str(tmp_path) if path is None else path,
                 **environ}
    return Delegate(conf, cni_env.read(variables))


def test_add_speaks_the_newest_version_the_plugin_knows_with_the_same_environment(tmp_path, fake):
    make, calls = fake
    make()
    answer = delegate(tmp_path, CNI_ARGS="K8S_POD_NAME=web").add()
    assert answer.addresses == ((ipaddress.ip_interface("10.5.0.2/24"),
                                 ipaddress.ip_address("10.5.0.1")),)
    assert answer.dns == {"nameservers": ["10.5.0.53"]}
    assert answer.routes == (Route(ipaddress.ip_network("10.6.0.0/16")),)
    version, add = calls()
    assert version["env"]["CNI_COMMAND"] == "VERSION"
    assert add["stdin"]["cniVersion"] == "1.0.0" and add["stdin"]["ipam"] == {"type": "fake-ipam"}
    assert add["env"]["CNI_ARGS"] == "K8S_POD_NAME=web" and add["env"]["CNI_CONTAINERID"] == "c1"


def test_the_plugin_gets_the_validated_config_re_serialised(tmp_path, fake):
    """Only keys vlanpipe read and checked reach the plugin, as one JSON object: never the
    runtime's bytes, whose duplicate or case-variant keys a Go plugin reads its own way.
    What libcni injects (runtimeConfig, args, prevResult) is kept; the node's dataDir wins."""
    make, calls = fake
    make(versions=("1.0.0", "1.1.0"))
    injected = {"runtimeConfig": {"ips": ["10.5.0.7/24"]}, "args": {"cni": {"ips": []}},
                "prevResult": {"cniVersion": "1.1.0", "ips": []}}
    plugin = delegate(tmp_path, extra={**injected, "Unknown": {"dataDir": "etc"},
                                       "isGateway": True})
    plugin.data_dir = "/var/lib/cni/state"
    plugin.add()
    stdin = calls()[-1]["stdin"]
    assert stdin == {"cniVersion": "1.1.0", "name": "n", "type": "vlanpipe", **injected,
                     "ipam": {"type": "fake-ipam", "dataDir": "/var/lib/cni/state"}}


def test_the_lease_carries_the_gateway_only_as_a_default_route_asked_for(tmp_path, fake):
    answer = parse_result("x", ADDED)
    assert answer.leases("n", 1400, default_gateway=False)[0].gateway is None
    (lease,) = answer.leases("n", 1400, default_gateway=True)
    assert str(lease.gateway) == "10.5.0.1" and lease.mtu == 1400 and lease.network == "n"
    assert lease.routes == answer.routes  # the IPAM plugin's routes are installed


def test_one_address_per_family_each_with_its_routes():
    answer = parse_result("x", {"ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1"},
                                        {"address": "fd00::2/64", "gateway": "fd00::1"}],
                                "routes": [{"dst": "10.9.0.0/16"}, {"dst": "fd09::/48"}]})
    v4, v6 = answer.leases("n", None, default_gateway=False)
    assert (str(v4.address), str(v6.address)) == ("10.0.0.2/24", "fd00::2/64")
    assert [str(r.destination) for r in v6.routes] == ["fd09::/48"]
    assert answer.gateways() == ("10.0.0.1", "fd00::1")


def test_plugin_errors_keep_their_code(tmp_path, fake):
    make, _ = fake
    make(add=json.dumps({"code": 11, "msg": "busy", "details": "later"}), status=1)
    with pytest.raises(CniError) as err:
        delegate(tmp_path).add()
    assert (err.value.code, err.value.message) == (11, "IPAM plugin fake-ipam: busy")


@pytest.mark.parametrize("add,status,code", [
    ("Traceback: boom", 2, 1004), ("not json", 0, 1004), ("{}", 0, 1004),
    (json.dumps({"ips": [{"address": "10.0.0.2/24"}, {"address": "10.0.0.3/24"}]}), 0, 2),
    (json.dumps({"ips": [{"address": "10.0.0.2/24"}], "routes": [{"dst": "x"}]}), 0, 1004),
    (json.dumps({"ips": [{"address": "nonsense"}]}), 0, 1004)])
def test_unusable_answers(tmp_path, fake, add, status, code):
    make, _ = fake
    make(add=add, status=status)
    with pytest.raises(CniError) as err:
        delegate(tmp_path).add()
    assert err.value.code == code


def test_plugin_speaking_no_usable_version_is_code_1(tmp_path, fake):
    make, _ = fake
    make(versions=("0.1.0", "0.2.0"))
    with pytest.raises(CniError) as err:
        delegate(tmp_path).add()
    assert err.value.code == 1


def test_missing_cni_path_is_code_4_and_missing_plugin_code_7(tmp_path):
    with pytest.raises(CniError) as err:
        delegate(tmp_path, path="").add()
    assert err.value.code == 4 and "CNI_PATH" in err.value.message
    with pytest.raises(CniError) as err:
        delegate(tmp_path, path=f"{tmp_path}/none:/nowhere").add()
    assert err.value.code == 7 and "fake-ipam" in err.value.message


def test_release_is_a_del_naming_the_owner_and_a_pre_1_1_plugin_gets_no_gc(tmp_path, fake):
    make, calls = fake
    make()
    addresses = DelegatedAddresses(delegate(tmp_path, CNI_COMMAND="GC"))
    for owner in (Identity(infra_id="c2", interface="net1"),
                  Identity(infra_id="c3", interface="net2")):
        assert addresses.release(owner)
    addresses.delegate.collect()
    commands = [c["env"]["CNI_COMMAND"] for c in calls()]
    assert "GC" not in commands
    dels = [c["env"] for c in calls() if c["env"]["CNI_COMMAND"] == "DEL"]
    assert [(d["CNI_CONTAINERID"], d["CNI_IFNAME"]) for d in dels] == [("c2", "net1"),
                                                                       ("c3", "net2")]


def test_gc_and_status_of_a_1_1_plugin_are_forwarded(tmp_path, fake):
    make, calls = fake
    make(versions=("1.0.0", "1.1.0"))
    delegate(tmp_path, CNI_COMMAND="GC").collect()
    delegate(tmp_path, CNI_COMMAND="STATUS").status()
    assert [c["env"]["CNI_COMMAND"] for c in calls()] == ["VERSION", "GC", "VERSION", "STATUS"]
    assert calls()[1]["stdin"]["cniVersion"] == "1.1.0"
