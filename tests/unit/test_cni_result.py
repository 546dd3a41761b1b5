"""Result shapes per spec version, prevResult passed through, and what CHECK reads back."""

from dataclasses import replace

import pytest

from plugin.frontends.cni import result
from plugin.frontends.cni.errors import CniError
from plugin.frontends.cni.sandbox import HostLink
from plugin.core.records import Attachment
from plugin.identity import Identity

RECORD = Attachment(who=Identity("default", "web", "a" * 64, "net1"),
                    bridge="br", port="vp123", vlan=22, addresses=("10.0.0.5/24",),
                    network="pods", mac="0a:58:0a:00:00:05", gateways=("",))
HOST = HostLink("vp123", "4e:00:00:00:00:01", 1500)
SANDBOX = "/proc/42/ns/net"


@pytest.mark.parametrize("version", ["0.3.1", "0.4.0"])
def test_pre_1_0_results_say_the_ip_family(version):
    body = result.success(version, RECORD, SANDBOX, HOST, ("",), {})
    assert body == {
        "cniVersion": version,
        "interfaces": [{"name": "vp123", "mac": "4e:00:00:00:00:01"},
                       {"name": "net1", "mac": "0a:58:0a:00:00:05", "sandbox": SANDBOX}],
        "ips": [{"version": "4", "address": "10.0.0.5/24", "interface": 1}],
        "routes": [], "dns": {}}


def test_1_0_has_no_family_and_1_1_reports_mtu():
    assert result.success("1.0.0", RECORD, SANDBOX, HOST, ("",), {})["ips"] == [
        {"address": "10.0.0.5/24", "interface": 1}]
    assert [i.get("mtu") for i in result.success("1.1.0", RECORD, SANDBOX, HOST, ("",),
                                                 {})["interfaces"]] == [1500, 1500]


def test_gateway_reported_and_default_route_only_when_set_by_pipework():
    body = result.success("1.0.0", RECORD, SANDBOX, HOST, ("10.0.0.1",),
                          {"nameservers": ["9.9.9.9"]})
    assert body["ips"][0]["gateway"] == "10.0.0.1" and body["routes"] == []
    assert body["dns"] == {"nameservers": ["9.9.9.9"]}
    routed = replace(RECORD, **{"addresses": ("fd00::5/64",),
                           "gateways": ("fd00::1",)})
    body = result.success("0.4.0", routed, SANDBOX, HOST, ("fd00::1",), {})
    assert body["routes"] == [{"dst": "::/1", "gw": "fd00::1"}, {"dst": "8000::/1", "gw": "fd00::1"}]
    assert body["ips"][0]["version"] == "6"


@pytest.mark.parametrize("version", ["0.3.1", "1.0.0"])
def test_a_dual_stack_attachment_reports_both_families_on_one_interface(version):
    dual = replace(RECORD, **{"addresses": ("10.0.0.5/24", "fd00::5/64"),
                         "gateways": ("10.0.0.1", "")})
    body = result.success(version, dual, SANDBOX, HOST, ("10.0.0.1", "fd00::1"), {})
    assert [(ip["address"], ip["interface"], ip["gateway"]) for ip in body["ips"]] == [
        ("10.0.0.5/24", 1, "10.0.0.1"), ("fd00::5/64", 1, "fd00::1")]
    assert [ip.get("version") for ip in body["ips"]] == (
        ["4", "6"] if version == "0.3.1" else [None, None])
    assert body["routes"] == [{"dst": "0.0.0.0/1", "gw": "10.0.0.1"},
                              {"dst": "128.0.0.0/1", "gw": "10.0.0.1"}]
    assert result.expected(body, "net1").addresses == ("10.0.0.5/24", "fd00::5/64")


def test_a_previous_result_is_passed_through_with_ours_appended():
    previous = {"interfaces": [{"name": "eth0", "sandbox": SANDBOX}],
                "ips": [{"address": "172.17.0.2/16", "interface": 0}],
                "routes": [{"dst": "0.0.0.0/0"}], "dns": {"domain": "cluster.local"}}
    body = result.success("1.0.0", RECORD, SANDBOX, HOST, ("",), {"domain": "x"}, previous)
    assert [i["name"] for i in body["interfaces"]] == ["eth0", "vp123", "net1"]
    assert body["ips"][1] == {"address": "10.0.0.5/24", "interface": 2}
    assert body["routes"] == [{"dst": "0.0.0.0/0"}] and body["dns"] == {"domain": "cluster.local"}


def test_expected_finds_our_interface_in_prev_result():
    previous = result.success("0.4.0", RECORD, SANDBOX, HOST, ("",), {})
    assert result.expected(previous, "net1") == result.Expected(("10.0.0.5/24",),
                                                                "0a:58:0a:00:00:05")


@pytest.mark.parametrize("previous,code", [
    (None, 7), ({"interfaces": {}}, 7),
    ({"interfaces": [{"name": "net1"}], "ips": []}, 1003),
    ({"interfaces": [{"name": "eth0", "sandbox": SANDBOX}], "ips": []}, 1003)])
def test_expected_refuses_a_prev_result_without_our_interface(previous, code):
    with pytest.raises(CniError) as err:
        result.expected(previous, "net1")
    assert err.value.code == code
