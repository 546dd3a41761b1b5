"""Config of networks and etcd: defaults, canonical values, every rejection named."""

from __future__ import annotations

import ipaddress

import pytest

from plugin.config.etcd import parse_etcd
from plugin.config.reader import Section
from plugin.errors import ConfigError
from tests.support.ipamdata import network, networks

NET22 = {"name": "v22", "vlans": [22], "subnet": "10.22.0.0/24"}


def test_no_networks_gives_the_default_unique_pool():
    (default,) = networks()
    assert default.name == "default"
    assert default.vlans is None
    assert default.allocator == "local"
    assert default.subnet == ipaddress.ip_network("192.168.255.0/24")
    assert (str(default.range_start), str(default.range_end)) == ("192.168.255.1",
                                                                  "192.168.255.254")


def test_a_full_network_is_read_and_canonicalised():
    net = network(name="v22", vlans=[22, "30-32"], subnet="10.22.0.0/24", gateway="10.22.0.1",
                  range={"start": "10.22.0.10", "end": "10.22.0.99"},
                  exclude=["10.22.0.50", "10.22.0.64/30"], mtu=1400,
                  routes=[{"dst": "10.0.0.0/8", "gw": "10.22.0.1"}, {"dst": "0.0.0.0/0"}])
    assert net.vlans == frozenset({22, 30, 31, 32})
    assert net.allocator == "local"
    assert str(net.range_start) == "10.22.0.10" and str(net.range_end) == "10.22.0.99"
    assert [str(b) for b in net.exclude] == ["10.22.0.50/32", "10.22.0.64/30"]
    assert [str(r.destination) for r in net.routes] == ["10.0.0.0/8", "0.0.0.0/0"]
    assert net.routes[1].gateway is None
    assert net.mtu == 1400
    lease = net.lease(ipaddress.ip_interface("10.22.0.10/24"))
    assert net.gateway == ipaddress.ip_address("10.22.0.1") and not net.default_route
    assert lease.gateway is None and lease.mtu == 1400  # the pod's default route stays its own


@pytest.mark.parametrize("fields", [
    {"subnet": "10.22.0.0/24", "gateway": "10.22.0.1"},
    {"subnet": "10.22.0.0/24", "allocator": "static", "address": "10.22.0.5/24",
     "gateway": "10.22.0.1"},
    {"subnets": [{"subnet": "10.22.0.0/24", "gateway": "10.22.0.1"}, "fd00:22::/64"]},
])
def test_default_route_true_gives_leases_their_gateway(fields):
    if "subnets" in fields:
        fields["subnets"][0]["default_route"] = True
    else:
        fields["default_route"] = True
    net = network(name="v22", vlans=[22], **fields)
    lease = net.lease(ipaddress.ip_interface("10.22.0.10/24"))
    assert net.default_route and lease.gateway == ipaddress.ip_address("10.22.0.1")


@pytest.mark.parametrize("fields, needle", [
    ({"subnet": "10.22.0.0/24", "default_route": True},
     "key 'networks[0].default_route' = True needs a gateway"),
    ({"subnet": "10.22.0.0/24", "gateway": "10.22.0.1", "default_route": "yes"},
     "default_route"),
    ({"subnets": ["10.22.0.0/24"], "default_route": True},
     "key 'networks[0].default_route' = True goes inside each item of subnets"),
])
def test_default_route_is_refused_without_a_gateway_or_in_the_wrong_place(fields, needle):
    with pytest.raises(ConfigError) as err:
        network(name="v22", vlans=[22], **fields)
    assert needle in str(err.value)


def test_allocator_defaults_to_static_without_subnet():
    net = network(vlans=[5], address="192.168.255.126/24")
    assert net.allocator == "static"
    assert str(net.address) == "192.168.255.126/24"


def test_static_pods_map():
    net = network(vlans=[5], pods={"ns/a": "10.5.0.2/24", "ns/b": "10.5.0.3/24"})
    assert {k: str(v) for k, v in net.pods.items()} == {"ns/a": "10.5.0.2/24",
                                                          "ns/b": "10.5.0.3/24"}


def test_ipv6_subnet_range_skips_the_anycast_address():
    net = network(vlans=[6], subnet="fd00:6::/120", allocator="etcd")
    assert str(net.range_start) == "fd00:6::1" and str(net.range_end) == "fd00:6::ff"


