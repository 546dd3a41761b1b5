"""CNI_* variables: required per command, validated with code 4 naming the variable."""

import pytest

from plugin.frontends.cni import env
from plugin.frontends.cni.errors import CniError
from plugin.identity import Identity

FULL = {"CNI_CONTAINERID": "a" * 64, "CNI_NETNS": "/proc/1/ns/net", "CNI_IFNAME": "net1",
        "CNI_PATH": "/usr/lib/cni:/opt/cni/bin"}


def code_and_message(environ):
    with pytest.raises(CniError) as err:
        env.read(environ)
    return err.value.code, err.value.message


@pytest.mark.parametrize("command,missing", [
    ("ADD", "CNI_CONTAINERID"), ("ADD", "CNI_NETNS"), ("ADD", "CNI_IFNAME"),
    ("CHECK", "CNI_NETNS"), ("DEL", "CNI_CONTAINERID"), ("DEL", "CNI_IFNAME")])
def test_missing_variable_is_named(command, missing):
    environ = {**FULL, "CNI_COMMAND": command}
    del environ[missing]
    code, message = code_and_message(environ)
    assert code == 4 and missing in message


@pytest.mark.parametrize("command", ["GC", "STATUS", "VERSION"])
def test_network_wide_commands_need_no_attachment(command):
    assert env.read({"CNI_COMMAND": command}).command == command


def test_del_needs_no_netns_and_path_is_split():
    read = env.read({**FULL, "CNI_COMMAND": "DEL", "CNI_NETNS": ""})
    assert read.path == ("/usr/lib/cni", "/opt/cni/bin") and read.netns == ""
    assert read.variables["CNI_IFNAME"] == "net1"


@pytest.mark.parametrize("changes,needle", [
    ({"CNI_COMMAND": ""}, "CNI_COMMAND"), ({"CNI_COMMAND": "add"}, "CNI_COMMAND"),
    ({"CNI_CONTAINERID": "_x"}, "CNI_CONTAINERID"), ({"CNI_CONTAINERID": "a/b"}, "CNI_CONTAINERID"),
    ({"CNI_IFNAME": "net 1"}, "CNI_IFNAME"), ({"CNI_IFNAME": ".."}, "CNI_IFNAME"),
    ({"CNI_IFNAME": "n" * 16}, "CNI_IFNAME"), ({"CNI_CONTAINERID": "-bad;id"}, "CNI_CONTAINERID")])
def test_bad_values_are_code_4(changes, needle):
    code, message = code_and_message({**FULL, "CNI_COMMAND": "ADD", **changes})
    assert code == 4 and needle in message


def test_identity_from_cni_args():
    who = env.identity("IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=22-web-1;"
                       "K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u;;")
    assert who == Identity("team-a", "22-web-1", "abc")
    assert env.identity("") == Identity()


@pytest.mark.parametrize("text,needle", [
    ("K8S_POD_NAME", "KEY=VALUE"), ("=x", "KEY=VALUE"),
    ("K8S_POD_NAMESPACE=Team_A", "K8S_POD_NAMESPACE"), ("K8S_POD_NAME=a b", "K8S_POD_NAME")])
def test_bad_cni_args_are_code_4(text, needle):
    with pytest.raises(CniError) as err:
        env.identity(text)
    assert err.value.code == 4 and needle in err.value.message
