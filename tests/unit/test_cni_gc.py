"""GC's choice of ports: those whose attachment the runtime no longer lists."""

from pipework_wrapper.ovs import Port
from plugin.frontends.cni.gc import stale


def port(name, infra, ifname):
    return Port(name, "br", 22, {"owner": "vlanpipe", "vlanpipe-infra-id": infra,
                                 "vlanpipe-interface": ifname})


def test_stale_keeps_exactly_the_valid_attachments():
    ports = [port("p1", "c1", "net1"), port("p2", "c1", "net2"), port("p3", "c2", "net1")]
    assert [p.name for p in stale(ports, frozenset({("c1", "net1")}))] == ["p2", "p3"]
    assert stale(ports, frozenset({("c1", "net1"), ("c1", "net2"), ("c2", "net1")})) == []