def test_an_ipv6_family_without_room_names_its_key_and_value():
    with pytest.raises(ConfigError) as caught:
        networks({"name": "d", "subnets": ["10.7.0.0/24", {
            "subnet": "fd00::/127", "gateway": "fd00::1", "exclude": ["fd00::"]}]})
    assert "key 'networks[0].subnets[1].subnet' = 'fd00::/127' of network 'd' has no " \
        "address left" in str(caught.value)


def test_a_dual_stack_network_lists_ipv4_first_in_any_config_order():
    """status reports the first family's address and pipework is given it: IPv4, always."""
    four, six = networks({"name": "d", "vlans": [7], "subnets": ["fd00:7::/64", "10.7.0.0/24"]})
    assert (four.subnet.version, six.subnet.version) == (4, 6)
    assert (four.key, six.key) == ("d", "d@6")


def test_small_subnets_use_every_address():
    net = network(vlans=[7], subnet="10.7.0.0/31")
    assert (str(net.range_start), str(net.range_end)) == ("10.7.0.0", "10.7.0.1")


def test_all_vlans_is_the_fallback_beside_explicit_ones():
    nets = networks(NET22, {"name": "rest", "vlans": "all", "subnet": "10.99.0.0/16"})
    assert [n.vlans for n in nets] == [frozenset({22}), None]


@pytest.mark.parametrize(("items", "expected"), [
    ([NET22, {**NET22, "name": "b", "subnet": "10.22.0.128/25", "vlans": [23]}], "overlap"),
    ([NET22, {"name": "b", "vlans": ["20-22"], "subnet": "10.23.0.0/24"}],
     "VLAN 22 is claimed by networks 'v22' and 'b'"),
    ([NET22, {**NET22, "vlans": [23], "subnet": "10.23.0.0/24"}], "two networks are named 'v22'"),
    ([{"name": "a", "subnet": "10.1.0.0/24"}, {"name": "b", "subnet": "10.2.0.0/24"}],
     'both say vlans: "all"'),
    ([NET22, {"name": "s", "vlans": [23], "address": "10.22.0.9/24"}],
     "static address 10.22.0.9/24 of network 's' lies in subnet 10.22.0.0/24"),
])
def test_rules_across_networks(items, expected):
    with pytest.raises(ConfigError, match=expected):
        networks(*items)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"gateway": "10.23.0.1"}, "'networks[0].gateway' = '10.23.0.1' is outside subnet"),
    ({"exclude": ["10.23.0.5"]}, "'networks[0].exclude[0]' = '10.23.0.5' is outside"),
    ({"exclude": ["10.22.0.0/16"]}, "is outside subnet"),
    ({"exclude": ["nonsense"]}, "is not an address or CIDR"),
    ({"range": {"start": "10.22.1.1"}}, "'networks[0].range.start' = '10.22.1.1' is outside"),
    ({"range": {"start": "10.22.0.9", "end": "10.22.0.8"}}, "is after range end"),
    ({"range": {"first": "10.22.0.9"}}, "unknown key 'networks[0].range.first'"),
    ({"subnet": "10.22.0.1/24"}, "has host bits set"),
    ({"subnet": "10.22.0.0"}, "a prefix length is required"),
    ({"vlans": [0]}, "neither a VLAN id (1-4094) nor a range"),
    ({"vlans": [4095]}, "neither a VLAN id (1-4094) nor a range"),
    ({"vlans": ["30-20"]}, "neither a VLAN id (1-4094) nor a range"),
    ({"vlans": ["x"]}, "neither a VLAN id (1-4094) nor a range"),
    ({"vlans": [True]}, "neither a VLAN id (1-4094) nor a range"),
    ({"vlans": []}, "non-empty list"),
    ({"vlans": "some"}, "non-empty list"),
    ({"allocator": "dhcp"}, "must be one of static, local, etcd"),
    ({"mtu": 100}, "must be between 576 and 9216"),
    ({"mtu": 9217}, "must be between 576 and 9216"),
    ({"name": "a b"}, "a file name"),
    ({"name": "../x"}, "a file name"),
    ({"address": "10.22.0.5/24"}, "applies to allocator static only"),
    ({"routes": [{"dst": "fd00::/8"}]}, "is IPv6, a family the network has not"),
    ({"routes": [{"dst": "10.0.0.0/8", "via": "10.22.0.1"}]}, "unknown key 'networks[0].routes[0].via'"),
    ({"gatway": "10.22.0.1"}, "unknown key 'networks[0].gatway'"),
    ({"subnet": "10.22.0.0/30", "gateway": "10.22.0.1", "exclude": ["10.22.0.2"]},
     "key 'networks[0].subnet' = '10.22.0.0/30' of network 'v22' has no address left"),
])
def test_bad_network_values_name_file_key_and_value(fields, expected):
    with pytest.raises(ConfigError) as caught:
        networks({**NET22, **fields})
    assert "test.yaml" in str(caught.value)
    assert expected in str(caught.value)


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, "has neither 'address' nor 'pods'"),
    ({"address": "10.5.0.2"}, "a prefix length is required"),
    ({"pods": {"nopod": "10.5.0.2/24"}}, 'is not keyed "namespace/pod"'),
    ({"pods": {"ns/a": "10.5.0.2/24", "ns/b": "10.5.0.2/24"}}, "is also given to another pod"),
    ({"address": "10.5.0.2/24", "subnet": "10.6.0.0/24", "allocator": "static"},
     "is not an address of subnet 10.6.0.0/24"),
    ({"address": "10.5.0.2/24", "gateway": "10.6.0.1"}, "is outside 10.5.0.0/24"),
    ({"address": "10.5.0.2/24", "exclude": ["10.5.0.3"]}, "applies to allocator local or etcd"),
    ({"allocator": "etcd"}, "'networks[0].subnet' is required for allocator etcd"),
])
def test_bad_static_networks(fields, expected):
    with pytest.raises(ConfigError) as caught:
        networks({"name": "s", "vlans": [5], **fields})
    assert expected in str(caught.value)


