"""Per-pod requests from runtimeConfig and args.cni: precedence and validation."""

import ipaddress

import pytest

from plugin.frontends.cni.errors import CniError
from plugin.frontends.cni.podargs import PodRequest, pod_request


def test_nothing_asked():
    assert pod_request({}, {}) == PodRequest()


def test_runtime_config_wins_over_args():
    request = pod_request({"ips": ["10.0.0.5/24"], "mac": "0A:58:0A:00:00:05"},
                          {"ips": ["10.0.0.6/24"], "vlan": "23", "mac": "0a:58:00:00:00:01"})
    assert request == PodRequest(23, (ipaddress.ip_interface("10.0.0.5/24"),),
                                 "0a:58:0a:00:00:05", "runtimeConfig.mac")


@pytest.mark.parametrize("runtime_config,args,needle", [
    ({}, {"vlan": 0}, "args.cni.vlan"), ({}, {"vlan": 4095}, "args.cni.vlan"),
    ({}, {"vlan": True}, "args.cni.vlan"), ({"vlan": "x"}, {}, "runtimeConfig.vlan"),
    ({"ips": "10.0.0.5/24"}, {}, "runtimeConfig.ips"),
    ({"ips": ["10.0.0.5"]}, {}, "prefix length"),
    ({}, {"ips": ["nonsense/24"]}, "args.cni.ips"),
    ({"mac": "01:00:5e:00:00:01"}, {}, "unicast"), ({}, {"mac": 5}, "args.cni.mac")])
def test_invalid_requests_are_code_7(runtime_config, args, needle):
    with pytest.raises(CniError) as err:
        pod_request(runtime_config, args)
    assert err.value.code == 7 and needle in err.value.message


def test_one_address_per_family_and_no_more():
    both = pod_request({"ips": ["10.0.0.5/24", "fd00::5/64"]}, {})
    assert [str(a) for a in both.addresses] == ["10.0.0.5/24", "fd00::5/64"]
    with pytest.raises(CniError) as err:
        pod_request({"ips": ["10.0.0.5/24", "10.0.0.6/24"]}, {})
    assert err.value.code == 2 and "runtimeConfig.ips" in err.value.message
    assert "more than one address of a family" in err.value.message