def etcd(data):
    return parse_etcd(Section("test.yaml", data, "etcd"))


def test_etcd_section_defaults_and_absence():
    assert etcd(None) is None
    assert etcd({}) is None
    config = etcd({"endpoints": ["http://127.0.0.1:2379", "https://[::1]:2379/"]})
    assert config.endpoints == ("http://127.0.0.1:2379", "https://[::1]:2379")
    assert (config.prefix, config.timeout) == ("/vlanpipe", 5.0)


def test_etcd_tls_files(tmp_path):
    for name in ("ca.pem", "c.pem", "k.pem"):
        (tmp_path / name).write_text("x")
    config = etcd({"endpoints": ["https://e:2379"], "ca_cert": str(tmp_path / "ca.pem"),
                   "cert": str(tmp_path / "c.pem"), "key": str(tmp_path / "k.pem")})
    assert config.cert.endswith("c.pem") and config.key.endswith("k.pem")


@pytest.mark.parametrize(("data", "expected"), [
    ({"prefix": "/x"}, "key 'etcd.endpoints' is required"),
    ({"endpoints": []}, "must list at least one endpoint"),
    ({"endpoints": ["127.0.0.1:2379"]}, "must be http(s)://HOST:PORT"),
    ({"endpoints": ["http://127.0.0.1"]}, "must be http(s)://HOST:PORT"),
    ({"endpoints": ["http://127.0.0.1:2379/v3"]}, "must be http(s)://HOST:PORT"),
    ({"endpoints": ["http://h:1"], "prefix": "vlanpipe"}, 'a leading "/"'),
    ({"endpoints": ["http://h:1"], "prefix": "/vlanpipe/"}, 'no trailing "/"'),
    ({"endpoints": ["http://h:1"], "timeout": 0}, "must be greater than 0"),
    ({"endpoints": ["http://h:1"], "timeout": 1000}, "at most 300"),
    ({"endpoints": ["http://h:1"], "ca_cert": "/nonexistent"}, "is not a readable file"),
    ({"endpoints": ["http://h:1"], "user": "x"}, "unknown key 'etcd.user'"),
])
def test_bad_etcd_values(data, expected):
    with pytest.raises(ConfigError) as caught:
        etcd(data)
    assert expected in str(caught.value)


def test_tls_needs_https_and_cert_with_key(tmp_path):
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError, match="must all be https"):
        etcd({"endpoints": ["http://h:1"], "ca_cert": str(tmp_path / "c.pem")})
    with pytest.raises(ConfigError, match="must be given together"):
        etcd({"endpoints": ["https://h:1"], "cert": str(tmp_path / "c.pem")})
